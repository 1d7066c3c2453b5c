"""Imported by the worker processes' fork server alone (sandbox.FORK_SERVER_PRELOAD): the
fork server becomes the subreaper of whatever a worker leaves when it ends by itself, so the
grading process finds those processes under it and ends them (sandbox.end_process_tree)."""
from .confinement import become_subreaper

become_subreaper()
