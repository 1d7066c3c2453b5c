"""`pipenv run ...`: every tool of the lesson in one command group, for students,
instructors and maintainers alike (server/testing/tools.py runs it, as the `lesson-tools` command)."""
import importlib
import os
import re
import sys
from pathlib import Path

import click

from testing.maintainers.walkthrough import FURTHER_LAST_STEP, LAST_STEP
from testing.student.cli import reset_command, review_command, status_command


@click.group()
def tool_commands():
    """The lesson tools (run from the repository root with `pipenv run ...`)."""


tool_commands.add_command(status_command)
tool_commands.add_command(review_command)
tool_commands.add_command(reset_command)


WALKTHROUGH_STEPS = range(1, FURTHER_LAST_STEP + 1)  # the lesson's steps, then the optional ones


def _step(ctx, param, value):
    if value not in WALKTHROUGH_STEPS:
        raise click.BadParameter(f"{value} is not one of {', '.join(map(str, WALKTHROUGH_STEPS))}.")
    return value


@tool_commands.command(
    "walkthrough",
    short_help="Do the whole lesson in a scratch copy, as the README tells a student.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--backend", type=click.Choice(("sqlite", "postgresql")), default="sqlite",
              help="database to use (postgresql: a throw-away database on LESSON_POSTGRES_URL)")
@click.option("--stop-after", type=int, default=LAST_STEP, callback=_step, metavar="N",
              help=f"stop after step N (1-{LAST_STEP}, or an optional step up to {FURTHER_LAST_STEP}; "
                   "steps the README lacks are passed over)")
@click.option("--dest", type=click.Path(path_type=Path), metavar="DEST",
              help="build the copy here (kept afterwards) instead of a temporary folder")
@click.option("--keep", is_flag=True, help="keep the temporary copy to look at afterwards")
def walkthrough_command(backend, stop_after, dest, keep):
    """Do the lesson in a scratch copy of the starter, exactly as README.md says."""
    from testing.maintainers.walkthrough import main

    sys.exit(main(backend, stop_after, dest, keep))


@tool_commands.command("page")
@click.option("--root", type=click.Path(exists=True, file_okay=False), help="Another checkout to show (only read).")
@click.option("--port", type=int, default=5555, show_default=True, help="Port on 127.0.0.1.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.option("--screenshots", type=click.Path(file_okay=False), help="Redo the README's pictures of the page in this folder.")
def page_command(root, port, no_browser, screenshots):
    """Serve the lesson page: your database, your migrations and what they do to rows."""
    if screenshots:
        from testing.maintainers.screenshots import take_screenshots

        sys.exit(take_screenshots(screenshots))
    from testing.student.page_tool import main

    sys.exit(main(root, port, not no_browser))


def _shard(text):
    match = re.fullmatch(r"(\d+)/(\d+)", text or "")
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise click.BadParameter(f"{text!r}: write K/N with 1 <= K <= N, e.g. 2/4")
    return int(match[1]), int(match[2])


@tool_commands.command("cohort")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", default="cohort-report", show_default=True, type=click.Path(file_okay=False),
              help="Folder for gradebook.csv, gradebook.json, report.html, summary.md, feedback/ and canvas.csv.")
@click.option("--merge", is_flag=True, help="SOURCES are the --out folders of shards: merge them into one gradebook.")
@click.option("--shard", callback=lambda ctx, param, value: value and _shard(value), metavar="K/N",
              help="Grade only shard K of N (every N-th submission, starting at the K-th).")
@click.option("--jobs", type=click.IntRange(min=1), help="Submissions graded at once (default: one per core).")
@click.option("--timeout", type=click.IntRange(min=1), default=300, show_default=True,
              help="Seconds one submission may take before it is stopped and reported as timed_out.")
@click.option("--cache", type=click.Path(file_okay=False),
              help="Where clones and grades are kept between runs (default: ~/.cache/lesson-cohort).")
