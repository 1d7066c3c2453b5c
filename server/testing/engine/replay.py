"""Replaying a student's revisions on a throw-away database, with the lesson's rows.

The grading process owns the throw-away database. Each upgrade() or
downgrade() runs in the sandbox's worker process (Alembic's MigrationContext
and Operations there), so it works even when the student's env.py or app.py
is broken; the schema and rows after each step are read here, by the grader
itself, and only those readings decide a verdict. It never touches the
student's database:

1. upgrade one revision at a time from an empty database; after each one,
   record the schema (reading.inspect_schema) and the lesson's rows, then
   insert the lesson's rows into tables that just appeared (each data set
   after the revision that creates its table);
2. right after the lesson's end revision, compare the student's models with
   the schema (Alembic's autogenerate compare_metadata); on SQLite, when
   models.py is still loading then, a copy of the database in memory waits
   for it, and the replay goes on;
3. if every upgrade ran, downgrade one revision at a time to the base,
   recording the same things.

Rows are followed as the lesson's data sets (definition.DataSet) whatever
their tables and columns are called at each point. A step "loses" rows when
a data set is still there afterwards but rows or values are missing.

`replay(history, sandbox, lesson, metadata, backend, server_url) -> Replay`:
plain evidence for judge.py.
"""
import sqlite3
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import sqlalchemy as sa

from ..databases.database import database_size, end_other_sessions
from ..databases.reading import NO_DEADLINE, Deadline, Schema, TooLong, column_types, compare_models, inspect_schema, row_counts, tables_read
from ..databases.schema_data import columns_as_text
from ..isolation.database_gate import replay_database
from ..isolation.sandbox import ChildFailure
from ..lesson.feedback import error_line
from .pending import record


@dataclass
class Loss:
    """Rows or values of a data set that a step did not keep."""

    data_set: str
    table_before: str
    table_after: str
    column_before: str
    column_after: str
    rows_before: int
    missing_rows: int  # rows gone
    changed_values: int  # rows still there whose values changed (e.g. NULL now)


@dataclass
class Step:
    """One revision run in one direction."""

    direction: str  # "upgrade" or "downgrade"
    position: int  # the revision's place in the chain, from 1
    revision: object  # submission.RevisionFile
    before: Schema
    row_counts_before: Dict[str, int] = field(default_factory=dict)
    after: Optional[Schema] = None  # None when the step raised
    error: Optional[str] = None
    statements: List[str] = field(default_factory=list)
    losses: List[Loss] = field(default_factory=list)
    rows_after: Dict[str, Dict[int, tuple]] = field(default_factory=dict)
    row_counts_after: Dict[str, int] = field(default_factory=dict)
    # What the function does, recorded by the worker: wording only, never a verdict.
    does: List[str] = field(default_factory=list)
    record_problem: Optional[str] = None
    risks: list = field(default_factory=list)  # operations.Risk
    stopped: bool = False  # the worker process did not answer (time, exit, memory)
    # For a lesson's optional steps (going_further.py), after an upgrade that ran:
    values_after: Dict[str, Dict[int, object]] = field(default_factory=dict)  # "table.column" -> {id: value}
    indexes_after: Dict[str, list] = field(default_factory=dict)  # table -> [[column, ...] of each index]

    @property
    def ran(self):
        return self.error is None


@dataclass
class Replay:
    upgrades: List[Step] = field(default_factory=list)
    downgrades: List[Step] = field(default_factory=list)
    models_diff: Optional[list] = None  # compare_metadata's result at revision 3
    models_code: str = ""  # what `flask db migrate` would write for those differences
    models_error: Optional[str] = None
    error: Optional[str] = None  # the replay itself could not run
    head_models: Optional[tuple] = None  # (diff, code, error) at the head, when the chain goes beyond the lesson

    def upgrade(self, position):
        return next((s for s in self.upgrades if s.position == position), None)

    @property
    def all_upgrades_ran(self):
        return all(step.ran for step in self.upgrades)


def read_rows(connection, schema, data_set):
    """{id: (name, value)} of the lesson's rows of a data set (looked up by key: rows a
    submission adds are never loaded), or None when the schema has no place for it."""
    located = data_set.locate(schema)
    if located is None:
        return None
    table, value_column = located
    target = sa.table(table, sa.column("id"), sa.column("name"), sa.column(value_column))
    keys = list(data_set.expected_rows())
    rows = connection.execute(sa.select(target.c.id, target.c.name, target.c[value_column])
                              .where(target.c.id.in_(keys)).order_by(target.c.id)).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def restore_rows(connection, schema, data_set, rows):
    """Put the lesson's rows of a data set back, given those it holds ({id: (name, value)}):
    rows kept are updated in place, so that a table that gained a NOT NULL column since
    keeps its other values; missing ones are inserted. Rows the submission added stay."""
    table, value_column = data_set.locate(schema)
    target = sa.table(table, sa.column("id"), sa.column("name"), sa.column(value_column))
    expected = data_set.expected_rows()
    for i, (name, value) in expected.items():
        if i not in rows:
            connection.execute(target.insert().values({"id": i, "name": name, value_column: value}))
        elif rows[i] != (name, value):
            connection.execute(target.update().where(target.c.id == i).values({"name": name, value_column: value}))


