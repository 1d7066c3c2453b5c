"""Backend truths: what Flask-Migrate really does on SQLite and on PostgreSQL.

Every test drives real `flask db` commands in a scratch copy of the starter,
on a throw-away database of each backend, and asserts exactly what each
backend does. The README's "SQLite and PostgreSQL" section states these facts.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from testing.databases.database import throwaway_database
from testing.maintainers.walkthrough import copy_starter, flask_environment

EMPLOYEES = [(1, "Kai Uri", 89000), (2, "Alena Lee", 125000)]

# Hand-written revisions (upgrade body, downgrade body), as a student edits them.
ADD_EMAIL = (
    "op.add_column('employees', sa.Column('email', sa.String(), nullable=True))",
    "op.drop_column('employees', 'email')",
)
BAD_SQL = "op.execute('UPDATE no_such_table SET x = 1')"
RENAME_THEN_FAIL = (
    "op.rename_table('employees', 'staff')\n" + BAD_SQL,
    "op.rename_table('staff', 'employees')",
)
RENAMES = {
    "plain": (
        "op.rename_table('employees', 'staff')\n"
        "op.alter_column('staff', 'salary', new_column_name='pay')",
        "op.alter_column('staff', 'pay', new_column_name='salary')\n"
        "op.rename_table('staff', 'employees')",
    ),
    "batch": (
        "op.rename_table('employees', 'staff')\n"
        "with op.batch_alter_table('staff') as batch_op:\n"
        "    batch_op.alter_column('salary', new_column_name='pay')",
        "with op.batch_alter_table('staff') as batch_op:\n"
        "    batch_op.alter_column('pay', new_column_name='salary')\n"
        "op.rename_table('staff', 'employees')",
    ),
}
NULLABLE_NAME = {
    "plain": (
        "op.alter_column('employees', 'name', existing_type=sa.String(), nullable=True)",
        "op.alter_column('employees', 'name', existing_type=sa.String(), nullable=False)",
    ),
    "batch": (
        "with op.batch_alter_table('employees') as batch_op:\n"
        "    batch_op.alter_column('name', existing_type=sa.String(), nullable=True)",
        "with op.batch_alter_table('employees') as batch_op:\n"
        "    batch_op.alter_column('name', existing_type=sa.String(), nullable=False)",
    ),
}


def indent(code):
    return "\n".join("    " + line for line in code.splitlines())


class Checkout:
    """A scratch copy of the lesson and the database its `flask` commands use."""

    def __init__(self, root, url):
        self.server = Path(root) / "server"
        self.url = url

    def flask(self, *args, ok=True, stdin=None):
        """Run `flask ...` in server/; ok=True/False asserts the outcome. Returns the output."""
        env = flask_environment(self.url)
        result = subprocess.run(
            [sys.executable, "-m", "flask", *args],
            cwd=self.server,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = result.stdout + result.stderr
        if ok is not None:
            assert (result.returncode == 0) == ok, f"`flask {' '.join(args)}` exited {result.returncode}:\n{output}"
        return output

    def revision_file(self, rev):
        (path,) = (self.server / "migrations" / "versions").glob(f"{rev}_*.py")
        return path

    def write_revision(self, rev, message, bodies):
        """`flask db revision`, then fill in upgrade() and downgrade() by hand."""
        self.flask("db", "revision", "-m", message, "--rev-id", rev)
        path = self.revision_file(rev)
        text = path.read_text()
        for function, body in zip(("upgrade", "downgrade"), bodies):
            empty = f"def {function}():\n    pass\n"
            assert text.count(empty) == 1, f"unexpected template in {path}:\n{text}"
            text = text.replace(empty, f"def {function}():\n{indent(body)}\n")
        path.write_text(text)

    def edit_revision(self, rev, old, new):
        path = self.revision_file(rev)
        text = path.read_text()
        assert old in text, f"{old!r} not in {path}"
        path.write_text(text.replace(old, new))

    def query(self, sql):
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as connection:
                result = connection.execute(sa.text(sql))
                return [tuple(row) for row in result] if result.returns_rows else None
        finally:
            engine.dispose()

    def version(self):
        return [row[0] for row in self.query("SELECT version_num FROM alembic_version")]

    def rows(self, table):
        return self.query(f"SELECT * FROM {table} ORDER BY id")

    def schema(self):
        """Every table with its columns, keys, indexes and constraints, as reflected."""
        engine = sa.create_engine(self.url)
        try:
            inspector = sa.inspect(engine)
            return {
                table: {
                    "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                    "primary_key": inspector.get_pk_constraint(table),
                    "foreign_keys": inspector.get_foreign_keys(table),
                    "indexes": inspector.get_indexes(table),
                    "unique": inspector.get_unique_constraints(table),
                }
                for table in inspector.get_table_names()
            }
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Scratch checkouts after `flask db init` and the initial migration (0001),
    plus hand-written revisions; each made once per module and copied by tests."""
    made = {}

    def make(name, *revisions):
        if name not in made:
            root = tmp_path_factory.mktemp(f"template-{name}")
            with throwaway_database("sqlite") as url:
                checkout = Checkout(root, url)
                if name == "initial":
                    copy_starter(root)
                    checkout.flask("db", "init")
                    # Autogenerate compares with a database; an empty one gives the whole table.
                    checkout.flask("db", "migrate", "-m", "Initial migration.", "--rev-id", "0001")
                else:
                    shutil.copytree(make("initial"), root, dirs_exist_ok=True)
                for rev, message, bodies in revisions:
                    checkout.write_revision(rev, message, bodies)
            made[name] = root
        return made[name]

    return make


