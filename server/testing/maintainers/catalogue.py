"""Realistic submissions of the lesson, made from the reference solution.

Each entry starts from a copy of the walkthrough's finished checkout and
changes it the way real students do: a rename kept as create+drop, step 5
done the wrong way, a broken file... `WRONG` entries list exactly the
checkpoints they must fail and words their messages must contain; `VALID`
entries are legitimate variations that must get full marks.
"""
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Tuple

from .lesson_files import CREATE_DEPARTMENT, CREATE_DEPARTMENTS, CREATE_EMPLOYEES, OLDER_ENV_PY, revision_file

ALL_BUT_INIT = (
    "history", "create_employees", "create_department", "rename_table", "rename_column",
    "downgrades", "models_match",
)


@dataclass(frozen=True)
class Submission:
    name: str
    change: Callable  # change(Checkout) edits the copy in place
    failing: Tuple[str, ...] = ()  # exactly the checkpoints that must fail
    messages: Dict[str, Tuple[str, ...]] = field(default_factory=dict)  # checkpoint -> words in its message
    keep_local_database: bool = False  # leave server/instance/app.db in the copy


class Checkout:
    """A copy of the finished reference checkout, with helpers to change it."""

    def __init__(self, root, revisions):
        self.root = Path(root)
        self.server = self.root / "server"
        self.versions = self.server / "migrations" / "versions"
        self.revisions = list(revisions)  # ids, in order

    def revision_file(self, position):
        """The file of revision 1..4 of the reference."""
        (path,) = self.versions.glob(f"{self.revisions[position - 1]}_*.py")
        return path

    def set_functions(self, position, upgrade, downgrade=None):
        """Replace upgrade() and/or downgrade() bodies of a reference revision."""
        path = self.revision_file(position)
        source = path.read_text(encoding="utf-8")
        if upgrade is not None:
            source = _replace_body(source, "upgrade", upgrade)
        if downgrade is not None:
            source = _replace_body(source, "downgrade", downgrade)
        path.write_text(source, encoding="utf-8")

    def add_revision(self, revision, down_revision, message, upgrade, downgrade):
        """Write a new revision file as `flask db migrate` lays it out."""
        text = revision_file(revision, down_revision, upgrade, downgrade, message)
        slug = re.sub(r"\W+", "_", message.lower()).strip("_")
        path = self.versions / f"{revision}_{slug}.py"
        path.write_text(text, encoding="utf-8")
        return path

    def edit(self, relative, old, new, count=1):
        path = self.root / relative
        source = path.read_text(encoding="utf-8")
        assert old in source, f"{old!r} not in {relative}"
        path.write_text(source.replace(old, new, count), encoding="utf-8")

    def models(self, department_table="departments", place="address", place_nullable=True):
        """Change the Department model of the finished models.py."""
        nullable = "" if place_nullable else ", nullable=False"
        self.edit("server/models.py", '__tablename__ = "departments"', f'__tablename__ = "{department_table}"')
        self.edit("server/models.py", "address = db.Column(db.String)", f"{place} = db.Column(db.String{nullable})")
        self.edit("server/models.py", "self.address", f"self.{place}")


def _body(code):
    lines = code.strip("\n").splitlines() or ["pass"]
    return "\n".join("    " + line if line.strip() else "" for line in lines)


def _replace_body(source, function, code):
    """Swap a top-level function's body, leaving the rest of the file as it is."""
    pattern = re.compile(rf"^def {function}\(\):\n(?:(?:[ \t]+.*)?\n)*?(?=^\S|\Z)", re.M)
    assert pattern.search(source), f"no def {function}() found"
    return pattern.sub(lambda m: f"def {function}():\n{_body(code)}\n\n\n", source, count=1)


# --- the operations students write -----------------------------------------

TABLE_CREATE_DROP_UP = CREATE_DEPARTMENTS + "op.drop_table('department')\n"
TABLE_CREATE_DROP_DOWN = CREATE_DEPARTMENT + "op.drop_table('departments')\n"
COLUMN_ADD_DROP_UP = """
with op.batch_alter_table('departments', schema=None) as batch_op:
    batch_op.add_column(sa.Column('location', sa.String(), nullable=True))
    batch_op.drop_column('address')
"""
COLUMN_ADD_DROP_DOWN = """
with op.batch_alter_table('departments', schema=None) as batch_op:
    batch_op.add_column(sa.Column('address', sa.VARCHAR(), nullable=True))
    batch_op.drop_column('location')
"""
RENAME_COLUMN_UP = "op.alter_column('departments', 'address', new_column_name='location')"
RENAME_COLUMN_DOWN = "op.alter_column('departments', 'location', new_column_name='address')"

