"""The cohort's cache: what a grade reads, hashed with the grader's version, so a rerun
only grades what changed.

    results = Results(cache, backend)
    key = results.key(checkout)      # raises TooLarge, or OSError when a file cannot be read
    results.get(key)                 # the record of an earlier grade, or None
    results.put(key, record)
"""
import hashlib
import os
import platform
from pathlib import Path

from ..compiled import user_cache_folder
from .cohort_gradebook import read_json, write_json

MAX_FILES = 2000  # what the grade reads (server/ without the grader's copy) must stay below these
MAX_BYTES = 50 * 1024 * 1024
GRADER_DIR = Path(__file__).resolve().parents[1]  # server/testing/: every package of the grader


class TooLarge(Exception):
    """A submission too large to be a lesson's: str() says why."""


class Results:
    """The records of finished grades, in the cache's results/ folder, by the key of what
    each grade read, the grader's version and the backend."""

    def __init__(self, cache, backend):
        self.folder = Path(cache) / "results"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.version = grader_version()
        self.backend = backend

    def key(self, root):
        files = graded_files(root)
        problem = size_problem(files)
        if problem:
            raise TooLarge(problem)
        digest = content_hash(root, files)
        return hashlib.sha256(f"{self.version} {self.backend} {digest}".encode()).hexdigest()

    def get(self, key):
        path = self.folder / f"{key}.json"
        return read_json(path) if path.is_file() else None

    def put(self, key, record):
        write_json(self.folder / f"{key}.json", record)


def default_cache():
    return user_cache_folder() / "lesson-cohort"


def grader_version():
    """A hash of the grader's code and the versions it runs with: a new grader regrades."""
    import alembic
    import sqlalchemy

    digest = hashlib.sha256()
    for path in sorted(GRADER_DIR.rglob("*.py")):
        name = path.relative_to(GRADER_DIR).as_posix()
        if not name.startswith("tests/"):
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
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
