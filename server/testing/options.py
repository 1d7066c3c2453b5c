"""The grader's command-line options, as a pytest plugin that pytest.ini names (`-p testing.options`).

A plugin named in pytest.ini is loaded before pytest reads the command line
in full, whatever folder it runs in, so each option works both as
`--lesson-timeout 5` and as `--lesson-timeout=5` (in a conftest.py below the
root they would be known too late: "unrecognized arguments").

One case no plugin can change: pytest chooses its configuration file before
any plugin loads, and in `pytest --lesson-root PATH` it takes PATH for a test
path and uses the pytest.ini inside PATH, so this plugin is then the graded
checkout's copy. Seeing that, it hands the run back to the grader it was
started from, as `pytest --lesson-root=PATH` (_hand_over).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

# As in conftest.py: no __pycache__ in the checkout being graded. The grader's own modules
# are compiled once into the user's cache folder instead (compiled.py), from here on.
sys.dont_write_bytecode = True
from .compiled import keep_compiled  # noqa: E402 (after the line above, or it is compiled into the checkout)

keep_compiled(__package__)
ROOT = Path(__file__).resolve().parents[2]  # the checkout this file is in
# name, metavar, type, help
OPTIONS = (
    ("--lesson-root", "PATH", str, "grade the checkout at PATH instead of this one "
                                   "(default: $LESSON_ROOT, else this checkout)"),
    ("--lesson-database", "URL", str, "replay the migrations on this PostgreSQL server, in throw-away databases "
                                      "(default: $LESSON_GRADE_DATABASE_URL, else a temporary SQLite file)"),
    ("--lesson-timeout", "SECONDS", float, "time the student's code may take in all, for the revisions and for "
                                           "models.py each (default: $LESSON_TIMEOUT, else 20)"),
    ("--lesson-memory", "MB", int, "memory the student's code may use, on Linux and macOS "
                                   "(default: $LESSON_MEMORY_MB, else 1024)"),
    ("--lesson-disk", "MB", int, "data the student's code may write, files and database together "
                                 "(default: $LESSON_DISK_MB, else 256)"),
    ("--lesson-classroom", "FILE", str, "append each checkpoint's result for GitHub Classroom's reporter to FILE, "
                                        "as variables in the format of $GITHUB_ENV"),
)
HANDED_OVER = "LESSON_HANDED_OVER"  # set in the run _hand_over starts, so that it happens once


def pytest_addoption(parser):
    group = parser.getgroup("lesson", "grading the lesson")
    for name, metavar, kind, text in OPTIONS:
        group.addoption(name, metavar=metavar, type=kind, default=None, help=text)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config):
    _hand_over(early_config)  # before any conftest.py of the wrong checkout loads
    from testing.isolation.sandbox import warm_up

    # The workers' fork server imports its libraries while pytest collects and the grader imports.
    # It is started outside pytest's capture: it writes where pytest does, and ends before the output does.
    capture = early_config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture()
    try:
        warm_up()
    finally:
        if capture is not None:
            capture.resume_global_capture()


def joined(args):
    """The command line with each grader option and its value as one `--opt=value` word."""
    names = {name for name, *_ in OPTIONS}
    result, waiting = [], None
    for arg in args:
        if waiting is not None:
            result.append(f"{waiting}={arg}")
            waiting = None
        elif arg in names:
            waiting = arg
        else:
            result.append(arg)
    return result + ([waiting] if waiting else [])


def _hand_over(config):
    """`pytest --lesson-root PATH`, typed in a grader elsewhere, picked this checkout's
    configuration: run the same command again where it was typed, as `--lesson-root=PATH`,
    and exit with that run's exit code."""
    here = Path(config.invocation_params.dir).resolve()
    args = [str(arg) for arg in config.invocation_params.args]
    chosen = config.known_args_namespace.lesson_root
    picked_by_mistake = (
        chosen and "--lesson-root" in args and Path(chosen).expanduser().resolve() == ROOT
        and config.rootpath.resolve() == ROOT and not (here == ROOT or ROOT in here.parents)
    )
    if not picked_by_mistake or os.environ.get(HANDED_OVER):
        return
    command = [sys.executable, *(["-B"] if sys.flags.dont_write_bytecode else []), "-m", "pytest", *joined(args)]
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)  # the run's output is this run's
    sys.stdout.flush()
    code = subprocess.call(command, cwd=here, env=dict(os.environ, **{HANDED_OVER: "1"}))
    os._exit(code)
