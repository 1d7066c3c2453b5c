"""Running a submission's code apart from the grader, within limits.

    with Sandbox(layout, limits) as sandbox:
        answer = sandbox.request("load_revision", path=...)   # plain data, or
                                                              # raises ChildFailure

A Sandbox copies the submission's server/ folder (without the grader, the
local database and .env) and the grader's own engine into a temporary folder
and starts worker.py there in a new Python process, with an empty
environment and a memory limit (POSIX). Each request (an import, an upgrade,
a downgrade) has the time limit; once one has overrun it, the later requests
of the same sandbox get GRACE_SECONDS each (the limit itself when that is
shorter), so hanging code costs a grade about one limit. A request that
overruns, a process that exits, crashes or sends what the grader cannot
read, ends in ChildFailure with a sentence a student can read; the next
request starts a fresh process (its start-up is not counted). Closing the
sandbox kills the process group and deletes the copy.

The worker confines itself before it loads any student code (confinement.py):
on Linux it writes only in the sandbox's folder, reads only Python, the packages
and the engine, reaches no TCP port but the replay database's gate
(database_gate.py), signals nothing outside itself, and is the subreaper of all it
starts, so that stopping it ends every process it left, double-forked or not.
A request in which the student's code tried to get out fails (ChildFailure
"escape") with a sentence saying what it tried.

Disk: no file the worker writes may grow past the disk limit (RLIMIT_FSIZE),
and while a request runs the grader measures the private folder (where the
replay's SQLite database lives too) and, on PostgreSQL, the throw-away
database (`database_size`): past the limit, the worker is stopped.

Every file of the grader and of the graded checkout is fingerprinted first
and checked after each request: a request that changed one of them fails,
and the file is put back as it was.
"""
import contextlib
import json
import os
import queue
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..databases.leftovers import temporary_folder
from . import FORK_SERVER_MAIN
from .processes import REAP_SECONDS, Child, children_of, end_process_tree, in_own_group, parent_of

GRADER_PACKAGE = Path(__file__).resolve().parents[1]  # server/testing/
GRADER_ROOT = GRADER_PACKAGE.parents[1]
DEFAULT_SECONDS = 20.0
GRACE_SECONDS = 2.0  # for each request after one overran the limit: plenty for a migration
START_SECONDS = 60.0  # for the worker to start (not the student's time)
DEFAULT_MEMORY_MB = 1024
DEFAULT_DISK_MB = 256
DISK_CHECK_SECONDS = 0.05  # how often the private folder and database are measured during a request: a loop
# writing zeros fills page cache at hundreds of MB a second, so the overshoot is what one interval lets through
MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_COPIED_BYTES = 16 * 1024 * 1024
# Not the student's code: left out of the private copy.
LEFT_OUT = ("testing", "instance", ".env", "__pycache__", "app.py")
BOOTSTRAP = (
    "import os, sys\n"
    "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n"
    "from testing.isolation.worker import main\n"
    "main()\n"
)


@dataclass(frozen=True)
class Limits:
    seconds: float = DEFAULT_SECONDS  # for each request (one import, one upgrade, ...)
    memory_mb: int = DEFAULT_MEMORY_MB
    disk_mb: int = DEFAULT_DISK_MB  # the data the student's code may write: files and database

    @classmethod
    def from_environment(cls, seconds=None, memory_mb=None, disk_mb=None, environ=os.environ):
        """Limits from options, else LESSON_TIMEOUT / LESSON_MEMORY_MB / LESSON_DISK_MB, else the defaults."""
        seconds = seconds or environ.get("LESSON_TIMEOUT") or DEFAULT_SECONDS
        memory_mb = memory_mb or environ.get("LESSON_MEMORY_MB") or DEFAULT_MEMORY_MB
        disk_mb = disk_mb or environ.get("LESSON_DISK_MB") or DEFAULT_DISK_MB
        return cls(float(seconds), int(memory_mb), int(disk_mb))

    @property
    def disk_bytes(self):
        return self.disk_mb * 1024 * 1024


