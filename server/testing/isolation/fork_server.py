"""Imported by the worker processes' fork server alone (sandbox.FORK_SERVER_PRELOAD).

- The fork server becomes the subreaper of whatever a worker leaves when it ends by
  itself, so the grading process finds those processes under it and ends them
  (sandbox.end_process_tree).
- It runs the grading process's main script (the `pytest` or `flask` command) once,
  as multiprocessing means to when "__main__" is preloaded, which it does not
  (CPython gh-126631): else every worker forked from here would run it again, and
  import pytest or Flask, before it could start.
- Its preloads of the grader's modules come compiled from the user's cache (compiled.py),
  as in the grading process; each worker drops that finder before it is confined.
"""
import os
from multiprocessing import spawn

from ..compiled import keep_compiled

keep_compiled("testing")  # before the modules below and the preloads after this one

from . import FORK_SERVER_MAIN  # noqa: E402
from .confinement import become_subreaper  # noqa: E402

become_subreaper()
if os.environ.get(FORK_SERVER_MAIN):
    try:
        spawn.import_main_path(os.environ.pop(FORK_SERVER_MAIN))
    except (Exception, SystemExit):  # then each worker runs it, as it would without this
        pass
