"""The submissions a cohort run grades: found in folders and rosters, and cloned.

    entries = discover(sources)       # one Entry per student, in a stable order
    fetch(entries, cache)             # git URLs cloned shallowly into the cache

SOURCES are checkout folders, folders of checkouts, or roster files (one git
URL or local path a line, optionally preceded by the student's name, or a
CSV roster with a header: name, source, id, email, lms_id, section). Two
submissions with one name are an error unless the roster's id or email tells
them apart. An unreachable URL becomes a row with status "unreachable". A
local folder that is a git repository is cloned too: its committed work
(HEAD) is graded, unless `working_tree` grades its files as they are.
"""
import csv
import hashlib
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..isolation import processes
from .cohort_gradebook import PEOPLE_COLUMNS, UNREACHABLE

CLONE_TIMEOUT = 120  # seconds for one `git clone --depth 1`


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
        run = processes.run(command, timeout, env=environment)
    except OSError as error:
        entry.problem = (UNREACHABLE, f"git could not run: {error}")
        return
    if run.timed_out:
        shutil.rmtree(fresh, ignore_errors=True)
        entry.problem = (UNREACHABLE, f"git clone took longer than {timeout} s (a huge repository?)")
        return
    if run.code != 0:
        shutil.rmtree(fresh, ignore_errors=True)
        lines = [line.strip() for line in run.stderr.splitlines() if line.strip()]
        fatal = [line for line in lines if line.startswith("fatal:")] or lines or [f"exit code {run.code}"]
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
    return processes.run(["git", "-C", str(path), "rev-parse", "HEAD"], timeout=30).stdout.strip() or None