class ChildFailure(Exception):
    """The worker did not answer: `str()` says what happened, as the end of a sentence
    whose subject is the student's file ("... did not finish within 20 s")."""

    def __init__(self, kind, text):
        super().__init__(text)
        self.kind = kind  # timeout, exited, memory, disk, garbage, tampered, escape


class Sandbox:
    def __init__(self, layout, limits=None, role="revisions", database_gate=None):
        self.layout = layout
        self.limits = limits or Limits.from_environment()
        self.guards = guards_for(layout)
        self.role = role  # "models" needs no Alembic: a lighter worker
        self.database_gate = database_gate  # the one port the worker may connect to (a PostgreSQL replay)
        self.confined = None  # what the last worker's confinement covered ("files", "network", "processes")
        self.confine_seconds = None
        self.folder = None
        self.process = None  # _ForkedWorker or _FreshWorker
        self.ready = False
        self.overran = False  # a request has used up the whole limit
        self.database_size = None  # set by the replay on PostgreSQL: bytes its throw-away database holds

    def __enter__(self):
        self.folder = temporary_folder("sandbox")
        return self

    def __exit__(self, *exc_info):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- paths ----------------------------------------------------------------------
    @property
    def root(self):
        """The private copy's root, laid out like the checkout."""
        return self.folder / "submission"

    def private(self, path):
        """Where a file of the server folder is in the private copy."""
        return self.root / "server" / Path(path).resolve().relative_to(self.layout.server)

    # -- the process ------------------------------------------------------------------
    def start(self):
        """Start the worker now, without waiting for it: it boots while the grader works."""
        shutil.rmtree(self.root, ignore_errors=True)
        _copy_server(self.layout.server, self.root / "server")
        self.ready = False
        self.process = _ForkedWorker.start(self) or _FreshWorker.start(self)

    def _await_ready(self):
        try:
            ready = self.process.receive(START_SECONDS)
        except TimeoutError:
            ready = None
        try:
            ready = json.loads(ready or "")
        except ValueError:
            ready = None
        if not isinstance(ready, dict) or ready.get("ready") is not True:
            self.stop()
            raise ChildFailure("exited", "could not be run: the grader's worker process did not start")
        self.confined = [str(kind) for kind in ready.get("confined") or ()]
        self.confine_seconds = ready.get("confine_seconds")  # what confining itself cost the worker
        self.ready = True

    @property
    def database_port(self):
        return self.database_gate.port if self.database_gate is not None else None

    def stop(self):
        process, self.process = self.process, None
        if process is not None:
            process.kill()

    # -- requests ----------------------------------------------------------------------
    def request(self, command, **args):
        """The worker's answer to one request: {"result": ...} or {"error": ...}."""
        if self.process is None:
            self.start()
        if not self.ready:
            self._await_ready()
        nonce = secrets.token_hex(8)
        self.process.send(json.dumps({"command": command, "args": args, "nonce": nonce}))
        try:
            answer = self._wait(nonce)
        finally:
            self._check_files()
        if answer.get("tried"):
            self.stop()
            tried = [str(attempt) for attempt in answer["tried"]]
            raise ChildFailure("escape", "tried to " + "; it also tried to ".join(tried))
        if answer.get("fatal"):
            self.stop()
        return answer

    def _wait(self, nonce):
        allowance = min(GRACE_SECONDS, self.limits.seconds) if self.overran else self.limits.seconds
        deadline = time.monotonic() + allowance
        while True:
            try:
                line = self.process.receive(min(DISK_CHECK_SECONDS, max(0.0, deadline - time.monotonic())))
                break
            except TimeoutError:
                self._check_disk()
                if time.monotonic() < deadline:
                    continue
                self.stop()
                earlier = ", as an earlier step had already used up the full limit" if self.overran else ""
                self.overran = True
                raise ChildFailure("timeout", f"did not finish within the time limit ({allowance:g} s{earlier})")
        self._check_disk()
        if line is None:  # the process ended without answering
            raise ChildFailure(*self._ending())
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("nonce") != nonce or "protocol_error" in answer:
            self.stop()
            raise ChildFailure("garbage", "disturbed the grader's worker process (it sent output the grader "
                                          "cannot read), so it was stopped")
        return answer

    def disk_used(self):
        """Bytes the private folder and the throw-away database take on disk."""
        used = folder_size(self.folder)
        if self.database_size is not None:
            used += self.database_size()
        return used

    def _check_disk(self):
        if self.disk_used() >= self.limits.disk_bytes:
            self.stop()
            raise ChildFailure("disk", f"writes more than {self.limits.disk_mb} MB of data: grading allows "
                                       f"{self.limits.disk_mb} MB (--lesson-disk)")

    def _ending(self):
        code = self.process.exit_code()
        self.stop()
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            if name == "SIGKILL":
                return "memory", (f"was stopped by the system (SIGKILL), most likely for using too much memory "
                                  f"(the limit is {self.limits.memory_mb} MB)")
            return "exited", f"crashed the Python process ({name}), for example by recursing too deep"
        return "exited", (f"ended the process (exit code {code}) before it finished, for example with os._exit(); "
                          "a migration must return normally")

    def _check_files(self):
        grader, checkout = self.guards
        changed = grader.changes() + checkout.changes()
        if changed:
            self.stop()
            names = ", ".join(changed[:3]) + (" and more" if len(changed) > 3 else "")
            undone = "the grader put them back" if checkout.restore else "put them back from git"
            raise ChildFailure("tampered", f"changed files outside the grader's private copy ({names}); {undone}. "
                                           "A migration changes the database, never files")


