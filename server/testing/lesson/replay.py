"""Replaying a student's revisions on a throw-away database, with the lesson's rows.

The grading process owns the throw-away database. Each upgrade() or
downgrade() runs in the sandbox's worker process (Alembic's MigrationContext
and Operations there), so it works even when the student's env.py or app.py
is broken; the schema and rows after each step are read here, by the grader
itself, and only those readings decide a verdict. It never touches the
student's database:

1. upgrade one revision at a time from an empty database; after each one,
   record the schema (sqlalchemy.inspect) and the lesson's rows, then insert
   the lesson's rows into tables that just appeared (employees after the
   revision that creates them, departments after theirs);
2. right after revision 3, compare the student's models with the schema
   (Alembic's autogenerate compare_metadata);
3. if every upgrade ran, downgrade one revision at a time to the base,
   recording the same things.

Rows are followed as two data sets whatever the tables are called at each
point: the employees and the departments (in `department` or `departments`,
with the place in `address` or `location`). A step "loses" rows when a data
set is still there afterwards but rows or values are missing.

`replay(history, sandbox, metadata, backend, server_url) -> Replay`; checks.py
turns the recorded `Step`s into checkpoint results.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import sqlalchemy as sa

from .database import throwaway_database
from .operations import row_counts
from .pending import record
from .sandbox import ChildFailure
from .schema_data import columns_as_text

VERSION_TABLE = "alembic_version"
MODELS_REVISION = 3  # the database stays at revision 3 at the end of the lesson


@dataclass(frozen=True)
class DataSet:
    """Rows the lesson adds, wherever the schema keeps them at each point."""

    name: str
    tables: Tuple[str, ...]
    value_columns: Tuple[str, ...]  # the third column, by its possible names
    rows: Tuple[Tuple[int, str, object], ...]

    def locate(self, schema):
        """(table, value column) holding this data set in `schema`, or None."""
        for table in self.tables:
            columns = schema.get(table)
            if columns is None or "id" not in columns or "name" not in columns:
                continue
            for value_column in self.value_columns:
                if value_column in columns:
                    return table, value_column
        return None


EMPLOYEES = DataSet(
    "employees", ("employees",), ("salary",),
    ((1, "Kai Uri", 89000), (2, "Alena Lee", 125000)),
)
DEPARTMENTS = DataSet(
    "departments", ("departments", "department"), ("location", "address"),
    ((1, "Payroll", "Building A, 4th Floor"), (2, "Human Resources", "Building C, 1st Floor")),
)
DATA_SETS = (EMPLOYEES, DEPARTMENTS)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "integer", "string" or the type's name
    nullable: bool
    primary_key: bool
    type: object = None  # the reflected SQLAlchemy type


Schema = Dict[str, Dict[str, Column]]  # table -> column name -> Column


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

    def upgrade(self, position):
        return next((s for s in self.upgrades if s.position == position), None)

    @property
    def all_upgrades_ran(self):
        return all(step.ran for step in self.upgrades)


def inspect_schema(connection):
    inspector = sa.inspect(connection)
    schema = {}
    for table in inspector.get_table_names():
        if table == VERSION_TABLE:
            continue
        primary_key = set(inspector.get_pk_constraint(table).get("constrained_columns") or ())
        columns = {}
        for info in inspector.get_columns(table):
            columns[info["name"]] = Column(
                info["name"], _kind(info["type"]), bool(info.get("nullable", True)),
                info["name"] in primary_key, info["type"],
            )
        schema[table] = columns
    return schema


def _kind(column_type):
    if isinstance(column_type, sa.Integer):
        return "integer"
    if isinstance(column_type, sa.String):
        return "string"
    return type(column_type).__name__


def read_rows(connection, schema, data_set):
    """{id: (name, value)} for a data set, or None when the schema has no place for it."""
    located = data_set.locate(schema)
    if located is None:
        return None
    table, value_column = located
    rows = connection.execute(sa.text(
        f'SELECT id, name, "{value_column}" FROM "{table}" ORDER BY id'
    )).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def expected_rows(data_set):
    return {i: (name, value) for i, name, value in data_set.rows}


def insert_rows(connection, schema, data_set):
    table, value_column = data_set.locate(schema)
    target = sa.table(table, sa.column("id"), sa.column("name"), sa.column(value_column))
    connection.execute(
        target.insert(),
        [{"id": i, "name": name, value_column: value} for i, name, value in data_set.rows],
    )


def _losses(data_before, data_after, schema_before, schema_after):
    losses = []
    for data_set in DATA_SETS:
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


class _Runner:
    def __init__(self, connection, sandbox, url):
        self.connection = connection
        self.sandbox = sandbox
        self.url = url

    def row_counts(self, schema):
        return row_counts(self.connection, schema)

    def snapshot(self):
        schema = inspect_schema(self.connection)
        data = {}
        for data_set in DATA_SETS:
            rows = read_rows(self.connection, schema, data_set)
            if rows is not None:
                data[data_set.name] = rows
        self.connection.commit()
        return schema, data

    def seed(self, schema, data):
        """Put the lesson's rows into every data set the schema has room for.

        A data set that lost rows or values in the last step gets them back,
        so that every revision is judged on its own, with all the rows.
        """
        for data_set in DATA_SETS:
            rows = data.get(data_set.name)
            if rows is None or rows == expected_rows(data_set):
                continue
            table, _ = data_set.locate(schema)
            try:
                self.connection.execute(sa.table(table).delete())
                insert_rows(self.connection, schema, data_set)
                self.connection.commit()
            except sa.exc.SQLAlchemyError:
                self.connection.rollback()  # the schema is wrong; the checks say so

    def run(self, revision, direction, position):
        schema, data = self.snapshot()
        step = Step(direction, position, revision, before=schema, row_counts_before=self.row_counts(schema))
        self.connection.commit()  # no lock of ours may stand in the worker's way
        if not revision.loaded:
            step.error = revision.load_error or f"{revision.rel} cannot be loaded."
            return step
        path = str(self.sandbox.private(revision.path))
        try:
            answer = self.sandbox.request("run", path=path, direction=direction, url=self.url)
        except ChildFailure as failure:
            step.error, step.stopped = f"{direction}() {failure}.", True
            return step
        step.error = answer.get("error")
        step.statements = [str(line) for line in (answer.get("result") or {}).get("statements", [])]
        if answer.get("fatal"):  # recording would only run into the same exit or exhaustion
            step.stopped = True
            return step
        self.describe(step)
        if step.error:
            return step
        step.after, data_after = self.snapshot()
        step.row_counts_after = self.row_counts(step.after)
        self.connection.commit()
        step.losses = _losses(data, data_after, schema, step.after)
        step.rows_after = data_after
        self.seed(step.after, data_after)
        return step

    def describe(self, step):
        """What the function does and risks, as the worker records it (wording only)."""
        columns = columns_as_text({table: {name: column.type for name, column in cols.items()}
                                   for table, cols in step.before.items()})
        recording = record(self.sandbox, step.revision, step.direction, self.connection.dialect.name,
                           step.row_counts_before, columns)
        step.does, step.record_problem, step.risks = recording.does, recording.problem, recording.risks


def replay(history, sandbox, metadata=None, backend="sqlite", server_url=None):
    """Run the chain up and down on a throw-away database; see the module docstring.
    `metadata` is the models' MetaData, or a function that returns it when it is needed."""
    result = Replay()
    chain = history.chain
    if not chain:
        return result
    try:
        with throwaway_database(backend, server_url=server_url) as url:
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            if backend == "sqlite":
                sa.event.listen(engine, "connect", _fast_sqlite)
            try:
                with engine.connect() as connection:
                    _replay(_Runner(connection, sandbox, url), chain, metadata, result)
            finally:
                engine.dispose()
    except (sa.exc.SQLAlchemyError, ImportError, OSError) as error:  # the server, not the student
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        result.error = f"The {backend} database for the replay could not be used: {first_line}"
    return result


