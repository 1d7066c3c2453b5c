"""Lesson states for the page's tests, made from the reference walkthrough."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from testing.maintainers.walkthrough import flask_environment

from ..maintainers.catalogue import Checkout
from .lesson_builds import copy_reference, database_state, reference_solution


def lesson_copy(request, backend, dest, step):
    """A private copy of the reference after `step` (1-5), with its own database."""
    return copy_reference(request, reference_solution(request, backend), dest, step=step)


def unfixed_step_3(request, backend, dest):
    """Step 2 done, then step 3's models.py edit and `flask db migrate`, the
    generated drop + create left as it is (not upgraded)."""
    copy = lesson_copy(request, backend, dest, step=2)
    Checkout(copy.checkout, copy.result.revisions).edit(
        "server/models.py", '__tablename__ = "department"', '__tablename__ = "departments"'
    )
    subprocess.run(
        [sys.executable, "-m", "flask", "db", "migrate", "-m", "rename department"],
        cwd=copy.server, env=flask_environment(), check=True, capture_output=True, timeout=120,
    )
    (new_file,) = [p for p in (copy.server / "migrations" / "versions").glob("*_rename_department.py")]
    return copy, new_file.name[:12]


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def database_snapshot(url):
    state = database_state(url)
    return state.tables.keys(), state.versions, state.rows


def big_sqlite_database(path, rows=100_000):
    """A SQLite file with a table of `rows` rows (and alembic_version), for paging."""
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
            connection.execute(sa.text("CREATE TABLE events (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, note VARCHAR)"))
            connection.execute(sa.text("CREATE INDEX ix_events_name ON events (name)"))
            connection.exec_driver_sql(
                "INSERT INTO events (id, name, note) VALUES (?, ?, ?)",
                [(i, f"event {i}", None if i % 10 == 0 else f"note {i}") for i in range(1, rows + 1)],
            )
    finally:
        engine.dispose()
    return f"sqlite:///{path}"


def without_database_url():
    return {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
