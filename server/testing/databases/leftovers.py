"""Throw-away resources named after their owner, and sweeping those whose owner is gone.

Grading makes throw-away databases (and, on PostgreSQL, login roles) and
temporary folders. Each is named after the process that made it, so that a
later run can tell a stale one, left by a run stopped with SIGKILL, from one a
live run is using right now:

    databases and roles   lesson_<host>_<pid>_<time>_<random>
    folders               $TMPDIR/lesson-<kind>.<host>.<pid>.<time>.<random>

<host> is a short hash of the machine's name, <pid> the owning process and
<time> when it was made (seconds since 1970, base 36). A resource is stale
when its owner ran on this machine and is no longer running, or, for a
database or role made on another machine, when nobody is connected to it and
it is older than OTHER_HOST_HOURS. Nothing else is ever removed: databases
named otherwise are left alone.

`stop_on_signals()` makes SIGTERM and SIGHUP end the main thread the way
Ctrl-C (SIGINT) does, with KeyboardInterrupt, so every `with` block and
fixture cleans up what it made before the process exits.
"""
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

PREFIX = "lesson"
HOST = hashlib.blake2b(socket.gethostname().encode("utf-8"), digest_size=3).hexdigest()
OTHER_HOST_HOURS = 6  # no grade takes that long: an unused database of another machine this old is stale
GUARD_COPY_DAYS = 7  # the file guard's copies of changed grader files are kept this long
DATABASE_NAME = re.compile(r"^lesson_(?P<host>[0-9a-f]{6})_(?P<pid>\d+)_(?P<time>[0-9a-z]+)_[0-9a-f]+$")
FOLDER_NAME = re.compile(r"^lesson-[a-z-]+\.(?P<host>[0-9a-f]{6})\.(?P<pid>\d+)\.(?P<time>[0-9a-z]+)\.")
_swept = set()  # what this process has swept already
_lock = threading.Lock()


def _owner(separator):
    return separator.join((HOST, str(os.getpid()), _base36(int(time.time()))))


def _base36(number):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text


def database_name():
    """A new throw-away database's (or role's) name, owned by this process."""
    return f"{PREFIX}_{_owner('_')}_{secrets.token_hex(4)}"


def temporary_folder(kind):
    """A new temporary folder owned by this process, e.g. lesson-sandbox.3fa2c1.4242.t0x1k2.abcd1234."""
    sweep_folders()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{kind}.{_owner('.')}."))


@contextlib.contextmanager
def temporary_folder_removed(kind):
    """temporary_folder(kind), removed when the block ends however it ends."""
    folder = temporary_folder(kind)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's, or a platform that cannot tell: keep it
    return True


def stale(name, pattern, connected=False, now=None):
    """Whether a resource named `name` (DATABASE_NAME or FOLDER_NAME) was left by an owner that is gone."""
    match = pattern.match(name)
    if match is None:
        return False
    if match["host"] == HOST:
        return int(match["pid"]) != os.getpid() and not _alive(int(match["pid"]))
    age = (now or time.time()) - int(match["time"], 36)
    return not connected and age > OTHER_HOST_HOURS * 3600


def _once(key):
    with _lock:
        if key in _swept:
            return False
        _swept.add(key)
        return True


def sweep_folders(folder=None):
    """Remove the temporary folders of owners gone from this machine (once per process),
    and the file guard's copies older than GUARD_COPY_DAYS."""
    folder = Path(folder or tempfile.gettempdir())
    if not _once(("folders", str(folder))):
        return []
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(PREFIX + "-") and stale(entry.name, FOLDER_NAME):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
    guard = folder / "lesson-guard"
    oldest = time.time() - GUARD_COPY_DAYS * 86400
    for copy in (guard.iterdir() if guard.is_dir() else ()):
        try:
            if copy.stat().st_mtime < oldest:
                copy.unlink()
        except OSError:
            pass
    return removed


def sweep_databases(admin):
    """Drop the throw-away databases, then the roles, whose owner is gone, on the server
    `admin` (an AUTOCOMMIT SQLAlchemy engine) is connected to; once per process and server."""
    import sqlalchemy as sa

    if not _once(("databases", admin.url.render_as_string(hide_password=True))):
        return []
    dropped = []
    with admin.connect() as connection:
        databases = connection.execute(sa.text(
            "SELECT datname, EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname) "
            "FROM pg_database d WHERE datname LIKE 'lesson\\_%'")).all()
        roles = connection.execute(sa.text(
            "SELECT rolname, EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.usename = r.rolname) "
            "FROM pg_roles r WHERE rolname LIKE 'lesson\\_%'")).all()
        for kind, rows in (("DATABASE", databases), ("ROLE", roles)):
            for name, connected in rows:
                if not stale(name, DATABASE_NAME, connected):
                    continue
                force = " WITH (FORCE)" if kind == "DATABASE" else ""
                try:
                    connection.execute(sa.text(f'DROP {kind} IF EXISTS "{name}"{force}'))
                    dropped.append(name)
                except sa.exc.DBAPIError:  # not ours to drop after all (privileges, objects it owns)
                    pass
    return dropped


def stop_on_signals():
    """SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, as SIGINT does, so
    cleanup code runs; a second signal while cleaning up is ignored. Only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(number, frame):
        for name in ("SIGTERM", "SIGHUP", "SIGINT"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        raise KeyboardInterrupt(f"stopped by {signal.Signals(number).name}")

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)
