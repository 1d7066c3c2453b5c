"""A newcomer's setup: supported Pythons, what an unsupported one prints, and
the Codespaces container, all as the README's Setup section says."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testing.student.python_support import NEWEST, OLDEST, python_problem

REPO_ROOT = Path(__file__).resolve().parents[3]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
TOOLS = REPO_ROOT / "server" / "testing" / "tools.py"


def setup_section():
    return README.split("\n## Setup\n", 1)[1].split("\n## Step 1", 1)[0]


def console_blocks(text):
    return re.findall(r"^```console\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def python_at(version):
    """An interpreter of that version on this machine (pyenv or PATH), or None."""
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        found = sorted(Path(root, "versions").glob(f"{version}.*/bin/python"))
        if found:
            return str(found[-1])
    return shutil.which(f"python{version}")


# --- supported Pythons --------------------------------------------------------


def test_supported_range_is_the_same_everywhere():
    from .test_lock_wheels import PYTHONS
    from .test_workflows import SUPPORTED_PYTHONS

    names = [f"3.{minor}" for minor in range(OLDEST[1], NEWEST[1] + 1)]
    assert list(PYTHONS) == names == SUPPORTED_PYTHONS
    assert f"Supported Pythons: {names[0]} to {names[-1]}." in setup_section()
    assert f"versions=({' '.join(names)})" in (REPO_ROOT / ".ci" / "check-pythons").read_text(encoding="utf-8")
    assert f"oldest={names[0]}" in (REPO_ROOT / ".ci" / "lock").read_text(encoding="utf-8")


def test_supported_pythons_raise_nothing_and_others_are_told():
    for minor in range(OLDEST[1], NEWEST[1] + 1):
        assert python_problem((3, minor, 0)) is None
    fatal, message = python_problem((3, 9, 18))
    assert fatal and "needs Python 3.10 to Python 3.15" in message and "pipenv --rm" in message
    fatal, message = python_problem((3, 16, 0))
    assert not fatal and "tested on Python 3.10 to Python 3.15" in message


def readme_unsupported_block():
    (block,) = [block for block in console_blocks(setup_section()) if "needs Python" in block]
    command, shown = block.rstrip("\n").split("\n", 1)
    return command, shown


def test_readme_shows_what_an_unsupported_python_prints():
    command, shown = readme_unsupported_block()
    assert command == "$ pipenv run status"
    assert shown == python_problem((3, 9, 18))[1]


def test_status_on_python_3_9_says_so_before_any_import_fails(tmp_path):
    """The real thing: tools.py run by Python 3.9, whose environment lacks
    click and the rest (as `pipenv install` leaves it there)."""
    python = python_at("3.9")
    if not python:
        pytest.skip("no Python 3.9 on this machine")
    finished = subprocess.run([python, "-I", str(TOOLS), "status"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 1
    assert finished.stdout == ""
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip()
    assert finished.stderr.replace(version, "3.9.18") == readme_unsupported_block()[1] + "\n"


def test_status_on_this_python_runs():
    finished = subprocess.run([sys.executable, str(TOOLS), "status"], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "needs Python" not in finished.stderr and "Step 1" in finished.stdout


# --- GitHub Codespaces ----------------------------------------------------------


def devcontainer():
    return json.loads((REPO_ROOT / ".devcontainer" / "devcontainer.json").read_text(encoding="utf-8"))


def test_devcontainer_runs_the_readmes_commands():
    commands = devcontainer()["postCreateCommand"].split(" && ")
    codespaces = setup_section().split("### No Python on your machine: GitHub Codespaces", 1)[1]
    (block,) = console_blocks(codespaces)
    assert [line[2:] for line in block.splitlines()] == commands
    assert commands[0] == "python -m pip install --user pipenv"
    assert commands[1:] == ["python -m pipenv install", "python -m pipenv run status"]


def test_devcontainer_python_is_supported():
    image = devcontainer()["image"]
    match = re.fullmatch(r"mcr\.microsoft\.com/devcontainers/python:1-3\.(\d+)-bookworm", image)
    assert match, image
    assert OLDEST[1] <= int(match.group(1)) <= NEWEST[1]


def test_ci_scripts_keep_lf_in_windows_checkouts():
    scripts = sorted(path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / ".ci").iterdir())
    attributes = subprocess.run(["git", "-C", str(REPO_ROOT), "check-attr", "eol", "--", *scripts],
                                capture_output=True, text=True)
    if attributes.returncode != 0:
        pytest.skip(f"not a git checkout: {attributes.stderr.strip()}")
    assert attributes.stdout.splitlines() == [f"{script}: eol: lf" for script in scripts]


# --- a pytest without the lesson's packages ------------------------------------------------

def test_a_pytest_without_the_lesson_packages_says_what_to_run_in_one_line():
    """The machine's own pytest, outside `pipenv shell`: here the lesson's
    packages are made unimportable in a real pytest process."""
    hide = "import sys; sys.modules.update(dict.fromkeys(['sqlalchemy', 'alembic'])); "
    run = subprocess.run(
        [sys.executable, "-c", hide + "import pytest; sys.exit(pytest.main([]))"], cwd=REPO_ROOT,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, capture_output=True, text=True, timeout=120,
    )
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert run.returncode == 4, lines
    assert len(lines) == 1 and "(sqlalchemy, alembic)" in lines[0] and "`pipenv run pytest`" in lines[0], lines
