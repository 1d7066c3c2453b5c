"""GitHub Classroom's reporter and CodeGrade's AutoTest give a submission the
grader's own score, on a correct and on a wrong submission (both backends).

Each submission is graded twice by real `pytest` processes, as the platforms
run them:
- in this environment, as classroom.yml does (`--lesson-classroom`): the
  results it writes are read exactly as classroom-resources/
  autograding-grading-reporter@v1 reads them (one <RUNNER>_RESULTS variable a
  runner, base64 JSON of version 1), and its totals are worked out by the
  reporter's rules, which are spelled out in `reporter_totals`;
- in a separate virtualenv holding CodeGrade's own cg-pytest-reporter, pinned,
  installed from the registry (AutoTest v2), whose structured messages are
  read from stderr.
Both are compared with the JUnit points of the same run (AutoTest v1 reads
that JUnit file), the terminal's score and the job summary's, and the plain
run must show nothing of CodeGrade.
"""
import base64
import json
import os
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ElementTree
from fractions import Fraction
from pathlib import Path

import pytest

from testing.databases.database import postgres_server_url
from testing.lesson.checkpoints import BY_ID, CHECKPOINTS

from ..maintainers.catalogue import VALID, WRONG
from .lesson_builds import shared_build
from .test_grader_catalogue import make_submission

REPO = Path(__file__).resolve().parents[3]
CODEGRADE_PLUGIN = "cg-pytest-reporter==1!1.1.3"  # AutoTest v2's pytest plugin, as CodeGrade installs it

# Two submissions of the catalogue: the finished lesson with its local
# database, and a rename kept as create+drop without one. Where there is no
# local database file (always on PostgreSQL, whose database the copy does not
# take along), that checkpoint does not apply.
CORRECT = next(s for s in VALID if s.name == "the local database at revision 3 with its rows")
WRONG_ONE = next(s for s in WRONG if s.name == "table rename kept as create+drop")
EXPECTED = {  # (submission, backend) -> (score, max_score, failed checkpoints, not applicable ones)
    (CORRECT.name, "sqlite"): (95, 95, set(), {"local_database"}),  # a separate grader leaves its app.db out
    (CORRECT.name, "postgresql"): (95, 95, set(), {"local_database"}),
    (WRONG_ONE.name, "sqlite"): (70, 95, {"rename_table", "downgrades"}, {"local_database"}),
    (WRONG_ONE.name, "postgresql"): (70, 95, {"rename_table", "downgrades"}, {"local_database"}),
}


@pytest.fixture
def codegrade_python(request):
    """The Python of a new virtualenv with cg-pytest-reporter from the registry;
    a .pth file lends it this environment's packages (Flask, Alembic, pytest...).
    Made once per run, shared by every xdist worker."""
    return shared_build(request, "codegrade-venv", f"installing {CODEGRADE_PLUGIN}", _codegrade_venv)


def _codegrade_venv(root, _keep):
    venv = root / "venv"
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(site_packages) / "lesson-packages.pth").write_text("\n".join(ours) + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site_packages, CODEGRADE_PLUGIN],
        capture_output=True, text=True, timeout=300,
    )
    if install.returncode != 0:
        raise RuntimeError(f"could not install {CODEGRADE_PLUGIN} from the registry:\n{install.stdout}{install.stderr}")
    return python


def grade(python, root, backend, junit, *options, **variables):
    """`pytest --lesson-root=root` run by `python` from this repository, with
    these environment variables added; the process."""
    command = [str(python), "-m", "pytest", f"--lesson-root={root}", f"--junitxml={junit}", *options]
    if backend == "postgresql":
        command.append(f"--lesson-database={postgres_server_url()}")
    # Outside AutoTest: the plugin writes to stderr instead of piping to `cg truncate`.
    environment = {k: v for k, v in os.environ.items() if k not in ("CG_ATV2", "CG_PYTEST_REPORTER_TRUNCATE")}
    environment.update(variables)
    process = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=environment)
    assert "Traceback" not in process.stdout + process.stderr, process.stdout + process.stderr
    return process


def junit_points(junit):
    """{checkpoint: its properties} from the grader's JUnit XML; points as ints."""
    found = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        properties["points"], properties["max_points"] = int(properties["points"]), int(properties["max_points"])
        found[properties["checkpoint"]] = properties
    return found


def reporter_totals(environment):
    """What autograding-grading-reporter@v1 makes of the variables: its runners
    come from the `runners` input (here LESSON_CLASSROOM_RUNNERS, as in
    classroom.yml), each one's result from <RUNNER in capitals>_RESULTS,
    base64 JSON. Its notice "Points X/Y" adds up every test's `score` and the
    `max_score` of the runners whose max_score is not 0; its line "Total points
    for <runner>" (only where max_score is not 0) is the share of tests with
    status "pass" times max_score; it fails the step when a runner's status is
    "fail" or "error"."""
    runners = environment["LESSON_CLASSROOM_RUNNERS"].split(",")
    results = {}
    for runner in runners:
        results[runner] = json.loads(base64.b64decode(environment[f"{runner.strip().upper()}_RESULTS"]).decode("utf-8"))
    counted = [result for result in results.values() if result["max_score"]]
    points = (sum(test["score"] for result in counted for test in result["tests"]), sum(r["max_score"] for r in counted))
    lines = {
        runner: f"Total points for {runner}: "
                f"{sum(t['status'] == 'pass' for t in result['tests']) / len(result['tests']) * result['max_score']:.2f}"
                f"/{result['max_score']}"
        for runner, result in results.items() if result["max_score"]
    }
    failed = any(result["status"] in ("fail", "error") for result in results.values())
    return results, f"Points {points[0]}/{points[1]}", lines, failed


