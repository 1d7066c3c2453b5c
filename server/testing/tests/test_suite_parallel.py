"""The suite's own plumbing: `pipenv run selftest` runs on every core
(pytest-xdist), and the "per backend" summary must count the same under
xdist as in one process. A small suite using this conftest runs in a
subprocess, once in one process and once on two workers.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testing.databases.database import postgres_unreachable_reason

SERVER = Path(__file__).resolve().parents[2]

SMALL_SUITE = '''
def test_on_both(backend):
    pass

def test_only_sqlite_passes(backend):
    assert backend == "sqlite"

def test_without_backend():
    pass
'''


def run_small_suite(folder, *options, **environ):
    (folder / "conftest.py").write_text("from testing.tests.conftest import *  # noqa: F401,F403\n", encoding="utf-8")
    (folder / "test_small.py").write_text(SMALL_SUITE, encoding="utf-8")
    env = {name: value for name, value in os.environ.items()
           if name not in ("CI", "LESSON_REQUIRE_POSTGRES", "LESSON_SKIP_POSTGRES")}
    env.update(PYTHONPATH=str(SERVER), **environ)
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *options], cwd=folder, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    return finished.stdout


def per_backend(output):
    return re.findall(r"^(?:sqlite|postgresql): .*$|^PostgreSQL was NOT tested.*$", output, re.MULTILINE)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "two workers"])
def test_per_backend_summary_counts_every_worker(tmp_path, workers):
    if postgres_unreachable_reason():
        pytest.skip("needs the PostgreSQL server (LESSON_POSTGRES_URL) for a failure on that backend")
    output = run_small_suite(tmp_path, *workers)
    assert per_backend(output) == [
        "sqlite: 2 passed, 0 failed, 0 skipped",
        "postgresql: 1 passed, 1 failed, 0 skipped",
    ], output
    if workers:
        assert "2 workers" in output, output


def test_postgres_left_out_on_purpose_is_said(tmp_path):
    output = run_small_suite(tmp_path, "-n", "2", "-rs", LESSON_SKIP_POSTGRES="1", CI="true")
    assert per_backend(output) == [
        "sqlite: 2 passed, 0 failed, 0 skipped",
        "postgresql: 0 passed, 0 failed, 2 skipped",
        "PostgreSQL was NOT tested: only SQLite results above.",
    ], output
    assert "LESSON_SKIP_POSTGRES=1 (no PostgreSQL server on this machine)" in output

