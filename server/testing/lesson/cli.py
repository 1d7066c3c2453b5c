"""`flask lesson ...`: the student's commands, thin over the lesson's checks."""
import sys

import click


@click.group("lesson")
def lesson_commands():
    """Where you are in the lesson, and a safety review before you upgrade."""


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


@click.group()
def tool_commands():
    """The lesson tools (run from the repository root with `pipenv run ...`)."""


tool_commands.add_command(status_command)
tool_commands.add_command(review_command)


@tool_commands.command("walkthrough", context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def walkthrough_command(args):
    """Do the whole lesson in a scratch copy, as the README tells a student."""
    from .walkthrough import main

    sys.exit(main(list(args)))


@tool_commands.command("page")
@click.option("--root", type=click.Path(exists=True, file_okay=False), help="Another checkout to show (only read).")
@click.option("--port", type=int, default=5555, show_default=True, help="Port on 127.0.0.1.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.option("--screenshots", type=click.Path(file_okay=False), help="Redo the README's pictures of the page in this folder.")
def page_command(root, port, no_browser, screenshots):
    """Serve the lesson page: your database, your migrations and what they do to rows."""
    from .page_tool import main

    sys.exit(main(root, port, not no_browser, screenshots))
