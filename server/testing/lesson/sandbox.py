"""Running a submission's code apart from the grader, within limits.

    with Sandbox(layout, limits) as sandbox:
        answer = sandbox.request("load_revision", path=...)   # plain data, or
                                                              # raises ChildFailure

A Sandbox copies the submission's server/ folder (without the grader, the
local database and .env) and the grader's own engine into a temporary folder
and starts worker.py there in a new Python process, with an empty
environment and a memory limit (POSIX). Each request (an import, an upgrade,
a downgrade) has the time limit; once one has overrun it, the later requests
of the same sandbox get GRACE_SECONDS each, so hanging code costs a grade
about one limit. A request that overruns, a process that exits, crashes or
sends what the grader cannot read, ends in ChildFailure with a sentence a
student can read; the next request starts a fresh process (its start-up is
not counted). Closing the sandbox kills the process group and deletes the copy.

Every file of the grader and of the graded checkout is fingerprinted first
and checked after each request: a request that changed one of them fails,
and the file is put back as it was.
"""
import hashlib
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

LESSON_PACKAGE = Path(__file__).resolve().parent
GRADER_ROOT = LESSON_PACKAGE.parents[2]
DEFAULT_SECONDS = 20.0
GRACE_SECONDS = 2.0  # for each request after one overran the limit: plenty for a migration
START_SECONDS = 60.0  # for the worker to start (not the student's time)
DEFAULT_MEMORY_MB = 1024
MAX_ANSWER_BYTES = 4 * 1024 * 1024
# Not the student's code: left out of the private copy.
LEFT_OUT = ("testing", "instance", ".env", "__pycache__", "app.py")
BOOTSTRAP = (
    "import os, sys\n"
    "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n"
    "from testing.lesson.worker import main\n"
    "main()\n"
)


@dataclass(frozen=True)
class Limits:
    seconds: float = DEFAULT_SECONDS  # for each request (one import, one upgrade, ...)
    memory_mb: int = DEFAULT_MEMORY_MB

    @classmethod
    def from_environment(cls, seconds=None, memory_mb=None, environ=os.environ):
        """Limits from options, else LESSON_TIMEOUT / LESSON_MEMORY_MB, else the defaults."""
        seconds = seconds or environ.get("LESSON_TIMEOUT") or DEFAULT_SECONDS
        memory_mb = memory_mb or environ.get("LESSON_MEMORY_MB") or DEFAULT_MEMORY_MB
        return cls(float(seconds), int(memory_mb))


class ChildFailure(Exception):
    """The worker did not answer: `str()` says what happened, as the end of a sentence
    whose subject is the student's file ("... did not finish within 20 s")."""

    def __init__(self, kind, text):
        super().__init__(text)
        self.kind = kind  # timeout, exited, memory, garbage, tampered


