"""Options and reports of the lesson's grader (codegrade_test.py).

    pytest                                  # grade this checkout
    pytest --lesson-root=PATH               # grade another checkout (or LESSON_ROOT=PATH)
    pytest --lesson-database=URL            # replay on that PostgreSQL server, in throw-away
                                            # databases (or LESSON_GRADE_DATABASE_URL=URL)
    pytest --junitxml=report.xml            # JUnit XML with each checkpoint's points
    pytest --lesson-timeout=SECONDS         # time for the student's code (or LESSON_TIMEOUT; 20)
    pytest --lesson-memory=MB               # its memory, on Linux and macOS (or LESSON_MEMORY_MB; 1024)
    pytest --lesson-classroom="$GITHUB_ENV"  # GitHub Classroom's reporter inputs (.github/workflows/classroom.yml)

The student's code (revision scripts, models.py) never runs in this process:
it runs in a separate, time-limited worker process on a private copy
(testing/lesson/sandbox.py), and every checkpoint is judged here, on what
the grader reads from the databases itself. Whatever that code does, the
JUnit report is written and pytest exits 0 only at full marks.

Write `--lesson-root=PATH` with "=": pytest picks its configuration before it
knows this option, so a separate PATH argument counts as a test path and
pytest would use the pytest.ini (and the grader copy) inside PATH. Run the
pristine grader from its own root, e.g.
    cd /grader && pytest --lesson-root=/submissions/alice --junitxml=alice.xml

The grade runs once per session (the `lesson_report` fixture). After the run,
a table of checkpoints and points is printed and, when GITHUB_STEP_SUMMARY is
set, appended to it as markdown (both drawn by testing/lesson/report_text.py).
With --lesson-classroom=FILE, one result per checkpoint for GitHub Classroom's
reporter is appended to FILE, as variables in $GITHUB_ENV's format.
Where CodeGrade's cg-pytest-reporter plugin is installed, each checkpoint test
carries its marks (codegrade_test.py).
A short "Before production" note follows the score: what squawk says about
each revision's PostgreSQL SQL (testing/lesson/production.py). It is never
part of a checkpoint's message and never changes the score.
All of this happens only when the grader's tests ran, so the project's own
suite (server/testing/tests) is undisturbed.
"""
import os
import sys
import traceback
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the checkout being graded

import pytest  # noqa: E402

from testing.lesson.report_text import classroom_environment, markdown_summary, summary_table  # noqa: E402

GRADER_ROOT = Path(__file__).resolve().parents[2]  # the checkout this grader lives in
REPORT = pytest.StashKey()


def pytest_addoption(parser):
    group = parser.getgroup("lesson", "grading the lesson")
    group.addoption(
        "--lesson-root", metavar="PATH", default=None,
        help="grade the checkout at PATH instead of this one (default: $LESSON_ROOT, else this checkout); "
             "write it with '=' so pytest does not take PATH for a test path",
    )
    group.addoption(
        "--lesson-timeout", metavar="SECONDS", type=float, default=None,
        help="time the student's code may take in all, for the revisions and for models.py each "
             "(default: $LESSON_TIMEOUT, else 20)",
    )
    group.addoption(
        "--lesson-memory", metavar="MB", type=int, default=None,
        help="memory the student's code may use, on Linux and macOS (default: $LESSON_MEMORY_MB, else 1024)",
    )
    group.addoption(
        "--lesson-database", metavar="URL", default=None,
        help="replay the migrations on this PostgreSQL server, in throw-away databases "
             "(default: $LESSON_GRADE_DATABASE_URL, else a temporary SQLite file)",
    )
    group.addoption(
        "--lesson-classroom", metavar="FILE", default=None,
        help="append each checkpoint's result for GitHub Classroom's reporter to FILE, "
             "as variables in the format of $GITHUB_ENV",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): the points a lesson checkpoint is worth")
    from testing.lesson.sandbox import warm_up

    warm_up()  # the worker processes' fork server boots while pytest collects


def lesson_root(config):
    chosen = config.getoption("lesson_root") or os.environ.get("LESSON_ROOT")
    return Path(chosen).expanduser().resolve() if chosen else GRADER_ROOT


def lesson_database(config):
    return config.getoption("lesson_database") or os.environ.get("LESSON_GRADE_DATABASE_URL") or None


@pytest.fixture(scope="session")
def lesson_report(request):
    """The grade of the checkout, computed once for all checkpoint tests."""
    from testing.lesson.checks import grade
    from testing.lesson.sandbox import Limits

    config = request.config
    try:
        limits = Limits.from_environment(config.getoption("lesson_timeout"), config.getoption("lesson_memory"))
        root = lesson_root(config)
        # The student's own database file counts only on their own checkout; grading
        # another one (a pristine grader, CodeGrade) leaves it out, as the cohort does.
        report = grade(root, server_url=lesson_database(config), limits=limits, local_database=root == GRADER_ROOT,
                       before_production=True)
    except Exception as error:  # a fault in the grader, not in the student's work
        report = _grader_fault(lesson_root(config), error)
    config.stash[REPORT] = report
    return report


def _grader_fault(root, error):
    """A report failing every checkpoint with one clear line, instead of a traceback."""
    from testing.lesson.checkpoints import CHECKPOINTS
    from testing.lesson.checks import FAILED, Report, Result
    from testing.lesson.feedback import Feedback

    if os.environ.get("LESSON_GRADER_DEBUG"):
        traceback.print_exception(type(error), error, error.__traceback__)
    feedback = Feedback(f"The grader could not grade {root}: {type(error).__name__}: {error}").add_fix(
        "This is a fault in the grader, not in your work: tell your instructor, and include this message "
               "(LESSON_GRADER_DEBUG=1 shows the details).")
    results = {c.id: Result(c, FAILED, feedback, reason="grader_fault") for c in CHECKPOINTS}
    return Report(root=root, backend="?", results=results)


def pytest_terminal_summary(terminalreporter, config):
    report = config.stash.get(REPORT, None)
    if report is None:
        return
    terminalreporter.section("lesson checkpoints")
    for line in summary_table(report):
        terminalreporter.write_line(line)
    where = "" if report.root == GRADER_ROOT else f" of {report.root}"
    terminalreporter.write_line(
        f"Score{where}: {report.score}/{report.max_score} points "
        f"(replayed on {report.backend}, {report.seconds:.2f} s)",
        bold=True, green=report.full_marks, red=not report.full_marks,
    )
    for line in before_production_note(report):
        terminalreporter.write_line(line)
    _append(terminalreporter, "GITHUB_STEP_SUMMARY", os.environ.get("GITHUB_STEP_SUMMARY"), markdown_summary(report))
    _append(terminalreporter, "--lesson-classroom", config.getoption("lesson_classroom"), classroom_environment(report))


def _append(terminalreporter, what, path, text):
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as file:
            file.write(text)
    except OSError as error:
        terminalreporter.write_line(f"Could not write {what} ({error})", yellow=True)


def before_production_note(report):
    """squawk's findings on the revisions' PostgreSQL SQL, in a few lines; nothing to say, nothing printed."""
    from testing.lesson.production import short_note

    lines = short_note(report.evidence.production) if report.evidence is not None else []
    if not lines:
        return []
    return ["Before production (squawk, on each revision's PostgreSQL SQL; a note that does not change the score):"
            ] + ["  " + line for line in lines] + [
        "  What each means and how teams do it instead: `flask lesson review` in server/ (pending revisions) "
        "or the lesson page (`pipenv run page`)."]
