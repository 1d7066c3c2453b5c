"""How fast is the grader? It against pytest-alembic's built-in tests.

    pipenv run benchmark [--runs N] [--keep]

1. Builds a correct submission: the reference walkthrough does the whole
   README with real `flask db` commands in a scratch copy of the starter.
2. Times whole `pytest` processes, several runs each, alternating, started
   as they are typed: the `pytest` command of this environment.
   - our grader: `pytest --lesson-root=<submission>` from this repository;
   - pytest-alembic's four built-in tests (single_head_revision, upgrade,
     model_definitions_match_ddl, up_down_consistency) on the same
     migrations, driven through the submission's own env.py inside its Flask
     app, against a throw-away SQLite file (never its instance/app.db).
   - the floor: a Python process that only imports the libraries a grade
     needs (FLOOR_IMPORTS), as no grade of the lesson can start faster.
3. Prints the median and fastest wall time (until the pytest process ends), the
   CPU time of the whole process tree (pytest, the grader's fork server and
   workers: on Linux this process adopts and reaps them), the time pytest
   reports, and the peak memory of the pytest process (from os.wait4), and our
   grader's median as a ratio to the floor and to pytest-alembic's.
4. The cost of isolation: how long the sandbox takes to start its worker
   process (the student's code runs only there), the median of several starts,
   and of that, what the worker's confinement costs (Landlock and seccomp set-up,
   measured inside the worker), with the line saying what it confines here.
5. A hanging submission (an endless loop in revision 3's upgrade()) graded
   with the default time limit: the wall time until pytest answers.
6. The cost of the bounds on a correct submission: the same grade (in this
   process) with the disk checks of every request and without them, and the
   time the checks take in all. (The other bounds cost nothing to measure:
   the grader reads less than it did, not more.)

Exit code 0 when our grader's median is no slower than pytest-alembic's, 1
when it is slower, 2 when something could not run. pytest-alembic is a dev
package (`pipenv install --dev`).
"""
import argparse
import contextlib
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

from ..isolation.processes import children_of

sys.dont_write_bytecode = True  # nothing compiled into the checkout
GRADER_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(GRADER_ROOT / "server"))

# What a grade cannot do without: pytest, and the lesson's own libraries.
FLOOR_IMPORTS = "import sqlalchemy, alembic, pytest, flask_sqlalchemy, flask_migrate"
PYTEST_ALEMBIC_TESTS = ("single_head_revision", "upgrade", "model_definitions_match_ddl", "up_down_consistency")

PYTEST_ALEMBIC_INI = """\
[pytest]
pytest_alembic_tests_path = conftest.py
pytest_alembic_include = {tests}
addopts = -p no:cacheprovider
"""

# pytest-alembic needs two fixtures. Flask-Migrate's env.py takes its engine
# from the Flask app, so the app runs with DATABASE_URL on the scratch file and
# the fixtures point at the same file, emptied before every test.
PYTEST_ALEMBIC_CONFTEST = '''\
import os
import sys

SERVER = {server!r}
SCRATCH_URL = {scratch_url!r}
os.environ["DATABASE_URL"] = SCRATCH_URL  # the app must never open instance/app.db
sys.dont_write_bytecode = True
sys.path.insert(0, SERVER)

import alembic.config
import pytest
import sqlalchemy as sa
from pytest_alembic.config import Config

from app import app
from models import db


@pytest.fixture(scope="session", autouse=True)
def app_context():
    assert app.config["SQLALCHEMY_DATABASE_URI"] == SCRATCH_URL
    with app.app_context():
        yield


@pytest.fixture
def alembic_config():
    # Flask-Migrate's env.py reads logging settings from migrations/alembic.ini.
    migrations = os.path.join(SERVER, "migrations")
    config = alembic.config.Config(os.path.join(migrations, "alembic.ini"))
    config.set_main_option("script_location", migrations)
    return Config.from_raw_config(config)


@pytest.fixture
def alembic_engine():
    engine = sa.create_engine(SCRATCH_URL)
    metadata = sa.MetaData()
    with engine.begin() as connection:
        metadata.reflect(connection)
        metadata.drop_all(connection)
    db.engine.dispose()
    yield engine
    engine.dispose()
'''


def build_correct_submission(dest):
    """A finished lesson made with real flask commands (the reference walkthrough)."""
    from testing.maintainers.walkthrough import copy_starter, run_walkthrough

    checkout = copy_starter(Path(dest) / "submission")
    run_walkthrough(checkout, report=lambda line: print("   ", line))
    return checkout


def prepare_pytest_alembic(folder, checkout):
    from testing.databases.database import sqlite_url

    folder.mkdir(parents=True)
    scratch_url = sqlite_url(folder / "scratch.db")
    (folder / "pytest.ini").write_text(
        PYTEST_ALEMBIC_INI.format(tests=", ".join(PYTEST_ALEMBIC_TESTS)), encoding="utf-8")
    (folder / "conftest.py").write_text(
        PYTEST_ALEMBIC_CONFTEST.format(server=str(checkout / "server"), scratch_url=scratch_url), encoding="utf-8")
    return folder


