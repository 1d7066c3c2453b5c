"""The grader against submissions that try to get out of their confinement (tests/escapes.py).

Each case is a real grade by a pristine copy of the grader in a pytest process
(as test_grader_hostile.py does), on SQLite and on PostgreSQL. The attempt is
blocked: the grade says what was tried, and afterwards the test looks for the
attempt's trace (the file, the connection, the database, the process, the
checkout's files) and finds none. A case is skipped where the system does not
offer the confinement it relies on (the grade's own line says so).
"""
import json
import os
import socket
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import sqlalchemy as sa

from testing.databases.database import postgres_server_url, postgres_unreachable_reason
from testing.isolation.confinement import KINDS, available, summary
from testing.isolation.database_gate import DatabaseGate, replay_database

from .escapes import ESCAPES
from .hostile import Hostile, in_function
from .test_grader_catalogue import make_submission, run_grader
from .test_grader_hostile import assert_graded_as_expected, fingerprints, pristine_grader  # noqa: F401 (a fixture)


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections it accepts and keeps what they send."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted, self.received = 0, b""
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            with connection:
                connection.settimeout(2)
                try:
                    self.received += connection.recv(65536)
                except OSError:
                    pass

    def close(self):
        self.server.close()


@pytest.fixture
def listener():
    found = Listener()
    yield found
    found.close()


def database_exists(name):
    engine = sa.create_engine(postgres_server_url())
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                      {"name": name}).first() is not None
    finally:
        engine.dispose()


@pytest.mark.parametrize("case", ESCAPES, ids=[case.name for case in ESCAPES])
def test_an_escape_is_blocked_and_leaves_no_trace(request, backend, case, tmp_path, pristine_grader, listener):
    if backend not in case.backends:
        pytest.skip(f"only on {', '.join(case.backends)}")
    missing = [kind for kind in case.needs if kind not in available()]
    if missing:
        pytest.skip(f"{summary(available())}: this case needs {', '.join(missing)}")
    if case.trace == "database" and postgres_unreachable_reason():
        pytest.skip("needs the PostgreSQL server to look for the database afterwards")
    token = uuid.uuid4().hex[:10]
    places = {
        "home_file": str(Path.home() / f".lesson-escape-{token}"),
        "tmp_file": f"/tmp/lesson-escape-{token}",
        "secret_file": str(Path.home() / f".lesson-escape-secret-{token}"),
        "port": listener.port,
        "superuser_url": postgres_server_url().replace("postgresql+psycopg://", "postgresql://"),
        "database": f"lesson_escape_{token}",
        "checkout": str(tmp_path / "checkout"),
        "marker": f"lesson-escape-daemon-{token}",  # unique: cases run side by side
    }
    secret = Path(places["secret_file"])
    secret.write_text(f"secret {token}", encoding="utf-8")
    request.addfinalizer(lambda: [Path(places[name]).unlink(missing_ok=True)
                                  for name in ("home_file", "tmp_file", "secret_file")])
    submission = Hostile(case.name, in_function(1, "upgrade", case.code.format(**places)))
    checkout = make_submission(request, backend, submission, tmp_path / "checkout")
    grader_before, checkout_before = fingerprints(pristine_grader), fingerprints(checkout.root)

    code, outcomes, output = run_grader(checkout.root, backend, tmp_path, grader=pristine_grader,
                                        options=("--lesson-timeout=10",))

    assert_graded_as_expected(case, code, outcomes, output)
    suite = ElementTree.parse(tmp_path / "report.xml").getroot().find("testsuite")
    confinement = {p.get("name"): p.get("value") for p in suite.iter("property")}.get("confinement")
    assert confinement and all(kind in confinement.split(";")[0] for kind in case.needs), output
    # No trace of the attempt.
    assert not os.path.exists(places["home_file"]) and not os.path.exists(places["tmp_file"])
    assert listener.accepted == 0 and token.encode() not in listener.received
    if case.trace == "database":
        assert not database_exists(places["database"])
    assert not subprocess.run(["pgrep", "-f", places["marker"]], capture_output=True, text=True).stdout.split()
    assert fingerprints(pristine_grader) == grader_before
    assert fingerprints(checkout.root) == checkout_before


# --- the pieces, without a grade ------------------------------------------------------------

def test_the_line_says_what_is_confined_and_what_is_not():
    assert summary(["files", "network", "processes"]) == "confined: files, network, processes"
    assert summary(["files"]) == "confined: files; not confined on this system: network, processes"
    assert summary([]) == "not confined on this system: files, network, processes"


def test_cohort_refuses_to_start_without_full_confinement(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from testing import commands
    from testing.isolation import confinement

    monkeypatch.setattr(confinement, "available", lambda: ["files"])
    run = CliRunner().invoke(commands.tool_commands, ["cohort", str(tmp_path), "--require-confinement",
                                                 "--out", str(tmp_path / "out")])
    assert run.exit_code == 2, run.output
    assert "--require-confinement: confined: files; not confined on this system: network, processes" in run.output
    assert not (tmp_path / "out").exists()


def test_cohort_writes_how_confined_its_grades_were(request, tmp_path):
    from ..maintainers.catalogue import VALID
    from .test_cohort import run_cohort

    make_submission(request, "sqlite", VALID[0], tmp_path / "class" / "alice")
    fully = ["--require-confinement"] if summary(available()) == summary(KINDS) else []
    run_cohort(tmp_path / "class", "--out", tmp_path / "out", "--cache", tmp_path / "cache", *fully)
    statistics = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert statistics["confinement"] == [summary(available())]


@pytest.fixture
def gate(backend):
    if backend != "postgresql":
        pytest.skip("the gate stands before a PostgreSQL server")
    with DatabaseGate.open() as found:
        yield found


def test_a_replay_role_owns_its_database_alone_and_is_dropped_with_it(gate, tmp_path):
    import psycopg

    with replay_database("postgresql", folder=tmp_path, gate=gate) as (grader_url, worker_url):
        name = sa.engine.make_url(grader_url).database
        engine = sa.create_engine(grader_url)
        with engine.connect() as connection:
            role = connection.execute(sa.text(
                "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = :name"),
                {"name": name}).one()
            owner, public_connect = connection.execute(sa.text(
                "SELECT pg_get_userbyid(datdba), has_database_privilege('public', datname, 'CONNECT') "
                "FROM pg_database WHERE datname = :name"), {"name": name}).one()
        engine.dispose()
        assert tuple(role) == (False, False, False, True)
        assert owner == name and public_connect is False
        worker = sa.engine.make_url(worker_url)
        assert (worker.username, worker.port, worker.database) == (name, gate.port, name)
        assert worker.password and worker.password not in postgres_server_url()
        with psycopg.connect(worker_url.replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute("CREATE TABLE kept (id integer)")  # the owner may build its schema
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(f'CREATE DATABASE "{name}_more"')
        as_superuser = worker.set(username="postgres", password=None).render_as_string(hide_password=False)
        with pytest.raises(psycopg.OperationalError, match="grading allows a connection only"):
            psycopg.connect(as_superuser.replace("+psycopg", ""), connect_timeout=3)
        assert gate.refused == [("postgres", name)]
    assert not database_exists(name)
    engine = sa.create_engine(postgres_server_url())
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": name}).first() is None
    engine.dispose()
