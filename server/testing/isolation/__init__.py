"""Running a student's code apart from the grader: the sandbox, its worker process and what
confines it, and the replay's database behind its gate."""