def check_v1_shape(result):
    """The fields of a grader step's result that the reporter reads, with their types."""
    assert result["version"] == 1 and result["status"] in ("pass", "fail", "error"), result
    assert isinstance(result["max_score"], int) and len(result["tests"]) >= 1, result
    for test in result["tests"]:
        assert isinstance(test["name"], str) and test["status"] in ("pass", "fail", "error"), test
        assert isinstance(test["message"], str) and isinstance(test["score"], int), test
        assert test["line_no"] == 0, test  # else the reporter prints "- line <n>" after the name


def read_environment_file(path):
    """Variables as GitHub Actions reads $GITHUB_ENV: NAME=value lines."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    assert all("=" in line for line in lines), lines
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.parametrize("submission", [CORRECT, WRONG_ONE], ids=["correct", "wrong"])
def test_classroom_and_codegrade_give_the_graders_own_points(request, backend, submission, tmp_path, codegrade_python):
    root = make_submission(request, backend, submission, tmp_path / "checkout").root
    score, max_score, failed, not_applicable = EXPECTED[submission.name, backend]

    # As classroom.yml grades: this environment, no CodeGrade plugin.
    plain = grade(sys.executable, root, backend, tmp_path / "plain.xml", f"--lesson-classroom={tmp_path / 'env'}",
                  GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
    junit = junit_points(tmp_path / "plain.xml")
    assert list(junit) == [c.id for c in CHECKPOINTS]
    assert {c for c, p in junit.items() if p["status"] == "failed"} == failed
    assert {c for c, p in junit.items() if p["status"] == "not_applicable"} == not_applicable
    assert sum(p["points"] for p in junit.values()) == score and sum(p["max_points"] for p in junit.values()) == max_score
    assert f"Score of {root}: {score}/{max_score} points" in plain.stdout
    assert f"## Lesson grade: {score} / {max_score} points" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert plain.returncode == (0 if not failed else 1), plain.stdout
    # Nothing of CodeGrade without its plugin: no marks, no unknown-mark warning, no messages.
    assert "cg_" not in plain.stdout + plain.stderr and "Unknown" not in plain.stdout + plain.stderr
    assert '"tag"' not in plain.stderr

    # GitHub Classroom's reporter, by its rules.
    results, notice, lines, reporter_failed = reporter_totals(read_environment_file(tmp_path / "env"))
    assert list(results) == [c.id for c in CHECKPOINTS]  # one runner per checkpoint
    for checkpoint, result in results.items():
        check_v1_shape(result)
        properties = junit[checkpoint]
        assert result["max_score"] == properties["max_points"]
        (test,) = result["tests"]
        assert (test["name"], test["message"], test["score"]) == (
            BY_ID[checkpoint].title, properties["message"], properties["points"])
        assert test["status"] == result["status"] == ("fail" if properties["status"] == "failed" else "pass")
        if properties["max_points"]:
            assert lines[checkpoint] == f"Total points for {checkpoint}: {properties['points']:.2f}/{properties['max_points']}"
        else:  # a checkpoint that does not apply counts for nothing
            assert checkpoint not in lines and checkpoint in not_applicable
    assert notice == f"Points {score}/{max_score}"
    assert reporter_failed == bool(failed)

    # CodeGrade AutoTest v2: its plugin in its own environment; v1's JUnit as well.
    codegrade = grade(codegrade_python, root, backend, tmp_path / "codegrade.xml")
    assert codegrade.returncode == plain.returncode, codegrade.stdout
    assert {c: (p["points"], p["max_points"]) for c, p in junit_points(tmp_path / "codegrade.xml").items()} == {
        c: (p["points"], p["max_points"]) for c, p in junit.items()}
    messages = [json.loads(line) for line in codegrade.stderr.splitlines() if line.startswith('{"tag":')]
    assert [m["tag"] for m in messages] == ["unit-test"] * len(CHECKPOINTS) + ["points"], codegrade.stderr
    words = {"passed": "success", "failed": "failure", "not_applicable": "skipped"}
    for message, checkpoint in zip(messages, CHECKPOINTS):
        ((suite,),) = [message["results"]]
        (case,) = suite["testCases"]
        properties = junit[checkpoint.id]
        assert case == {"name": checkpoint.title, "status": words[properties["status"]],
                        "weight": str(checkpoint.points), "reason": properties["message"]}, case
    assert Fraction(messages[-1]["points"]) == Fraction(score, max_score)