class Sandbox:
    def __init__(self, layout, limits=None, role="revisions"):
        self.layout = layout
        self.limits = limits or Limits.from_environment()
        self.guards = guards_for(layout)
        self.role = role  # "models" needs no Alembic: a lighter worker
        self.folder = None
        self.process = None
        self.answers = None
        self.ready = False
        self.overran = False  # a request has used up the whole limit

    def __enter__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="lesson-sandbox-"))
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
        grader = self.folder / "grader"
        if not grader.is_dir():
            shutil.copytree(LESSON_PACKAGE, grader / "testing" / "lesson",
                            ignore=shutil.ignore_patterns("__pycache__"))
            (grader / "testing" / "__init__.py").write_text("", encoding="utf-8")
            (grader / "run_worker.py").write_text(BOOTSTRAP, encoding="utf-8")
        command = [
            sys.executable, "-I", "-B", str(grader / "run_worker.py"),
            "--root", str(self.root), "--server", str(self.root / "server"),
            "--memory-mb", str(self.limits.memory_mb), "--role", self.role,
        ]
        self.process = subprocess.Popen(
            command, cwd=self.root, env=_child_environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, **_new_process_group(),
        )
        self.answers = queue.Queue()
        self.ready = False
        threading.Thread(target=_read_answers, args=(self.process.stdout, self.answers), daemon=True).start()

    def _await_ready(self):
        try:
            ready = self.answers.get(timeout=START_SECONDS)
        except queue.Empty:
            ready = None
        if ready is None or '"ready"' not in ready:
            self.stop()
            raise ChildFailure("exited", "could not be run: the grader's worker process did not start")
        self.ready = True

    def stop(self):
        process, self.process = self.process, None
        if process is None:
            return
        _kill_group(process)
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass

    # -- requests ----------------------------------------------------------------------
    def request(self, command, **args):
        """The worker's answer to one request: {"result": ...} or {"error": ...}."""
        if self.process is None:
            self.start()
        if not self.ready:
            self._await_ready()
        nonce = secrets.token_hex(8)
        try:
            self.process.stdin.write((json.dumps({"command": command, "args": args, "nonce": nonce}) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            pass  # it ended already: the answer queue says how
        try:
            answer = self._wait(nonce)
        finally:
            self._check_files()
        if answer.get("fatal"):
            self.stop()
        return answer

    def _wait(self, nonce):
        allowance = GRACE_SECONDS if self.overran else self.limits.seconds
        try:
            line = self.answers.get(timeout=allowance)
        except queue.Empty:
            self.stop()
            earlier = ", as an earlier step had already used up the full limit" if self.overran else ""
            self.overran = True
            raise ChildFailure("timeout", f"did not finish within the time limit ({allowance:g} s{earlier})")
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

    def _ending(self):
        process = self.process
        try:
            code = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
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


def _copy_server(source, destination):
    def ignore(folder, names):
        top = Path(folder) == Path(source)
        return [name for name in names if name == "__pycache__" or (top and name in LEFT_OUT)]

    if source.is_dir():
        shutil.copytree(source, destination, ignore=ignore, symlinks=True)
    else:
        destination.mkdir(parents=True)


def _child_environment():
    """Only what Python needs to start: no database URLs, tokens or paths of the grader."""
    keep = ("PATH", "SYSTEMROOT", "WINDIR", "TEMP", "TMP", "TMPDIR", "LANG", "LC_ALL", "HOME", "USERPROFILE")
    environment = {name: os.environ[name] for name in keep if name in os.environ}
    environment.update(PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8", PYTHONUTF8="1")
    return environment


def _new_process_group():
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}  # its own group, killed whole


def _kill_group(process):
    if process.poll() is None or os.name != "nt":
        try:
            if os.name == "nt":
                process.kill()
            else:
                os.killpg(process.pid, signal.SIGKILL)  # with anything it started
        except (ProcessLookupError, PermissionError, OSError):
            pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


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
    testing = LESSON_PACKAGE.parent
    grader = FileGuard([LESSON_PACKAGE, testing / "conftest.py", testing / "codegrade_test.py",
                        GRADER_ROOT / "pytest.ini"], restore=True, remove_added=False)
    in_place = layout.root == GRADER_ROOT
    checkout = FileGuard([layout.server], restore=not in_place, remove_added=not in_place,
                         skip=("instance", ".env", "testing"))
    return grader, checkout


class FileGuard:
    """Fingerprints of every file under some folders (and single files), with their
    bytes, to notice and put back any change."""

    SKIPPED = {".git", "__pycache__", "node_modules", ".venv", ".pytest_cache"}
    MAX_KEPT_BYTES = 64 * 1024 * 1024

    def __init__(self, paths, restore=True, remove_added=True, skip=()):
        self.paths = [Path(path).resolve() for path in paths if Path(path).exists()]
        self.restore = restore
        self.remove_added = remove_added
        self.skipped = self.SKIPPED | set(skip)
        self.saved = dict(self._read_all())

    def _files(self):
        for top in self.paths:
            if top.is_file():
                yield top
                continue
            for directory, subfolders, names in os.walk(top):
                subfolders[:] = [name for name in subfolders if name not in self.skipped]
                for name in names:
                    if name not in self.skipped and not name.endswith((".pyc", ".pyo")):
                        yield Path(directory) / name

    def _read_all(self):
        kept = 0
        for path in self._files():
            try:
                data = path.read_bytes() if path.stat().st_size <= self.MAX_KEPT_BYTES - kept else None
            except OSError:
                continue
            kept += len(data or b"")
            yield path, (_fingerprint(path, data), data)

    def changes(self):
        """The paths changed, added or removed since the fingerprints, put back when restoring."""
        now = {}
        for path in self._files():
            try:
                kept = self.saved.get(path)
                now[path] = _fingerprint(path, path.read_bytes() if kept and kept[1] is not None else None)
            except OSError:
                continue
        changed = [path for path, (print_, _) in self.saved.items() if now.get(path) != print_]
        added = [path for path in now if path not in self.saved]
        if self.restore:
            for path in changed:
                data = self.saved[path][1]
                if data is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
        if self.remove_added:
            for path in added:
                path.unlink(missing_ok=True)
        return [self._relative(path) for path in changed + added]

    def _relative(self, path):
        for top in self.paths:
            if _within(path, top):
                return path.relative_to(top.parent).as_posix()
        return str(path)


def _fingerprint(path, data):
    if data is not None:
        return hashlib.blake2b(data).digest()
    info = path.stat()
    return (info.st_size, info.st_mtime_ns)


def _within(path, folder):
    try:
        Path(path).relative_to(folder)
        return True
    except ValueError:
        return False
