"""The lesson as the reference walkthrough builds it, for the project's tests.

reference_solution(request, backend) performs the README once per backend
and test run, checks the database after every step against the lesson's
expected schema, rows and alembic_version, and keeps a snapshot of the
checkout (and database) after each step. copy_reference(request, build,
dest, step=5) gives a test its own copy of any of those states to grade,
break or continue, so no test has to redo the lesson from the start.
further_reference and legacy_reference continue it with the optional steps
6-9 and 10, also once per backend and test run.

Under pytest-xdist the workers share one build per backend: the first worker
to ask builds it in the run's common temporary folder, holding a lock, and
the others wait for it and read it from there (same files, same revision
ids). Its PostgreSQL databases are dropped by the main process once every
worker is done (drop_shared_databases, from conftest.py). shared_build
shares any other build the same way (the lesson walk's detours), and
shared_by_content one result per distinct submission (a grade that several
tests read).
"""
import contextlib
import copy
import hashlib
import os
import pickle
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from testing.databases.database import normalize_url, postgres_server_url, sqlite_url
from testing.databases.leftovers import database_name
from testing.lesson.checkpoints import LESSON

try:
    import fcntl
except ImportError:  # Windows: each process builds its own
    fcntl = None
from testing.maintainers.walkthrough import (
    FURTHER_LAST_STEP, LAST_STEP, WalkthroughResult, copy_starter, run_walkthrough,
)

# The rows the README adds in steps 1 and 2.
EMPLOYEES = [
    {"id": 1, "name": "Kai Uri", "salary": 89000},
    {"id": 2, "name": "Alena Lee", "salary": 125000},
]
DEPARTMENTS = [
    {"id": 1, "name": "Payroll", "address": "Building A, 4th Floor"},
    {"id": 2, "name": "Human Resources", "address": "Building C, 1st Floor"},
]


# --- what the database holds after each step ---------------------------------


def expected_schema(step):
    """{table: {column: (type class, nullable)}} after a step, alembic_version aside."""
    employees = {"id": (sa.Integer, False), "name": (sa.String, False), "salary": (sa.Integer, True)}
    if step == 1:
        return {"employees": employees}
    table = "department" if step == 2 else "departments"
    place = "location" if step == 4 else "address"
    return {"employees": employees, table: {"id": (sa.Integer, False), "name": (sa.String, False), place: (sa.String, True)}}


def expected_rows(step):
    """{table: rows as dicts ordered by id} after a step."""
    rows = {"employees": EMPLOYEES}
    if step >= 2:
        table = "department" if step == 2 else "departments"
        place = "location" if step == 4 else "address"
        rows[table] = [{"id": row["id"], "name": row["name"], place: row["address"]} for row in DEPARTMENTS]
    return rows


def expected_revision(step, revisions):
    """The revision the database is at after a step: the newest, except that
    step 5 goes back to revision 3."""
    return revisions[2] if step == LAST_STEP else revisions[step - 1]


@dataclass
class DatabaseState:
    tables: Dict[str, Dict[str, tuple]]  # table -> {column: (SQLAlchemy type, nullable)}
    versions: List[str]  # the rows of alembic_version
    rows: Dict[str, List[dict]]  # table -> rows ordered by id (alembic_version aside)


def database_state(url):
    """Read the schema, alembic_version and every row of a database."""
    engine = sa.create_engine(normalize_url(url))
    try:
        inspector = sa.inspect(engine)
        tables = {
            table: {column["name"]: (column["type"], column["nullable"]) for column in inspector.get_columns(table)}
            for table in inspector.get_table_names()
        }
        rows = {}
        versions = []
        with engine.connect() as connection:
            for table, columns in tables.items():
                selectable = sa.table(table, *[sa.column(name) for name in columns])
                if table == "alembic_version":
                    versions = sorted(connection.execute(sa.select(selectable.c.version_num)).scalars())
                    continue
                order = [selectable.c.id] if "id" in columns else []
                rows[table] = [dict(row) for row in connection.execute(sa.select(selectable).order_by(*order)).mappings()]
        return DatabaseState(tables, versions, rows)
    finally:
        engine.dispose()


