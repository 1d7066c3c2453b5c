"""Nothing left behind when a grade is stopped, and the grader's options typed either way.

Real grades by a pristine grader (tests/watched.py), and a real cohort run,
each with its own TMPDIR, on SQLite and on PostgreSQL: stopped with SIGTERM
in the middle of the replay they remove their throw-away databases, folders
and processes;
killed with SIGKILL they cannot, and the next grade sweeps what they left
(testing/databases/leftovers.py), never what a live grade is using.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from testing.databases import leftovers as naming
from testing.databases.database import postgres_server_url

from .hostile import Hostile, in_function
from .test_grader_catalogue import REPO, make_submission
from .test_grader_hostile import pristine_grader  # noqa: F401  (a fixture)
from .watched import databases_of, leftovers, processes_in, start_grade

# Revision 2's upgrade() says it has started (a note in its private folder), then waits
# `seconds`, or until the test puts a go-on file beside the note (go_on). The first time
# only: the grade's later replays of revision 2 go straight on.
MID_REPLAY = """import pathlib, time
if not pathlib.Path('mid-replay').exists():
    pathlib.Path('mid-replay').write_text('')
    end = time.monotonic() + {seconds}
    while time.monotonic() < end and not pathlib.Path('go-on').exists():
        time.sleep(0.1)"""
NOTHING = {"folders": [], "databases": [], "processes": []}


def checkout_waiting(request, backend, tmp_path, seconds, name="checkout"):
    change = in_function(2, "upgrade", MID_REPLAY.format(seconds=seconds))
    return make_submission(request, backend, Hostile("mid_replay", change), tmp_path / name)


def correct_checkout(request, backend, tmp_path, name="correct"):
    return make_submission(request, backend, Hostile("correct", lambda c: None), tmp_path / name)


def wait_until_mid_replay(grade, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if list(grade.tmp.glob("lesson-sandbox.*/submission/server/mid-replay")):
            return
        assert grade.process.poll() is None, grade.output
        time.sleep(0.1)
    raise AssertionError("the replay never reached revision 2")


def go_on(grade):
    """Let a grade waiting mid-replay go on."""
    [note] = grade.tmp.glob("lesson-sandbox.*/submission/server/mid-replay")
    note.with_name("go-on").write_text("")


def settled(what, expected=NOTHING, timeout=10):
    """what() once it is `expected`, or what it still is after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        found = what()
        if found == expected or time.monotonic() > end:
            return found
        time.sleep(0.2)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_grade_stopped_mid_replay_removes_what_it_made(request, backend, number, tmp_path, pristine_grader):  # noqa: F811
    checkout = checkout_waiting(request, backend, tmp_path, seconds=60)
    grade = start_grade(pristine_grader, checkout.root, backend, tmp_path)
    wait_until_mid_replay(grade)
    assert leftovers(grade, backend, tmp_path)["folders"], "a grade under way has its folders"

    code = grade.stop(number)

    assert code != 0, grade.output
    assert "Traceback" not in grade.output.split("KeyboardInterrupt")[0], grade.output
    assert settled(lambda: leftovers(grade, backend, tmp_path)) == NOTHING, grade.output


def test_what_a_killed_grade_left_is_swept_by_the_next_one(request, backend, tmp_path, pristine_grader):  # noqa: F811
    checkout = checkout_waiting(request, backend, tmp_path, seconds=60)
    killed = start_grade(pristine_grader, checkout.root, backend, tmp_path, name="killed")
    wait_until_mid_replay(killed)
    killed.stop(signal.SIGKILL)

    left = leftovers(killed, backend, tmp_path)
    assert left["folders"], "SIGKILL cannot be caught: the folders are still there right after"
    assert bool(left["databases"]) == (backend == "postgresql")
    # The worker processes notice the grading process is gone and end themselves.
    assert settled(lambda: processes_in(tmp_path), []) == []

    correct = correct_checkout(request, backend, tmp_path)
    following = start_grade(pristine_grader, correct.root, backend, tmp_path, name="killed")  # the same TMPDIR
    code, outcomes = following.wait()

    assert code == 0, following.output
    assert leftovers(killed, backend, tmp_path) == NOTHING
    assert leftovers(following, backend, tmp_path) == NOTHING


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_grades_on_one_server_at_once_keep_their_own_databases(request, backend, tmp_path, pristine_grader):  # noqa: F811
    slow = checkout_waiting(request, "postgresql", tmp_path, seconds=15, name="slow")
    quick = correct_checkout(request, "postgresql", tmp_path, name="quick")
    first = start_grade(pristine_grader, slow.root, "postgresql", tmp_path, name="first")
    wait_until_mid_replay(first)
    second = start_grade(pristine_grader, quick.root, "postgresql", tmp_path, name="second")  # sweeps as it starts

    second_code, _ = second.wait()
    go_on(first)  # it waited in the middle of its replay the whole time the second graded
    first_code, _ = first.wait()

    assert first_code == 0, first.output
    assert second_code == 0, second.output