class Run:
    def __init__(self, returncode, output, seconds, peak_mb, cpu_seconds):
        self.returncode = returncode
        self.output = output
        self.seconds = seconds
        self.peak_mb = peak_mb
        self.cpu_seconds = cpu_seconds  # of the process and all it started

    @property
    def pytest_seconds(self):
        found = re.findall(r" in ([0-9.]+)s", self.output)
        return float(found[-1]) if found else float("nan")

    @property
    def outcome(self):
        found = re.findall(r"^=*\s*(\d+ \w+(?:, \d+ \w+)*) in [0-9.]+s", self.output, re.M)
        return found[-1] if found else "no result"


def timed_pytest(args, cwd):
    """Run one pytest process, started as `pytest` is typed (this environment's command)."""
    command = shutil.which("pytest", path=sysconfig.get_path("scripts"))
    return timed_run([command, *args] if command else [sys.executable, "-m", "pytest", *args], cwd)


def timed_python(args, cwd):
    return timed_run([sys.executable, *args], cwd)


def timed_run(command, cwd):
    """Run one process; its wall time, its peak memory (its own rusage) and the CPU time of
    all it started too: the processes it leaves (the grader's fork server) are this one's
    to reap, as its subreaper (Linux), and each one's rusage counts the workers it reaped."""
    env = {k: v for k, v in os.environ.items() if k not in ("LESSON_ROOT", "LESSON_GRADE_DATABASE_URL", "DATABASE_URL")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    ours = set(children_of(os.getpid()))  # e.g. the fork server of this process's own sandbox
    with tempfile.TemporaryFile(mode="w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        cpu_seconds = usage.ru_utime + usage.ru_stime + _reap_left_processes(ours)
        output.seek(0)
        text = output.read()
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    return Run(process.returncode, text, seconds, peak_mb, cpu_seconds)


def _reap_left_processes(ours):
    """Wait for the processes a run left to this one (its subreaper); their CPU seconds.
    This process's own children from before the run (`ours`) live on: they are not waited for."""
    seconds = 0.0
    left = set(children_of(os.getpid())) - ours
    while left:  # those that end leave their own children to this process in turn
        for pid in left:
            with contextlib.suppress(ChildProcessError):
                seconds += sum(os.wait4(pid, 0)[2][:2])  # ru_utime + ru_stime
        left = set(children_of(os.getpid())) - ours
    return seconds


def file_hash(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).exists() else None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pipenv run benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    options = parser.parse_args(argv)
    if not hasattr(os, "wait4"):
        print("The benchmark needs os.wait4 (Linux or macOS).", file=sys.stderr)
        return 2
    try:
        import pytest_alembic  # noqa: F401
    except ImportError:
        print("pytest-alembic is not installed: run `pipenv install --dev` first.", file=sys.stderr)
        return 2

    from testing.isolation.confinement import become_subreaper

    become_subreaper()  # the CPU of a grade's fork server and workers counts (Linux)
    scratch = Path(tempfile.mkdtemp(prefix="lesson-benchmark-"))
    try:
        print("Building a correct submission with the reference walkthrough ...", flush=True)
        checkout = build_correct_submission(scratch)
        app_db = checkout / "server" / "instance" / "app.db"
        app_db_before = file_hash(app_db)
        bench = prepare_pytest_alembic(scratch / "pytest-alembic", checkout)
        contenders = {
            "our grader (9 checkpoints)": (["-q", f"--lesson-root={checkout}"], GRADER_ROOT),
            "pytest-alembic (4 built-in tests)": (["-q", "--test-alembic"], bench),
        }
        runs = {name: [] for name in contenders}
        floor = []
        timed_pytest(*contenders["our grader (9 checkpoints)"])  # warm the file cache for both
        for number in range(options.runs):
            print(f"Run {number + 1} of {options.runs} ...", flush=True)
            for name, (args, cwd) in contenders.items():
                runs[name].append(timed_pytest(args, cwd))
            floor.append(timed_python(["-c", FLOOR_IMPORTS], GRADER_ROOT).seconds)
        if file_hash(app_db) != app_db_before:
            print(f"{app_db} changed during the benchmark: that must never happen.", file=sys.stderr)
            return 2
        verdict = report(runs, statistics.median(floor))
        report_isolation(checkout, options.runs)
        report_hanging(checkout, scratch / "hanging")
        report_bounds(checkout, options.runs)
        return verdict
    finally:
        if options.keep:
            print(f"Files kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def report(runs, floor):
    print()
    header = f"{'':36}{'runs':>5}{'median s':>10}{'min s':>8}{'CPU s':>7}{'pytest s':>10}{'peak MB':>9}  result"
    print(header)
    print("-" * len(header))
    medians = {}
    for name, results in runs.items():
        walls = [r.seconds for r in results]
        medians[name] = statistics.median(walls)
        print(f"{name:36}{len(results):>5}{medians[name]:>10.2f}{min(walls):>8.2f}"
              f"{statistics.median(r.cpu_seconds for r in results):>7.2f}"
              f"{statistics.median(r.pytest_seconds for r in results):>10.2f}"
              f"{max(r.peak_mb for r in results):>9.1f}  {results[-1].outcome}")
    ours, theirs = medians.values()
    ours_run = next(iter(runs.values()))[-1]
    print()
    if ours_run.returncode != 0:
        print("Our grader did not give full marks to the correct submission:")
        print(textwrap.indent(ours_run.output[-3000:], "    "))
        return 2
    theirs_run = list(runs.values())[1][-1]
    if theirs_run.returncode != 0:
        print("pytest-alembic's built-in tests do not all pass on a correct submission: "
              "test_model_definitions_match_ddl compares models.py with the head revision, but "
              "the lesson ends one revision back (step 5).")
    verdict = "no slower" if ours <= theirs else "SLOWER"
    print(f"Our grader: {ours:.2f} s median against {theirs:.2f} s: {verdict}.")
    print(f"Ratios: {ours / floor:.2f}x the floor ({floor:.2f} s for a Python that only runs "
          f"`{FLOOR_IMPORTS}`), {ours / theirs:.2f}x pytest-alembic.")
    return 0 if ours <= theirs else 1


def report_isolation(checkout, starts):
    """The median time to start a sandbox's worker process and get its first answer: what
    isolation costs each sandbox (a grade starts two at once, for models.py and the revisions)."""
    from testing.engine.submission import Layout
    from testing.isolation.sandbox import Sandbox

    from testing.isolation.confinement import summary

    seconds, confining, confined = [], [], []
    for _ in range(starts):
        with Sandbox(Layout.of(checkout)) as sandbox:
            started = time.perf_counter()
            sandbox.start()
            sandbox.request("load_revision", path=str(sandbox.private(next(sandbox.layout.versions.glob("*.py")))))
            seconds.append(time.perf_counter() - started)
            confining.append(sandbox.confine_seconds or 0.0)
            confined = sandbox.confined or []
    print(f"Isolation: starting a worker process and loading one revision takes {statistics.median(seconds):.2f} s "
          f"(median of {starts}, min {min(seconds):.2f} s); a grade starts two, in parallel.")
    print(f"Confinement ({summary(confined)}): {statistics.median(confining) * 1000:.1f} ms of each worker start "
          f"(median of {starts}, max {max(confining) * 1000:.1f} ms).")


def report_hanging(checkout, copy):
    """Grade a copy whose revision 3 loops forever in upgrade(), with the default limit."""
    from testing.isolation.sandbox import DEFAULT_SECONDS

    shutil.copytree(checkout, copy)
    (script,) = [p for p in (copy / "server" / "migrations" / "versions").glob("*.py") if "rename_table(" in p.read_text()]
    script.write_text(script.read_text().replace("def upgrade():\n", "def upgrade():\n    while True:\n        pass\n", 1))
    run = timed_pytest(["-q", f"--lesson-root={copy}"], GRADER_ROOT)
    answered = "answered" if run.returncode == 1 and "did not finish within the time limit" in run.output else "NOT answered"
    print(f"Hanging submission (endless loop in revision 3): {answered} in {run.seconds:.1f} s "
          f"with the default limit of {DEFAULT_SECONDS:g} s; {run.outcome}.")


def report_bounds(checkout, runs):
    """Grade the correct submission with the sandbox's disk checks and with them turned off."""
    from testing.engine.checks import grade
    from testing.isolation.sandbox import Sandbox

    check_disk, checks = Sandbox._check_disk, []

    def timed_check(sandbox):
        started = time.perf_counter()
        check_disk(sandbox)
        checks.append(time.perf_counter() - started)

    seconds = {"with": [], "without": []}
    try:
        for _ in range(runs):
            for name, check in (("with", timed_check), ("without", lambda sandbox: None)):
                Sandbox._check_disk = check
                started = time.perf_counter()
                full = grade(checkout).full_marks
                seconds[name].append(time.perf_counter() - started)
                if not full:
                    print("Bounds: the correct submission did not get full marks.")
                    return
    finally:
        Sandbox._check_disk = check_disk
    with_, without = statistics.median(seconds["with"]), statistics.median(seconds["without"])
    print(f"Bounds: a correct submission is graded in {with_:.2f} s with the disk checks and {without:.2f} s "
          f"without them (median of {runs}); its {len(checks) / runs:.0f} checks take "
          f"{sum(checks) / runs * 1000:.1f} ms per grade in all.")


if __name__ == "__main__":
    sys.exit(main())
