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

Where LESSON_CLASSROOM_REPORTER names a checkout of the reporter at v1 (the
Maintainers workflow makes one), Node runs its own dist/main.js on the
results as well, and its notice, log and exit code must agree.

A submission that went on with the optional steps (one of them wrong) keeps
the lesson's points and exit code on both platforms: the optional runners
count nothing in Classroom's points and never fail its step, and CodeGrade's
optional tests weigh nothing.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ElementTree
from fractions import Fraction
from pathlib import Path

import pytest

from testing.databases.database import postgres_server_url
from testing.lesson.checkpoints import BY_ID, CHECKPOINTS, LESSON

from ..maintainers.catalogue import VALID, WRONG
from .lesson_builds import shared_build
from .test_going_further import PUSHED_MAX, _empty_default, checkout_of
from .test_grader_catalogue import make_submission

REPO = Path(__file__).resolve().parents[3]
CODEGRADE_PLUGIN = "cg-pytest-reporter==1!1.1.3"  # AutoTest v2's pytest plugin, as CodeGrade installs it
OPTIONAL = [checkpoint.id for checkpoint in LESSON.further.checkpoints]
CODEGRADE_WORDS = {"passed": "success", "failed": "failure", "not_applicable": "skipped"}

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
    """{checkpoint: its properties} from the grader's JUnit XML, the lesson's checkpoints
    (a CodeGrade run's optional ones are marked `optional`); points as ints."""
    found = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        if properties.get("optional"):
            continue
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
    check_the_real_reporter(read_environment_file(tmp_path / "env"), tmp_path, notice, reporter_failed)

    # CodeGrade AutoTest v2: its plugin in its own environment; v1's JUnit as well.
    codegrade = grade(codegrade_python, root, backend, tmp_path / "codegrade.xml")
    assert codegrade.returncode == plain.returncode, codegrade.stdout
    assert {c: (p["points"], p["max_points"]) for c, p in junit_points(tmp_path / "codegrade.xml").items()} == {
        c: (p["points"], p["max_points"]) for c, p in junit.items()}
    messages = codegrade_messages(codegrade, junit)
    for case in messages["optional"].values():  # not begun: shown as skipped, weighing nothing
        assert (case["status"], case["weight"], case["reason"]) == ("skipped", "0", LESSON.further.words.intro)
    assert Fraction(messages["points"]) == Fraction(score, max_score)


def codegrade_messages(process, junit):
    """The plugin's structured messages: {"core": {checkpoint: case}, "optional": {...}, "points": ...},
    each core case checked against the JUnit properties of the same checkpoint."""
    messages = [json.loads(line) for line in process.stderr.splitlines() if line.startswith('{"tag":')]
    assert [m["tag"] for m in messages] == ["unit-test"] * (len(CHECKPOINTS) + len(OPTIONAL)) + ["points"], process.stderr
    cases = []
    for message in messages[:-1]:
        ((suite,),) = [message["results"]]
        (case,) = suite["testCases"]
        cases.append((suite["name"], case))
    core, optional = cases[:len(CHECKPOINTS)], cases[len(CHECKPOINTS):]
    for (_, case), checkpoint in zip(core, CHECKPOINTS):
        properties = junit[checkpoint.id]
        assert case == {"name": checkpoint.title, "status": CODEGRADE_WORDS[properties["status"]],
                        "weight": str(checkpoint.points), "reason": properties["message"]}, case
    assert len({name for name, _ in optional}) == 1 and {name for name, _ in core}.isdisjoint(
        {name for name, _ in optional})  # the optional steps: a suite of their own
    for (_, case), checkpoint in zip(optional, LESSON.further.checkpoints):
        assert case["name"] == f"Going further (optional): {checkpoint.title}", case
    return {"core": {c.id: case for (_, case), c in zip(core, CHECKPOINTS)},
            "optional": {c.id: case for (_, case), c in zip(optional, LESSON.further.checkpoints)},
            "points": messages[-1]["points"]}


def classroom_reporter():
    """dist/main.js of the reporter's checkout named by LESSON_CLASSROOM_REPORTER, and Node; else None."""
    folder = os.environ.get("LESSON_CLASSROOM_REPORTER")
    node = shutil.which("node")
    if not folder or not node or not (Path(folder) / "dist" / "main.js").is_file():
        return None
    return node, Path(folder) / "dist" / "main.js"