def test_only_resources_of_owners_that_are_gone_are_swept(request, backend, tmp_path, pristine_grader):  # noqa: F811
    gone = subprocess.Popen(["true"])
    gone.wait()
    now = naming._base36(int(time.time()))
    old = naming._base36(int(time.time()) - (naming.OTHER_HOST_HOURS + 1) * 3600)
    other_host = "000000" if naming.HOST != "000000" else "000001"
    tmp = tmp_path / "grade-tmp"
    tmp.mkdir()
    stale_folder = tmp / f"lesson-sandbox.{naming.HOST}.{gone.pid}.{now}.abcd"
    live_folder = tmp / f"lesson-sandbox.{naming.HOST}.{os.getpid()}.{now}.abcd"
    other_folder = tmp / "lesson-sandbox-made-by-an-older-grader"
    for folder in (stale_folder, live_folder, other_folder):
        folder.mkdir()
    names = {
        "stale": f"lesson_{naming.HOST}_{gone.pid}_{now}_abcd",
        "live": f"lesson_{naming.HOST}_{os.getpid()}_{now}_abcd",
        "other_host_old": f"lesson_{other_host}_1_{old}_abcd",
        "other_host_new": f"lesson_{other_host}_1_{now}_abcd",
        "unrelated": f"lesson_{os.getpid()}_not_ours",
    }
    admin = sa.create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT") if backend == "postgresql" else None
    try:
        if admin is not None:
            with admin.connect() as connection:
                for name in names.values():
                    connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
                connection.execute(sa.text(f'CREATE ROLE "{names["stale"]}"'))
                connection.execute(sa.text(f'CREATE ROLE "{names["live"]}"'))

        grade = start_grade(pristine_grader, correct_checkout(request, backend, tmp_path).root, backend, tmp_path)
        code, _ = grade.wait()

        assert code == 0, grade.output
        assert not stale_folder.exists() and live_folder.exists() and other_folder.exists()
        if admin is not None:
            with admin.connect() as connection:
                databases = set(connection.execute(sa.text("SELECT datname FROM pg_database")).scalars())
                roles = set(connection.execute(sa.text("SELECT rolname FROM pg_roles")).scalars())
            assert names["stale"] not in databases and names["stale"] not in roles
            assert names["other_host_old"] not in databases
            assert {names["live"], names["other_host_new"], names["unrelated"]} <= databases
            assert names["live"] in roles
    finally:
        if admin is not None:
            with admin.connect() as connection:
                for name in names.values():
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
                for name in (names["stale"], names["live"]):
                    connection.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("folder", ["", "server/migrations"], ids=["root", "server-migrations"])
def test_options_work_with_a_space_or_an_equals_sign(request, backend, folder, tmp_path, pristine_grader):  # noqa: F811
    checkout = correct_checkout(request, backend, tmp_path)
    # A grader cloned whole: its root conftest.py points pytest at the grader from any folder.
    shutil.copy2(REPO / "conftest.py", pristine_grader / "conftest.py")
    where = pristine_grader / folder
    where.mkdir(parents=True, exist_ok=True)
    database = ["--lesson-database", postgres_server_url()] if backend == "postgresql" else []
    for options in (["--lesson-root", str(checkout.root), "--lesson-timeout", "15", "--lesson-disk", "128", *database],
                    [f"--lesson-root={checkout.root}", "--lesson-timeout=15", "--lesson-disk=128",
                     *(["=".join(database)] if database else [])]):
        run = subprocess.run([sys.executable, "-m", "pytest", *options], cwd=where, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"Score of {checkout.root}: 95/95 points (replayed on {backend}" in run.stdout, run.stdout


def test_a_cohort_run_stopped_mid_replay_removes_what_it_made(request, backend, tmp_path):
    checkout_waiting(request, backend, tmp_path / "class", seconds=60, name="student-1")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    command = [sys.executable, "server/testing/tools.py", "cohort", str(tmp_path / "class"), "--jobs", "1",
               "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    if backend == "postgresql":
        command.append(f"--database={postgres_server_url()}")
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    process = subprocess.Popen(command, cwd=REPO, env=dict(environment, TMPDIR=str(tmp)), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    end = time.monotonic() + 120
    while not list(tmp.glob("lesson-sandbox.*/submission/server/mid-replay")):
        assert process.poll() is None and time.monotonic() < end, process.stdout.read()
        time.sleep(0.1)
    graders = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()

    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]

    assert process.returncode == 130, output
    assert settled(lambda: sorted(p.name for p in tmp.iterdir() if p.name != "lesson-guard"), []) == [], output
    assert [name for pid in graders for name in databases_of(int(pid))] == []
    assert settled(lambda: processes_in(tmp), []) == []
