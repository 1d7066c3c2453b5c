"""What a migration does, as Alembic operation objects, and what it risks.

One analysis shared by the review (`flask db migrate`, `flask lesson review`)
and the grader. It works on Alembic's MigrateOperation objects only: the
directives autogenerate proposes and the operations a script's upgrade() or
downgrade() calls have the same shape, so one set of rules covers both.

API
---
record_script_operations(path, direction="upgrade", dialect="sqlite") -> RecordedScript
    Calls upgrade() (or downgrade()) of the migration script at `path` with a
    recording `op` that executes nothing: no database is touched and no
    __pycache__ is written. RecordedScript has:
      .operations  the MigrateOperation objects in call order
                   (CreateTableOp, DropTableOp, RenameTableOp, AddColumnOp,
                   DropColumnOp, AlterColumnOp, ExecuteSQLOp, ...); each
                   `with op.batch_alter_table(...)` block is one ModifyTableOps
      .error       the exception the script raised, or None
      .problem     one line for a student when .error is set (what failed,
                   and the fix for known mistakes such as op.rename_column)

describe(operations) -> list of str
    One short line per operation: "creates table departments (id, name,
    address)", "renames table department to departments", ...

find_risks(operations, row_counts=None, columns=None, batch=None, direction="upgrade") -> list of Risk
    operations  a list of MigrateOperation or an UpgradeOps/DowngradeOps
    row_counts  {table: number of rows} in the database before they run
    columns     {table: {column: SQLAlchemy type}} before they run; needed to
                recognise a rename in a recorded script, whose drop_table and
                drop_column calls do not say what they drop (autogenerate's
                directives do)
    batch       write column fixes as batch_alter_table blocks; None: do as
                the operations do (ModifyTableOps means batch)
    Risk.kind is one of
      'table_rename'        a table dropped and one created with the same
                            columns: a rename autogenerate cannot see
      'column_rename'       in one table, a column dropped and one of a
                            compatible type added
      'drop_with_rows'      a table or column dropped while it holds rows
      'not_null_no_default' a NOT NULL column without server_default added
                            to a table with rows: the upgrade fails
    Risk.loses_data is true when rows would be deleted.

database_facts(connection, tables=None) -> (row_counts, columns)
    Both mappings above, read from a live database (read-only).

state_after(operations, row_counts, columns) -> (row_counts, columns)
    The same mappings once the operations have run, to review a chain of
    migrations none of which is applied yet.

tables_touched(operations) -> set of table names the operations refer to.
"""
import contextlib
import difflib
import importlib.util
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

import sqlalchemy as sa
from alembic import op as op_module
from alembic.operations import BatchOperations, Operations, ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.types import NullType

from .alembic_internals import BatchTarget, installed_as_op
from .reading import row_counts

RISK_KINDS = ("table_rename", "column_rename", "drop_with_rows", "not_null_no_default")


# ---------------------------------------------------------------- recording


@dataclass
class RecordedScript:
    path: Path
    direction: str
    operations: List[Any] = field(default_factory=list)
    error: Optional[BaseException] = None

    @property
    def problem(self):
        """One line saying why the function failed, with the fix when known."""
        if self.error is None:
            return None
        return _explain_error(self.error, self.path, self.direction)


class RecordingOperations(Operations):
    """An `op` that writes each operation down instead of running it."""

    def __init__(self, migration_context, into):
        super().__init__(migration_context)
        self.recorded = into

    def invoke(self, operation):
        self.recorded.append(operation)
        if isinstance(operation, ops.CreateTableOp):
            # op.create_table returns the Table; scripts pass it to bulk_insert
            return operation.to_table(self.migration_context)
        return None

    def get_bind(self):
        # Statements run on the connection itself are not operations: there
        # is nothing to record them with, so say so instead of failing later.
        raise _NeedsDatabase("it calls op.get_bind() to run statements on the database itself")

    def get_context(self):
        # Nothing runs while recording: there is no transaction for autocommit_block() to leave.
        self.migration_context.autocommit_block = contextlib.nullcontext
        return self.migration_context

    @contextlib.contextmanager
    def batch_alter_table(self, table_name, schema=None, **options):
        block = ops.ModifyTableOps(table_name, [], schema=schema)
        self.recorded.append(block)
        yield RecordingBatchOperations(self.migration_context, BatchTarget(table_name, schema), block.ops)


class RecordingBatchOperations(BatchOperations):
    def __init__(self, migration_context, impl, into):
        super().__init__(migration_context, impl=impl)
        self.recorded = into

    def invoke(self, operation):
        self.recorded.append(operation)