# --- two ways to start a worker ------------------------------------------------------------

# What every worker needs; models.py's own imports (Flask-SQLAlchemy) load in its worker,
# alongside the revisions' work, so the fork server is ready sooner. The fork server is
# made the subreaper of what its workers leave behind, and runs the main script once (fork_server).
FORK_SERVER_PRELOAD = [
    "sqlalchemy", "alembic.operations", "alembic.runtime.migration", "testing.isolation.fork_server",
    "testing.isolation.worker", "testing.databases.operations", "testing.databases.schema_data",
]
# models.py's own libraries. A process that grades once leaves them to models.py's worker,
# as said above; one that grades many times (each of the cohort's workers) has its fork
# server import them too (grades_many), so that no grade after the first imports them again.
MODELS_LIBRARIES = ["flask", "flask_sqlalchemy", "flask_migrate"]
_grades_many = False
_fork_server = None  # (process id, multiprocessing context) of the fork server this process started
_live_workers = set()  # process ids of the workers this process forked and has not stopped
_forking = threading.Lock()  # no sweep of the fork server's orphans while a worker is being forked


class _ForkedWorker:
    """A worker forked from a server process that imported its libraries once (POSIX):
    a few milliseconds instead of a new interpreter for every sandbox. Its connection
    carries bytes only; nothing it sends is unpickled."""

    def __init__(self, process, connection):
        self.process = process
        self.child = Child(process)
        self.connection = connection

    @classmethod
    def start(cls, sandbox):
        context = _fork_context()
        if context is None:
            return None
        from .worker import serve_forked

        ours, theirs = context.Pipe()
        process = context.Process(
            target=serve_forked, daemon=False,
            args=(theirs, str(sandbox.root), str(sandbox.root / "server"), sandbox.limits.memory_mb,
                  _child_environment(), os.getpid(), sandbox.database_port, sandbox.limits.disk_mb),
        )
        try:
            with _fork_server_environment(), _forking:
                process.start()
                _live_workers.add(process.pid)
        except (OSError, EOFError, ValueError, RuntimeError, AssertionError):
            return None  # no fork server here (a daemon process, or it ended): start a fresh interpreter instead
        theirs.close()
        return cls(process, ours)

    @property
    def pid(self):
        return self.process.pid

    def send(self, text):
        try:
            self.connection.send_bytes(text.encode("utf-8"))
        except (OSError, ValueError):
            pass  # it ended already: receive() says how

    def receive(self, timeout):
        """One line of text, None once the worker has ended, TimeoutError when it takes too long."""
        try:
            waiting = not self.connection.poll(timeout)
            if not waiting:
                return self.connection.recv_bytes(MAX_ANSWER_BYTES).decode("utf-8", "replace")
        except EOFError:  # it ended
            return None
        except OSError:  # bytes that are no answer, or more than an answer can be
            return "\x00"
        raise TimeoutError

    def exit_code(self):
        return self.child.exit_code(REAP_SECONDS)

    def kill(self):
        fork_server = parent_of(self.process.pid)
        self.child.kill()  # with anything the student's code started
        self.connection.close()
        with _forking:
            _live_workers.discard(self.process.pid)
            if fork_server is not None:  # the subreaper of workers that ended before they were stopped
                for orphan in set(children_of(fork_server)) - _live_workers:
                    end_process_tree(orphan)