def _fast_sqlite(dbapi_connection, connection_record):
    # A scratch file thrown away afterwards: no need to wait for the disk.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = OFF")
    cursor.close()


def _replay(runner, chain, metadata, result):
    for position, revision in enumerate(chain, start=1):
        step = runner.run(revision, "upgrade", position)
        result.upgrades.append(step)
        if not step.ran:
            return
        if position == MODELS_REVISION:
            models = metadata() if callable(metadata) else metadata  # it may have been loading until now
            if models is not None:
                result.models_diff, result.models_code, result.models_error = compare_models(runner.connection, models)
    for position in range(len(chain), 0, -1):
        step = runner.run(chain[position - 1], "downgrade", position)
        result.downgrades.append(step)
        if not step.ran:
            return


def compare_models(connection, metadata):
    """Alembic autogenerate's differences between the models and the database:
    (diff, the upgrade code `flask db migrate` would write, error)."""
    from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
    from alembic.runtime.migration import MigrationContext

    try:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
        code = ""
        if diff:
            upgrade_ops = produce_migrations(context, metadata).upgrade_ops
            code = render_python_code(upgrade_ops).replace("# ### commands auto generated by Alembic - please adjust! ###", "")
            code = "\n".join(line for line in code.splitlines() if line.strip() and "end Alembic commands" not in line)
        connection.commit()
        return diff, code, None
    except Exception as error:  # odd model definitions
        connection.rollback()
        return None, "", f"{type(error).__name__}: {error}"