def _losses(data_sets, data_before, data_after, schema_before, schema_after):
    losses = []
    for data_set in data_sets:
        before = data_before.get(data_set.name)
        after = data_after.get(data_set.name)
        if not before or after is None:
            continue  # nothing to keep, or the step removed the table/column on purpose
        missing = [i for i in before if i not in after]
        changed = [i for i in before if i in after and after[i] != before[i]]
        if missing or changed:
            table_before, column_before = data_set.locate(schema_before)
            table_after, column_after = data_set.locate(schema_after)
            losses.append(Loss(
                data_set.name, table_before, table_after, column_before, column_after,
                len(before), len(missing), len(changed),
            ))
    return losses


MAX_COPIED_BYTES = 4 * 1024 * 1024  # a lesson's database at its end revision: a few kilobytes


class _Runner:
    def __init__(self, connection, sandbox, url, lesson):
        self.connection = connection
        self.sandbox = sandbox
        self.url = url  # the worker's: its own role's, through the sandbox's database gate
        self.lesson = lesson
        self.data_sets = lesson.data_sets
        self.deadline = NO_DEADLINE
        self.known = None  # (schema, data, row counts) the last step left, when nothing has changed since

    def row_counts(self, schema):
        return row_counts(self.connection, tables_read(schema), self.deadline)

    def snapshot(self):
        schema = inspect_schema(self.connection, self.lesson.table_names, self.deadline)
        data = {}
        for data_set in self.data_sets:
            rows = read_rows(self.connection, schema, data_set)
            if rows is not None:
                data[data_set.name] = rows
        self.connection.commit()
        return schema, data

    def seed(self, schema, data):
        """Put the lesson's rows into every data set the schema has room for.

        A data set that lost rows or values in the last step gets them back,
        so that every revision is judged on its own, with all the rows.
        Whether it wrote anything.
        """
        wrote = False
        for data_set in self.data_sets:
            rows = data.get(data_set.name)
            if rows is None or rows == data_set.expected_rows():
                continue
            wrote = True
            try:
                restore_rows(self.connection, schema, data_set, rows)
                self.connection.commit()
            except sa.exc.SQLAlchemyError:
                self.connection.rollback()  # the schema is wrong; the checks say so
        return wrote

    def run(self, revision, direction, position):
        """One step; reading what it leaves has the time limit too (a Deadline per step)."""
        self.deadline = Deadline(self.sandbox.limits.seconds).bind(self.connection)
        step = Step(direction, position, revision, before={})
        try:
            return self._run(step)
        except TooLong as too_long:
            step.error, step.stopped = f"{direction}() left a database too big to read: {too_long}.", True
        except sa.exc.DBAPIError as error:
            if not (self.deadline.passed() or _cancelled(error)):
                raise
            step.error = f"{direction}() left a database too big to read: reading it took longer than the " \
                         f"time limit ({self.deadline.seconds:g} s)."
            step.stopped = True
        self.connection.rollback()
        return step

    def _run(self, step):
        direction, revision = step.direction, step.revision
        known, self.known = self.known, None
        if known is not None:  # read after the last step, and nothing has written since
            schema, data, step.row_counts_before = known
        else:
            schema, data = self.snapshot()
            step.row_counts_before = self.row_counts(schema)
        step.before = schema
        self.connection.commit()  # no lock of ours may stand in the worker's way
        if not revision.loaded:
            step.error = revision.load_error or f"{revision.rel} cannot be loaded."
            return step
        path = str(self.sandbox.private(revision.path))
        try:
            answer = self.sandbox.request("run", path=path, direction=direction, url=self.url)
        except ChildFailure as failure:
            step.error, step.stopped = f"{direction}() {failure}.", True
            if self.connection.dialect.name == "postgresql":
                end_other_sessions(self.connection)
            return step
        step.error = answer.get("error")
        step.statements = [str(line) for line in (answer.get("result") or {}).get("statements", [])]
        if answer.get("fatal"):  # recording would only run into the same exit or exhaustion
            step.stopped = True
            return step
        self.describe(step)
        if step.error:
            return step
        self.deadline = Deadline(self.sandbox.limits.seconds).bind(self.connection)
        step.after, data_after = self.snapshot()
        step.row_counts_after = self.row_counts(step.after)
        self.connection.commit()
        step.losses = _losses(self.data_sets, data, data_after, schema, step.after)
        step.rows_after = data_after
        if direction == "upgrade" and self.lesson.further is not None and step.position > self.lesson.count:
            self.read_further(step)  # only the optional revisions are judged on these
        if not self.seed(step.after, data_after):
            self.known = step.after, data_after, step.row_counts_after
        return step

    def read_further(self, step):
        """The values and indexes the lesson's optional steps are judged on (going_further.py)."""
        watched = self.lesson.further.watched
        for table, column in watched:
            if column in step.after.get(table, {}) and "id" in step.after[table]:
                target = sa.table(table, sa.column("id"), sa.column(column))
                rows = self.connection.execute(sa.select(target.c.id, target.c[column]).order_by(target.c.id))
                step.values_after[f"{table}.{column}"] = {row[0]: row[1] for row in rows.fetchmany(100)}
        inspector = sa.inspect(self.connection)
        for table in dict.fromkeys(table for table, _ in watched):
            if table in step.after:
                step.indexes_after[table] = [index["column_names"] for index in inspector.get_indexes(table)]
        self.connection.commit()

    def describe(self, step):
        """What the function does and risks, as the worker records it (wording only)."""
        columns = columns_as_text(column_types(step.before))
        recording = record(self.sandbox, step.revision, step.direction, self.connection.dialect.name,
                           step.row_counts_before, columns)
        step.does, step.record_problem, step.risks = recording.does, recording.problem, recording.risks