@contextlib.contextmanager
def no_bytecode():
    """Load student files without leaving __pycache__ folders beside them."""
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = previous


def load_script(path):
    """Import a migration file by path, under a unique name, without caching it."""
    name = f"_lesson_migration_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    with no_bytecode():
        spec.loader.exec_module(module)
    return module


def record_script_operations(script, direction="upgrade", dialect="sqlite"):
    """The operations `direction`() of a migration would run.

    `script` is a loaded module, or the path of a file to load (only ever in
    the worker process, where student code may run).
    """
    if direction not in ("upgrade", "downgrade"):
        raise ValueError("direction is 'upgrade' or 'downgrade'")
    path = Path(getattr(script, "__file__", None) or script)
    result = RecordedScript(path, direction)
    recorder = RecordingOperations(MigrationContext.configure(dialect_name=dialect), result.operations)
    try:
        module = script if hasattr(script, "__file__") else load_script(path)
        function = getattr(module, direction, None)
        if not callable(function):
            raise _MissingFunction(f"{path.name} has no {direction}() function")
        with installed_as_op(recorder):
            function()
    except Exception as error:  # the student's code: report whatever it raised
        result.error = error
    return result


class _MissingFunction(Exception):
    pass


class _NeedsDatabase(Exception):
    pass


# What `op` and `batch_op` offer, to suggest the nearest name for a misspelt one.
_OP_NAMES = sorted(name for name in dir(Operations) if not name.startswith("_"))
_BATCH_OP_NAMES = sorted(name for name in dir(BatchOperations) if not name.startswith("_"))


def _explain_error(error, path, direction):
    file_name = Path(path).name
    if isinstance(error, _MissingFunction):
        return f"{error}: every migration needs upgrade() and downgrade()"
    if isinstance(error, SyntaxError):
        return f"{file_name} line {error.lineno}: {error.msg}; fix the Python syntax first"
    where = f"{direction}() in {file_name}"
    if isinstance(error, _NeedsDatabase):
        return (f"{where} cannot be fully read without running it: {error}; only the operations before "
                "that call are known (op.execute(...) statements can be read)")
    # Python 3.10+ says which name was missing on which object.
    missing = getattr(error, "name", None) if isinstance(error, AttributeError) else None
    owner = getattr(error, "obj", None)
    if not missing or not (owner is op_module or isinstance(owner, (Operations, BatchOperations))):
        return f"{where} fails: {type(error).__name__}: {error}"
    in_batch = isinstance(owner, BatchOperations)
    prefix = "batch_op" if in_batch else "op"
    text = f"{where} fails: Alembic has no {prefix}.{missing}()"
    if missing == "rename_column":
        if in_batch:
            return text + "; rename a column with batch_op.alter_column('<old name>', new_column_name='<new name>')"
        return text + "; rename a column with op.alter_column('<table>', '<old name>', new_column_name='<new name>')"
    if in_batch and missing in _OP_NAMES:
        return text + f"; call op.{missing}() outside the batch_alter_table block"
    close = difflib.get_close_matches(missing, _BATCH_OP_NAMES if in_batch else _OP_NAMES, n=1)
    return text + (f"; did you mean {prefix}.{close[0]}()?" if close else "")


# --------------------------------------------------------------- describing


def _leaves(operations):
    """(operation, in_batch) for every operation, batch blocks opened up."""
    if isinstance(operations, ops.ModifyTableOps):
        operations = [operations]
    elif isinstance(operations, ops.OpContainer):
        operations = operations.ops
    for operation in operations:
        if isinstance(operation, ops.ModifyTableOps):
            for inner in operation.ops:
                yield inner, True
        elif isinstance(operation, ops.OpContainer):
            yield from _leaves(operation)
        else:
            yield operation, False


def _names(columns):
    return ", ".join(columns)


def describe(operations):
    """One short line per operation, in order."""
    return [_describe_one(operation) for operation, _ in _leaves(operations)]