def run_classroom_reporter(environment, tmp_path):
    """The reporter itself, as the action runs it: its `runners` input (INPUT_RUNNERS) and the
    results in the environment; (its "Points" notice or None, its log, whether it failed the step)."""
    node, main = classroom_reporter()
    variables = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    variables.update(environment, INPUT_RUNNERS=environment["LESSON_CLASSROOM_RUNNERS"])
    run = subprocess.run([node, str(main)], capture_output=True, text=True, timeout=60, env=variables, cwd=tmp_path)
    notice = re.search(r"^::notice title=Autograding complete::(Points \d+/\d+)$", run.stdout, re.M)
    return (notice.group(1) if notice else None), run.stdout, run.returncode != 0


def check_the_real_reporter(environment, tmp_path, notice, failed):
    """Where the reporter is at hand, it agrees with its rules as reporter_totals spells them out."""
    if classroom_reporter() is None:
        return
    real_notice, log, real_failed = run_classroom_reporter(environment, tmp_path)
    assert (real_notice, real_failed) == (notice, failed), log
    return log


def test_the_real_classroom_reporter_is_at_hand_in_ci():
    """The Maintainers workflow fetches the reporter (GitHub Actions); other CI (.ci/run) has no GitHub to fetch it from."""
    if os.environ.get("GITHUB_ACTIONS", "").lower() != "true":
        pytest.skip("outside GitHub Actions the reporter runs only where LESSON_CLASSROOM_REPORTER names its checkout")
    assert classroom_reporter() is not None, "LESSON_CLASSROOM_REPORTER names no checkout of the reporter, or no node"


def test_the_optional_steps_leave_the_platforms_points_and_exit_code_as_the_lessons(
        request, tmp_path, codegrade_python):
    backend = "sqlite"  # the same on PostgreSQL: the bonus is judged apart on both (test_going_further)
    root = checkout_of(request, backend, tmp_path / "checkout")
    _empty_default(root)  # the optional steps done, but add_email's backfill replaced by an empty default
    missed = LESSON.further.checkpoints[0]
    assert missed.id == "add_email"
    bonus_max = PUSHED_MAX  # no step-10 database here
    bonus = bonus_max - missed.points
    plain = grade(sys.executable, root, backend, tmp_path / "plain.xml", f"--lesson-classroom={tmp_path / 'env'}",
                  GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
    assert plain.returncode == 0, plain.stdout  # the lesson at full marks: the unfinished bonus fails nothing
    assert f"Lesson 95/95 · Going further {bonus}/{bonus_max}" in plain.stdout
    junit = junit_points(tmp_path / "plain.xml")
    assert list(junit) == [c.id for c in CHECKPOINTS]  # the JUnit test cases are the lesson's alone
    suite = {p.get("name"): p.get("value") for p in ElementTree.parse(tmp_path / "plain.xml").getroot().iter("property")
             if p.get("name").startswith("further")}
    assert suite == {"further_score": str(bonus), "further_max_score": str(bonus_max)}
    assert "| `add_email`" in (tmp_path / "summary.md").read_text(encoding="utf-8")

    environment = read_environment_file(tmp_path / "env")
    results, notice, lines, failed = reporter_totals(environment)
    assert list(results) == [c.id for c in CHECKPOINTS] + OPTIONAL
    for checkpoint in LESSON.further.checkpoints:
        result = results[checkpoint.id]
        check_v1_shape(result)
        (test,) = result["tests"]
        assert result["max_score"] == 0 and result["status"] == "pass"  # counts nothing, fails nothing
        assert test["status"] == ("fail" if checkpoint == missed else "pass"), test
        assert f"{checkpoint.points} bonus points" in test["name"] and checkpoint.id not in lines
    assert notice == "Points 95/95" and not failed
    log = check_the_real_reporter(environment, tmp_path, notice, failed)
    if log is not None:  # the optional tests show in its log, passed or failed
        assert re.search(r"❌ Going further \(optional, 20 bonus points[^\n]*: Revision 5 adds", log), log

    codegrade = grade(codegrade_python, root, backend, tmp_path / "codegrade.xml")
    assert codegrade.returncode == 0, codegrade.stdout
    messages = codegrade_messages(codegrade, junit_points(tmp_path / "codegrade.xml"))
    assert Fraction(messages["points"]) == 1  # 95/95: the optional tests weigh nothing
    optional = messages["optional"]
    assert {c: (case["status"], case["weight"]) for c, case in optional.items()} == {
        c: ("skipped" if c in (missed.id, LESSON.further.legacy.checkpoint.id) else "success", "0")
        for c in OPTIONAL}  # step 10's database is not here: it does not apply, skipped like local_database
    assert optional[missed.id]["reason"].startswith(f"Not done yet (optional, {missed.points} bonus points): ")
