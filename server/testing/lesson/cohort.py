"""A whole class at once: the cohort gradebook for instructors.

    pipenv run cohort SOURCES... [--out DIR] [--jobs N] [--shard K/N]
    pipenv run cohort --merge DIR... [--out DIR]

SOURCES are checkout folders, folders of checkouts, or roster files (one git
URL or local path a line, optionally preceded by the student's name). The
steps, each a plain function:

- `discover(sources)`: one Entry per student, in a stable order.
- `fetch(entries, cache)`: clone the git URLs shallowly into the cache
  (an unreachable one becomes a row with status "unreachable").
- `grade_many(entries, ...)`: every submission graded with `checks.grade`,
  exactly as `pytest` grades it, by a pool of `jobs` long-lived worker
  processes forked from a parent that has already imported the grader (a
  worker that dies or overruns the deadline is one row, and is replaced);
  results are cached by the submission's content hash and the grader's
  version, so a rerun only grades what changed.
- `write_gradebook(book, out)`: gradebook.csv, gradebook.json, report.html
  and summary.md from the rows. A local run and `--merge` of shards both end
  here, so merged shards give the same files as one run.

A row's status: "graded"; "not_a_lesson" (no server/ folder, graded all the
same); "unreachable", "too_large", "timed_out", "crashed" (not graded, no
score). The run always finishes and always writes the gradebook.
"""
import csv
import hashlib
import html
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
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Optional

from .checkpoints import CHECKPOINTS, LESSON

GRADED, NOT_A_LESSON = "graded", "not_a_lesson"
UNREACHABLE, TOO_LARGE, TIMED_OUT, CRASHED = "unreachable", "too_large", "timed_out", "crashed"
SCORED = (GRADED, NOT_A_LESSON)

CLONE_TIMEOUT = 120  # seconds for one `git clone --depth 1`
GRADE_TIMEOUT = 300  # seconds: a generous outer deadline for one submission's grade
MAX_FILES = 2000  # what the grade reads (server/ without the grader's copy) must stay below these
MAX_BYTES = 50 * 1024 * 1024
GRADEBOOK_FORMAT = 1

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

    @property
    def to_clone(self):
        return self.url is not None and self.path is None and self.problem is None


class SourceError(Exception):
    """A SOURCE on the command line that cannot be used at all."""


def discover(sources, base=Path(".")):
    """Entries for every submission the sources name, numbered in order."""
    found = []
    for source in sources:
        path = (Path(base) / source).expanduser()
        if path.is_file():
            found += _roster(path)
        elif _is_checkout(path) or _is_bare_repository(path):
            found.append((_clean_name(path.name), str(source), path))
        elif path.is_dir():
            found += [(_clean_name(child.name), str(Path(source) / child.name), child) for child in sorted(path.iterdir())
                      if child.is_dir() and not child.name.startswith(".")]
        else:
            raise SourceError(f"{source}: no such file or folder")
    entries, names = [], Counter()
    for index, (student, source, path) in enumerate(found):
        names[student] += 1
        unique = student if names[student] == 1 else f"{student}-{names[student]}"
        entries.append(_entry(index, unique, source, path))
    return entries


def _is_checkout(path):
    return (path / "server").is_dir() or (path / ".git").exists()


def _is_bare_repository(path):
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and not (path / ".git").exists()


def _entry(index, student, source, path):
    if path is None:  # a git URL
        return Entry(index, student, source, url=source)
    if _is_bare_repository(path):
        return Entry(index, student, source, url=path.resolve().as_uri())  # file:// so that --depth applies
    if not path.is_dir():
        return Entry(index, student, source, problem=(UNREACHABLE, f"{source}: no such folder"))
    return Entry(index, student, source, path=path.resolve())


URL = re.compile(r"^(\w[\w+.-]*://|[\w.-]+@[\w.-]+:)")


