"""The lesson's grader and tools. Nothing in here needs editing for the lesson."""