class StateMismatch(AssertionError):
    """The database is not in the state the lesson expects after a step."""


def state_problems(state, step, revisions):
    """Every way the state differs from the lesson's state after the step."""
    problems = []
    expected = expected_schema(step)
    if "alembic_version" not in state.tables:
        problems.append("no alembic_version table")
    actual_tables = set(state.tables) - {"alembic_version"}
    for table in sorted(set(expected) - actual_tables):
        problems.append(f"table {table} is missing")
    for table in sorted(actual_tables - set(expected)):
        problems.append(f"unexpected table {table}")
    for table in sorted(set(expected) & actual_tables):
        columns, wanted = state.tables[table], expected[table]
        for column in sorted(set(wanted) - set(columns)):
            problems.append(f"{table}.{column} is missing")
        for column in sorted(set(columns) - set(wanted)):
            problems.append(f"unexpected column {table}.{column}")
        for column in sorted(set(wanted) & set(columns)):
            (type_, nullable), (wanted_type, wanted_nullable) = columns[column], wanted[column]
            if not isinstance(type_, wanted_type):
                problems.append(f"{table}.{column} has type {type_!r}, expected a {wanted_type.__name__}")
            if nullable != wanted_nullable:
                problems.append(f"{table}.{column} is {'NULL' if nullable else 'NOT NULL'}, expected "
                                f"{'NULL' if wanted_nullable else 'NOT NULL'}")
    if len(revisions) < min(step, 4):
        problems.append(f"only {len(revisions)} revisions were generated by step {step}: {revisions}")
    elif state.versions != [expected_revision(step, revisions)]:
        problems.append(f"alembic_version holds {state.versions}, expected [{expected_revision(step, revisions)!r}]")
    for table, wanted_rows in expected_rows(step).items():
        found = state.rows.get(table)
        if found is not None and found != wanted_rows:
            lost = " (rows lost)" if len(found) < len(wanted_rows) else ""
            problems.append(f"{table}: found {len(found)} rows {found}, expected {wanted_rows}{lost}")
    return problems


def assert_state(state, step, revisions):
    problems = state_problems(state, step, revisions)
    if problems:
        raise StateMismatch(f"after step {step}: " + "; ".join(problems))


def assert_empty(state):
    """The state after `flask db downgrade base`: alembic_version, empty, only."""
    problems = []
    if set(state.tables) != {"alembic_version"}:
        problems.append(f"tables {sorted(state.tables)}, expected only alembic_version")
    if state.versions:
        problems.append(f"alembic_version holds {state.versions}, expected no row")
    if problems:
        raise StateMismatch("after downgrade to base: " + "; ".join(problems))


# --- the reference build -----------------------------------------------------


@dataclass
class Snapshot:
    """A checkout (and, on PostgreSQL, a database) as it was after one step."""

    step: int
    checkout: Path
    database_url: Optional[str]  # None: the checkout's own instance/app.db
    result: WalkthroughResult


@dataclass
class ReferenceBuild:
    backend: str
    checkout: Path  # the finished checkout (step 5)
    database_url: str  # its database
    result: WalkthroughResult
    states: Dict[int, DatabaseState] = field(default_factory=dict)  # checked state after each step
    snapshots: Dict[int, Snapshot] = field(default_factory=dict)

    @property
    def revisions(self):
        return self.result.revisions


@dataclass
class LessonCopy:
    checkout: Path
    database_url: str  # what the copy's app uses (also in server/.env on PostgreSQL)
    result: WalkthroughResult  # the walkthrough up to the copied step

    @property
    def server(self):
        return self.checkout / "server"


_BUILDS = pytest.StashKey[dict]()
SHARED_DATABASES = "reference-databases.txt"  # in the run's common folder: what the main process drops


def reference_solution(request, backend):
    """The finished reference checkout for a backend, built once per test run.

    request is the test's `request` fixture. A failed build fails every test
    that asks for it, with the same message, without being retried.
    """
    name, make = _reference(backend)
    return shared_build(request, name, f"the reference walkthrough on {backend}", make)


def _reference(backend):
    """The shared build's name and maker for a backend's reference."""
    return f"reference-{backend}", lambda root, keep: _build(root, backend, keep)


