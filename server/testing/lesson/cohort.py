"""A whole class at once: the cohort gradebook for instructors.

    pipenv run cohort SOURCES... [--out DIR] [--jobs N] [--shard K/N] [--working-tree]
    pipenv run cohort --merge DIR... [--out DIR]

SOURCES are checkout folders, folders of checkouts, or roster files (one git
URL or local path a line, optionally preceded by the student's name, or a
CSV roster with a header: name, source, id, email, lms_id, section). The
steps, each a plain function:

- `discover(sources)`: one Entry per student, in a stable order; two with
  one name are an error unless the roster's id or email tells them apart.
- `fetch(entries, cache)`: clone the git URLs shallowly into the cache
  (an unreachable one becomes a row with status "unreachable"). A local
  folder that is a git repository is cloned too: its committed work (HEAD)
  is graded, unless `working_tree` grades its files as they are.
- `grade_many(entries, ...)`: every submission graded with `checks.grade`,
  as `pytest --lesson-root` grades it (the student's own database file never
  counts: one maximum, MAX_SCORE, for everyone), by a pool of `jobs`
  long-lived worker processes forked from a parent that has already imported
  the grader (a worker that dies or overruns the deadline is one row, and is
  replaced); results are cached by the submission's content hash and the
  grader's version, so a rerun only grades what changed.
- `write_gradebook(book, out)`: gradebook.csv, gradebook.json, report.html
  and summary.md (cohort_report.py), a feedback file per student
  (handback.py) and canvas.csv (canvas.py) from the rows. A local run and
  `--merge` of shards both end here, so merged shards give the same files as
  one run.

A row's status: "graded"; "not_a_lesson" (no server/ folder, graded all the
same); "unreachable", "too_large", "timed_out", "crashed" (not graded, no
score). Its mistakes are root causes (root_causes.py). The run always
finishes and writes the gradebook; after Ctrl-C, of what finished, marked partial.
"""
import csv
import hashlib
import io
import json
import multiprocessing
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Optional

from . import leftovers
from .checkpoints import CHECKPOINTS, LESSON
from .feedback import plural
from .root_causes import consequence_of

GRADED, NOT_A_LESSON = "graded", "not_a_lesson"
UNREACHABLE, TOO_LARGE, TIMED_OUT, CRASHED = "unreachable", "too_large", "timed_out", "crashed"
SCORED = (GRADED, NOT_A_LESSON)

CLONE_TIMEOUT = 120  # seconds for one `git clone --depth 1`
GRADE_TIMEOUT = 300  # seconds: a generous outer deadline for one submission's grade
MAX_FILES = 2000  # what the grade reads (server/ without the grader's copy) must stay below these
MAX_BYTES = 50 * 1024 * 1024
GRADEBOOK_FORMAT = 2
# One maximum for every row: `local_database` (the database file on the student's own
# machine) never counts when an instructor grades, however the submission came in.
MAX_SCORE = sum(c.points for c in CHECKPOINTS if c.id != "local_database")

LESSON_DIR = Path(__file__).resolve().parent


# --- discovering submissions ---------------------------------------------------------

@dataclass
class Entry:
    """One student's submission, before grading."""

    index: int  # position among all the run's submissions (shards keep it)
    student: str
    source: str  # as given: a folder or a git URL
    path: Optional[Path] = None  # the checkout to grade, once known
    url: Optional[str] = None  # what to clone, when it must be cloned
    commit: Optional[str] = None
    problem: Optional[tuple] = None  # (status, detail) when it cannot be graded
    note: Optional[str] = None  # how it was graded, when that is worth a word in its row
    people: dict = field(default_factory=dict)  # the roster's id, email, lms_id and section

    @property
    def to_clone(self):
        return self.url is not None and self.path is None and self.problem is None


class SourceError(Exception):
    """A SOURCE on the command line that cannot be used at all."""


@dataclass
class Found:
    """A submission as a source names it, before it is numbered."""

    student: str
    source: str
    path: Optional[Path]  # None for a git URL
    where: str  # the roster line or folder that names it, for messages
    people: dict = field(default_factory=dict)


