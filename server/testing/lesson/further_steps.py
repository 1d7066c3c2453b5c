"""The lesson's optional "Going further" steps, declared as data (going_further.py
says how they are judged): after step 5, upgrade back to the head and continue
the chain with what teams meet next (six revisions, two of them branches).

    6. a NOT NULL column on a table with rows: `employees.email`, added
       nullable, backfilled, then made NOT NULL
    7. a data migration: `departments.building` filled from `location`
       (sa.text() with bound parameters), dropped again by the downgrade
    8. an index on `employees.email`, CREATE INDEX CONCURRENTLY on PostgreSQL
       (outside the migration's transaction), a plain index on SQLite
    9. two heads, one merge: `employees.phone` (revision 8) and a teammate's
       `departments.budget` (revision 9), both made from revision 7, joined by
       the revision `flask db merge heads` writes (revision 10, no schema change)
   10. no revision: a second database made with `db.create_all()`, which Alembic
       knows nothing about, recorded at the head with `flask db stamp head`
       (judged on the student's own copy, when there is one)
"""
from .definition import AddColumn, Checkpoint, EndState, Filled, Further, Indexed, LegacyDatabase, Merge, Revision, Spec
from .further_words import FURTHER_WORDS


class NoSchemaChange:
    """A revision whose work the columns do not show (an index): judged by what it leaves."""

    def done_by(self, before, after):
        return False

    def expected_after(self, specs, before):
        return specs


CHECKPOINTS = (
    Checkpoint("add_email", 6, "Revision 5 adds `email` NOT NULL to `employees`, its rows filled in", 20, True),
    Checkpoint("fill_building", 7, "Revision 6 fills `building` from `location` and reverses cleanly", 20, True),
    Checkpoint("index_email", 8, "Revision 7 indexes `employees.email` (concurrently on PostgreSQL)", 20, True),
    Checkpoint("add_phone", 9, "Revision 8 adds `phone` to `employees`, on a branch from revision 7", 10, True),
    Checkpoint("add_budget", 9, "Revision 9, a teammate's, adds `budget` to `departments`, also from revision 7",
               10, True),
    Checkpoint("merge_heads", 9, "Revision 10 merges revisions 8 and 9 and changes no table", 10, True),
    Checkpoint("stamp_legacy", 10, "A database made with `db.create_all()` is stamped at the revision it is at", 20,
               True),
)
BY_ID = {checkpoint.id: checkpoint for checkpoint in CHECKPOINTS}

STEPS = {
    6: "Going further: a NOT NULL column on a table with rows",
    7: "Going further: a data migration that reverses",
    8: "Going further: an index without locking writes",
    9: "Going further: two heads, one merge",
    10: "Going further: a database Alembic knows nothing about",
}

REVISIONS = (
    Revision(
        BY_ID["add_email"],
        AddColumn("employees", "email", Spec("string", False)),
        upgrade=(
            "with op.batch_alter_table('employees', schema=None) as batch_op:",
            "    batch_op.add_column(sa.Column('email', sa.String(), nullable=True))",
            "",
            "op.execute(sa.text(",
            "    \"UPDATE employees SET email = lower(replace(name, ' ', '.')) || '@example.com' \"",
            "    \"WHERE email IS NULL\"",
            "))",
            "",
            "with op.batch_alter_table('employees', schema=None) as batch_op:",
            "    batch_op.alter_column('email', existing_type=sa.String(), nullable=False)",
        ),
        downgrade=(
            "with op.batch_alter_table('employees', schema=None) as batch_op:",
            "    batch_op.drop_column('email')",
        ),
        keeps_rows=True,
    ),
    Revision(
        BY_ID["fill_building"],
        AddColumn("departments", "building", Spec("string", None)),
        upgrade=(
            "with op.batch_alter_table('departments', schema=None) as batch_op:",
            "    batch_op.add_column(sa.Column('building', sa.String(), nullable=True))",
            "",
            "connection = op.get_bind()",
            "rows = connection.execute(sa.text(\"SELECT id, location FROM departments\")).all()",
            "for row in rows:",
            "    building = row.location.split(',')[0] if row.location else None",
            "    connection.execute(",
            "        sa.text(\"UPDATE departments SET building = :building WHERE id = :id\"),",
            "        {\"building\": building, \"id\": row.id},",
            "    )",
        ),
        downgrade=(
            "with op.batch_alter_table('departments', schema=None) as batch_op:",
            "    batch_op.drop_column('building')",
        ),
        keeps_rows=True,
    ),
    Revision(
        BY_ID["index_email"],
        NoSchemaChange(),
        upgrade=(
            "with op.get_context().autocommit_block():",
            "    op.create_index(op.f('ix_employees_email'), 'employees', ['email'], unique=False,",
            "                    postgresql_concurrently=True, if_not_exists=True)",
        ),
        downgrade=(
            "with op.get_context().autocommit_block():",
            "    op.drop_index(op.f('ix_employees_email'), table_name='employees',",
            "                  postgresql_concurrently=True, if_exists=True)",
        ),
        keeps_rows=True,
    ),
    Revision(
        BY_ID["add_phone"],
        AddColumn("employees", "phone", Spec("string", True)),
        upgrade=(
            "with op.batch_alter_table('employees', schema=None) as batch_op:",
            "    batch_op.add_column(sa.Column('phone', sa.String(), nullable=True))",
        ),
        downgrade=(
            "with op.batch_alter_table('employees', schema=None) as batch_op:",
            "    batch_op.drop_column('phone')",
        ),
        keeps_rows=True,
    ),
    Revision(
        BY_ID["add_budget"],
        AddColumn("departments", "budget", Spec("integer", True)),
        upgrade=(
            "with op.batch_alter_table('departments', schema=None) as batch_op:",
            "    batch_op.add_column(sa.Column('budget', sa.Integer(), nullable=True))",
        ),
        downgrade=(
            "with op.batch_alter_table('departments', schema=None) as batch_op:",
            "    batch_op.drop_column('budget')",
        ),
        keeps_rows=True,
    ),
    Revision(
        BY_ID["merge_heads"],
        NoSchemaChange(),  # its down_revision names both branches (going_further.py checks it)
        upgrade=("pass",),
        downgrade=("pass",),
    ),
)