def _roster(roster):
    """(student, source, local path or None) for each line of a roster file.

    A line is `SOURCE`, `NAME SOURCE` or `NAME,SOURCE`; lines starting with `#` are comments.
    Relative paths are relative to the roster's folder.
    """
    found = []
    for line in roster.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = next(csv.reader([line])) if "," in line else line.split()
        fields = [field.strip() for field in fields if field.strip()]
        source = fields[-1]
        if URL.match(source):
            name = fields[0] if len(fields) > 1 else re.sub(r"\.git$", "", source.rstrip("/")).rsplit("/", 1)[-1]
            found.append((_clean_name(name), source, None))
        else:
            path = roster.parent / source
            found.append((_clean_name(fields[0] if len(fields) > 1 else path.resolve().name), source, path))
    return found


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


# --- mistakes ------------------------------------------------------------------------

UPGRADE_STOPPED = "the code hung, ended the process or ran out of memory"


def mistake_of(result):
    """The stable id of a failed checkpoint result, "<checkpoint>:<reason>" (the engine's
    reason codes, see checks.py); None when it did not fail."""
    if result.status != "failed":
        return None
    return f"{result.id}:{result.reason}"


def mistake_name(mistake):
    if mistake.endswith(":upgrade_stopped"):
        return f"{mistake.split(':')[0]}: {UPGRADE_STOPPED}"
    return LESSON.mistake_names.get(mistake, mistake.replace("_", " ").replace(":", ": ", 1))


# --- grading -------------------------------------------------------------------------

def record_of(report):
    """What the gradebook keeps of one grade (plain data, cached as JSON)."""
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
        }
    return {"score": report.score, "max_score": report.max_score, "checkpoints": checkpoints}


def grade_record(item):
    """Grade one checkout in a pool worker: (root, backend, server_url) -> its record."""
    from .checks import grade

    root, backend, server_url = item
    return record_of(grade(root, backend=backend, server_url=server_url))


@dataclass
class Task:
    entry: Entry
    key: str  # cache key


def grade_many(entries, cache, backend="sqlite", server_url=None, jobs=None, timeout=GRADE_TIMEOUT,
               progress=None):
    """A row for every entry, grading in `jobs` parallel processes what the cache does not hold.

    progress (optional) has start(to_grade, from_cache), graded(row) and finish().
    Returns (rows, statistics).
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
    items = [(str(by_key[key][0].path), backend, server_url) for key in keys]
    with tempfile.TemporaryDirectory(prefix="lesson-cohort-") as work:
        for number, outcome, detail, seconds in run_pool(items, grade_record, jobs, timeout, Path(work)):
            same = [_outcome_row(entry, outcome, detail, seconds) for entry in by_key[keys[number]]]
            if same[0]["status"] in SCORED:  # cached first: an interruption after this keeps it
                _write_json(results / f"{keys[number]}.json", row_record(same[0]))
            for row in same:
                rows[row["index"]] = row
                progress.graded(row)
    progress.finish()
    statistics = {
        "submissions": len(entries), "graded": len(keys), "from_cache": cached,
        "grading_seconds": round(time.perf_counter() - started, 2), "jobs": jobs,
        "peak_memory_mb": {"coordinator": _peak_mb(resource.RUSAGE_SELF),
                           "largest_grading_process": _peak_mb(resource.RUSAGE_CHILDREN)},
        "grader": version,
    }
    return [rows[entry.index] for entry in entries], statistics


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
        for worker in workers:  # interrupted or done: no worker outlives the run
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
        "index": entry.index, "student": entry.student, "source": entry.source, "commit": entry.commit,
        "status": status, "detail": detail, "score": None, "max_score": None, "checkpoints": {},
        "first_failing": None, "first_failing_summary": None, "mistakes": [],
    }
    if record is not None:
        row.update(record)
        if entry.path is not None and not (entry.path / "server").is_dir():
            row["status"] = NOT_A_LESSON
            row["detail"] = "no server/ folder: this is not a copy of the lesson"
        failing = [(cid, c) for cid, c in record["checkpoints"].items() if c["status"] == "failed"]
        if failing:
            row["first_failing"], row["first_failing_summary"] = failing[0][0], failing[0][1]["summary"]
        row["mistakes"] = [c["mistake"] for _, c in failing if not c["blocked_by"]]
    if seconds is not None:
        row["seconds"] = seconds
    return row


def row_record(row):
    return {key: row[key] for key in ("score", "max_score", "checkpoints")}


# --- the gradebook ---------------------------------------------------------------------

def gradebook(rows, backend, grader, total, shard=None):
    return {
        "format": GRADEBOOK_FORMAT, "grader": grader, "backend": backend, "total": total,
        "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "checkpoints": [{"id": c.id, "title": c.title, "points": c.points} for c in CHECKPOINTS],
        "rows": sorted(rows, key=lambda row: row["index"]),
    }


class MergeError(Exception):
    """Shard gradebooks that cannot be merged into one."""


def merge(folders):
    """One gradebook from the gradebook.json of several shard folders; (book, warnings)."""
    books = []
    for folder in folders:
        path = Path(folder) / "gradebook.json" if Path(folder).is_dir() else Path(folder)
        if not path.is_file():
            raise MergeError(f"{folder}: no gradebook.json")
        books.append(_read_json(path))
    for book in books[1:]:
        for key in ("format", "grader", "backend", "total"):
            if book[key] != books[0][key]:
                raise MergeError(f"the shards disagree on {key}: {books[0][key]} and {book[key]}; "
                                 "grade every shard with the same grader")
    rows, warnings = {}, []
    for book in books:
        for row in book["rows"]:
            if row["index"] in rows:
                warnings.append(f"{row['student']} is in more than one shard; kept once")
            rows[row["index"]] = row
    total = books[0]["total"]
    if len(rows) != total:
        warnings.append(f"{total - len(rows)} of {total} submissions are in no shard: is a shard missing?")
    return gradebook(list(rows.values()), books[0]["backend"], books[0]["grader"], total), warnings


def write_gradebook(book, out):
    """gradebook.json, gradebook.csv, report.html and summary.md in the folder out."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stable = dict(book, rows=[{k: v for k, v in row.items() if k != "seconds"} for row in book["rows"]])
    _write_json(out / "gradebook.json", stable)
    (out / "gradebook.csv").write_text(gradebook_csv(book), encoding="utf-8", newline="")
    (out / "report.html").write_text(report_html(book), encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(book), encoding="utf-8")
    return out