def discover(sources, base=Path("."), working_tree=False):
    """Entries for every submission the sources name, numbered in order.

    A local folder that is a git repository is graded at its HEAD commit (cloned
    like a URL); with working_tree, as its files are. Two submissions with one
    name are an error unless the roster tells them apart (different id or email).
    """
    found = []
    for source in sources:
        path = (Path(base) / source).expanduser()
        if path.is_file():
            found += read_roster(path)
        elif _is_checkout(path) or _is_bare_repository(path):
            found.append(Found(_clean_name(path.name), str(source), path, str(source)))
        elif path.is_dir():
            found += [Found(_clean_name(child.name), str(Path(source) / child.name), child, str(Path(source) / child.name))
                      for child in sorted(path.iterdir()) if child.is_dir() and not child.name.startswith(".")]
        else:
            raise SourceError(f"{source}: no such file or folder")
    return [_entry(index, submission, working_tree) for index, submission in enumerate(_told_apart(found))]


def _told_apart(found):
    """The submissions with unique names: a name given twice gets the roster's id, or is an error."""
    by_name = {}
    for submission in found:
        by_name.setdefault(submission.student, []).append(submission)
    for name, same in by_name.items():
        if len(same) == 1:
            continue
        tags = [submission.people.get("id") or submission.people.get("email") for submission in same]
        if all(tags) and len(set(tags)) == len(tags):
            for submission, tag in zip(same, tags):
                submission.student = f"{name}-{_clean_name(tag)}"
            continue
        first, second = same[0].where, same[1].where
        raise SourceError(f"two submissions are named {name!r}: {first} and {second}. Give them different names, "
                          "or an id or email column in the roster that tells them apart.")
    return found


def _is_checkout(path):
    return (path / "server").is_dir() or (path / ".git").exists()


def _is_bare_repository(path):
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and not (path / ".git").exists()


def _entry(index, submission, working_tree):
    path, source = submission.path, submission.source
    entry = Entry(index, submission.student, source, people=submission.people)
    if path is None:  # a git URL
        entry.url = source
    elif _is_bare_repository(path):
        entry.url = path.resolve().as_uri()  # file:// so that --depth applies
    elif not path.is_dir():
        entry.problem = (UNREACHABLE, f"{source}: no such folder")
    elif not (path / ".git").exists():
        entry.path, entry.note = path.resolve(), "not a git repository: graded as the files are"
    elif working_tree:
        entry.path, entry.commit = path.resolve(), _commit_of(path)
        entry.note = "graded as the files are (--working-tree), uncommitted changes included"
    else:
        entry.url = path.resolve().as_uri()  # the committed work: HEAD, cloned like a URL
    return entry


URL = re.compile(r"^(\w[\w+.-]*://|[\w.-]+@[\w.-]+:)")
ROSTER_COLUMNS = ("name", "source", "id", "email", "lms_id", "section")
PEOPLE_COLUMNS = ("id", "email", "lms_id", "section")


def read_roster(roster):
    """[Found] for each line of a roster file.

    A line is `SOURCE`, `NAME SOURCE` or `NAME,SOURCE`; lines starting with `#` are comments.
    A roster whose first line is a CSV header naming a `source` column may also give each
    student an `id`, `email`, `lms_id` (the student's id in the LMS, for its import) and
    `section`. Relative paths are relative to the roster's folder.
    """
    lines = [(number, line.strip()) for number, line in enumerate(
        roster.read_text(encoding="utf-8-sig").splitlines(), start=1) if line.strip() and not line.strip().startswith("#")]
    header = None
    if lines and "," in lines[0][1]:
        fields = [field.strip().lower() for field in next(csv.reader([lines[0][1]]))]
        if "source" in fields:
            unknown = [field for field in fields if field not in ROSTER_COLUMNS]
            if unknown:
                raise SourceError(f"{roster}:{lines[0][0]}: unknown column {unknown[0]!r}; "
                                  f"a roster's columns are {', '.join(ROSTER_COLUMNS)}")
            header, lines = fields, lines[1:]
    return [_roster_line(roster, number, line, header) for number, line in lines]


