"""Table definitions and column types as plain data, and back.

The student's models.py runs only in the isolated worker process; what the
grader needs of it crosses the process boundary as JSON made here
(`metadata_to_data`) and is rebuilt into a real MetaData in the grading
process (`metadata_from_data`), where Alembic compares it with the schema the
grader read itself. Column types travel as their repr ("String(length=50)")
and are rebuilt by `type_from_repr`, which evaluates nothing: it accepts only
calls of SQLAlchemy's type classes with literal arguments.
"""
import ast

import sqlalchemy as sa
from sqlalchemy import types as sa_types
from sqlalchemy.sql.elements import conv
from sqlalchemy.types import NullType


def type_from_repr(text):
    """The SQLAlchemy type a repr names, or NullType when it is not a plain type."""
    try:
        return _build_type(ast.parse(text or "", mode="eval").body)
    except (SyntaxError, ValueError, TypeError):
        return NullType()


def _build_type(node):
    if isinstance(node, ast.Name):  # a type class named without a call
        node = ast.Call(func=node, args=[], keywords=[])
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise ValueError("not a type")
    cls = getattr(sa_types, node.func.id, None)
    if not (isinstance(cls, type) and issubclass(cls, sa_types.TypeEngine)):
        raise ValueError(f"{node.func.id} is not a SQLAlchemy type")
    args = [_argument(arg) for arg in node.args]
    kwargs = {keyword.arg: _argument(keyword.value) for keyword in node.keywords if keyword.arg}
    return cls(*args, **kwargs)


def _argument(node):
    if isinstance(node, (ast.Call, ast.Name)) and not (isinstance(node, ast.Name) and node.id in ("True", "False", "None")):
        return _build_type(node)  # ARRAY(Integer()) and the like
    return ast.literal_eval(node)


def columns_as_text(columns):
    """{table: {column: type}} with each type as its repr (a repr already is one), to cross to the worker and back."""
    return {table: {name: type_ if isinstance(type_, str) else repr(type_) for name, type_ in cols.items()}
            for table, cols in (columns or {}).items()}


def column_to_data(column):
    default = column.server_default
    return {
        "name": column.name,
        "type": repr(column.type),
        "nullable": bool(column.nullable),
        "primary_key": bool(column.primary_key),
        "server_default": str(getattr(default, "arg", "")) if default is not None else None,
        "comment": column.comment,
    }


def metadata_to_data(metadata):
    """The tables of a MetaData, with their constraints and indexes, as JSON-ready data."""
    return {
        "naming_convention": {
            str(key.__name__ if isinstance(key, type) else key): value
            for key, value in metadata.naming_convention.items() if isinstance(value, str)
        },
        "tables": [_table_to_data(table) for table in metadata.sorted_tables],
    }


def _table_to_data(table):
    return {
        "name": table.name,
        "schema": table.schema,
        "columns": [column_to_data(column) for column in table.columns],
        "primary_key": _name(table.primary_key),
        "indexes": [
            {"name": _name(index), "columns": [c.name for c in index.columns], "unique": bool(index.unique)}
            for index in table.indexes
        ],
        "uniques": [
            {"name": _name(constraint), "columns": [c.name for c in constraint.columns]}
            for constraint in table.constraints if isinstance(constraint, sa.UniqueConstraint)
        ],
        "foreign_keys": [
            {
                "name": _name(constraint),
                "columns": list(constraint.column_keys),
                "targets": [element.target_fullname for element in constraint.elements],
                "ondelete": constraint.ondelete,
            }
            for constraint in table.foreign_key_constraints
        ],
    }


def _name(item):
    """A constraint's explicit name; names the convention will make are left to it."""
    name = item.name
    if name is None or type(name).__name__ == "_NoneName":
        return None
    return str(name)


def metadata_from_data(data):
    """A MetaData rebuilt from `metadata_to_data`'s result."""
    metadata = sa.MetaData(naming_convention=dict(data.get("naming_convention") or {}) or None)
    for table in data.get("tables", []):
        _table_from_data(metadata, table)
    return metadata


def _table_from_data(metadata, data):
    columns = []
    for column in data["columns"]:
        default = column.get("server_default")
        columns.append(sa.Column(
            str(column["name"]), type_from_repr(column["type"]),
            nullable=bool(column["nullable"]), primary_key=bool(column["primary_key"]),
            server_default=sa.text(default) if default else None, comment=column.get("comment"),
        ))
    items = list(columns)
    for unique in data.get("uniques", []):
        items.append(sa.UniqueConstraint(*unique["columns"], name=_conv(unique.get("name"))))
    for foreign_key in data.get("foreign_keys", []):
        items.append(sa.ForeignKeyConstraint(
            foreign_key["columns"], foreign_key["targets"], name=_conv(foreign_key.get("name")),
            ondelete=foreign_key.get("ondelete"),
        ))
    table = sa.Table(str(data["name"]), metadata, *items, schema=data.get("schema"))
    if data.get("primary_key") and table.primary_key.columns:
        table.primary_key.name = _conv(data["primary_key"])
    for index in data.get("indexes", []):
        sa.Index(_conv(index.get("name")), *[table.c[name] for name in index["columns"]], unique=index.get("unique", False))
    return table


def _conv(name):
    # Names arrive already made by the naming convention: keep them as they are.
    return conv(name) if name else None