def _fork_context():
    """The fork server's multiprocessing context, started once per process; None where there is none."""
    global _fork_server
    import multiprocessing

    if os.name != "posix" or "forkserver" not in multiprocessing.get_all_start_methods() or not _main_guarded():
        return None
    if _fork_server is None or _fork_server[0] != os.getpid():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(FORK_SERVER_PRELOAD + (MODELS_LIBRARIES if _grades_many else []))
        _fork_server = (os.getpid(), context)
    return _fork_server[1]


def grades_many():
    """Say that this process (and the processes it forks) will grade many submissions, before
    its first sandbox: its fork server then imports models.py's libraries once for all of them."""
    global _grades_many
    _grades_many = True


@contextlib.contextmanager
def _fork_server_environment():
    """What the fork server starts with (with the first worker, or warm_up()): it writes no
    bytecode, as it imports the grader, maybe from a student's checkout; it can import the
    grader's package, which multiprocessing does not tell it where to find before Python 3.12.8
    (CPython gh-117378: its preloads would fail without a word and every worker import them
    again); it knows the main script every worker would run again (fork_server.py)."""
    from multiprocessing import spawn

    search_path = os.pathsep.join(filter(None, [str(GRADER_PACKAGE.parent), os.environ.get("PYTHONPATH")]))
    settings = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": search_path,
                FORK_SERVER_MAIN: spawn.get_preparation_data("fork server").get("init_main_from_path")}
    previous = {name: os.environ.get(name) for name in settings}
    for name, value in settings.items():
        if value is not None:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def warm_up():
    """Start the fork server now, so that it imports its libraries while the grader
    starts up; the first sandbox then forks at once. Never fails: it only saves time."""
    context = _fork_context()
    if context is None:
        return
    from multiprocessing import forkserver

    try:
        with _fork_server_environment():
            forkserver.ensure_running()
    except Exception:  # the first sandbox will start it, or fall back to a fresh interpreter
        pass


def _main_guarded():
    """Whether a forked worker may import this process's main script, as multiprocessing does:
    run as a module (python -m), from no file, or a script that guards its own run."""
    main = sys.modules.get("__main__")
    if getattr(main, "__spec__", None) is not None or not getattr(main, "__file__", None):
        return True
    try:
        return "__main__" in Path(main.__file__).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False