def _roster_line(roster, number, line, header):
    where = f"{roster.name} line {number}"
    if header:
        values = [value.strip() for value in next(csv.reader([line]))]
        row = dict(zip(header, values + [""] * (len(header) - len(values))))
        source, name = row["source"], row.get("name", "")
        people = {key: row[key] for key in PEOPLE_COLUMNS if row.get(key)}
    else:
        fields = next(csv.reader([line])) if "," in line else line.split()
        fields = [field.strip() for field in fields if field.strip()]
        source, name, people = fields[-1], fields[0] if len(fields) > 1 else "", {}
    if not source:
        raise SourceError(f"{where}: no source")
    if URL.match(source):
        name = name or re.sub(r"\.git$", "", source.rstrip("/")).rsplit("/", 1)[-1]
        return Found(_clean_name(name), source, None, where, people)
    path = roster.parent / source
    return Found(_clean_name(name or path.resolve().name), source, path, where, people)


def _clean_name(name):
    return re.sub(r"[^\w.-]+", "-", re.sub(r"\.git$", "", name)).strip("-") or "student"


def select_shard(entries, shard):
    """The entries of shard k of n (1-based): every n-th, starting at the k-th."""
    if shard is None:
        return list(entries)
    k, n = shard
    return [entry for entry in entries if entry.index % n == k - 1]


# --- cloning -------------------------------------------------------------------------

def fetch(entries, cache, threads=8, timeout=CLONE_TIMEOUT):
    """Clone every URL entry shallowly into cache/clones (a fresh copy each run)."""
    by_url = {}  # a URL listed twice is cloned once
    for entry in entries:
        if entry.to_clone:
            by_url.setdefault(entry.url, []).append(entry)
    if by_url:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(lambda same: _clone_for(same, Path(cache) / "clones", timeout), by_url.values()))
    return entries


def _clone_for(same, clones, timeout):
    """Clone once for entries with the same URL; they all get its path, commit or problem."""
    _clone(same[0], clones, timeout)
    for other in same[1:]:
        other.path, other.commit, other.problem = same[0].path, same[0].commit, same[0].problem