EMPLOYEE = (
    "class Employee(db.Model):",
    "    __tablename__ = \"employees\"",
    "",
    "    id = db.Column(db.Integer, primary_key=True)",
    "    name = db.Column(db.String, nullable=False)",
    "    salary = db.Column(db.Integer)",
)
DEPARTMENT = (
    "class Department(db.Model):",
    "    __tablename__ = \"departments\"",
    "",
    "    id = db.Column(db.Integer, primary_key=True)",
    "    name = db.Column(db.String, nullable=False)",
    "    location = db.Column(db.String)",
)


def end_after(position, step, model_code, departments=("id", "name", "location"),
              employees=("id", "name", "salary", "email")):
    """Where models.py and the local database stand once optional revision `position` is done."""
    return EndState(
        revision=position,
        step=step,
        tables=(("employees", employees), ("departments", departments)),
        kept_values=(),  # read by read_database for the lesson's own end only; the replay checks the values
        model_code=model_code,
        free_nullability=("address", "location"),
        free_nullability_tables=("department", "departments"),
    )


WITH_EMAIL = EMPLOYEE + ("    email = db.Column(db.String, nullable=False)",)
WITH_INDEX = EMPLOYEE + ("    email = db.Column(db.String, nullable=False, index=True)",)
WITH_BUILDING = DEPARTMENT + ("    building = db.Column(db.String)",)
WITH_PHONE = WITH_INDEX + ("    phone = db.Column(db.String)",)
WITH_BUDGET = WITH_BUILDING + ("    budget = db.Column(db.Integer)",)
BUILDING = ("id", "name", "location", "building")
PHONE = ("id", "name", "salary", "email", "phone")

ENDS = (
    end_after(5, 6, WITH_EMAIL + ("",) + DEPARTMENT),
    end_after(6, 7, WITH_EMAIL + ("",) + WITH_BUILDING, departments=BUILDING),
    end_after(7, 8, WITH_INDEX + ("",) + WITH_BUILDING, departments=BUILDING),
    end_after(8, 9, WITH_PHONE + ("",) + WITH_BUILDING, departments=BUILDING, employees=PHONE),
    end_after(9, 9, WITH_PHONE + ("",) + WITH_BUDGET, departments=BUILDING + ("budget",), employees=PHONE),
    end_after(10, 9, WITH_PHONE + ("",) + WITH_BUDGET, departments=BUILDING + ("budget",), employees=PHONE),
)

FURTHER = Further(
    steps=STEPS,
    revisions=REVISIONS,
    ends=ENDS,
    marks=(r"\bemail\b", r"\bbuilding\b", r"create_index|CREATE\s+INDEX", r"\bphone\b", r"\bbudget\b",
           r"(?m)^down_revision\s*(?::[^=\n]*)?=\s*\(\s*['\"]"),  # the merge: a tuple of parents
    leaves={
        "add_email": (Filled("employees", "email", says="every existing employee has an email"),),
        "fill_building": (Filled("departments", "building", ((1, "Building A"), (2, "Building C")),
                                 says="each department's `building` is the part of `location` before the comma"),),
        "index_email": (Indexed("employees", "email", says="an index on `employees.email`"),),
    },
    words=FURTHER_WORDS,
    merge=Merge(branches=(8, 9), message="merge phone and budget"),
    legacy=LegacyDatabase(BY_ID["stamp_legacy"], env_file="legacy.env"),
)
