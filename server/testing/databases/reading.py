"""One reader of a database's schema and rows, for the replay's throw-away
databases and for the student's own database alike.

- `inspect_schema(connection, wanted)`: {table: {column: Column}} with
  SQLAlchemy's inspector, alembic_version left out. Whatever a submission
  creates, it reads the lesson's tables and at most MAX_TABLES_READ others
  in full; the rest are there by name only, with no columns.
- `read_database(url, lesson, metadata=None, root=None)`: the student's
  database, opened read-only (SQLite in read-only mode, PostgreSQL in a
  read-only transaction): the revisions alembic_version holds, the schema,
  the rows of every table, the empty values the lesson's end state must not
  have and, given models.py's MetaData, what Alembic's autogenerate finds
  between the two. Nothing is ever written.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ..lesson.feedback import relative

VERSION_TABLE = "alembic_version"
MAX_TABLES_READ = 50  # tables read column by column; the lesson has a handful


class TooLong(Exception):
    """Reading a database took longer than the time limit (what it holds is too much to read)."""


class Deadline:
    """The moment a reading must be done by. `check()` raises TooLong after it; on SQLite,
    `bind(connection)` also stops a statement that runs past it."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds if seconds else None

    def passed(self):
        return self.end is not None and time.monotonic() > self.end

    def check(self):
        if self.passed():
            raise TooLong(f"reading it took longer than the time limit ({self.seconds:g} s)")

    def bind(self, connection):
        """Make SQLite give up a statement once the deadline has passed (PostgreSQL has
        statement_timeout on the throw-away databases, database.py)."""
        raw = connection.connection.driver_connection
        if hasattr(raw, "set_progress_handler"):
            raw.set_progress_handler(lambda: 1 if self.passed() else 0, 10_000)
        return self


NO_DEADLINE = Deadline(None)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "integer", "string" or the type's name
    nullable: bool
    primary_key: bool
    type: str = ""  # the reflected SQLAlchemy type, as its repr ("VARCHAR()")


@dataclass(frozen=True)
class Difference:
    """One entry of Alembic's compare_metadata() result, as plain data."""

    kind: str  # Alembic's: add_table, remove_table, add_column, remove_column, modify_nullable, ...
    table: Optional[str] = None
    column: Optional[str] = None
    existing: Optional[str] = None  # modify_*: what the database has (a repr)
    new: Optional[str] = None  # modify_*: what models.py says (a repr)
    detail: str = ""  # the rest of Alembic's entry, as text

    @classmethod
    def of(cls, item):
        kind, rest = item[0], item[1:]
        if kind in ("add_table", "remove_table"):
            return cls(kind, rest[0].name, detail=repr(rest))
        if kind in ("add_column", "remove_column"):
            return cls(kind, rest[1], rest[2].name, detail=repr(rest))
        if kind.startswith("modify_"):
            existing, new = (repr(rest[4]), repr(rest[5])) if len(rest) >= 6 else (None, None)
            return cls(kind, rest[1], rest[2], existing, new, detail=repr(rest))
        return cls(kind, detail=repr(rest))


def differences_of(diff):
    """compare_metadata()'s result as plain data: each entry a tuple of Differences
    (Alembic wraps the changes of one column in a list)."""
    return [tuple(Difference.of(inner) for inner in item) if isinstance(item, list) else (Difference.of(item),)
            for item in diff]


Schema = Dict[str, Dict[str, Column]]  # table -> column name -> Column


def inspect_schema(connection, wanted=(), deadline=NO_DEADLINE):
    """See the module docstring: `wanted` are the tables read first (the lesson's)."""
    inspector = sa.inspect(connection)
    names = [table for table in inspector.get_table_names() if table != VERSION_TABLE]
    read = tables_to_read(names, wanted)
    # All tables' columns in one query and their keys in another (PostgreSQL; SQLite asks
    # table by table all the same), instead of two queries per table.
    deadline.check()
    columns = inspector.get_multi_columns(filter_names=list(read)) if read else {}
    deadline.check()
    keys = inspector.get_multi_pk_constraint(filter_names=list(read)) if read else {}
    schema = {}
    for table in names:
        if table not in read:
            schema[table] = {}  # there, but not read: no lesson's table, and one too many to read
            continue
        primary_key = set(keys.get((None, table), {}).get("constrained_columns") or ())
        schema[table] = {
            info["name"]: Column(info["name"], _kind(info["type"]), bool(info.get("nullable", True)),
                                 info["name"] in primary_key, repr(info["type"]))
            for info in columns.get((None, table), ())
        }
    return schema


def tables_to_read(names, wanted):
    """The tables read in full: every one named in `wanted`, and the first MAX_TABLES_READ
    others by name (the same ones before and after a step that leaves them alone)."""
    others = sorted(name for name in names if name not in wanted)[:MAX_TABLES_READ]
    return {name for name in names if name in wanted} | set(others)