def shared_build(request, name, what, make):
    """make(root, keep) once per test run, shared by every xdist worker.

    root is a folder of the run's own for the build; keep(name) is told of every
    PostgreSQL database the build makes, dropped at the end of the run. What
    make returns must pickle. A failure fails every test that asks, saying
    what failed, without building again.
    """
    build = _build_once(request.config, name, make)
    if isinstance(build, str):
        pytest.fail(f"{what} failed: {build}", pytrace=False)
    return build


def _build_once(config, name, make):
    """The build, or why it failed, as this process first found it."""
    builds = config.stash.setdefault(_BUILDS, {})
    if name not in builds:
        try:
            builds[name] = _shared_build(config, name, make)
        except Exception as error:  # remembered, so one failure is not rebuilt per test
            builds[name] = f"{type(error).__name__}: {error}"
    return builds[name]


def prebuild_reference(config, backend):
    """Build the reference for a backend now, before any test asks (see conftest.py)."""
    _build_once(config, *_reference(backend))


def prebuild_further(config, backend):
    """Walk the optional steps 6-10 on a backend now, before any test asks (see conftest.py).
    A failed build is left for the tests that ask for it to report."""
    reference = _build_once(config, *_reference(backend))
    further = reference if isinstance(reference, str) else _build_once(config, *_further(backend, reference))
    if not isinstance(further, str):
        _build_once(config, *_legacy(backend, further))


def run_folder(config):
    """The temporary folder common to the whole run: every xdist worker's basetemp is inside it."""
    basetemp = config._tmp_path_factory.getbasetemp()
    return basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp


