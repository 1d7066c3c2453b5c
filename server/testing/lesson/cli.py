"""`flask lesson ...`: the student's commands, thin over the lesson's checks."""
import sys

import click


@click.group("lesson")
def lesson_commands():
    """Where you are in the lesson, and a safety review before you upgrade."""


@lesson_commands.command("status")
def status_command():
    """Show the five steps as a checklist and the one next thing to do."""
    from .status import run_status

    sys.exit(run_status())


@lesson_commands.command("review")
def review_command():
    """Check the migrations not yet applied for anything that loses data."""
    from .review import run_review

    sys.exit(run_review())