@pytest.fixture
def start(template, backend, tmp_path):
    """A copy of a template on a fresh database of `backend`, upgraded to 0001 with two employees."""
    with throwaway_database(backend) as url:

        def start(name, *revisions):
            root = tmp_path / "checkout"
            shutil.copytree(template(name, *revisions), root)
            checkout = Checkout(root, url)
            checkout.flask("db", "upgrade", "0001")
            checkout.query("INSERT INTO employees (name, salary) VALUES ('Kai Uri', 89000), ('Alena Lee', 125000)")
            return checkout

        yield start


def renamed(columns, old, new):
    return [(new if name == old else name, kind, nullable) for name, kind, nullable in columns]


@pytest.mark.parametrize("mode", ["plain", "batch"])
def test_table_and_column_renames_keep_rows(start, backend, mode):
    checkout = start(f"rename-{mode}", ("0002", "rename employees and salary", RENAMES[mode]))
    before = checkout.schema()

    checkout.flask("db", "upgrade")
    after = checkout.schema()
    assert set(after) == {"alembic_version", "staff"}
    assert after["staff"]["columns"] == renamed(before["employees"]["columns"], "salary", "pay")
    assert after["staff"]["primary_key"]["constrained_columns"] == ["id"]
    assert checkout.rows("staff") == EMPLOYEES
    assert checkout.version() == ["0002"]
    # The renamed table still hands out new ids after the old ones.
    checkout.query("INSERT INTO staff (name, pay) VALUES ('Sam Ito', 70000)")
    assert checkout.rows("staff") == EMPLOYEES + [(3, "Sam Ito", 70000)]

    checkout.flask("db", "downgrade", "0001")
    assert checkout.schema() == before
    assert checkout.rows("employees") == EMPLOYEES + [(3, "Sam Ito", 70000)]
    assert checkout.version() == ["0001"]


def test_changing_a_column_needs_batch_mode_on_sqlite(start, backend):
    checkout = start("nullable-plain", ("0002", "name may be empty", NULLABLE_NAME["plain"]))
    before = checkout.schema()
    assert ("name", "VARCHAR", False) in before["employees"]["columns"]

    if backend == "postgresql":
        # PostgreSQL has ALTER COLUMN ... DROP NOT NULL.
        checkout.flask("db", "upgrade")
        assert ("name", "VARCHAR", True) in checkout.schema()["employees"]["columns"]
        checkout.flask("db", "downgrade", "0001")
        assert checkout.schema() == before
    else:
        # SQLite's ALTER TABLE cannot change a column: a plain alter_column fails, nothing changes.
        output = checkout.flask("db", "upgrade", ok=False)
        assert 'near "ALTER": syntax error' in output
        assert checkout.schema() == before
        assert checkout.version() == ["0001"]

    # Batch mode works on both: SQLite gets a new table with the rows copied over.
    checkout.edit_revision("0002", NULLABLE_NAME["plain"][0], indent(NULLABLE_NAME["batch"][0]).lstrip())
    checkout.flask("db", "upgrade")
    after = checkout.schema()
    assert after["employees"]["columns"] == [
        (name, kind, True if name == "name" else nullable) for name, kind, nullable in before["employees"]["columns"]
    ]
    assert checkout.rows("employees") == EMPLOYEES
    assert checkout.version() == ["0002"]