def _describe_one(o):
    if isinstance(o, ops.CreateTableOp):
        return f"creates table {o.table_name} ({_names(c.name for c in o.columns if isinstance(c, sa.Column))})"
    if isinstance(o, ops.DropTableOp):
        return f"drops table {o.table_name}"
    if isinstance(o, ops.RenameTableOp):
        return f"renames table {o.table_name} to {o.new_table_name}"
    if isinstance(o, ops.AddColumnOp):
        return f"adds column {o.column.name} to {o.table_name}"
    if isinstance(o, ops.DropColumnOp):
        return f"drops column {o.column_name} from {o.table_name}"
    if isinstance(o, ops.AlterColumnOp):
        return _describe_alter(o)
    if isinstance(o, ops.CreateIndexOp):
        return f"creates index {o.index_name} on {o.table_name} ({_names(str(c) for c in o.columns)})"
    if isinstance(o, ops.DropIndexOp):
        return f"drops index {o.index_name}"
    if isinstance(o, ops.AddConstraintOp):
        return f"adds constraint {getattr(o, 'constraint_name', None) or '(unnamed)'} to {_table_of(o)}"
    if isinstance(o, ops.DropConstraintOp):
        return f"drops constraint {o.constraint_name or '(unnamed)'} from {o.table_name}"
    if isinstance(o, ops.ExecuteSQLOp):
        text = str(o.sqltext).strip().splitlines()[0] if str(o.sqltext).strip() else ""
        return f"runs SQL: {text[:60]}{'...' if len(text) > 60 else ''}"
    if isinstance(o, ops.BulkInsertOp):
        return f"inserts {len(o.rows)} rows into {o.table.name}"
    if isinstance(o, (ops.CreateTableCommentOp, ops.DropTableCommentOp)):
        return f"changes the comment of table {o.table_name}"
    return f"runs {type(o).__name__}"


def _describe_alter(o):
    changes = []
    if o.modify_name is not None:
        changes.append(f"renames column {o.column_name} to {o.modify_name} in {o.table_name}")
    target = f"{o.table_name}.{o.column_name}"
    if o.modify_type is not None:
        changes.append(f"changes the type of {target} to {o.modify_type}")
    if o.modify_nullable is not None:
        changes.append(f"makes {target} {'nullable' if o.modify_nullable else 'NOT NULL'}")
    if o.modify_server_default is not False:
        changes.append(f"changes the server default of {target}")
    if o.modify_comment is not False:
        changes.append(f"changes the comment of {target}")
    return "; ".join(changes) or f"alters column {target} (no change)"


def _table_of(o):
    return getattr(o, "table_name", None) or getattr(o, "source_table", None) or "?"


def tables_touched(operations):
    """Names of the tables the operations create, change, rename or drop."""
    names = set()
    for o, _ in _leaves(operations):
        for attribute in ("table_name", "new_table_name", "source_table"):
            value = getattr(o, attribute, None)
            if isinstance(value, str):
                names.add(value)
    return names


# -------------------------------------------------------------- the tables


def database_facts(connection, tables=None):
    """({table: rows}, {table: {column: type}}) of a live database.

    Only reads. `tables` limits the counting to the tables that matter.
    """
    inspector = sa.inspect(connection)
    names = [name for name in inspector.get_table_names()
             if name != "alembic_version" and (tables is None or name in tables)]
    columns = {name: {c["name"]: c["type"] for c in inspector.get_columns(name)} for name in names}
    return row_counts(connection, names), columns


class _Tables:
    """Rows and columns of each table, kept up to date operation by operation."""

    def __init__(self, row_counts=None, columns=None):
        self.rows = dict(row_counts or {})
        self.columns = {table: dict(cols) for table, cols in (columns or {}).items()}

    def apply(self, o):
        if isinstance(o, ops.CreateTableOp):
            self.columns[o.table_name] = {c.name: c.type for c in o.columns if isinstance(c, sa.Column)}
            self.rows[o.table_name] = 0
        elif isinstance(o, ops.DropTableOp):
            self.columns.pop(o.table_name, None)
            self.rows.pop(o.table_name, None)
        elif isinstance(o, ops.RenameTableOp):
            for mapping in (self.columns, self.rows):
                if o.table_name in mapping:
                    mapping[o.new_table_name] = mapping.pop(o.table_name)
        elif isinstance(o, ops.AddColumnOp):
            self.columns.setdefault(o.table_name, {})[o.column.name] = o.column.type
        elif isinstance(o, ops.DropColumnOp):
            self.columns.get(o.table_name, {}).pop(o.column_name, None)
        elif isinstance(o, ops.AlterColumnOp) and o.modify_name:
            cols = self.columns.get(o.table_name, {})
            if o.column_name in cols:
                cols[o.modify_name] = cols.pop(o.column_name)
        elif isinstance(o, ops.BulkInsertOp) and o.table.name in self.rows:
            self.rows[o.table.name] += len(o.rows)


def state_after(operations, row_counts=None, columns=None):
    """(row_counts, columns) once the operations have run."""
    tables = _Tables(row_counts, columns)
    for o, _ in _leaves(operations):
        tables.apply(o)
    return tables.rows, tables.columns


# ------------------------------------------------------------------- risks