def gradebook_csv(book):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    ids = [c["id"] for c in book["checkpoints"]]
    writer.writerow(["student", "score", "max_score", "status", *ids, "first_failing", "first_failing_summary",
                     "mistakes", "source", "commit", "detail"])
    for row in book["rows"]:
        points = [_points_cell(row["checkpoints"].get(cid)) for cid in ids]
        writer.writerow([row["student"], _blank(row["score"]), _blank(row["max_score"]), row["status"], *points,
                         row["first_failing"] or "", row["first_failing_summary"] or "", " ".join(row["mistakes"]),
                         row["source"], row["commit"] or "", row["detail"] or ""])
    return buffer.getvalue()


def _blank(value):
    return "" if value is None else value


def _points_cell(checkpoint):
    if checkpoint is None or checkpoint["status"] == "not_applicable":
        return ""
    return checkpoint["points"]


def common_mistakes(book):
    """[(mistake, [rows that made it])], most common first."""
    by_mistake = {}
    for row in book["rows"]:
        for mistake in row["mistakes"]:
            by_mistake.setdefault(mistake, []).append(row)
    return sorted(by_mistake.items(), key=lambda item: (-len(item[1]), item[0]))


def mistake_example(mistake, rows):
    checkpoint = mistake.split(":", 1)[0]
    return rows[0]["checkpoints"][checkpoint]["message"]


def figures(book):
    rows = book["rows"]
    scored = [row for row in rows if row["status"] in SCORED]
    statuses = Counter(row["status"] for row in rows)
    return {
        "students": len(rows), "scored": len(scored), "statuses": statuses,
        "full_marks": sum(1 for row in scored if row["score"] == row["max_score"]),
        "mean_percent": (sum(_percent(row) for row in scored) / len(scored)) if scored else None,
    }


def _percent(row):
    return 100.0 * row["score"] / row["max_score"] if row["max_score"] else 0.0


