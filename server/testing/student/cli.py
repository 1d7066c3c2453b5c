"""`flask lesson ...`: the student's commands, thin over the lesson's checks."""
import sys

import click

from ..lesson.checkpoints import LESSON


@click.group("lesson")
def lesson_commands():
    """Where you are in the lesson, a safety review before you upgrade, and a way back to a step's start."""


@lesson_commands.command("status")
@click.option("--root", type=click.Path(exists=True, file_okay=False), help="Another checkout to look at.")
def status_command(root):
    """Show the five steps as a checklist and the one next thing to do."""
    from .status import run_status

    sys.exit(run_status(root))


@lesson_commands.command("review")
def review_command():
    """Check the migrations not yet applied for anything that loses data."""
    from .review import run_review

    sys.exit(run_review())


@lesson_commands.command("reset")
@click.argument("step", type=click.IntRange(min(LESSON.steps), max(LESSON.steps)))
@click.option("--yes", is_flag=True, help="Do not ask first (for scripts).")
@click.option("--root", type=click.Path(exists=True, file_okay=False), help="Another checkout to reset.")
def reset_command(step, yes, root):
    """Put the lesson back to the start of STEP: models.py, migrations and database.

    Everything it replaces is kept in lesson-backups/<date>_<time>/.
    """
    from .reset import run_reset
    from .status import default_root

    sys.exit(run_reset(root or default_root(), step, yes, echo=click.echo, confirm=click.confirm))