@dataclass
class Risk:
    kind: str
    table: str
    column: Optional[str] = None
    new_name: Optional[str] = None
    rows: Optional[int] = None  # rows in `table` when the operation runs, if known
    message: str = ""
    fix_upgrade: Optional[str] = None
    fix_downgrade: Optional[str] = None

    @property
    def loses_data(self):
        return self.kind != "not_null_no_default" and bool(self.rows)


RISK_FIELDS = ("kind", "table", "column", "new_name", "rows", "message", "fix_upgrade", "fix_downgrade")


def risk_to_data(risk):
    return {name: getattr(risk, name) for name in RISK_FIELDS}


def risk_from_data(data):
    """A Risk from the worker's answer; only known kinds and plain values are kept."""
    if not isinstance(data, dict) or data.get("kind") not in RISK_KINDS:
        return None
    values = {name: data.get(name) for name in RISK_FIELDS}
    if not all(value is None or isinstance(value, (str, int)) for value in values.values()):
        return None
    return Risk(**values)


def _known_type(type_):
    return type_ is not None and not isinstance(type_, NullType)


def compatible_types(a, b):
    """Could a column of type `a` hold the values of a column of type `b`?"""
    if not (_known_type(a) and _known_type(b)):
        return False
    if isinstance(a, type(b)) or isinstance(b, type(a)):  # String and VARCHAR
        return True
    try:
        return a.python_type is b.python_type
    except NotImplementedError:
        return False


def _same_columns(dropped, created):
    if not dropped or set(dropped) != set(created):
        return False
    return all(compatible_types(dropped[name], created[name]) for name in dropped)


def _closest(name, candidates):
    return max(candidates, key=lambda c: difflib.SequenceMatcher(None, name, c).ratio())


def _rows_phrase(rows):
    return "1 row" if rows == 1 else f"{rows} rows"


def find_risks(operations, row_counts=None, columns=None, batch=None, direction="upgrade"):
    """What the operations would do to the data, as a list of Risk.

    direction names the function the operations come from in the messages.
    """
    changes = _changes(operations, row_counts, columns)
    table_risks = _table_risks(changes, direction)
    column_risks, rename_adds = _column_risks(changes, batch, direction)
    return table_risks + column_risks + _not_null_risks(changes, rename_adds, batch)


@dataclass
class _Changes:
    """The drops and additions among some operations, each with the rows of its table when it runs."""

    dropped_tables: List[Any] = field(default_factory=list)  # (name, {column: type}, rows)
    created_tables: List[Any] = field(default_factory=list)  # (name, {column: type}), new tables only
    dropped_columns: List[Any] = field(default_factory=list)  # (table, column, type, rows, in_batch)
    added_columns: List[Any] = field(default_factory=list)  # (AddColumnOp, rows, in_batch)


def _changes(operations, row_counts, columns):
    """The _Changes of the operations, followed one by one from the tables as they are."""
    tables = _Tables(row_counts, columns)
    changes = _Changes()
    for o, in_batch in _leaves(operations):
        if isinstance(o, ops.DropTableOp):
            own = {c.name: c.type for c in o.to_table().columns}  # autogenerate says
            changes.dropped_tables.append(
                (o.table_name, own or tables.columns.get(o.table_name), tables.rows.get(o.table_name)))
        elif isinstance(o, ops.CreateTableOp) and o.table_name not in tables.columns:
            changes.created_tables.append(
                (o.table_name, {c.name: c.type for c in o.columns if isinstance(c, sa.Column)}))
        elif isinstance(o, ops.DropColumnOp):
            own = o.to_column().type
            if not _known_type(own):
                own = tables.columns.get(o.table_name, {}).get(o.column_name)
            changes.dropped_columns.append(
                (o.table_name, o.column_name, own, tables.rows.get(o.table_name), in_batch))
        elif isinstance(o, ops.AddColumnOp):
            changes.added_columns.append((o, tables.rows.get(o.table_name), in_batch))
        tables.apply(o)
    return changes


def _table_risks(changes, direction):
    """Each dropped table: renamed when a new table has its columns, else its rows lost."""
    risks, paired = [], set()
    for old, cols, rows in changes.dropped_tables:
        matches = [
            new for new, new_cols in changes.created_tables
            if new != old and new not in paired and _same_columns(cols, new_cols)
        ]
        if matches:
            new = _closest(old, matches)
            paired.add(new)
            risks.append(_table_rename(old, new, list(cols), rows, direction))
        elif rows:
            risks.append(_table_dropped(old, rows))
    return risks


