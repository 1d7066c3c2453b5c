"""A whole class at once: the cohort gradebook for instructors.

    pipenv run cohort SOURCES... [--out DIR] [--jobs N] [--shard K/N] [--working-tree]
    pipenv run cohort --merge DIR... [--out DIR]

A run is four steps, each in a module of its own:

- cohort_sources: `discover(sources)` finds one Entry per student in folders
  and rosters, `fetch(entries, cache)` clones the git URLs shallowly.
- cohort_cache: what each grade reads, hashed with the grader's version; a
  rerun only grades what changed.
- cohort_pool: the rest is graded with `checks.grade`, as `pytest --lesson-root`
  grades it (the student's own database file never counts: one maximum,
  MAX_SCORE, for everyone), by `jobs` long-lived worker processes; a worker
  that dies or overruns the deadline is one row, and is replaced.
- cohort_gradebook: the rows, written as gradebook.csv, gradebook.json,
  report.html and summary.md (cohort_report.py), a feedback file per student
  (handback.py) and canvas.csv (canvas.py). `--merge` of shards ends there too.

The run always finishes and writes the gradebook; after Ctrl-C, of what
finished, marked partial.
"""
import os
import resource
import sys
import time
from pathlib import Path

from ..databases import leftovers
from ..isolation.sandbox import grades_many
from ..lesson.feedback import plural
from . import canvas
from .cohort_cache import Results, TooLarge, default_cache
from .cohort_gradebook import (CRASHED, GRADED, SCORED, TIMED_OUT, TOO_LARGE, UNREACHABLE, gradebook, gradebook_csv,
                               merge, record_of, row_of, row_record, write_json)
from .cohort_pool import run_pool
from .cohort_report import report_html, summary_markdown
from .cohort_sources import discover, fetch, select_shard
from .handback import write_feedback

GRADE_TIMEOUT = 300  # seconds: a generous outer deadline for one submission's grade
# What a grade imports, loaded once in the parent so every pool worker starts with it.
GRADER_MODULES = (
    "testing.engine.checks", "testing.databases.operations", "flask", "flask_sqlalchemy", "dotenv", "mako.template",
    "alembic.context", "alembic.op", "alembic.autogenerate", "alembic.operations", "alembic.script",
    "alembic.runtime.migration", "alembic.ddl.sqlite", "alembic.ddl.postgresql", "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql",
)


def grade_record(item):
    """Grade one checkout in a pool worker: (root, backend, server_url) -> its record."""
    from ..engine.checks import grade

    root, backend, server_url = item
    report = grade(root, backend=backend, server_url=server_url, local_database=False)
    return dict(record_of(report), confinement=report.confinement)  # for run.json, not the gradebook


def grade_many(entries, cache, backend="sqlite", server_url=None, jobs=None, timeout=GRADE_TIMEOUT,
               progress=None):
    """A row for every entry, grading in `jobs` parallel processes what the cache does not hold.

    progress (optional) has start(to_grade, from_cache), graded(row) and finish().
    Returns (rows, statistics); after Ctrl-C, the rows of what finished, and
    statistics["interrupted"] is True.
    """
    jobs = jobs or os.cpu_count() or 1
    grades_many()  # each grading process's fork server imports models.py's libraries once
    results = Results(cache, backend)
    rows, by_key, cached = {}, {}, 0  # by_key: identical submissions (same content) are graded once
    for entry in entries:
        row, key = _prepare(entry, results)
        record = results.get(key) if key else None
        if row is not None or record is not None:
            rows[entry.index] = row or row_of(entry, GRADED, record=record)
            cached += record is not None
        else:
            by_key.setdefault(key, []).append(entry)
    started = time.perf_counter()
    progress = progress or Progress(quiet=True)
    progress.start(sum(map(len, by_key.values())), cached)
    keys = list(by_key)
    confinement = set()  # how confined this run's grades were: one line each way it happened
    items = [(str(by_key[key][0].path), backend, server_url) for key in keys]
    interrupted, graded = False, 0
    try:
        with leftovers.temporary_folder_removed("cohort") as work:
            for number, outcome, detail, seconds in run_pool(items, grade_record, jobs, timeout, Path(work),
                                                             preload=GRADER_MODULES):
                if outcome == "ok":
                    confinement.add(detail.pop("confinement", None) or "unknown")
                same = [_outcome_row(entry, outcome, detail, seconds) for entry in by_key[keys[number]]]
                if same[0]["status"] in SCORED:  # cached first: an interruption after this keeps it
                    results.put(keys[number], row_record(same[0]))
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
        "grader": results.version,
        "confinement": sorted(confinement),
    }
    return [rows[entry.index] for entry in entries if entry.index in rows], statistics


def _peak_mb(who):
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # kilobytes on Linux


def _prepare(entry, results):
    """(a finished row, None) when the entry cannot be graded, else (None, its cache key)."""
    if entry.problem:
        return row_of(entry, *entry.problem), None
    try:
        key = results.key(entry.path)
    except TooLarge as problem:
        return row_of(entry, TOO_LARGE, str(problem)), None
    except OSError as error:
        return row_of(entry, UNREACHABLE, f"a file cannot be read: {error}"), None
    return None, key


def _outcome_row(entry, outcome, detail, seconds):
    if outcome == "ok":
        return row_of(entry, GRADED, record=detail, seconds=seconds)
    if outcome == "error":
        return row_of(entry, CRASHED, f"the grader failed on this submission: {detail}", seconds=seconds)
    return row_of(entry, TIMED_OUT if outcome == "timed_out" else CRASHED, detail, seconds=seconds)


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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during grading, after the partial gradebook was written."""


def run_cohort(sources, out, cache=None, jobs=None, shard=None, timeout=GRADE_TIMEOUT, server_url=None,
               echo=print, progress=None, working_tree=False, canvas_assignment=None):
    """Grade the sources into a gradebook in out; returns (the gradebook, warnings).

    Ctrl-C while grading writes the gradebook of what finished, marked partial, then
    raises Interrupted; the cache keeps every finished grade for the next run.
    """
    from ..databases.database import backend_of, normalize_url

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
    write_json(Path(out) / "run.json", dict(statistics, missing=missing))
    if statistics["interrupted"]:
        raise Interrupted(f"wrote a partial gradebook: {plural(len(missing), 'submission')} not graded yet")
    echo(f"Graded {statistics['graded']}, {statistics['from_cache']} unchanged since an earlier run "
         f"(from the cache), in {statistics['grading_seconds']:.1f} s with "
         f"{plural(statistics['jobs'], 'process', 'processes')}.")
    return book, warnings


def run_merge(folders, out, echo=print, canvas_assignment=None):
    book, warnings, statistics = merge(folders)
    warnings += write_gradebook(book, out, canvas_assignment)
    write_json(Path(out) / "run.json", statistics)
    for warning in warnings:
        echo(f"warning: {warning}")
    return book, warnings


def write_gradebook(book, out, canvas_assignment=None):
    """gradebook.json, gradebook.csv, report.html, summary.md, feedback/ and (when the
    roster gives LMS ids) canvas.csv in the folder out. Returns warnings."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stable = dict(book, rows=[{k: v for k, v in row.items() if k != "seconds"} for row in book["rows"]])
    write_json(out / "gradebook.json", stable)
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