class _FreshWorker:
    """A worker in a new Python interpreter (Windows, or where forking is not possible),
    from a private copy of the grader's engine, talking JSON lines over its stdin and stdout."""

    def __init__(self, popen):
        self.popen = popen
        self.child = Child(popen)
        self.answers = queue.Queue()
        threading.Thread(target=_read_answers, args=(popen.stdout, self.answers), daemon=True).start()

    @classmethod
    def start(cls, sandbox):
        grader = sandbox.folder / "grader"
        if not grader.is_dir():
            # The grader's packages without its tests and the page's templates: what a worker can import.
            shutil.copytree(GRADER_PACKAGE, grader / "testing",
                            ignore=shutil.ignore_patterns("__pycache__", "tests", "templates"))
            (grader / "run_worker.py").write_text(BOOTSTRAP, encoding="utf-8")
        command = [
            sys.executable, "-I", "-B", str(grader / "run_worker.py"),
            "--root", str(sandbox.root), "--server", str(sandbox.root / "server"),
            "--memory-mb", str(sandbox.limits.memory_mb), "--disk-mb", str(sandbox.limits.disk_mb),
            "--role", sandbox.role,
        ]
        if sandbox.database_port:
            command += ["--database-port", str(sandbox.database_port)]
        popen = subprocess.Popen(
            command, cwd=sandbox.root, env=_child_environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, **in_own_group(),
        )
        worker = cls(popen)
        worker.job = _windows_job(popen)
        return worker

    @property
    def pid(self):
        return self.popen.pid

    def send(self, text):
        try:
            self.popen.stdin.write((text + "\n").encode("utf-8"))
            self.popen.stdin.flush()
        except OSError:
            pass  # it ended already: receive() says how

    def receive(self, timeout):
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None

    def exit_code(self):
        return self.child.exit_code(REAP_SECONDS)

    def kill(self):
        self.child.kill()
        if getattr(self, "job", None) is not None:
            _close_windows_job(self.job)  # ends every process in it
        for stream in (self.popen.stdin, self.popen.stdout):
            try:
                stream.close()
            except OSError:
                pass


def _copy_server(source, destination):
    def ignore(folder, names):
        top = Path(folder) == Path(source)
        return [name for name in names
                if name == "__pycache__" or (top and name in LEFT_OUT) or _too_big(Path(folder) / name)]

    if source.is_dir():
        shutil.copytree(source, destination, ignore=ignore, symlinks=True)
    else:
        destination.mkdir(parents=True)


def folder_size(folder):
    """Bytes the files below `folder` take on disk (links not followed). Checked during and
    after every request: os.scandir's entries cost less than os.walk and a stat of each name."""
    total, folders = 0, [folder]
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(entry.path)
                            continue
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += info.st_blocks * 512 if hasattr(info, "st_blocks") else info.st_size  # Windows: no blocks
        except OSError:
            continue
    return total


def _too_big(path):
    """Data, not code: a file over MAX_COPIED_BYTES stays out of the private copy."""
    try:
        info = path.lstat()
    except OSError:
        return True
    return stat.S_ISREG(info.st_mode) and info.st_size > MAX_COPIED_BYTES


def _child_environment():
    """Only what Python needs to start: no database URLs, tokens or paths of the grader."""
    keep = ("PATH", "SYSTEMROOT", "WINDIR", "TEMP", "TMP", "TMPDIR", "LANG", "LC_ALL", "HOME", "USERPROFILE")
    environment = {name: os.environ[name] for name in keep if name in os.environ}
    environment.update(PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8", PYTHONUTF8="1")
    return environment


def _windows_job(popen):
    """A Job object that ends every process of the worker when it is closed (Windows); None elsewhere."""
    if os.name != "nt":
        return None
    import ctypes
    from ctypes import wintypes

    class BasicLimits(ctypes.Structure):  # JOBOBJECT_BASIC_LIMIT_INFORMATION
        _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64), ("PerJobUserTimeLimit", ctypes.c_int64),
                    ("LimitFlags", wintypes.DWORD), ("MinimumWorkingSetSize", ctypes.c_size_t),
                    ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", wintypes.DWORD),
                    ("Affinity", ctypes.c_size_t), ("PriorityClass", wintypes.DWORD),
                    ("SchedulingClass", wintypes.DWORD)]

    class ExtendedLimits(ctypes.Structure):  # JOBOBJECT_EXTENDED_LIMIT_INFORMATION
        _fields_ = [("BasicLimitInformation", BasicLimits), ("IoInfo", ctypes.c_uint64 * 6),
                    ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                    ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t)]

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.CreateJobObjectW.restype = wintypes.HANDLE
    job = kernel32.CreateJobObjectW(None, None)
    if not job:
        return None
    limits = ExtendedLimits()
    limits.BasicLimitInformation.LimitFlags = 0x2000  # JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    extended_limit_information = 9
    if not kernel32.SetInformationJobObject(wintypes.HANDLE(job), extended_limit_information,
                                            ctypes.byref(limits), ctypes.sizeof(limits)) \
            or not kernel32.AssignProcessToJobObject(wintypes.HANDLE(job), wintypes.HANDLE(popen._handle)):
        kernel32.CloseHandle(wintypes.HANDLE(job))
        return None
    return job