def _column_risks(changes, batch, direction):
    """(risks, ids of the additions that are renames): each dropped column is renamed
    when a column of a compatible type is added to its table, else its values lost."""
    risks, paired = [], set()
    for table, old, old_type, rows, in_batch in changes.dropped_columns:
        matches = [
            add for add, _, _ in changes.added_columns
            if add.table_name == table and add.column.name != old and id(add) not in paired
            and compatible_types(old_type, add.column.type)
        ]
        if matches:
            by_name = {add.column.name: add for add in matches}
            add = by_name[_closest(old, list(by_name))]
            paired.add(id(add))
            risks.append(_column_rename(
                table, old, add.column.name, rows, in_batch if batch is None else batch, direction))
        elif rows:
            risks.append(_column_dropped(table, old, rows))
    return risks, paired


def _not_null_risks(changes, rename_adds, batch):
    """NOT NULL columns without a server_default added to tables with rows (renames aside)."""
    risks = []
    for add, rows, in_batch in changes.added_columns:
        column = add.column
        if id(add) in rename_adds or column.nullable or column.server_default is not None or not rows:
            continue
        risks.append(_not_null(add.table_name, column, rows, in_batch if batch is None else batch))
    return risks


def _table_dropped(table, rows):
    return Risk(
        "drop_with_rows", table, rows=rows,
        message=(f"Table '{table}' is dropped with its {_rows_phrase(rows)}: they are deleted for good. "
                 "If the table is still needed, remove the drop; otherwise back the rows up first."),
    )


def _column_dropped(table, column, rows):
    return Risk(
        "drop_with_rows", table, column=column, rows=rows,
        message=(f"Column '{column}' is dropped from '{table}': its values in {_rows_phrase(rows)} are deleted "
                 "for good. If they are still needed, remove the drop or copy them elsewhere first."),
    )


def _table_rename(old, new, columns, rows, direction="upgrade"):
    lost = f" As written, the {direction} deletes the {_rows_phrase(rows)} of '{old}'." if rows else ""
    return Risk(
        "table_rename", old, new_name=new, rows=rows,
        message=(f"Table '{old}' is dropped and a new table '{new}' is created with the same columns "
                 f"({_names(columns)}): that is a rename, which autogenerate cannot detect.{lost}"),
        fix_upgrade=f"op.rename_table({old!r}, {new!r})",
        fix_downgrade=f"op.rename_table({new!r}, {old!r})",
    )


def _alter_lines(table, column, batch, **changes):
    arguments = ", ".join(f"{key}={value!r}" for key, value in changes.items())
    if batch:
        return (f"with op.batch_alter_table({table!r}, schema=None) as batch_op:\n"
                f"    batch_op.alter_column({column!r}, {arguments})")
    return f"op.alter_column({table!r}, {column!r}, {arguments})"


def _column_rename(table, old, new, rows, batch, direction="upgrade"):
    lost = f" As written, the {direction} deletes the values of '{old}' in {_rows_phrase(rows)}." if rows else ""
    return Risk(
        "column_rename", table, column=old, new_name=new, rows=rows,
        message=(f"In table '{table}', column '{old}' is dropped and a new column '{new}' of the same type is "
                 f"added: that is a rename, which autogenerate cannot detect.{lost}"),
        fix_upgrade=_alter_lines(table, old, batch, new_column_name=new),
        fix_downgrade=_alter_lines(table, new, batch, new_column_name=old),
    )


def _not_null(table, column, rows, batch):
    name = column.name
    type_text = "sa." + repr(column.type)
    add = f"sa.Column({name!r}, {type_text}, nullable=True)"
    fill = f'op.execute("UPDATE {table} SET {name} = <value>")'
    if batch:
        fix = (f"with op.batch_alter_table({table!r}, schema=None) as batch_op:\n"
               f"    batch_op.add_column({add})\n"
               f"{fill}\n"
               f"with op.batch_alter_table({table!r}, schema=None) as batch_op:\n"
               f"    batch_op.alter_column({name!r}, existing_type={type_text}, nullable=False)")
    else:
        fix = (f"op.add_column({table!r}, {add})\n"
               f"{fill}\n"
               f"op.alter_column({table!r}, {name!r}, existing_type={type_text}, nullable=False)")
    return Risk(
        "not_null_no_default", table, column=name, rows=rows,
        message=(f"Column '{name}' is added to '{table}' as NOT NULL without a server_default, but '{table}' "
                 f"has {_rows_phrase(rows)} that would have no value: the upgrade fails. Either give it a "
                 f"server_default, or add it nullable, fill it in, then make it NOT NULL (replace <value>)."),
        fix_upgrade=fix,
        fix_downgrade=None,
    )
