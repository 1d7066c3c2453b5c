"""Plain `pytest` grades the lesson from any folder of the repository.

pytest reads `testpaths` in pytest.ini only when it runs in the repository
root with no test path; in server/ (where every flask command is typed) or
below it, it would collect the current folder instead: nothing, or the
project's own test suite. With no test path given, this points it at the
grader wherever it runs inside the repository. The project's own suite runs
only when asked for: `pytest server/testing/tests` or `pipenv run selftest`.
The grader's options come from the plugin pytest.ini names (testing/options.py).
"""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
GRADER = ROOT / "server" / "testing" / "codegrade_test.py"


def pytest_configure(config):
    here = Path(config.invocation_params.dir).resolve()
    if config.args_source == pytest.Config.ArgsSource.INVOCATION_DIR and (here == ROOT or ROOT in here.parents):
        config.args = [str(GRADER)]