def _close_windows_job(job):
    import ctypes
    from ctypes import wintypes

    ctypes.WinDLL("kernel32").CloseHandle(wintypes.HANDLE(job))


def _read_answers(stream, answers):
    """Queue each answer line; None once the process has closed its end."""
    try:
        while True:
            line = stream.readline(MAX_ANSWER_BYTES + 1)
            if not line:
                break
            if len(line) > MAX_ANSWER_BYTES:
                answers.put(b"\x00")  # too long to be an answer
                break
            answers.put(line.decode("utf-8", "replace"))
    except (OSError, ValueError):
        pass
    answers.put(None)


# --- the files no request may change ------------------------------------------------------

def guards_for(layout):
    """The grader's own files (put back when changed) and the checkout's. The checkout's
    are put back, and files added there removed, only when it is graded from another
    checkout: in place, a student may be editing them right now, so a change is
    reported, never undone."""
    packages = [path for path in GRADER_PACKAGE.iterdir() if (path / "__init__.py").is_file() and path.name != "tests"]
    grader = FileGuard([*packages, *GRADER_PACKAGE.glob("*.py"), GRADER_ROOT / "pytest.ini", GRADER_ROOT / "conftest.py"],
                       restore=True, remove_added=False)
    in_place = layout.root == GRADER_ROOT
    checkout = FileGuard([layout.server], restore=not in_place, remove_added=not in_place,
                         skip=("instance", ".env", "testing"))
    return grader, checkout


