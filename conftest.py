"""Plain `pytest` grades the lesson from any folder of the repository.

pytest reads `testpaths` in pytest.ini only when it runs in the repository
root with no test path; in server/ (where every flask command is typed) or
below it, it would collect the current folder instead: nothing, or the
project's own test suite. With no test path given, this points it at the
grader wherever it runs inside the repository. The project's own suite runs
only when asked for: `pytest server/testing/tests` or `pipenv run selftest`.
The grader's options come from the plugin pytest.ini names (testing/options.py).
"""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
GRADER = ROOT / "server" / "testing" / "codegrade_test.py"
# What the grader imports: all installed by `pipenv install` (Pipfile).
LESSON_PACKAGES = ("flask", "flask_sqlalchemy", "flask_migrate", "sqlalchemy", "alembic")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """A pytest without the lesson's packages (the machine's own, outside `pipenv
    shell`) stops with one line saying what to run, not an import error per test."""
    missing = [name for name in LESSON_PACKAGES if not _installed(name)]
    if missing:
        raise pytest.UsageError(f"this pytest's Python lacks the lesson's packages ({', '.join(missing)}): "
                                "run `pipenv run pytest` instead (after `pipenv install`), or `pipenv shell` first")


def _installed(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a module that cannot be imported
        return False


def pytest_configure(config):
    here = Path(config.invocation_params.dir).resolve()
    if config.args_source == pytest.Config.ArgsSource.INVOCATION_DIR and (here == ROOT or ROOT in here.parents):
        config.args = [str(GRADER)]
