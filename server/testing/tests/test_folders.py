"""Any folder works: `pytest` and the Pipfile's scripts, from the root and below.

A finished lesson (the reference walkthrough's copy, SQLite) is graded by
real pytest processes started in several of its folders, and the Pipfile's
scripts run from the root and from server/ as the exact command lines the
Pipfile gives (`pipenv run` itself would make a virtualenv for the copy).
"""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from testing.lesson.checkpoints import CHECKPOINTS

from .lesson_builds import copy_reference, reference_solution

try:
    import tomllib
except ImportError:  # Python < 3.11: pytest itself depends on tomli there
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
FOLDERS = (".", "server", "server/migrations", "server/migrations/versions", "server/testing/tests", ".github")


@pytest.fixture(scope="module")
def finished(request, tmp_path_factory):
    """A finished lesson on SQLite, shared by the tests here (they only read it)."""
    return copy_reference(request, reference_solution(request, "sqlite"), tmp_path_factory.mktemp("finished") / "checkout")


def clean_environment():
    return {name: value for name, value in os.environ.items()
            if name not in ("DATABASE_URL", "LESSON_ROOT", "LESSON_GRADE_DATABASE_URL", "PYTEST_ADDOPTS")}


def run(command, cwd, timeout=300):
    finished = subprocess.run(command, cwd=cwd, env=clean_environment(), capture_output=True, text=True, timeout=timeout)
    return finished.returncode, finished.stdout + finished.stderr


def pipfile_scripts():
    with open(REPO / "Pipfile", "rb") as pipfile:
        return tomllib.load(pipfile)["scripts"]


def script_command(name, *extra):
    """A Pipfile script as pipenv runs it: its words, with this environment's programs."""
    words = shlex.split(pipfile_scripts()[name]) + list(extra)
    program = BIN / words[0]
    return [str(program) if program.exists() else words[0]] + words[1:]


@pytest.mark.parametrize("folder", FOLDERS)
def test_plain_pytest_grades_from_any_folder(finished, folder):
    code, output = run([str(BIN / "pytest")], finished.checkout / folder)
    assert code == 0, output
    assert "collected 9 items" in output, output
    for checkpoint in CHECKPOINTS:
        assert f"test_{checkpoint.id} PASSED" in output or f"\n{checkpoint.id} " in output, output
    assert "Score: 100/100 points" in output, output
    assert "testing/tests/" not in output, output  # the project's own suite stays out


def test_the_project_suite_runs_when_asked_for_by_path(finished):
    code, output = run([str(BIN / "pytest"), "server/testing/tests/test_starter.py", "--co", "-q"], finished.checkout)
    assert code == 0 and "test_flaskenv_sets_the_app_and_the_port" in output, output
    assert "codegrade_test" not in output


@pytest.mark.parametrize("folder", (".", "server"))
def test_selftest_script_collects_the_project_suite_from(finished, folder):
    code, output = run(script_command("selftest", "--co", "-q"), finished.checkout / folder)
    assert code == 0, output
    assert "test_starter.py::test_flaskenv_sets_the_app_and_the_port" in output, output
    assert "codegrade_test" not in output


@pytest.mark.parametrize("folder", (".", "server"))
def test_tool_scripts_work_from(finished, folder):
    cwd = finished.checkout / folder
    code, output = run(script_command("status"), cwd)
    assert code == 0 and "[x] Step 5" in output and "All five steps are done" in output, output
    code, output = run(script_command("review"), cwd)
    assert code == 0 and "do not run `flask db upgrade`" in output, output
    code, output = run(script_command("grade"), cwd)
    assert code == 0 and "Score: 100/100 points" in output, output
    code, output = run(script_command("walkthrough", "--help"), cwd)
    assert code == 0 and "--stop-after" in output, output
    code, output = run(script_command("reset", "--help"), cwd)
    assert code == 0 and "--yes" in output and "lesson-backups/" in output, output



def test_the_grader_table_breaks_long_summaries_between_words():
    from types import SimpleNamespace

    from testing.engine.report_text import summary_table

    summary = ("Revision 1 (server/migrations/versions/8eed0e7411fa_initial_migration.py) creates `employees` "
               "and keeps every row of the table it starts from.")
    results = [SimpleNamespace(id="create_employees", status="passed", earned=10, points=10, summary=summary),
               SimpleNamespace(id="init", status="not_applicable", earned=0, points=0, summary="short")]
    lines = summary_table(results)
    column = lines[1].index("Revision 1")
    continued = [line for line in lines[2:] if line.startswith(" ")]
    assert continued and all(line[:column].strip() == "" for line in continued)
    assert " ".join(line[column:].strip() for line in lines[1:2] + continued) == summary  # every word whole
    assert all(len(line) <= column + 80 for line in lines[1:])