def test_a_migration_that_fails_half_way(start, backend):
    """0002 adds a column; 0003 renames the table, then runs invalid SQL. One `flask db upgrade` runs both."""
    checkout = start(
        "failing",
        ("0002", "add email", ADD_EMAIL),
        ("0003", "rename then fail", RENAME_THEN_FAIL),
    )
    before = checkout.schema()
    output = checkout.flask("db", "upgrade", ok=False)

    if backend == "postgresql":
        # Transactional DDL: the whole command is one transaction, rolled back at the error.
        assert "Will assume transactional DDL." in output
        assert 'relation "no_such_table" does not exist' in output
        assert checkout.schema() == before
        assert checkout.version() == ["0001"]
        assert checkout.rows("employees") == EMPLOYEES
        # Recovery: fix the migration and upgrade again.
        checkout.edit_revision("0003", BAD_SQL, "")
        checkout.flask("db", "upgrade")
    else:
        # Each statement is final: 0002 is done and recorded, 0003 ran up to the error.
        assert "Will assume non-transactional DDL." in output
        assert "no such table: no_such_table" in output
        half = checkout.schema()
        assert set(half) == {"alembic_version", "staff"}
        assert half["staff"]["columns"] == before["employees"]["columns"] + [("email", "VARCHAR", True)]
        assert checkout.version() == ["0002"]
        assert "0002" in checkout.flask("db", "current")
        assert checkout.rows("staff") == [row + (None,) for row in EMPLOYEES]
        # Fixing the file is not enough: 0003 starts again from the beginning.
        checkout.edit_revision("0003", BAD_SQL, "")
        assert "no such table: employees" in checkout.flask("db", "upgrade", ok=False)
        # The schema already is what the fixed 0003 makes, so record that instead of running it.
        checkout.flask("db", "stamp", "0003")
        assert "0003 (head)" in checkout.flask("db", "current")

    final = checkout.schema()
    assert set(final) == {"alembic_version", "staff"}
    assert [c[0] for c in final["staff"]["columns"]] == ["id", "name", "salary", "email"]
    assert checkout.rows("staff") == [row + (None,) for row in EMPLOYEES]
    assert checkout.version() == ["0003"]
    # And the chain works again in both directions.
    checkout.flask("db", "downgrade", "0001")
    assert checkout.schema() == before
    assert checkout.rows("employees") == EMPLOYEES
    checkout.flask("db", "upgrade")
    assert checkout.version() == ["0003"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_recovery_by_undoing_the_half_applied_change(start, backend):
    checkout = start(
        "failing",
        ("0002", "add email", ADD_EMAIL),
        ("0003", "rename then fail", RENAME_THEN_FAIL),
    )
    checkout.flask("db", "upgrade", ok=False)
    assert checkout.version() == ["0002"]
    # Undo what 0003 did before the error, in `flask shell`.
    shell = (
        "from sqlalchemy import text\n"
        "db.session.execute(text('ALTER TABLE staff RENAME TO employees'))\n"
        "db.session.commit()\n"
    )
    checkout.flask("shell", stdin=shell)
    assert set(checkout.schema()) == {"alembic_version", "employees"}

    checkout.edit_revision("0003", BAD_SQL, "")
    checkout.flask("db", "upgrade")
    assert checkout.version() == ["0003"]
    assert set(checkout.schema()) == {"alembic_version", "staff"}
    assert checkout.rows("staff") == [row + (None,) for row in EMPLOYEES]
