"""The lesson, declared once: steps, checkpoints and points, what each revision
does to the schema and to the rows, where the lesson ends, and the code and
words of its fixes.

Each checkpoint has one id used everywhere: the grader's test names, the
points in the JUnit report, the status checklist and the README headings.
The grader, status, review, the walkthrough's checks, the lesson page and
the cohort report all read LESSON; nothing else names a revision position
or a table (definition.py says what each field means).
"""
from .definition import (
    Checkpoint, CreateTable, DataSet, EndState, Lesson, ProductionRules, RenameColumn, RenameTable, Revision, Spec,
)
from .further_steps import FURTHER
from .words import WORDS

CHECKPOINTS = (
    Checkpoint("init", 1, "Migrations initialised with `flask db init`", 5),
    Checkpoint("history", 5, "One linear history of exactly the four lesson revisions", 15),
    Checkpoint("create_employees", 1, "Revision 1 creates `employees`", 10),
    Checkpoint("create_department", 2, "Revision 2 creates `department`", 10),
    Checkpoint("rename_table", 3, "Revision 3 renames `department` to `departments` and keeps the rows", 15),
    Checkpoint("rename_column", 4, "Revision 4 renames `address` to `location` and keeps the values", 15),
    Checkpoint("downgrades", 5, "Every downgrade reverses its upgrade and keeps the data", 10),
    Checkpoint("models_match", 5, "models.py matches the schema at revision 3", 15),
    Checkpoint("local_database", 5, "Your local database is at revision 3 with your rows", 5),
)

BY_ID = {checkpoint.id: checkpoint for checkpoint in CHECKPOINTS}

STEPS = {
    1: "Initial migration: the employees table",
    2: "Add the Department model",
    3: "Rename the table department to departments",
    4: "Rename the column address to location",
    5: "Downgrade one revision",
}

EMPLOYEES = DataSet(
    "employees", ("employees",), ("salary",),
    ((1, "Kai Uri", 89000), (2, "Alena Lee", 125000)),
    step=1, model="Employee",
)
DEPARTMENTS = DataSet(
    "departments", ("departments", "department"), ("location", "address"),
    ((1, "Payroll", "Building A, 4th Floor"), (2, "Human Resources", "Building C, 1st Floor")),
    step=2, model="Department",
)

REVISIONS = (
    Revision(
        BY_ID["create_employees"],
        CreateTable("employees", (
            ("id", Spec("integer", None, True)), ("name", Spec("string", False)), ("salary", Spec("integer", True)),
        )),
        upgrade=(
            "op.create_table('employees',",
            "    sa.Column('id', sa.Integer(), nullable=False),",
            "    sa.Column('name', sa.String(), nullable=False),",
            "    sa.Column('salary', sa.Integer(), nullable=True),",
            "    sa.PrimaryKeyConstraint('id', name=op.f('pk_employees'))",
            ")",
        ),
        downgrade=("op.drop_table('employees')",),
    ),
    Revision(
        BY_ID["create_department"],
        # Created straight away as `departments`, it is still step 2's work (done in the wrong place).
        CreateTable("department", (
            ("id", Spec("integer", None, True)), ("name", Spec("string", False)),
            ("address", Spec("string", None)),  # the lesson leaves it nullable; either is accepted
        ), also_as=("departments",)),
        upgrade=(
            "op.create_table('department',",
            "    sa.Column('id', sa.Integer(), nullable=False),",
            "    sa.Column('name', sa.String(), nullable=False),",
            "    sa.Column('address', sa.String(), nullable=True),",
            "    sa.PrimaryKeyConstraint('id', name=op.f('pk_department'))",
            ")",
        ),
        downgrade=("op.drop_table('department')",),
    ),
    Revision(
        BY_ID["rename_table"],
        RenameTable("department", "departments"),
        upgrade=("op.rename_table('department', 'departments')",),
        downgrade=("op.rename_table('departments', 'department')",),
        keeps_rows=True,
    ),
    Revision(
        BY_ID["rename_column"],
        RenameColumn("departments", "address", "location", tables=("department", "departments")),
        upgrade=("op.alter_column('departments', 'address', new_column_name='location')",),
        downgrade=("op.alter_column('departments', 'location', new_column_name='address')",),
        batch_upgrade=(
            "with op.batch_alter_table('departments', schema=None) as batch_op:",
            "    batch_op.alter_column('address', new_column_name='location')",
        ),
        batch_downgrade=(
            "with op.batch_alter_table('departments', schema=None) as batch_op:",
            "    batch_op.alter_column('location', new_column_name='address')",
        ),
        keeps_rows=True,
    ),
)

END = EndState(
    revision=3,
    step=5,
    tables=(("employees", ("id", "name", "salary")), ("departments", ("id", "name", "address"))),
    kept_values=(("departments", "address"),),
    model_code=(
        "class Department(db.Model):",
        "    __tablename__ = \"departments\"",
        "",
        "    id = db.Column(db.Integer, primary_key=True)",
        "    name = db.Column(db.String, nullable=False)",
        "    address = db.Column(db.String)",
    ),
    reverted_marker="location",
    free_nullability=("address", "location"),  # renames may change it; models_match has the last word
    free_nullability_tables=("department", "departments"),
)