def pass_rates(book):
    """[(checkpoint, passed, applicable)] over the scored rows."""
    rates = []
    for checkpoint in book["checkpoints"]:
        results = [row["checkpoints"][checkpoint["id"]] for row in book["rows"] if row["status"] in SCORED]
        applicable = [r for r in results if r["status"] != "not_applicable"]
        rates.append((checkpoint, sum(1 for r in applicable if r["status"] == "passed"), len(applicable)))
    return rates


def summary_markdown(book, limit=10):
    """The run in a few lines of Markdown (the README's sample, the job summary)."""
    f = figures(book)
    mean = "-" if f["mean_percent"] is None else f"{f['mean_percent']:.0f}%"
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(f["statuses"].items()))
    lines = [f"**{f['students']} submissions** ({statuses}): {f['full_marks']} at full marks, mean score {mean}.",
             "", "| Checkpoint | Passed |", "|---|---:|"]
    for checkpoint, passed, applicable in pass_rates(book):
        share = f"{passed}/{applicable}" if applicable else "n/a"
        lines.append(f"| `{checkpoint['id']}` | {share} |")
    lines += ["", "| Most common mistakes | Students |", "|---|---:|"]
    mistakes = common_mistakes(book)
    for mistake, rows in mistakes[:limit]:
        lines.append(f"| {mistake_name(mistake).replace('|', '/')} (`{mistake}`) | {len(rows)} |")
    if not mistakes:
        lines.append("| none | 0 |")
    return "\n".join(lines) + "\n"