def _kind(column_type):
    if isinstance(column_type, sa.Integer):
        return "integer"
    if isinstance(column_type, sa.String):
        return "string"
    return type(column_type).__name__


def row_counts(connection, tables, deadline=NO_DEADLINE):
    """{table: number of rows} for the named tables (COUNT(*), no row loaded)."""
    counts = {}
    for table in tables:
        deadline.check()
        counts[table] = connection.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()
    return counts


def tables_read(schema):
    """The tables of a schema from inspect_schema that were read in full."""
    return [table for table, columns in schema.items() if columns]


def column_types(schema):
    """{table: {column: type repr}}, as the data-loss analysis takes them across to the worker."""
    return {table: {name: column.type for name, column in columns.items()} for table, columns in schema.items()}


@dataclass
class DatabaseReading:
    """What a student's database holds, read without changing it."""

    label: str  # server/instance/app.db, or the URL without its password
    exists: bool = False
    error_kind: Optional[str] = None  # the exception's type when it cannot be read
    error_detail: Optional[str] = None  # its whole message
    versions: Optional[List[str]] = None  # alembic_version's rows; None: there is no such table
    tables: List[str] = field(default_factory=list)  # every table, alembic_version too, sorted
    schema: Schema = field(default_factory=dict)
    counts: Dict[str, int] = field(default_factory=dict)  # every table -> rows
    empty_values: Dict[str, int] = field(default_factory=dict)  # "table.column" -> rows holding NULL
    model_differences: Optional[list] = None  # autogenerate's diff with models.py (differences_of); None: unknown
    model_error: Optional[str] = None

    @property
    def error(self):
        """"Kind: first line" of why it cannot be read, or None."""
        if self.error_kind is None:
            return None
        first = self.error_first_line
        return self.error_kind if first == self.error_kind else f"{self.error_kind}: {first}"

    @property
    def error_first_line(self):
        lines = (self.error_detail or "").strip().splitlines()
        return lines[0] if lines else self.error_kind

    @property
    def heads(self):
        return tuple(self.versions or ())

    @property
    def usable(self):
        return self.exists and not self.error

    @property
    def columns(self):
        return column_types(self.schema)


def read_database(url, lesson, metadata=None, root=None, deadline=NO_DEADLINE):
    """Read the database at `url`; see the module docstring. A SQLite file is
    labelled by its path relative to `root` (the repository), as a student sees it.
    Past `deadline`, it stops with the error TooLong."""
    from .database import read_only_engine

    engine, sqlite_path = read_only_engine(url)
    label = relative(sqlite_path, root) if sqlite_path else make_url(url).render_as_string(hide_password=True)
    reading = DatabaseReading(label)
    try:
        if sqlite_path is not None and not Path(sqlite_path).is_file():
            return reading
        with engine.connect() as connection:
            reading.exists = True
            _read(connection, reading, lesson, metadata, deadline.bind(connection))
            connection.rollback()
    except Exception as error:  # an unreachable server or a damaged file
        reading.error_kind, reading.error_detail = type(error).__name__, str(error)
    finally:
        engine.dispose()
    return reading


def _read(connection, reading, lesson, metadata, deadline):
    from alembic.runtime.migration import MigrationContext

    inspector = sa.inspect(connection)
    reading.tables = sorted(inspector.get_table_names())
    if VERSION_TABLE in reading.tables:
        reading.versions = list(MigrationContext.configure(connection).get_current_heads())
    reading.schema = inspect_schema(connection, lesson.table_names, deadline)
    reading.counts = row_counts(connection, tables_read(reading.schema), deadline)
    for table, column in lesson.end.kept_values:
        if column in reading.schema.get(table, {}):
            target = sa.table(table, sa.column(column))
            reading.empty_values[f"{table}.{column}"] = connection.execute(
                sa.select(sa.func.count()).select_from(target).where(target.c[column].is_(None))).scalar_one()
    deadline.check()
    if metadata is not None:
        reading.model_differences, _code, reading.model_error = compare_models(connection, metadata)


def compare_models(connection, metadata):
    """Alembic autogenerate's differences between the models and the database:
    (differences as plain data, the upgrade code `flask db migrate` would write, error).
    Like inspect_schema, it reflects at most MAX_TABLES_READ tables, the models' first."""
    from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
    from alembic.runtime.migration import MigrationContext

    try:
        read = tables_to_read(sa.inspect(connection).get_table_names(), metadata.tables)
        context = MigrationContext.configure(connection, opts={
            "compare_type": True,
            "include_name": lambda name, kind, parents: kind != "table" or name in read,
        })
        diff = differences_of(compare_metadata(context, metadata))
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