def _clone(entry, clones, timeout):
    target = clones / hashlib.sha256(entry.url.encode()).hexdigest()[:16]
    fresh = target.with_name(target.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.parent.mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true")  # never wait for a password
    command = ["git", "clone", "--quiet", "--depth", "1", "--no-tags", entry.url, str(fresh)]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired:
        shutil.rmtree(fresh, ignore_errors=True)
        entry.problem = (UNREACHABLE, f"git clone took longer than {timeout} s (a huge repository?)")
        return
    except OSError as error:
        entry.problem = (UNREACHABLE, f"git could not run: {error}")
        return
    if run.returncode != 0:
        shutil.rmtree(fresh, ignore_errors=True)
        lines = [line.strip() for line in run.stderr.splitlines() if line.strip()]
        fatal = [line for line in lines if line.startswith("fatal:")] or lines or [f"exit code {run.returncode}"]
        entry.problem = (UNREACHABLE, "git clone failed: " + fatal[0])
        return
    shutil.rmtree(target, ignore_errors=True)
    fresh.rename(target)
    entry.path, entry.commit = target, _commit_of(target)
    if entry.commit is None:
        entry.problem = (UNREACHABLE, "the repository has no commit yet")


def _commit_of(path):
    if not (path / ".git").exists():
        return None
    run = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
    return run.stdout.strip() or None


# --- what the grade reads, hashed -----------------------------------------------------

def grader_version():
    """A hash of the grader's code and the versions it runs with: a new grader regrades."""
    import alembic
    import sqlalchemy

    digest = hashlib.sha256()
    for path in sorted(LESSON_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"{alembic.__version__} {sqlalchemy.__version__} {platform.python_version()}".encode())
    return digest.hexdigest()[:16]


def graded_files(root):
    """The files the grade can read: server/ (without a copy of the grader, which is
    never used) and a misplaced migrations/ folder at the root."""
    root = Path(root)
    files = []
    for top in (root / "server", root / "migrations"):
        if not top.is_dir():
            continue
        for folder, subfolders, names in os.walk(top):
            here = Path(folder)
            subfolders[:] = sorted(name for name in subfolders if name != "__pycache__"
                                   and not (here == root / "server" and name == "testing"))
            files += [here / name for name in sorted(names) if not name.endswith(".pyc")]
    return files


def content_hash(root, files):
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        if path.is_symlink():  # its target, never its content: a link to /dev/zero must not hang the run
            digest.update(b"-> " + os.readlink(path).encode())
        elif path.is_file():
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def size_problem(files):
    """Why a submission is too large to grade, or None."""
    if len(files) > MAX_FILES:
        return f"server/ has {len(files)} files; more than {MAX_FILES} is not a lesson submission"
    total = sum(path.lstat().st_size for path in files)
    if total > MAX_BYTES:
        return f"server/ holds {total / 2**20:.0f} MiB; more than {MAX_BYTES // 2**20} MiB is not a lesson submission"
    return None


# --- grading -------------------------------------------------------------------------

def mistake_of(result):
    """The stable id of a failed checkpoint result, "<checkpoint>:<reason>" (the engine's
    reason codes, see checks.py); None when it did not fail."""
    if result.status != "failed":
        return None
    return f"{result.id}:{result.reason}"


def record_of(report):
    """What the gradebook keeps of one grade (plain data, cached as JSON)."""
    verdicts = {result.id: result.verdict for result in report}
    checkpoints = {}
    for result in report:
        checkpoints[result.id] = {
            "status": result.status,
            "points": result.earned,
            "max_points": result.points,
            "summary": result.summary,
            "message": result.message,
            "blocked_by": result.blocked_by,
            "mistake": mistake_of(result),
            "caused_by": consequence_of(result.verdict, verdicts, report.lesson)
            if result.status == "failed" and not result.blocked_by else None,
        }
    record = {"score": report.score, "max_score": report.max_score, "checkpoints": checkpoints}
    if report.further_started:  # the optional steps: a bonus apart, with their own mistakes
        record["further"] = {
            "score": report.further_score, "max_score": report.further_max,
            "mistakes": [mistake_of(result) for result in report.further.values()
                         if result.status == "failed" and not result.blocked_by],
        }
    return record


def grade_record(item):
    """Grade one checkout in a pool worker: (root, backend, server_url) -> its record."""
    from .checks import grade

    root, backend, server_url = item
    report = grade(root, backend=backend, server_url=server_url, local_database=False)
    return dict(record_of(report), confinement=report.confinement)  # for run.json, not the gradebook


@dataclass
class Task:
    entry: Entry
    key: str  # cache key


def grade_many(entries, cache, backend="sqlite", server_url=None, jobs=None, timeout=GRADE_TIMEOUT,
               progress=None):
    """A row for every entry, grading in `jobs` parallel processes what the cache does not hold.

    progress (optional) has start(to_grade, from_cache), graded(row) and finish().
    Returns (rows, statistics); after Ctrl-C, the rows of what finished, and
    statistics["interrupted"] is True.
    """
    jobs = jobs or os.cpu_count() or 1
    results = Path(cache) / "results"
    results.mkdir(parents=True, exist_ok=True)
    version = grader_version()
    rows, tasks, cached = {}, [], 0
    for entry in entries:
        row, key = _prepare(entry, version, backend)
        if row is not None:
            rows[entry.index] = row
        elif (results / f"{key}.json").is_file():
            rows[entry.index] = _row(entry, GRADED, record=_read_json(results / f"{key}.json"))
            cached += 1
        else:
            tasks.append(Task(entry, key))
    started = time.perf_counter()
    progress = progress or Progress(quiet=True)
    progress.start(len(tasks), cached)
    by_key = {}  # identical submissions (same content) are graded once
    for task in tasks:
        by_key.setdefault(task.key, []).append(task.entry)
    keys = list(by_key)
    confinement = set()  # how confined this run's grades were: one line each way it happened
    items = [(str(by_key[key][0].path), backend, server_url) for key in keys]
    interrupted, graded = False, 0
    try:
        with leftovers.temporary_folder_removed("cohort") as work:
            for number, outcome, detail, seconds in run_pool(items, grade_record, jobs, timeout, Path(work)):
                if outcome == "ok":
                    confinement.add(detail.pop("confinement", None) or "unknown")
                same = [_outcome_row(entry, outcome, detail, seconds) for entry in by_key[keys[number]]]
                if same[0]["status"] in SCORED:  # cached first: an interruption after this keeps it
                    _write_json(results / f"{keys[number]}.json", row_record(same[0]))
                graded += 1
                for row in same:
                    rows[row["index"]] = row
                    progress.graded(row)
    except KeyboardInterrupt:  # the rows so far make a partial gradebook; the workers are stopped
        interrupted = True
    progress.finish()
    statistics = {
        "submissions": len(entries), "graded": graded, "from_cache": cached, "interrupted": interrupted,
        "grading_seconds": round(time.perf_counter() - started, 2), "jobs": jobs,
        "peak_memory_mb": {"coordinator": _peak_mb(resource.RUSAGE_SELF),
                           "largest_grading_process": _peak_mb(resource.RUSAGE_CHILDREN)},
        "grader": version,
        "confinement": sorted(confinement),
    }
    return [rows[entry.index] for entry in entries if entry.index in rows], statistics


def _peak_mb(who):
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # kilobytes on Linux


def _prepare(entry, version, backend):
    """(a finished row, None) when the entry cannot be graded, else (None, its cache key)."""
    if entry.problem:
        return _row(entry, *entry.problem), None
    try:
        files = graded_files(entry.path)
        problem = size_problem(files)
        if problem:
            return _row(entry, TOO_LARGE, problem), None
        digest = content_hash(entry.path, files)
    except OSError as error:
        return _row(entry, UNREACHABLE, f"a file cannot be read: {error}"), None
    return None, hashlib.sha256(f"{version} {backend} {digest}".encode()).hexdigest()


# What a grade imports, loaded once in the parent so every pool worker starts with it.
WARM_MODULES = (
    "testing.lesson.checks", "testing.lesson.operations", "flask", "flask_sqlalchemy", "dotenv", "mako.template",
    "alembic.context", "alembic.op", "alembic.autogenerate", "alembic.operations", "alembic.script",
    "alembic.runtime.migration", "alembic.ddl.sqlite", "alembic.ddl.postgresql", "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql",
)


def warm_up():
    import importlib

    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # a module moved in another version: only slower, never wrong
            pass


def _outcome_row(entry, outcome, detail, seconds):
    if outcome == "ok":
        return _row(entry, GRADED, record=detail, seconds=seconds)
    if outcome == "error":
        return _row(entry, CRASHED, f"the grader failed on this submission: {detail}", seconds=seconds)
    return _row(entry, TIMED_OUT if outcome == "timed_out" else CRASHED, detail, seconds=seconds)


# --- the pool of workers ---------------------------------------------------------------

RECYCLE_AFTER = 200  # tasks; a fresh worker bounds whatever memory a long run accumulates


class _Worker:
    """A long-lived process that runs function(item) for each item it is sent."""

    def __init__(self, context, function, log_path):
        self.connection, child_end = context.Pipe()
        self.log_path = log_path
        # Not a daemon: each grade starts worker processes of its own (sandbox.py), which
        # multiprocessing allows only outside daemons. stop() and kill() end it either way.
        self.process = context.Process(target=_worker_loop, args=(child_end, function, str(log_path)))
        self.process.start()
        child_end.close()
        self.number, self.started, self.done = None, 0.0, 0

    def send(self, number, item):
        self.number, self.started = number, time.monotonic()
        self.connection.send(item)

    def kill(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # already gone, or not yet its own group
            self.process.kill()

    def stop(self, kill=False):
        if kill:
            self.kill()
        else:
            try:
                self.connection.send(None)
            except OSError:
                self.kill()
        self.process.join()
        self.connection.close()

    def last_output(self):
        lines = Path(self.log_path).read_text(encoding="utf-8", errors="replace").strip().splitlines() \
            if Path(self.log_path).is_file() else []
        return f"; its last output: {lines[-1].strip()[:200]}" if lines else ""


def _worker_loop(connection, function, log_path):
    os.setpgrp()  # its own process group: stopping it also stops any process a grade started
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    leftovers.stop_on_signals()  # ... and its SIGTERM (_stop_all) ends a grade that cleans up first
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)  # a submission's prints and warnings go to the log, not over the progress bar
    os.dup2(log, 2)
    while True:
        try:
            item = connection.recv()
        except EOFError:  # the coordinator is gone
            return
        if item is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        os.ftruncate(log, 0)  # the log holds the current item's output only
        os.lseek(log, 0, os.SEEK_SET)
        try:
            outcome = ("ok", function(item))
        except Exception as error:
            outcome = ("error", f"{type(error).__name__}: {error}")
        connection.send(outcome)


def run_pool(items, function, jobs, timeout, work):
    """Yield (number, outcome, detail, seconds) for each item as `jobs` worker processes finish them.

    outcome is "ok" (detail: function's result), "error" (it raised), "crashed"
    (its worker died) or "timed_out" (it overran `timeout` seconds and its worker
    was killed). A lost worker is replaced; the run goes on.
    """
    if not items:
        return
    warm_up()
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pending = list(reversed(range(len(items))))
    workers, started = [], 0
    try:
        while pending or any(worker.number is not None for worker in workers):
            for worker in workers:
                if worker.number is None and pending:
                    number = pending.pop()
                    worker.send(number, items[number])
            while pending and len(workers) < jobs:
                started += 1
                workers.append(_Worker(context, function, Path(work) / f"worker-{started}.log"))
                number = pending.pop()
                workers[-1].send(number, items[number])
            busy = [worker for worker in workers if worker.number is not None]
            deadline = min(worker.started for worker in busy) + timeout
            wait([worker.connection for worker in busy] + [worker.process.sentinel for worker in busy],
                 timeout=max(0.0, deadline - time.monotonic()))
            for worker in busy:
                finished = _collect(worker, timeout)
                if finished is None:
                    continue
                number, worker.number = worker.number, None
                yield (number,) + finished
                worker.done += 1
                if finished[0] in ("crashed", "timed_out") or worker.done >= RECYCLE_AFTER:
                    worker.stop(kill=finished[0] in ("crashed", "timed_out"))
                    workers.remove(worker)
    finally:
        _stop_all(workers)


STOP_SECONDS = 10  # for a stopped worker to remove its grade's databases and folders


def _stop_all(workers):
    """Interrupted or done: no worker outlives the run. Each is asked to stop with SIGTERM
    first, so that a grade under way removes what it made, and killed if it does not."""
    for worker in workers:
        worker.process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        worker.stop(kill=True)


def _collect(worker, timeout):
    """(outcome, detail, seconds) when the worker's current item is over, else None."""
    seconds = round(time.monotonic() - worker.started, 2)
    if worker.connection.poll():
        try:
            outcome, detail = worker.connection.recv()
            return outcome, detail, seconds
        except (EOFError, OSError):
            pass
    elif worker.process.is_alive():
        if seconds <= timeout:
            return None
        worker.kill()
        return "timed_out", f"grading took longer than {timeout} s and was stopped", seconds
    worker.process.join()
    code = worker.process.exitcode
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    return "crashed", f"the grading process died ({how}){worker.last_output()}", seconds


def _row(entry, status, detail=None, record=None, seconds=None):
    """One student's line of the gradebook."""
    row = {
        "index": entry.index, "student": entry.student,
        **{key: entry.people.get(key) for key in PEOPLE_COLUMNS},
        "source": entry.source, "commit": entry.commit, "status": status, "detail": detail or entry.note,
        "score": None, "max_score": MAX_SCORE, "percent": None, "checkpoints": {},
        "first_failing": None, "first_failing_summary": None, "mistakes": [], "consequences": [],
    }
    if record is not None:
        row.update(record)
        row["percent"] = round(100 * record["score"] / record["max_score"], 1) if record["max_score"] else None
        if entry.path is not None and not (entry.path / "server").is_dir():
            row["status"] = NOT_A_LESSON
            row["detail"] = "no server/ folder: this is not a copy of the lesson"
        failing = [(cid, c) for cid, c in record["checkpoints"].items() if c["status"] == "failed"]
        if failing:
            row["first_failing"], row["first_failing_summary"] = failing[0][0], failing[0][1]["summary"]
        row["mistakes"], row["consequences"] = root_causes(record["checkpoints"])
    if seconds is not None:
        row["seconds"] = seconds
    return row


def root_causes(checkpoints):
    """(root-cause mistakes, the mistakes that follow from one) of a record's checkpoints;
    checkpoints that are only blocked are neither (root_causes.py)."""
    failed = [c for c in checkpoints.values() if c["status"] == "failed" and not c["blocked_by"]]
    return ([c["mistake"] for c in failed if not c.get("caused_by")],
            [c["mistake"] for c in failed if c.get("caused_by")])


def row_record(row):
    return {key: row[key] for key in ("score", "max_score", "checkpoints", "further") if key in row}


# --- the gradebook ---------------------------------------------------------------------

def gradebook(rows, backend, grader, roster, shard=None, missing=(), partial=False):
    """The gradebook of rows; roster: every student of the run, in order (shards share it)."""
    return {
        "format": GRADEBOOK_FORMAT, "grader": grader, "backend": backend, "total": len(roster),
        "max_score": MAX_SCORE, "roster": list(roster), "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "partial": bool(partial or missing), "missing": list(missing),
        "checkpoints": [{"id": c.id, "title": c.title, "points": c.points} for c in CHECKPOINTS],
        "rows": sorted(rows, key=lambda row: row["index"]),
    }


class MergeError(Exception):
    """Shard gradebooks that cannot be merged into one."""


def merge(folders):
    """One gradebook from the gradebook.json of several shard folders; (book, warnings, statistics)."""
    books, runs = [], []
    for folder in folders:
        path = Path(folder) / "gradebook.json" if Path(folder).is_dir() else Path(folder)
        if not path.is_file():
            raise MergeError(f"{folder}: no gradebook.json")
        books.append(_read_json(path))
        run = path.with_name("run.json")
        runs.append(_read_json(run) if run.is_file() else None)
    for book in books:
        if book.get("format") != GRADEBOOK_FORMAT:
            raise MergeError(f"{folders[books.index(book)]}: a gradebook of another version of the grader; "
                             "grade every shard with this one")
    for book in books[1:]:
        for key in ("grader", "backend", "roster"):
            if book[key] != books[0][key]:
                shown = (books[0][key], book[key]) if key != "roster" else ("one roster", "another")
                raise MergeError(f"the shards disagree on {key}: {shown[0]} and {shown[1]}; "
                                 "grade every shard with the same grader and roster")
    rows, warnings = {}, []
    for book in books:
        for row in book["rows"]:
            if row["index"] in rows:
                warnings.append(f"{row['student']} is in more than one shard; kept once")
            rows[row["index"]] = row
    roster = books[0]["roster"]
    missing = [name for index, name in enumerate(roster) if index not in rows]
    if missing:
        warnings.append(f"{len(missing)} of {plural(len(roster), 'submission')} in no shard (is a shard missing, "
                        f"or was one interrupted?): {', '.join(missing)}")
    book = gradebook(list(rows.values()), books[0]["backend"], books[0]["grader"], roster, missing=missing)
    statistics = {"merged": [str(folder) for folder in folders], "submissions": len(roster), "in_gradebook": len(rows),
                  "missing": missing, "grader": books[0]["grader"], "shards": runs}
    return book, warnings, statistics


def write_gradebook(book, out, canvas_assignment=None):
    """gradebook.json, gradebook.csv, report.html, summary.md, feedback/ and (when the
    roster gives LMS ids) canvas.csv in the folder out. Returns warnings."""
    from . import canvas
    from .cohort_report import report_html, summary_markdown
    from .handback import write_feedback

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stable = dict(book, rows=[{k: v for k, v in row.items() if k != "seconds"} for row in book["rows"]])
    _write_json(out / "gradebook.json", stable)
    files = write_feedback(book, out)
    (out / "gradebook.csv").write_text(gradebook_csv(book, files), encoding="utf-8", newline="")
    (out / "report.html").write_text(report_html(book, files), encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(book), encoding="utf-8")
    text, left_out = canvas.canvas_csv(book, canvas_assignment or canvas.ASSIGNMENT)
    (out / "canvas.csv").unlink(missing_ok=True)
    if text is None:
        return []
    (out / "canvas.csv").write_text(text, encoding="utf-8", newline="")
    return [f"canvas.csv leaves out {plural(len(left_out), 'student')} with no lms_id in the roster: "
            f"{', '.join(left_out)}"] if left_out else []


def gradebook_csv(book, feedback_files):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    ids = [c["id"] for c in book["checkpoints"]]
    writer.writerow(["student", "id", "email", "score", "max_score", "percent", "status", *ids, "first_failing",
                     "first_failing_summary", "mistakes", "consequences", "source", "commit", "detail", "feedback"])
    for row in book["rows"]:
        points = [_points_cell(row["checkpoints"].get(cid)) for cid in ids]
        writer.writerow([row["student"], row["id"] or "", row["email"] or "", _blank(row["score"]), row["max_score"],
                         _blank(row["percent"]), row["status"], *points, row["first_failing"] or "",
                         row["first_failing_summary"] or "", " ".join(row["mistakes"]), " ".join(row["consequences"]),
                         row["source"], row["commit"] or "", row["detail"] or "", feedback_files[row["student"]][1]])
    return buffer.getvalue()


def _blank(value):
    return "" if value is None else value


def _points_cell(checkpoint):
    if checkpoint is None or checkpoint["status"] == "not_applicable":
        return ""
    return checkpoint["points"]


# --- files ---------------------------------------------------------------------------

def _write_json(path, data):
    """Write atomically: an interrupted run never leaves half a file behind."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def default_cache():
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lesson-cohort"


class Progress:
    """A progress bar with the time left on a terminal; a line every tenth elsewhere (CI logs)."""

    def __init__(self, stream=None, quiet=False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.bar = None

    def start(self, to_grade, from_cache):
        self.total, self.done, self.started = to_grade, 0, time.monotonic()
        if self.quiet:
            return
        if from_cache:
            print(f"{from_cache} unchanged since an earlier run: taken from the cache.", file=self.stream)
        if to_grade and self.stream.isatty():
            import click

            self.bar = click.progressbar(length=to_grade, label="Grading", show_eta=True, show_pos=True,
                                         file=self.stream)
            self.bar.render_progress()

    def graded(self, row):
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif not self.quiet and (self.done * 10 // self.total) > ((self.done - 1) * 10 // self.total):
            elapsed = time.monotonic() - self.started
            left = elapsed / self.done * (self.total - self.done)
            print(f"Graded {self.done}/{self.total}, about {left:.0f} s left", file=self.stream, flush=True)

    def finish(self):
        if self.bar is not None:
            self.bar.render_finish()


# --- the runs ------------------------------------------------------------------------

class Interrupted(KeyboardInterrupt):
    """Ctrl-C during grading, after the partial gradebook was written."""


def run_cohort(sources, out, cache=None, jobs=None, shard=None, timeout=GRADE_TIMEOUT, server_url=None,
               echo=print, progress=None, working_tree=False, canvas_assignment=None):
    """Grade the sources into a gradebook in out; returns (the gradebook, warnings).

    Ctrl-C while grading writes the gradebook of what finished, marked partial, then
    raises Interrupted; the cache keeps every finished grade for the next run.
    """
    from .database import backend_of, normalize_url

    backend = backend_of(server_url) if server_url else "sqlite"
    server_url = normalize_url(server_url) if server_url else None
    cache = Path(cache or default_cache())
    entries = discover(sources, working_tree=working_tree)
    mine = select_shard(entries, shard)
    where = f" (shard {shard[0]} of {shard[1]}: {len(mine)} of them)" if shard else ""
    echo(f"{plural(len(entries), 'submission')}{where}; cache in {cache}")
    fetch(mine, cache)
    rows, statistics = grade_many(mine, cache, backend, server_url, jobs, timeout, progress)
    graded = {row["index"] for row in rows}
    missing = [entry.student for entry in mine if entry.index not in graded]
    book = gradebook(rows, backend, statistics["grader"], [entry.student for entry in entries], shard, missing)
    warnings = write_gradebook(book, out, canvas_assignment)
    _write_json(Path(out) / "run.json", dict(statistics, missing=missing))
    if statistics["interrupted"]:
        raise Interrupted(f"wrote a partial gradebook: {plural(len(missing), 'submission')} not graded yet")
    echo(f"Graded {statistics['graded']}, {statistics['from_cache']} unchanged since an earlier run "
         f"(from the cache), in {statistics['grading_seconds']:.1f} s with "
         f"{plural(statistics['jobs'], 'process', 'processes')}.")
    return book, warnings


def run_merge(folders, out, echo=print, canvas_assignment=None):
    book, warnings, statistics = merge(folders)
    warnings += write_gradebook(book, out, canvas_assignment)
    _write_json(Path(out) / "run.json", statistics)
    for warning in warnings:
        echo(f"warning: {warning}")
    return book, warnings