def replay(history, sandbox, lesson, metadata=None, backend="sqlite", server_url=None):
    """Run the chain up and down on a throw-away database with the lesson's rows; see
    the module docstring. `metadata` is the models' MetaData, or a function that
    returns it when it is needed (at the lesson's end revision); such a function may
    say whether it would return at once (`metadata.ready()`)."""
    result = Replay()
    chain = history.chain
    if not chain:
        return result
    try:
        with replay_database(backend, server_url, sandbox.folder, sandbox.database_gate,
                             limits=sandbox.limits) as (url, worker_url):
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            if backend == "sqlite":
                sa.event.listen(engine, "connect", _fast_sqlite)
            try:
                with engine.connect() as connection:
                    if backend == "postgresql":  # on SQLite, the file is in the sandbox's folder
                        sandbox.database_size = lambda: database_size(connection)
                    runner = _Runner(connection, sandbox, worker_url, lesson)
                    head = len(chain) if lesson.further is not None and len(chain) > lesson.count else None
                    _replay(runner, chain, lesson.end.revision, metadata, result, head)
            finally:
                sandbox.database_size = None
                engine.dispose()
    except (sa.exc.SQLAlchemyError, ImportError, OSError) as error:  # the server, not the student
        result.error = f"The {backend} database for the replay could not be used: {error_line(error)}"
    return result


def _cancelled(error):
    """PostgreSQL stopped the statement (statement_timeout, database.py)."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) == "57014"


def _fast_sqlite(dbapi_connection, connection_record):
    # A scratch file thrown away afterwards: no need to wait for the disk.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = OFF")
    cursor.close()


def _replay(runner, chain, end_revision, metadata, result, head=None):
    """`head`: also compare models.py at this position (a chain with a lesson's optional steps)."""
    kept = {}  # position -> an engine on a copy of the database there, compared once models.py has loaded
    try:
        _up_and_down(runner, chain, end_revision, metadata, result, head, kept)
        for position, copy in kept.items():
            with copy.connect() as connection:
                _compare_models(connection, position, metadata, result, end_revision, head)
    finally:
        for copy in kept.values():
            copy.dispose()


def _up_and_down(runner, chain, end_revision, metadata, result, head, kept):
    for position, revision in enumerate(chain, start=1):
        step = runner.run(revision, "upgrade", position)
        result.upgrades.append(step)
        if not step.ran:
            return
        if position in (end_revision, head):
            copy = None if getattr(metadata, "ready", lambda: True)() else _copy_in_memory(runner.connection)
            if copy is not None:  # models.py is still loading: the replay need not wait for it
                kept[position] = copy
            else:
                _compare_models(runner.connection, position, metadata, result, end_revision, head)
    for position in range(len(chain), 0, -1):
        step = runner.run(chain[position - 1], "downgrade", position)
        result.downgrades.append(step)
        if not step.ran:
            return


def _compare_models(connection, position, metadata, result, end_revision, head):
    models = metadata() if callable(metadata) else metadata  # it may have been loading until now
    if models is None:
        return
    compared = compare_models(connection, models)
    if position == end_revision:
        result.models_diff, result.models_code, result.models_error = compared
    if position == head:
        result.head_models = compared


def _copy_in_memory(connection):
    """An engine on a copy of a small SQLite database, in this process's memory (where no
    student code reaches), or None: PostgreSQL, a big database, or a copy that could not be
    made (the step's deadline, which stops SQLite's statements, may have passed meanwhile)."""
    if connection.dialect.name != "sqlite":
        return None
    source = connection.connection.driver_connection
    copy = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        size = source.execute("PRAGMA page_count").fetchone()[0] * source.execute("PRAGMA page_size").fetchone()[0]
        if size > MAX_COPIED_BYTES:
            copy.close()
            return None
        connection.commit()
        source.backup(copy)
    except sqlite3.Error:
        copy.close()
        return None
    return sa.create_engine("sqlite://", creator=lambda: copy, poolclass=sa.pool.StaticPool)

