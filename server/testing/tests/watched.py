"""A real grade by a pristine grader, watched from outside while it runs.

`start_grade` starts `pytest --lesson-root=...` in its own process with a
private TMPDIR, so that every folder it makes is found there; `Watched`
follows it: the disk its folders and its PostgreSQL databases take at their
largest, its output, and, when it ends, the peak memory of the grading
process itself (not of the worker processes that run the student's code).
`leftovers` says what a grade left: folders in its TMPDIR, databases and roles
named after its process (testing/databases/leftovers.py), processes working in
the test's folders.
"""
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from testing.databases import leftovers as naming
from testing.databases.database import postgres_server_url
from testing.isolation.sandbox import folder_size

from .test_grader_catalogue import _outcomes

# pytest in the grading process, which writes its own peak memory (KB) to a file at the end.
MEASURED = (
    "import resource, sys, pytest\n"
    "peak_file = sys.argv.pop(1)\n"
    "code = int(pytest.main(sys.argv[1:]))\n"
    "open(peak_file, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    "sys.exit(code)\n"
)


@dataclass
class Watched:
    process: subprocess.Popen
    tmp: Path  # the grade's TMPDIR
    junit: Path
    peak_file: Path
    backend: str
    started: float = field(default_factory=time.monotonic)
    output: str = ""
    peak_disk: int = 0  # bytes: its TMPDIR and its databases, at their largest
    seconds: float = 0.0

    def __post_init__(self):
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        self.output = self.process.stdout.read()

    def disk(self):
        return folder_size(self.tmp) + databases_size(self.process.pid, self.backend)

    def wait(self, timeout=300):
        """Follow the grade to its end; (exit code, {checkpoint: (passed, message)})."""
        end = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < end:
            self.peak_disk = max(self.peak_disk, self.disk())
            time.sleep(0.1)
        if self.process.poll() is None:
            self.process.kill()
            raise AssertionError(f"the grade did not end within {timeout} s")
        self.seconds = time.monotonic() - self.started
        self._reader.join(10)
        return self.process.returncode, (_outcomes(self.junit) if self.junit.is_file() else {})

    @property
    def peak_memory_mb(self):
        return int(self.peak_file.read_text()) / 1024  # ru_maxrss is in KB on Linux

    def stop(self, signal_number, timeout=30):
        """Send a signal; the exit code once it has ended."""
        self.process.send_signal(signal_number)
        try:
            code = self.process.wait(timeout)
        finally:
            self.seconds = time.monotonic() - self.started
        self._reader.join(10)
        return code


def start_grade(grader, root, backend, tmp_path, options=(), name="grade"):
    tmp = tmp_path / f"{name}-tmp"
    tmp.mkdir(exist_ok=True)
    junit, peak_file = tmp_path / f"{name}.xml", tmp_path / f"{name}.peak"
    command = [sys.executable, "-c", MEASURED, str(peak_file), f"--lesson-root={root}", f"--junitxml={junit}",
               *options]
    if backend == "postgresql":
        command.append(f"--lesson-database={postgres_server_url()}")
    process = subprocess.Popen(command, cwd=grader, env=dict(os.environ, TMPDIR=str(tmp)), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Watched(process, tmp, junit, peak_file, backend)


def _owned_by(pid):
    return f"lesson\\_{naming.HOST}\\_{pid}\\_%"


def databases_size(pid, backend):
    if backend != "postgresql":
        return 0
    engine = sa.create_engine(postgres_server_url())
    try:
        with engine.connect() as connection:
            return sum(
                connection.execute(sa.text("SELECT pg_database_size(:name)"), {"name": name}).scalar() or 0
                for name in databases_of(pid, connection, roles=False)
            )
    except sa.exc.DBAPIError:  # dropped while being measured
        return 0
    finally:
        engine.dispose()


def databases_of(pid, connection=None, roles=True):
    """The throw-away databases (and, with `roles`, login roles) named after process `pid`.
    A replay's role has its database's name: sizes are measured on the databases alone."""
    query = sa.text("SELECT datname FROM pg_database WHERE datname LIKE :pattern" + (
        " UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE :pattern" if roles else ""))
    if connection is not None:
        return list(connection.execute(query, {"pattern": _owned_by(pid)}).scalars())
    engine = sa.create_engine(postgres_server_url())
    try:
        with engine.connect() as connection:
            return list(connection.execute(query, {"pattern": _owned_by(pid)}).scalars())
    finally:
        engine.dispose()


def processes_in(folder):
    """Processes (other than this one) whose working folder is inside `folder` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(int(entry.name))
    return found


def leftovers(watched, backend, folder):
    """What a grade left: folders in its TMPDIR, its databases and roles, processes working in `folder`."""
    return {
        "folders": sorted(path.name for path in watched.tmp.iterdir() if path.name.startswith("lesson-")
                          and path.name != "lesson-guard"),
        "databases": databases_of(watched.process.pid) if backend == "postgresql" else [],
        "processes": processes_in(folder),
    }
