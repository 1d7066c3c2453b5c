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
        short="creates `employees`",
        expected="creates table `employees`: id (INTEGER, primary key), name (VARCHAR, NOT NULL), "
                 "salary (INTEGER, nullable)",
        how="In server/:\n    flask db migrate -m \"Initial migration.\"\n    flask db upgrade head",
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
        short="creates `department`",
        expected="creates table `department`: id (INTEGER, primary key), name (VARCHAR, NOT NULL), "
                 "address (VARCHAR); `employees` and its rows stay as they are",
        how="Add the Department model to models.py (table `department`: id, name NOT NULL, address), then in "
            "server/:\n    flask db migrate -m \"add Department\"\n    flask db upgrade head",
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
        short="renames `department` to `departments`",
        expected="renames table `department` to `departments`, keeping its columns and every row",
        how="Set `__tablename__ = \"departments\"` in models.py, run `flask db migrate -m \"rename department\"`, "
            "change the new script's upgrade() to `op.rename_table('department', 'departments')` and its "
            "downgrade() to `op.rename_table('departments', 'department')`, then `flask db upgrade head`.",
        upgrade=("op.rename_table('department', 'departments')",),
        downgrade=("op.rename_table('departments', 'department')",),
        keeps_rows=True,
    ),
    Revision(
        BY_ID["rename_column"],
        RenameColumn("departments", "address", "location", tables=("department", "departments")),
        short="renames `address` to `location`",
        expected="renames column `address` of `departments` to `location`, keeping every value",
        how="Rename `address` to `location` in models.py, run `flask db migrate -m \"rename address\"`, change the "
            "new script to `op.alter_column('departments', 'address', new_column_name='location')` (and back in "
            "downgrade()), then `flask db upgrade head`.",
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
    model_expected="The database stays at revision 3 (step 5), so models.py describes revision 3: Employee as in "
                   "the starter, and Department with table `departments` and the column `address` (not `location`).",
    model_fix="Step 5: your database stays at revision 3 ({revision}); `flask db current` in server/ shows where "
              "it is. At revision 4, go back with `flask db downgrade {revision}`; at revision 1 or 2, come up with "
              "`flask db upgrade {revision}` (not head).\nThen change {models} (not the migrations); {intro}\n\n"
              "{model}\n\n(update __repr__ to use self.address too). Then `flask db migrate` would find nothing to do.",
    reverted_marker="location",
    model_change="put `address` back in models.py",
    model_intro="the Department model should read:",
    model_repr_note="(and `self.address` in __repr__)",
    model_early_note="(Still in step 4, before its upgrade? Files and database are the same then: putting `address`\n"
                     "back leads to the same end, or follow step 4 to its end and then step 5's downgrade.)",
    free_nullability=("address", "location"),  # renames may change it; models_match has the last word
    free_nullability_tables=("department", "departments"),
)

# The mistakes the cohort report counts ("<checkpoint>:<reason>"), named for instructors.
MISTAKE_NAMES = {
    "init:no_server_folder": "no server/ folder: not a copy of the lesson",
    "init:no_migrations_folder": "no server/migrations/ folder: `flask db init` not run (or tables made with db.create_all())",
    "init:migrations_at_root": "migrations/ made at the repository root instead of server/",
    "init:app_py_broken": "server/app.py cannot run `flask db` commands",
    "init:migrations_incomplete": "server/migrations/ incomplete: not as `flask db init` makes it",
    "history:no_revisions": "no revisions yet",
    "history:too_few_revisions": "fewer than four revisions: a step not migrated, or migrations regenerated as one",
    "history:extra_revisions": "an extra revision beyond the lesson's four",
    "history:not_one_line": "history not one line: two heads, or a broken or copied revision file",
    "create_employees:wrong_schema": "revision 1 does more or less than create `employees`",
    "create_department:wrong_schema": "revision 2 does not create `department` (created as `departments` directly?)",
    "create_department:missing_revision": "no revision 2: Department never migrated",
    "rename_table:missing_revision": "no table-rename revision",
    "rename_table:work_in_another_revision": "the table rename done in another revision (steps merged or swapped)",
    "rename_table:does_another_steps_work": "revision 3 does another step's work (steps swapped or skipped)",
    "rename_table:loses_data": "table rename kept as create+drop: the rows of `department` are lost",
    "rename_table:upgrade_fails": "the table-rename upgrade fails as submitted",
    "rename_table:wrong_schema": "revision 3 does not leave step 3's schema (step 4 merged into it, or another change)",
    "rename_column:missing_revision": "no column-rename revision",
    "rename_column:work_in_another_revision": "the column rename done in another revision (steps merged or swapped)",
    "rename_column:loses_data": "column rename kept as add+drop: the values of `address` are lost",
    "rename_column:upgrade_fails": "the column-rename upgrade fails as submitted (op.rename_column, NOT NULL column, ...)",
    "rename_column:wrong_schema": "revision 4 does not rename `address` to `location`",
    "downgrades:downgrade_not_reversed": "a downgrade does not reverse its upgrade (left as autogenerated, or failing)",
    "models_match:models_not_reverted": "models.py not put back after the downgrade (still has `location`)",
    "models_match:models_mismatch": "models.py does not match revision 3",
    "models_match:models_py_broken": "models.py cannot be loaded (an import or syntax error)",
    "local_database:local_database_wrong_revision": "local database not at revision 3 (step 5's downgrade not run)",
    "local_database:local_database_not_migrated": "local database made without `flask db upgrade`",
    "local_database:local_database_rows_missing": "local database lost its rows",
}

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
    extra_revision_note="one for each of steps 1-4, and step 5 adds none",
    model_names=("Employee", "Department"),
    starter_models="the starter (Employee only)",
    first_migrate='flask db migrate -m "Initial migration."',
    mistake_names=MISTAKE_NAMES,
    production=PRODUCTION_RULES,
    further=FURTHER,
)