def _shared_build(config, name, make):
    """Build once for the run, or wait for the worker that builds and read its result."""
    if fcntl is None:
        stack = contextlib.ExitStack()
        config.add_cleanup(stack.close)
        root = config._tmp_path_factory.mktemp(name)
        return make(root, lambda database: stack.callback(_drop_postgres, database))
    folder = run_folder(config)
    root, saved = folder / name, folder / f"{name}.pickle"
    with open(folder / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not saved.is_file():
            try:
                found = make(root, lambda database: _note_database(folder, database))
            except Exception as error:
                found = f"{type(error).__name__}: {error}"
            saved.write_bytes(pickle.dumps(found))
    found = pickle.loads(saved.read_bytes())
    if isinstance(found, str):
        raise RuntimeError(found)
    return found


def shared_by_content(request, what, root, compute):
    """(checkout, compute(checkout)) once per run for each distinct content of the checkout at root.

    Tests that grade the same submission (the backends' copies, or another
    test file's) share one result: the key is `what` and a digest of root's
    files (see content_digest). compute is given a copy of root kept for the
    run, the checkout returned, so that paths in the result name a real
    checkout of that content; the result must pickle.
    """
    def make(folder, _keep):
        checkout = folder / "checkout"
        shutil.copytree(root, checkout, ignore=shutil.ignore_patterns("__pycache__"))
        return checkout, compute(checkout)

    return shared_build(request, f"{what}-{content_digest(root)}", what, make)


# The line `flask db migrate` writes with the time of the build: the same
# revision made a second later is the same submission.
CREATE_DATE = re.compile(rb"^Create Date: .*$", re.MULTILINE)


def content_digest(root):
    """A digest of every file below root (bytecode aside), each revision's Create Date left out."""
    digest = hashlib.blake2b(digest_size=16)
    root = Path(root)
    for directory, folders, names in os.walk(root):
        folders[:] = sorted(folder for folder in folders if folder != "__pycache__")
        for name in sorted(names):
            if name.endswith(".pyc"):
                continue
            path = Path(directory) / name
            data = path.read_bytes()
            if name.endswith(".py"):
                data = CREATE_DATE.sub(b"", data)
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


def _note_database(folder, name):
    with open(folder / SHARED_DATABASES, "a", encoding="utf-8") as names:
        names.write(name + "\n")


def drop_shared_databases(config):
    """Drop the PostgreSQL databases of the run's shared builds (at the end of the run: see
    last_worker_out)."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None or factory._basetemp is None:  # this run made no temporary folder, so no build
        return
    names = run_folder(config) / SHARED_DATABASES
    if names.is_file():
        for name in names.read_text(encoding="utf-8").split():
            _drop_postgres(name)
        names.unlink()


def last_worker_out(config, workers):
    """Whether this xdist worker is the last of the run's `workers` to finish (the main process
    loads no test's conftest.py, so it cannot be the one that cleans up)."""
    if fcntl is None:
        return False  # a worker's own builds are dropped with it (_shared_build)
    with open(run_folder(config) / "workers-finished.txt", "a+", encoding="utf-8") as finished:
        fcntl.flock(finished, fcntl.LOCK_EX)
        finished.write(config.workerinput["workerid"] + "\n")
        finished.flush()
        finished.seek(0)
        return len(finished.read().split()) >= workers


def _build(root, backend, keep):
    """The walkthrough in root/checkout, with a snapshot after each step;
    keep(name) is told of every PostgreSQL database made, to drop it later."""
    root.mkdir(parents=True, exist_ok=True)
    database_url = _create_postgres(keep) if backend == "postgresql" else None
    checkout = copy_starter(root / "checkout")
    states, snapshots = {}, {}

    def after_step(step, result):
        states[step] = database_state(result.database_url)
        assert_state(states[step], step, result.revisions)
        if step < LAST_STEP:
            snapshot = root / f"after-step-{step}"
            shutil.copytree(result.checkout, snapshot)
            url = _create_postgres(keep, template=database_url) if database_url else None
            snapshots[step] = Snapshot(step, snapshot, url, copy.deepcopy(result))

    result = run_walkthrough(checkout, database_url=database_url, report=lambda line: None, after_step=after_step)
    final = Snapshot(LAST_STEP, checkout, database_url, result)
    snapshots[LAST_STEP] = final
    for snapshot in snapshots.values():
        if snapshot.database_url:  # the checkout names its database, as a student's would
            _write_env(snapshot.checkout, snapshot.database_url)
    return ReferenceBuild(backend, checkout, result.database_url, result, states, snapshots)


# --- the optional steps 6-10 ---------------------------------------------------


def further_reference(request, backend):
    """The reference continued with README steps 6-9, walked once per run and backend.
    Its checkout is as pushed: no database and no .env. Its database_url is the walk's
    PostgreSQL database (None on SQLite), kept for the run."""
    name, make = _further(backend, reference_solution(request, backend))
    return shared_build(request, name, f"README steps 6-9 on {backend}", make)


def _further(backend, reference):
    """The shared build's name and maker for steps 6-9 on a backend."""
    return f"further-{backend}", lambda root, keep: _walk_steps_6_to_9(reference, root, keep)


def _walk_steps_6_to_9(reference, root, keep):
    walked = snapshot_of(reference.snapshots[LAST_STEP], root, keep)
    last = max(revision.step for revision in LESSON.further.revisions)
    walked.result = run_walkthrough(walked.checkout, stop_after=last, report=lambda line: None,
                                    database_url=walked.database_url, resume=walked.result)
    walked.step = walked.result.completed_step
    # Graded as pushed: no database and no .env.
    (walked.checkout / "server" / ".env").unlink(missing_ok=True)
    shutil.rmtree(walked.checkout / "server" / "instance", ignore_errors=True)
    return walked


@dataclass
class LegacyBuild:
    """The steps 6-9 reference after README step 10: its second database made and stamped at the head."""

    checkout: Path  # as pushed, plus server/legacy.env (and on SQLite the database, server/instance/legacy.db)
    legacy_url: Optional[str]  # PostgreSQL: the database legacy.env names, kept for the run (None on SQLite)
    result: WalkthroughResult


def legacy_reference(request, backend):
    """README step 10 walked once per run and backend on the steps 6-9 reference."""
    name, make = _legacy(backend, further_reference(request, backend))
    return shared_build(request, name, f"README step 10 on {backend}", make)


def _legacy(backend, further):
    """The shared build's name and maker for step 10 on a backend."""
    return f"legacy-{backend}", lambda root, keep: _walk_step_10(further, root, keep)


def _walk_step_10(further, root, keep):
    checkout = Path(root) / "checkout"
    shutil.copytree(further.checkout, checkout)
    legacy_url = _create_postgres(keep) if further.database_url else None  # SQLite: the env block's own file
    # Step 10 runs only `flask --env-file legacy.env ...`: the lesson's database_url just tells the backend.
    result = run_walkthrough(checkout, stop_after=FURTHER_LAST_STEP, report=lambda line: None, resume=further.result,
                             database_url=further.database_url, legacy_database_url=legacy_url)
    return LegacyBuild(checkout.resolve(), legacy_url, result)


def copy_legacy(request, build, dest):
    """A private copy of the step-10 reference. On SQLite its database travels with the files;
    on PostgreSQL the copy gets a clone, named in its legacy.env and dropped when the test ends."""
    shutil.copytree(build.checkout, dest)
    if build.legacy_url:
        _write_env(dest, clone_for_test(request, build.legacy_url), LESSON.further.legacy.env_file)
    return Path(dest)


def copy_reference(request, build, dest, step=LAST_STEP):
    """A private copy of the reference after `step` (see copy_snapshot)."""
    return copy_snapshot(request, build.snapshots[step], dest)


def copy_snapshot(request, snapshot, dest):
    """A private copy of a snapshot: files, and a database of its own (the
    SQLite file travels with the files; on PostgreSQL a clone, named in the
    copy's server/.env and dropped when the test ends)."""
    dest = Path(dest)
    shutil.copytree(snapshot.checkout, dest, dirs_exist_ok=True)
    if snapshot.database_url:
        url = clone_for_test(request, snapshot.database_url)
        _write_env(dest, url)
    else:
        url = sqlite_url(dest.resolve() / "server" / "instance" / "app.db")
    result = copy.deepcopy(snapshot.result)
    result.checkout = dest.resolve()
    result.database_url = url
    return LessonCopy(dest.resolve(), url, result)


def snapshot_of(snapshot, root, keep):
    """A lasting copy of a snapshot in root/checkout, to change and share as
    a build of its own (on PostgreSQL with its own database, kept by keep)."""
    checkout = Path(root) / "checkout"
    shutil.copytree(snapshot.checkout, checkout)
    url = _create_postgres(keep, template=snapshot.database_url) if snapshot.database_url else None
    if url:
        _write_env(checkout, url)
    result = copy.deepcopy(snapshot.result)
    result.checkout = checkout.resolve()
    result.database_url = url or sqlite_url(checkout.resolve() / "server" / "instance" / "app.db")
    return Snapshot(snapshot.step, checkout.resolve(), url, result)


def _write_env(checkout, url, env_file=".env"):
    """server/<env_file> naming the database at url, as a student's file names theirs."""
    (Path(checkout) / "server" / env_file).write_text(f"DATABASE_URL={url}\n", encoding="utf-8")


def clone_for_test(request, url):
    """A copy of the PostgreSQL database at url (CREATE DATABASE ... TEMPLATE), the test's own:
    dropped when the test ends."""
    return _create_postgres(lambda name: request.addfinalizer(lambda: _drop_postgres(name)), template=url)


def _create_postgres(keep, template=None):
    """A new PostgreSQL database, empty or a copy of `template` (a URL); keep(name) drops it later.
    It is named as the grader names its own (leftovers.py): one this run leaves behind, a
    killed worker's say, is dropped by the next grade's sweep once its process is gone."""
    name = database_name()
    copied = f' TEMPLATE "{make_url(normalize_url(template)).database}"' if template else ""
    admin = sa.create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(20):
            try:
                with admin.connect() as connection:
                    connection.execute(sa.text(f'CREATE DATABASE "{name}"{copied}'))
                break
            except sa.exc.OperationalError as error:
                # A flask command that just exited may still be disconnecting.
                if "being accessed by other users" not in str(error) or attempt == 19:
                    raise
                time.sleep(0.1)
    finally:
        admin.dispose()
    keep(name)
    return make_url(postgres_server_url()).set(database=name).render_as_string(hide_password=False)


def _drop_postgres(name):
    engine = sa.create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
