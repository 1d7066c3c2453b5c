"""The grader's own modules, compiled once and kept in the user's cache folder.

Grading writes nothing into the checkout, so there is no __pycache__ beside
the grader's files and every `pytest` would compile its modules again: about
50 ms of each grade. keep_compiled(package) keeps each module's compiled code
under the user's cache folder instead, known by its source's path, size and
modification time as Python's own .pyc files are. Libraries keep their own
__pycache__. The grading process and the workers' fork server install this;
each worker drops it (stop_keeping_compiled) before it is confined, as it may
read nothing outside its own folder and Python's.
"""
import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
from pathlib import Path


def user_cache_folder():
    """Where the grader keeps what it can make again (compiled code, the cohort's grades)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


class _CachedSourceLoader(importlib.machinery.SourceFileLoader):
    folder = user_cache_folder() / "lesson-grader" / "compiled"

    def get_code(self, fullname):
        source_path = self.get_filename(fullname)
        try:
            info = os.stat(source_path)
        except OSError:
            return super().get_code(fullname)
        stamp = (importlib.util.MAGIC_NUMBER + info.st_mtime_ns.to_bytes(8, "little")
                 + info.st_size.to_bytes(8, "little"))
        kept = self.folder / (hashlib.blake2b(os.fsencode(source_path), digest_size=16).hexdigest() + ".pyc")
        try:
            data = kept.read_bytes()
            if data.startswith(stamp):
                return marshal.loads(data[len(stamp):])
        except (OSError, ValueError, EOFError, TypeError):  # none yet, or damaged: compile again
            pass
        code = self.source_to_code(self.get_data(source_path), source_path)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = kept.with_name(f"{kept.name}.{os.getpid()}")
            partial.write_bytes(stamp + marshal.dumps(code))
            os.replace(partial, kept)  # whole or not at all, whoever reads it at the same time
        except OSError:  # a read-only home: compiled each time, as without this
            pass
        return code


class _Finder:
    """Finds the package's modules as Python does, loaded through the cache."""

    def __init__(self, package):
        self.prefix = package + "."

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(self.prefix):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _CachedSourceLoader(spec.loader.name, spec.loader.path)
        return spec


def keep_compiled(package):
    """Load the package's modules from the cache from now on (once per process). The finder
    goes just before Python's own, so that pytest's assertion rewriting still comes first."""
    if any(isinstance(finder, _Finder) and finder.prefix == package + "." for finder in sys.meta_path):
        return
    position = sys.meta_path.index(importlib.machinery.PathFinder) \
        if importlib.machinery.PathFinder in sys.meta_path else len(sys.meta_path)
    sys.meta_path.insert(position, _Finder(package))


def stop_keeping_compiled():
    """Load modules as Python does again, without the cache."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _Finder)]