# "Before production": squawk's findings on each revision's PostgreSQL SQL, for a beginner.
# Each says what breaks on a live database (old code still running, locks) and how teams do it instead.
EXPAND_MIGRATE_CONTRACT = (
    "Teams do it in three releases instead (expand, migrate, contract): add the new name next to the old "
    "one and keep both filled, move the code over to the new name, and remove the old name only once no "
    "running code uses it."
)
PRODUCTION_RULES = ProductionRules(
    explanations={
        "renaming-table": "While a new version of an app rolls out, the old version keeps running and still "
                          "queries the old table name: it fails from the moment this runs. " + EXPAND_MIGRATE_CONTRACT,
        "renaming-column": "The app version still running during a deploy reads and writes the old column name "
                           "and fails from the moment this runs. " + EXPAND_MIGRATE_CONTRACT,
        "adding-required-field": "A NOT NULL column without a default fails on a table that has rows, and code "
                                 "still running inserts rows without it. Add it nullable (or with a default), "
                                 "fill the old rows, then make it NOT NULL in a later migration.",
        "adding-not-nullable-field": "Setting NOT NULL scans the whole table while it holds a lock that blocks "
                                     "reads and writes. Teams add a CHECK (... IS NOT NULL) NOT VALID constraint, "
                                     "validate it separately, and only then set NOT NULL.",
        "require-concurrent-index-creation": "A plain CREATE INDEX blocks every write to the table until the index "
                                             "is built, minutes on a big table. Build it with CREATE INDEX "
                                             "CONCURRENTLY: op.create_index(..., postgresql_concurrently=True) "
                                             "inside `with op.get_context().autocommit_block():`.",
        "require-concurrent-index-deletion": "A plain DROP INDEX blocks reads and writes of the table while it "
                                             "waits for its lock. Drop it with DROP INDEX CONCURRENTLY: "
                                             "op.drop_index(..., postgresql_concurrently=True) inside "
                                             "`with op.get_context().autocommit_block():`.",
        "ban-concurrent-index-creation-in-transaction": "PostgreSQL refuses CREATE INDEX CONCURRENTLY inside a "
                                                        "transaction, and Alembic runs each migration in one. Put "
                                                        "it inside `with op.get_context().autocommit_block():`.",
        "prefer-robust-stmts": "Outside a transaction, a migration that fails half-way leaves its first "
                               "statements done, and running it again fails on them. Make each statement safe to "
                               "repeat, e.g. op.create_index(..., if_not_exists=True).",
        "changing-column-type": "Changing a column's type rewrites the whole table under a lock that blocks "
                                "reads and writes, and code still running may send values the new type refuses. "
                                "Teams add a new column of the new type, copy the values over, move the code to "
                                "it, and drop the old column later.",
        "ban-drop-column": "Code still running reads the column and fails, and its values are gone for good. "
                           "Teams first release code that no longer uses the column, then drop it in a later "
                           "migration, with a backup of the data.",
        "ban-drop-table": "Code still running queries the table and fails, and its rows are gone for good. In "
                          "production teams first stop every use of the table and drop it, if ever, in a later "
                          "migration; a downgrade that drops one is for going back in development.",
        "constraint-missing-not-valid": "A new constraint checks every row while it blocks writes to the table. "
                                        "Teams add it NOT VALID first and run VALIDATE CONSTRAINT in a separate "
                                        "migration, which does not block writes.",
        "adding-foreign-key-constraint": "A new foreign key checks every row while it blocks writes to both "
                                         "tables. Teams add it NOT VALID and validate it in a separate migration.",
        "disallowed-unique-constraint": "A UNIQUE constraint builds its index while blocking reads and writes. "
                                        "Teams build a unique index CONCURRENTLY first, then add the constraint "
                                        "USING INDEX.",
    },
    left_out={
        # Integer sizes: SQLAlchemy's Integer is INTEGER, and the lesson's tables hold a handful of rows.
        "prefer-bigint-over-int": "integer sizes: the lesson uses db.Integer, and its tables are small",
        "prefer-bigint-over-smallint": "integer sizes: the lesson uses db.Integer, and its tables are small",
        # Serial versus identity: SQLAlchemy makes an Integer primary key SERIAL on PostgreSQL.
        "prefer-identity": "serial versus identity: SQLAlchemy writes SERIAL for an Integer primary key",
        # Timeouts: Alembic writes none, so every ALTER and DROP would be flagged; where to set them
        # (the database role, env.py) is a deployment's choice, not one revision's.
        "require-lock-timeout": "timeouts: set once for the deployment, not in each revision",
        "require-statement-timeout": "timeouts: set once for the deployment, not in each revision",
    },
)

LESSON = Lesson(
    name="Flask schema migrations lesson",
    steps=STEPS,
    checkpoints=CHECKPOINTS,
    revisions=REVISIONS,
    data_sets=(EMPLOYEES, DEPARTMENTS),
    end=END,
    words=WORDS,
    model_names=("Employee", "Department"),
    first_migrate='flask db migrate -m "Initial migration."',
    production=PRODUCTION_RULES,
    further=FURTHER,
)