class FileGuard:
    """The bytes of every file under some folders (and single files), to notice and put
    back any change; a file too big to keep is known by its size and modification time.

    After each request a file is read again only when its status may show a change, as git
    trusts its index: on POSIX, writing, replacing or re-dating a file moves its change time
    (st_ctime), which nothing can set back, and adding, removing or renaming an entry moves
    its folder's. When no status moved, nothing is walked or read. Files and folders changed
    less than RACY_NS before the guard was made (timestamps may be that coarse), and all on
    Windows (where st_ctime is the creation time), are walked and compared every time."""

    SKIPPED = {".git", "__pycache__", "node_modules", ".venv", ".pytest_cache"}
    MAX_KEPT_BYTES = 64 * 1024 * 1024
    RACY_NS = 2_000_000_000

    def __init__(self, paths, restore=True, remove_added=True, skip=()):
        self.paths = [Path(path).resolve() for path in paths if Path(path).exists()]
        self.restore = restore
        self.remove_added = remove_added
        self.skipped = self.SKIPPED | set(skip)
        self.made = time.time_ns()
        self.saved = dict(self._read_all())  # path -> (fingerprint, bytes or None, trusted status or None)
        self.folders = self._trusted_folders()  # folder -> status, or None: walk every time

    def _trusted(self, info):
        return os.name != "nt" and info.st_ctime_ns < self.made - self.RACY_NS

    def _walk(self, top):
        """(folder, file names) below a watched folder, the skipped folders left out."""
        for directory, subfolders, names in os.walk(top):
            subfolders[:] = [name for name in subfolders if name not in self.skipped]
            yield directory, names

    def _trusted_folders(self):
        folders = {}
        for top in self.paths:
            for directory, _ in self._walk(top) if top.is_dir() else ():
                try:
                    info = os.lstat(directory)
                except OSError:
                    return None
                if not self._trusted(info):
                    return None
                folders[directory] = _status(info)
        return folders

    def _unchanged(self):
        """A glance at the statuses: True when no file or folder can have changed."""
        if self.folders is None:
            return False
        try:
            return all(_status(os.lstat(folder)) == status for folder, status in self.folders.items()) and \
                all(status is not None and _status(os.lstat(path)) == status for path, (_, _, status) in self.saved.items())
        except OSError:
            return False

    def _files(self):
        """(path as text, its lstat) of each file (checked after every request: Path objects
        would cost more than the check)."""
        for top in self.paths:
            if top.is_file():
                with contextlib.suppress(OSError):
                    yield str(top), os.stat(top)
                continue
            for directory, names in self._walk(top):
                for name in names:
                    path = os.path.join(directory, name)
                    if name in self.skipped or name.endswith((".pyc", ".pyo")):
                        continue
                    try:
                        info = os.lstat(path)
                    except OSError:
                        continue
                    if stat.S_ISREG(info.st_mode):  # regular files only: a link to /dev/zero must not be read forever
                        yield path, info

    def _read_all(self):
        kept = 0
        for path, info in self._files():
            try:
                data = _read(path) if info.st_size <= self.MAX_KEPT_BYTES - kept else None
            except OSError:
                continue
            kept += len(data or b"")
            yield path, (_fingerprint(path, data), data, _status(info) if self._trusted(info) else None)

    def changes(self):
        """The paths changed, added or removed since the fingerprints, put back when restoring."""
        if self._unchanged():
            return []
        now = {}
        for path, info in self._files():
            kept = self.saved.get(path)
            if kept and kept[2] is not None and _status(info) == kept[2]:
                now[path] = kept[0]  # untouched since the guard was made
                continue
            try:
                now[path] = _fingerprint(path, _read(path) if kept and kept[1] is not None else None)
            except OSError:
                continue
        changed = [path for path, (print_, *_) in self.saved.items() if now.get(path) != print_]
        added = [path for path in now if path not in self.saved]
        if self.restore:
            for path in changed:
                data = self.saved[path][1]
                if data is not None:
                    _keep_aside(Path(path))
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                    Path(path).write_bytes(data)
        if self.remove_added:
            for path in added:
                Path(path).unlink(missing_ok=True)
        return [self._relative(Path(path)) for path in changed + added]

    def _relative(self, path):
        for top in self.paths:
            if _within(path, top):
                return path.relative_to(top.parent).as_posix()
        return str(path)


def _keep_aside(path):
    """Copy a changed file somewhere safe before putting the old one back: if it was
    someone editing the grader while it graded, nothing of theirs is lost."""
    try:
        folder = Path(tempfile.gettempdir()) / "lesson-guard"
        folder.mkdir(exist_ok=True)
        kept = folder / f"{path.name}.{secrets.token_hex(4)}"
        shutil.copy2(path, kept)
        print(f"lesson grader: {path} changed while a submission's code ran; it was put back, and the changed "
              f"file is kept in {kept}", file=sys.stderr)
    except OSError:
        pass


def _read(path):
    with open(path, "rb") as file:
        return file.read()


def _status(info):
    """What changes with a file's content: its size, times and identity."""
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev


def _fingerprint(path, data):
    """A file's bytes when they are kept (compared as they are: faster than hashing them
    after every request), else its size and modification time."""
    if data is not None:
        return data
    info = os.stat(path)
    return (info.st_size, info.st_mtime_ns)


def _within(path, folder):
    try:
        Path(path).relative_to(folder)
        return True
    except ValueError:
        return False