def _hand_written_ids(c):
    """Revision ids chosen by hand: 0001 ... 0004, files renamed to match."""
    new_ids = ["0001", "0002", "0003", "0004"]
    paths = [c.revision_file(position) for position in range(1, 5)]
    for old, new, path in zip(c.revisions, new_ids, paths):
        source = path.read_text(encoding="utf-8")
        for old_id, new_id in zip(c.revisions, new_ids):
            source = source.replace(old_id, new_id)
        path.unlink()
        (c.versions / path.name.replace(old, new)).write_text(source, encoding="utf-8")
    c.revisions = new_ids


def _readme_ids_copied(c):
    """Revision 2 given the README's example ids, parent and all."""
    path = c.revision_file(2)
    source = path.read_text(encoding="utf-8").replace(c.revisions[1], "51f20aa4768b").replace(c.revisions[0], "15537423c56d")
    path.write_text(source, encoding="utf-8")
    for position in (3,):
        c.edit(c.revision_file(position).relative_to(c.root), c.revisions[1], "51f20aa4768b", count=2)


def _regenerated_as_one(c):
    shutil.rmtree(c.versions)
    c.versions.mkdir()
    c.add_revision("a1b2c3d4e5f6", None, "Initial migration.", CREATE_EMPLOYEES + CREATE_DEPARTMENTS, "op.drop_table('departments')\nop.drop_table('employees')")


def _departments_directly(c):
    """Department created as `departments` at once: no rename revision."""
    c.set_functions(2, CREATE_DEPARTMENTS, "op.drop_table('departments')")
    rev3 = c.revision_file(3)
    rev3.unlink()
    c.edit(c.revision_file(4).relative_to(c.root), f"down_revision = '{c.revisions[2]}'", f"down_revision = '{c.revisions[1]}'")


def _steps_3_and_4_merged(c):
    """Both renames in revision 3, no revision 4, models.py put back to revision 3 by hand."""
    c.set_functions(3, "op.rename_table('department', 'departments')\n" + RENAME_COLUMN_UP,
                    RENAME_COLUMN_DOWN + "\nop.rename_table('departments', 'department')")
    c.revision_file(4).unlink()


def _create_all_no_migrations(c):
    shutil.rmtree(c.server / "migrations")
    c.edit("server/app.py", "db.init_app(app)", "db.init_app(app)\n\nwith app.app_context():\n    db.create_all()")


