"""Running a student's code apart from the grader: the sandbox, its worker process and what
confines it, and the replay's database behind its gate."""

FORK_SERVER_MAIN = "LESSON_FORK_SERVER_MAIN"  # names the main script for fork_server.py (sandbox.py sets it)
