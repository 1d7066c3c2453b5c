"""Machinery behind the lesson: the grader's checks, the status and review
commands, and the reference walkthrough. Students never need to edit it."""