WRONG = (
    Submission(
        "migrations/ made at the repository root instead of server/",
        lambda c: shutil.move(str(c.server / "migrations"), str(c.root / "migrations")),
        failing=("init",) + ALL_BUT_INIT, messages={"init": ("server/migrations", "git mv migrations server/migrations")},
    ),
    Submission(
        "table rename kept as create+drop", lambda c: c.set_functions(3, TABLE_CREATE_DROP_UP, TABLE_CREATE_DROP_DOWN),
        failing=("rename_table", "downgrades"),
        messages={"rename_table": ("op.rename_table('department', 'departments')",
                                   "op.rename_table('departments', 'department')", "2 rows")},
    ),
    Submission(
        "create+drop kept and rename_table appended",
        lambda c: c.set_functions(3, TABLE_CREATE_DROP_UP + "op.rename_table('department', 'departments')\n"),
        failing=("rename_table", "rename_column", "downgrades", "models_match"),
        messages={"rename_table": ("op.rename_table('department', 'departments')",)},
    ),
    Submission(
        "column rename kept as add+drop", lambda c: c.set_functions(4, COLUMN_ADD_DROP_UP, COLUMN_ADD_DROP_DOWN),
        failing=("rename_column", "downgrades"),
        messages={"rename_column": ("new_column_name='location'", "address")},
    ),
    Submission(
        "op.rename_column, which Alembic does not have",
        lambda c: c.set_functions(4, "op.rename_column('departments', 'address', 'location')",
                                  "op.rename_column('departments', 'location', 'address')"),
        failing=("rename_column", "downgrades"),
        messages={"rename_column": ("rename_column", "alter_column")},
    ),
    Submission(
        "renames pasted into the wrong revisions",
        lambda c: (c.set_functions(3, RENAME_COLUMN_UP, RENAME_COLUMN_DOWN),
                   c.set_functions(4, "op.rename_table('department', 'departments')",
                                   "op.rename_table('departments', 'department')")),
        failing=("rename_table", "rename_column", "downgrades", "models_match"),
        messages={"rename_table": ("departments",)},
    ),
    Submission(
        "downgrade of the table rename left as autogenerated",
        lambda c: c.set_functions(3, None, TABLE_CREATE_DROP_DOWN),
        failing=("downgrades",),
        messages={"downgrades": ("op.rename_table('departments', 'department')",)},
    ),
    Submission(
        "step 5 skipped: models.py still has location",
        lambda c: c.models(place="location"),
        failing=("models_match",),
        messages={"models_match": ("location", "address")},
    ),
    Submission(
        "step 5 done with a new revision instead of a downgrade",
        lambda c: c.add_revision("c0ffee000005", c.revisions[3], "rename location back",
                                 RENAME_COLUMN_DOWN, RENAME_COLUMN_UP),
        failing=("history",),
        messages={"history": ("flask db downgrade",)},
    ),
    Submission(
        "downgraded but models.py not reverted",
        lambda c: c.models(place="location"),
        failing=("models_match",), keep_local_database=True,
        messages={"models_match": ("address",)},
    ),
    Submission(
        "models.py reverted one step too far and a fifth revision generated",
        lambda c: (c.models(department_table="department"),
                   c.add_revision("c0ffee000005", c.revisions[3], "rename department back",
                                  CREATE_DEPARTMENT + "op.drop_table('departments')",
                                  CREATE_DEPARTMENTS + "op.drop_table('department')")),
        # On SQLite revision 5's downgrade loses the rows; on PostgreSQL its upgrade
        # already fails (the renamed table keeps its pk_department constraint).
        failing=("history", "downgrades", "models_match"),
        messages={"history": ("department",), "models_match": ("departments",)},
    ),
    Submission(
        "an extra empty revision",
        lambda c: c.add_revision("c0ffee000005", c.revisions[3], "empty", "pass", "pass"),
        failing=("history",),
        messages={"history": ("5",)},
    ),
    Submission(
        "NOT NULL location added without a default",
        lambda c: c.set_functions(4, COLUMN_ADD_DROP_UP.replace("nullable=True", "nullable=False"), COLUMN_ADD_DROP_DOWN),
        failing=("rename_column", "downgrades"),
        messages={"rename_column": ("NOT NULL",)},
    ),
    Submission(
        "the README's example revision ids copied without their parents",
        _readme_ids_copied,
        failing=("history", "create_department", "rename_table", "rename_column", "downgrades", "models_match"),
        messages={"history": ("15537423c56d",)},
    ),
    Submission(
        "a syntax error in a migration",
        lambda c: c.set_functions(3, "op.rename_table('department', 'departments'"),
        failing=("history", "rename_table", "rename_column", "downgrades", "models_match"),
        messages={"history": ("SyntaxError",)},
    ),
    Submission(
        "an import error in models.py",
        lambda c: c.edit("server/models.py", "from sqlalchemy import MetaData", "from sqlalchemy import Metadata"),
        failing=("models_match",),
        messages={"models_match": ("models.py", "Metadata")},
    ),
    Submission(
        "two heads",
        lambda c: c.add_revision("c0ffee000005", c.revisions[1], "rename department",
                                 "op.rename_table('department', 'departments')",
                                 "op.rename_table('departments', 'department')"),
        failing=("history", "rename_table", "rename_column", "downgrades", "models_match"),
        messages={"history": ("head",)},
    ),
    Submission(
        "migrations deleted and regenerated as one revision", _regenerated_as_one,
        failing=ALL_BUT_INIT,
        messages={"history": ("a1b2c3d4e5f6_initial_migration.py", "start over")},
    ),
    Submission(
        "steps 3 and 4 merged into one revision", _steps_3_and_4_merged,
        failing=("history", "rename_table", "rename_column", "downgrades", "models_match"),
        messages={"rename_column": ("step 4 has no revision",), "history": ("Found 3",)},
    ),
    Submission(
        "Department created directly as departments, no rename", _departments_directly,
        failing=("history", "create_department", "rename_table", "rename_column", "downgrades", "models_match"),
        messages={"create_department": ("department",)},
    ),
    Submission(
        "tables made with db.create_all() and no migrations", _create_all_no_migrations,
        failing=("init",) + ALL_BUT_INIT,
        messages={"init": ("flask db init", "create_all")},
    ),
)

VALID = (
    Submission("the reference solution", lambda c: None),
    Submission(
        "batch-mode column rename",
        lambda c: c.set_functions(
            4,
            "with op.batch_alter_table('departments', schema=None) as batch_op:\n"
            "    batch_op.alter_column('address', new_column_name='location')",
            "with op.batch_alter_table('departments', schema=None) as batch_op:\n"
            "    batch_op.alter_column('location', new_column_name='address')",
        ),
    ),
    Submission(
        "existing_type and existing_nullable given",
        lambda c: c.set_functions(
            4,
            "op.alter_column('departments', 'address', new_column_name='location',\n"
            "                existing_type=sa.String(), existing_nullable=True)",
            "op.alter_column('departments', 'location', new_column_name='address',\n"
            "                existing_type=sa.String(), existing_nullable=True)",
        ),
    ),
    Submission("hand-written revision ids", _hand_written_ids),
    Submission("the older env.py template (db.get_engine())",
               lambda c: (c.server / "migrations" / "env.py").write_text(OLDER_ENV_PY, encoding="utf-8")),
    Submission("address left NOT NULL from the step-4 model", lambda c: c.models(place_nullable=False)),
    Submission(
        "comments, blank lines and other messages",
        lambda c: c.set_functions(
            3,
            "# Renaming keeps the rows; create+drop would lose them.\n\n"
            "op.rename_table('department', 'departments')\n\n# done",
        ),
    ),
    Submission("the local database at revision 3 with its rows", lambda c: None, keep_local_database=True),
)