@click.option("--database", metavar="URL", envvar="LESSON_GRADE_DATABASE_URL",
              help="Replay on this PostgreSQL server instead of SQLite (default: $LESSON_GRADE_DATABASE_URL, as pytest).")
@click.option("--working-tree", is_flag=True,
              help="Grade local git folders as their files are, uncommitted changes included (default: their HEAD commit).")
@click.option("--canvas-assignment", metavar="TITLE",
              help='The assignment column of canvas.csv: a new title, or an existing one as Canvas exports it, '
                   '"Title (id)" (default: "Schema migrations with Flask-Migrate").')
@click.option("--require-confinement", is_flag=True,
              help="Refuse to start unless this system confines the students' code fully (files, network, "
                   "processes).")
def cohort_command(sources, out, merge, shard, jobs, timeout, cache, database, working_tree, canvas_assignment,
                   require_confinement):
    """Grade a whole class: a gradebook, the common mistakes, an HTML report and feedback files.

    SOURCES are checkout folders, folders of checkouts, or roster files (a git
    URL or local path a line, optionally after the student's name; or a CSV
    with a header: name, source, id, email, lms_id, section).
    """
    from testing.instructor import cohort
    from testing.instructor.cohort_gradebook import MergeError
    from testing.instructor.cohort_sources import SourceError
    from testing.isolation.confinement import available, summary

    if require_confinement and not merge and summary(available()) != summary(("files", "network", "processes")):
        raise click.UsageError(f"--require-confinement: {summary(available())} (see the README's instructor "
                               "section for what each system offers)")
    os.environ.pop("DATABASE_URL", None)  # the instructor's own database is not the students'
    try:
        if merge:
            _, warnings = cohort.run_merge(sources, out, echo=click.echo, canvas_assignment=canvas_assignment)
        else:
            _, warnings = cohort.run_cohort(sources, out, cache=cache, jobs=jobs, shard=shard, timeout=timeout,
                                            server_url=database, echo=click.echo, progress=cohort.Progress(),
                                            working_tree=working_tree, canvas_assignment=canvas_assignment)
            for warning in warnings:
                click.echo(f"warning: {warning}")
    except (SourceError, MergeError) as error:
        raise click.UsageError(str(error))
    except cohort.Interrupted as interrupted:
        click.echo(f"\nInterrupted: {interrupted} in {out}/ (marked partial). Grades finished so far are "
                   "cached: run the same command again to resume.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("\nInterrupted. Grades finished so far are cached: run the same command again to resume.",
                   err=True)
        sys.exit(130)
    click.echo(f"Wrote {out}/: gradebook.csv, gradebook.json, report.html, summary.md, feedback/"
               + (", canvas.csv" if (Path(out) / "canvas.csv").is_file() else "") + ".")
    sys.exit(1 if warnings else 0)


# The maintainers' scripts with options of their own: every argument, --help too, goes to the
# script's main(), imported only when its command runs.
OWN_ARGUMENTS = {
    "benchmark": ("testing.maintainers.benchmark", "How fast is the grader, against pytest-alembic (maintainers)."),
    "page-benchmark": ("testing.maintainers.page_benchmark",
                       "How fast is the lesson page, whole HTTP requests (maintainers)."),
    "production-benchmark": ("testing.maintainers.production_benchmark",
                             "What the production review adds to review and the page (maintainers)."),
    "cohort-benchmark": ("testing.maintainers.cohort_benchmark",
                         "How fast cohort grades classes of 30 to 300 (maintainers)."),
}


def _own_arguments(name, module, summary):
    @tool_commands.command(name, short_help=summary, add_help_option=False,
                           context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args):
        sys.exit(importlib.import_module(module).main(list(args)))


for _name, (_module, _summary) in OWN_ARGUMENTS.items():
    _own_arguments(_name, _module, _summary)


@tool_commands.command("cohort-sample")
def cohort_sample_command():
    """Regenerate docs/cohort-sample/ and the README's copy of its summary (maintainers)."""
    from testing.maintainers.cohort_sample import main

    sys.exit(main())
