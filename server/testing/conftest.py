"""Options and reports of the lesson's grader (codegrade_test.py).

    pytest                                  # grade this checkout
    pytest --lesson-root=PATH               # grade another checkout (or LESSON_ROOT=PATH)
    pytest --lesson-database=URL            # replay on that PostgreSQL server, in throw-away
                                            # databases (or LESSON_GRADE_DATABASE_URL=URL)
    pytest --junitxml=report.xml            # JUnit XML with each checkpoint's points
    pytest --lesson-timeout=SECONDS         # time for the student's code (or LESSON_TIMEOUT; 20)
    pytest --lesson-memory=MB               # its memory, on Linux and macOS (or LESSON_MEMORY_MB; 1024)
    pytest --lesson-disk=MB                 # the data it may write (or LESSON_DISK_MB; 256)
    pytest --lesson-classroom="$GITHUB_ENV"  # GitHub Classroom's reporter inputs (.github/workflows/classroom.yml)

The student's code (revision scripts, models.py) never runs in this process:
it runs in a separate, time-limited worker process on a private copy
(testing/isolation/sandbox.py), and every checkpoint is judged here, on what
the grader reads from the databases itself. Whatever that code does, the
JUnit report is written and pytest exits 0 only at full marks.

The options are registered by testing/options.py, a plugin pytest.ini names,
so `--opt value` works as well as `--opt=value`. Run the pristine grader
from its own root, e.g.
    cd /grader && pytest --lesson-root=/submissions/alice --junitxml=alice.xml

SIGTERM and SIGHUP stop a grade as Ctrl-C does (testing/databases/leftovers.py):
its throw-away databases, folders and worker processes are removed first.

The grade runs once per session (the `lesson_report` fixture). After the run,
a table of checkpoints and points is printed and, when GITHUB_STEP_SUMMARY is
set, appended to it as markdown (both drawn by testing/engine/report_text.py).
With --lesson-classroom=FILE, one result per checkpoint for GitHub Classroom's
reporter is appended to FILE, as variables in $GITHUB_ENV's format.
Where CodeGrade's cg-pytest-reporter plugin is installed, each checkpoint test
carries its marks (codegrade_test.py).
The optional "Going further" steps are scored apart: a table and a bonus line
after the score, a section of the job summary, runners that count nothing in
Classroom's points, JUnit properties of the suite (further_score,
further_max_score) and, for CodeGrade only, tests of weight 0.
A short "Before production" note follows the score: what squawk says about
each revision's PostgreSQL SQL (testing/engine/production.py). It is never
part of a checkpoint's message and never changes the score.
All of this happens only when the grader's tests ran, so the project's own
suite (server/testing/tests) is undisturbed.
"""
import gc
import os
import sys
import traceback
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the checkout being graded

import pytest  # noqa: E402

from testing.engine.report_text import (  # noqa: E402
    classroom_environment, further_line, further_table, markdown_summary, summary_table,
)

GRADER_ROOT = Path(__file__).resolve().parents[2]  # the checkout this grader lives in
REPORT = pytest.StashKey()


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): the points a lesson checkpoint is worth")
    config.addinivalue_line("markers", "going_further: an optional step's checkpoint, graded for CodeGrade only")
    from testing.databases.leftovers import stop_on_signals

    stop_on_signals()


def pytest_pycollect_makeitem(collector, name, obj):
    """The optional steps' tests are collected only for CodeGrade's plugin (codegrade_test.py);
    everywhere else the run, its item count, its JUnit XML and its exit code are the lesson's alone."""
    from testing.codegrade_test import CODEGRADE_PLUGIN, TestGoingFurther

    if obj is TestGoingFurther and not collector.config.pluginmanager.has_plugin(CODEGRADE_PLUGIN):
        return []
    return None


def pytest_unconfigure(config):
    if config.stash.get(REPORT, None) is not None:
        # The grade is over and the process ends: pytest's clean-up collects garbage five
        # times (for unraisable exceptions), which would walk every object of SQLAlchemy and
        # Alembic each time. What exists now is left alone; anything made later is still collected.
        gc.freeze()


def lesson_root(config):
    chosen = config.getoption("lesson_root") or os.environ.get("LESSON_ROOT")
    return Path(chosen).expanduser().resolve() if chosen else GRADER_ROOT


def lesson_database(config):
    return config.getoption("lesson_database") or os.environ.get("LESSON_GRADE_DATABASE_URL") or None


@pytest.fixture(scope="session")
def lesson_report(request, record_testsuite_property):
    """The grade of the checkout, computed once for all checkpoint tests."""
    from testing.engine.checks import grade
    from testing.isolation.sandbox import Limits

    config = request.config
    try:
        limits = Limits.from_environment(config.getoption("lesson_timeout"), config.getoption("lesson_memory"),
                                         config.getoption("lesson_disk"))
        root = lesson_root(config)
        # The student's own database file counts only on their own checkout; grading
        # another one (a pristine grader, CodeGrade) leaves it out, as the cohort does.
        report = grade(root, server_url=lesson_database(config), limits=limits, local_database=root == GRADER_ROOT,
                       before_production=True)
    except Exception as error:  # a fault in the grader, not in the student's work
        report = _grader_fault(lesson_root(config), error)
    config.stash[REPORT] = report
    if report.confinement:
        record_testsuite_property("confinement", report.confinement)  # in the JUnit XML
    if report.further_started:  # the optional steps' bonus, beside the lesson's test cases, never among them
        record_testsuite_property("further_score", report.further_score)
        record_testsuite_property("further_max_score", report.further_max)
    return report


def _grader_fault(root, error):
    """A report failing every checkpoint with one clear line, instead of a traceback."""
    from testing.engine.checks import FAILED, Report, Result
    from testing.lesson.checkpoints import CHECKPOINTS
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
    for line in further_table(report):
        terminalreporter.write_line(line)
    bonus = further_line(report)
    if bonus:
        terminalreporter.write_line(bonus)
    if report.confinement:
        terminalreporter.write_line(f"Student code: {report.confinement}.")
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
    from testing.engine.production import short_note

    lines = short_note(report.evidence.production) if report.evidence is not None else []
    if not lines:
        return []
    return ["Before production (squawk, on each revision's PostgreSQL SQL; a note that does not change the score):"
            ] + ["  " + line for line in lines] + [
        "  What each means and how teams do it instead: `flask lesson review` in server/ (pending revisions) "
        "or the lesson page (`pipenv run page`)."]
