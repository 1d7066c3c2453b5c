"""The grader against submissions that try to get out of their confinement (tests/escapes.py).

Each case is a real grade by a pristine copy of the grader in a pytest process
(as test_grader_hostile.py does), on SQLite and on PostgreSQL. The attempt is
blocked: the grade says what was tried, and afterwards the test looks for the
attempt's trace (the file, the connection, the database, the process, the
checkout's files) and finds none. A case is skipped where the system does not
offer the confinement it relies on (the grade's own line says so).
"""
import os
import socket
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import sqlalchemy as sa

from testing.lesson.checkpoints import CHECKPOINTS
from testing.lesson.confinement import available, summary
from testing.lesson.database import postgres_server_url, postgres_unreachable_reason

from .escapes import ESCAPES
from .hostile import Hostile, in_function
from .test_grader_catalogue import make_submission, run_grader
from .test_grader_hostile import fingerprints, pristine_grader  # noqa: F401 (a fixture)


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

    assert set(outcomes) == {c.id for c in CHECKPOINTS}, output
    failed = {checkpoint for checkpoint, (passed, _) in outcomes.items() if not passed}
    assert failed == set(case.failing), output
    assert code == case.exit_code, output
    for checkpoint, words in case.messages.items():
        for word in words:
            assert word in outcomes[checkpoint][1], f"{word!r} not in the {checkpoint} message:\n{output}"
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