# --- the HTML report -----------------------------------------------------------------

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1f2328}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;white-space:nowrap}td a{white-space:nowrap}code{font-size:.92em}
pre{background:#f6f8fa;padding:.7em;overflow-x:auto;white-space:pre-wrap;font-size:.85em}
.passed{color:#1a7f37}.failed{color:#cf222e}.other{color:#9a6700}.muted{color:#656d76}
.figures span{display:inline-block;margin-right:2em}.figures b{font-size:1.4em}
svg text{font:12px system-ui,sans-serif;fill:#1f2328}svg{max-width:100%;height:auto}
.wide{overflow-x:auto;margin:.5em 0}.wide table{margin:0}.chart td,.chart th{text-align:right}
main{overflow-wrap:break-word}.chart th,.chart td{white-space:nowrap}
main>table td,main>table td code{overflow-wrap:anywhere}
a:focus-visible,summary:focus-visible,[tabindex]:focus-visible{outline:3px solid #0969da;outline-offset:2px}
@media (max-width:640px){body{margin:1em auto;padding:0 .6em}.figures span{margin-right:1em}}
"""


def report_html(book):
    f = figures(book)
    mean = "-" if f["mean_percent"] is None else f"{f['mean_percent']:.0f}%"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Cohort gradebook: schema migrations</title>", f"<style>{CSS}</style></head><body><main>",
        "<h1>Cohort gradebook: schema migrations with Flask-Migrate</h1>",
        f'<p class="figures"><span><b>{f["students"]}</b> submissions</span>'
        f'<span><b>{f["scored"]}</b> graded</span><span><b>{f["full_marks"]}</b> at full marks</span>'
        f'<span><b>{mean}</b> mean score</span></p>',
        f'<p class="muted">Replayed on {_e(book["backend"])}; grader {_e(book["grader"])}. Statuses: '
        + _e(", ".join(f"{count} {status}" for status, count in sorted(f["statuses"].items()))) + ".</p>",
        "<h2>Score distribution</h2>", _histogram_svg(book),
        "<h2>Checkpoints passed</h2>", _pass_rate_svg(book),
        "<h2>Most common mistakes</h2>", _scrolling(_mistakes_html(book), "Most common mistakes"),
        "<h2>Students</h2>", _scrolling(_students_html(book), "Students"),
        "<h2>Feedback, student by student</h2>", *(_feedback_html(row) for row in book["rows"]),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _e(text):
    return html.escape(str(text), quote=True)


def _anchor(row):
    return "s-" + re.sub(r"[^\w-]", "-", row["student"])


def _scrolling(html_text, label):
    """A table wider than the window scrolls sideways in its own box, which the keyboard can focus."""
    return f'<div class="wide" role="region" aria-label="{_e(label)}" tabindex="0">{html_text}</div>'


def score_bands(book):
    """[(band, students)]: students per tenth of the score (the last band includes full marks)."""
    bins = [0] * 10
    for row in book["rows"]:
        if row["status"] in SCORED:
            bins[min(int(_percent(row) // 10), 9)] += 1
    return [(f"{number * 10}-{number * 10 + 9 if number < 9 else 100}%", count) for number, count in enumerate(bins)]


def _histogram_svg(book):
    """The score distribution as bars for the eye, and the same numbers in a table for everyone."""
    bands = score_bands(book)
    width, height, bar = 640, 220, 56
    top = max(count for _, count in bands) or 1
    shapes = []
    for number, (label, count) in enumerate(bands):
        x, h = 40 + number * (bar + 4), round(160 * count / top)
        shapes.append(f'<rect x="{x}" y="{180 - h}" width="{bar}" height="{h}" fill="#0969da">'
                      f"<title>{count} students scored {label}</title></rect>")
        shapes.append(f'<text x="{x + bar / 2}" y="{174 - h}" text-anchor="middle">{count}</text>')
        shapes.append(f'<text x="{x + bar / 2}" y="198" text-anchor="middle">{label}</text>')
    table = ('<table class="chart" id="score-table"><tr><th scope="row">Score</th>'
             + "".join(f'<th scope="col">{label}</th>' for label, _ in bands)
             + '</tr><tr><th scope="row">Students</th>' + "".join(f"<td>{count}</td>" for _, count in bands)
             + "</tr></table>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'aria-hidden="true" focusable="false">'
            f'<line x1="36" y1="180" x2="{width - 4}" y2="180" stroke="#656d76"/>{"".join(shapes)}'
            f'<text x="{width / 2}" y="216" text-anchor="middle">score (share of the points that apply)</text></svg>'
            + _scrolling(table, "Score distribution as a table"))


def _pass_rate_svg(book):
    """Each checkpoint's pass rate as bars for the eye, and in a table for everyone."""
    rates = pass_rates(book)
    width, row_height, left, span = 640, 26, 150, 400
    shapes, rows = [], []
    for number, (checkpoint, passed, applicable) in enumerate(rates):
        y = 10 + number * row_height
        share = passed / applicable if applicable else 0
        text = f"{passed}/{applicable} ({100 * share:.0f}%)" if applicable else "not applicable"
        shapes.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{_e(checkpoint["id"])}</text>')
        shapes.append(f'<rect x="{left}" y="{y}" width="{span}" height="18" fill="#ffebe9"/>')
        shapes.append(f'<rect x="{left}" y="{y}" width="{round(span * share)}" height="18" fill="#1a7f37">'
                      f"<title>{_e(checkpoint['title'])}: {text}</title></rect>")
        shapes.append(f'<text x="{left + span + 8}" y="{y + 14}">{text}</text>')
        rows.append(f'<tr><th scope="row"><code>{_e(checkpoint["id"])}</code></th><td>{_e(checkpoint["title"])}</td>'
                    f"<td class=num>{text}</td></tr>")
    height = 20 + len(rates) * row_height
    table = ('<table id="pass-rate-table"><tr><th scope="col">Checkpoint</th><th scope="col">What it checks</th>'
             '<th scope="col">Students who passed</th></tr>' + "".join(rows) + "</table>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'aria-hidden="true" focusable="false">{"".join(shapes)}</svg>'
            + _scrolling(table, "Checkpoints passed as a table"))


def _mistakes_html(book):
    mistakes = common_mistakes(book)
    if not mistakes:
        return "<p>No mistakes: every graded submission passed every checkpoint.</p>"
    scored = figures(book)["scored"] or 1
    lines = ["<table><tr><th>#</th><th>Mistake</th><th>Students</th><th>Who</th><th>Example message</th></tr>"]
    for rank, (mistake, rows) in enumerate(mistakes, start=1):
        who = ", ".join(f'<a href="#{_anchor(row)}">{_e(row["student"])}</a>' for row in rows)
        example = mistake_example(mistake, rows)
        lines.append(
            f"<tr><td class=num>{rank}</td><td>{_e(mistake_name(mistake))}<br><code class=muted>{_e(mistake)}</code></td>"
            f"<td class=num>{len(rows)} ({100 * len(rows) / scored:.0f}%)</td><td>{who}</td>"
            f"<td><details><summary>{_e(rows[0]['student'])}: {_e(example.splitlines()[0])}</summary>"
            f"<pre>{_e(example)}</pre></details></td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _status_class(status):
    return {"passed": "passed", "failed": "failed"}.get(status, "other")


def _students_html(book):
    lines = ["<table><tr><th>Student</th><th>Score</th><th>Status</th><th>First failing checkpoint</th>"
             "<th>Its summary</th></tr>"]
    for row in book["rows"]:
        score = "-" if row["score"] is None else f"{row['score']}/{row['max_score']}"
        status_class = "passed" if row["status"] == GRADED else "other"
        first = row["first_failing"] or ""
        summary = row["first_failing_summary"] or row["detail"] or ""
        lines.append(f'<tr><td><a href="#{_anchor(row)}">{_e(row["student"])}</a></td><td class=num>{score}</td>'
                     f'<td class="{status_class}">{_e(row["status"])}</td><td><code>{_e(first)}</code></td>'
                     f"<td>{_e(summary)}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _feedback_html(row):
    score = "" if row["score"] is None else f": {row['score']}/{row['max_score']}"
    parts = [f'<h3 id="{_anchor(row)}">{_e(row["student"])}{score}</h3>',
             f'<p class=muted>{_e(row["source"])}{" at " + _e(row["commit"][:12]) if row["commit"] else ""}'
             f" ({_e(row['status'])})</p>"]
    if row["detail"]:
        parts.append(f"<p>{_e(row['detail'])}</p>")
    if row["checkpoints"]:
        parts.append("<table><tr><th>Checkpoint</th><th>Result</th><th>Points</th><th>Summary</th></tr>")
        for cid, checkpoint in row["checkpoints"].items():
            points = "-" if checkpoint["status"] == "not_applicable" else f"{checkpoint['points']}/{checkpoint['max_points']}"
            parts.append(f"<tr><td><code>{_e(cid)}</code></td><td class={_status_class(checkpoint['status'])}>"
                         f"{_e(checkpoint['status'])}</td><td class=num>{points}</td>"
                         f"<td>{_e(checkpoint['summary'])}</td></tr>")
        parts.append("</table>")
        for cid, checkpoint in row["checkpoints"].items():
            if checkpoint["status"] == "failed" and not checkpoint["blocked_by"]:
                parts.append(f"<details><summary><code>{_e(cid)}</code>: {_e(checkpoint['summary'])}</summary>"
                             f"<pre>{_e(checkpoint['message'])}</pre></details>")
    return "\n".join(parts)


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

def run_cohort(sources, out, cache=None, jobs=None, shard=None, timeout=GRADE_TIMEOUT, server_url=None,
               echo=print, progress=None):
    """Grade the sources into a gradebook in out; returns the gradebook."""
    from .database import backend_of, normalize_url

    backend = backend_of(server_url) if server_url else "sqlite"
    server_url = normalize_url(server_url) if server_url else None
    cache = Path(cache or default_cache())
    entries = discover(sources)
    mine = select_shard(entries, shard)
    where = f" (shard {shard[0]} of {shard[1]}: {len(mine)} of them)" if shard else ""
    echo(f"{len(entries)} submissions{where}; cache in {cache}")
    fetch(mine, cache)
    rows, statistics = grade_many(mine, cache, backend, server_url, jobs, timeout, progress)
    book = gradebook(rows, backend, statistics["grader"], len(entries), shard)
    write_gradebook(book, out)
    _write_json(Path(out) / "run.json", statistics)
    echo(f"Graded {statistics['graded']}, {statistics['from_cache']} unchanged since an earlier run "
         f"(from the cache), in {statistics['grading_seconds']:.1f} s with {statistics['jobs']} processes.")
    return book


def run_merge(folders, out, echo=print):
    book, warnings = merge(folders)
    for warning in warnings:
        echo(f"warning: {warning}")
    write_gradebook(book, out)
    return book, warnings
