"""The data-loss review.

First find_risks and friends on operation objects (recorded from real script
files, or shaped like autogenerate's), then the real thing on both backends:
`flask db migrate` and `flask lesson review` run as subprocesses in copies of
the reference walkthrough's checkout as steps 3 and 4 begin.
"""
import ast
import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import op as op_module
from alembic.operations import ops

from testing.databases import operations as analysis
from testing.databases.database import throwaway_database
from testing.maintainers.walkthrough import flask_environment
from testing.student.review import run_review

from .lesson_builds import reference_solution, shared_build, snapshot_of

HEADER = '''"""{message}"""
from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None

'''

# What autogenerate writes for steps 3 and 4 (SQLite), as a student finds it.
STEP3_GENERATED = """
def upgrade():
    op.create_table('departments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('address', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments'))
    )
    op.drop_table('department')


def downgrade():
    op.create_table('department',
    sa.Column('id', sa.INTEGER(), nullable=False),
    sa.Column('name', sa.VARCHAR(), nullable=False),
    sa.Column('address', sa.VARCHAR(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_department'))
    )
    op.drop_table('departments')
"""
STEP4_GENERATED = """
def upgrade():
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('location', sa.String(), nullable=True))
        batch_op.drop_column('address')


def downgrade():
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.VARCHAR(), nullable=True))
        batch_op.drop_column('location')
"""
STEP3_FIXED = """
def upgrade():
    op.rename_table('department', 'departments')


def downgrade():
    op.rename_table('departments', 'department')
"""
STEP4_FIXED = """
def upgrade():
    op.alter_column('departments', 'address', new_column_name='location')


def downgrade():
    op.alter_column('departments', 'location', new_column_name='address')
"""

DEPARTMENT_COLUMNS = {"id": sa.INTEGER(), "name": sa.VARCHAR(), "address": sa.VARCHAR()}


def write_script(folder, functions, message="a change", revision="aaaa00000001", down=None):
    path = Path(folder) / f"{revision}_{message.replace(' ', '_')}.py"
    path.write_text(HEADER.format(message=message, revision=revision, down=down) + textwrap.dedent(functions))
    return path


def kinds(risks):
    return [risk.kind for risk in risks]


# ---------------------------------------------------------------- recording


def test_recording_an_unedited_step3_script_gives_its_operations(tmp_path):
    recorded = analysis.record_script_operations(write_script(tmp_path, STEP3_GENERATED))
    assert recorded.error is None
    assert [type(o) for o in recorded.operations] == [ops.CreateTableOp, ops.DropTableOp]
    assert analysis.describe(recorded.operations) == [
        "creates table departments (id, name, address)",
        "drops table department",
    ]
    down = analysis.record_script_operations(recorded.path, "downgrade")
    assert analysis.describe(down.operations) == ["creates table department (id, name, address)", "drops table departments"]


def test_a_batch_block_is_recorded_as_one_modify_table_ops(tmp_path):
    recorded = analysis.record_script_operations(write_script(tmp_path, STEP4_GENERATED))
    assert recorded.error is None
    [block] = recorded.operations
    assert isinstance(block, ops.ModifyTableOps) and block.table_name == "departments"
    assert [type(o) for o in block.ops] == [ops.AddColumnOp, ops.DropColumnOp]
    assert analysis.describe(recorded.operations) == [
        "adds column location to departments",
        "drops column address from departments",
    ]


def test_recording_touches_no_database_leaves_no_bytecode_and_restores_op(tmp_path):
    path = write_script(tmp_path, STEP3_FIXED)
    had_proxy = hasattr(op_module, "_proxy")
    before = getattr(op_module, "_proxy", None)
    recorded = analysis.record_script_operations(path)
    assert analysis.describe(recorded.operations) == ["renames table department to departments"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no __pycache__, no database file
    assert hasattr(op_module, "_proxy") == had_proxy and getattr(op_module, "_proxy", None) is before


def test_op_rename_column_is_reported_with_the_fix(tmp_path):
    path = write_script(tmp_path, """
        def upgrade():
            op.create_index('ix_x', 'employees', ['name'])
            op.rename_column('departments', 'address', 'location')

        def downgrade():
            pass
        """)
    recorded = analysis.record_script_operations(path)
    assert isinstance(recorded.error, AttributeError)
    assert analysis.describe(recorded.operations) == ["creates index ix_x on employees (name)"]
    assert path.name in recorded.problem and "rename_column" in recorded.problem
    if sys.version_info >= (3, 10):  # AttributeError.name and .obj say what was missing
        assert "Alembic has no op.rename_column()" in recorded.problem
        assert "op.alter_column('<table>', '<old name>', new_column_name='<new name>')" in recorded.problem


@pytest.mark.skipif(sys.version_info < (3, 10), reason="AttributeError.name and .obj are Python 3.10+")
def test_mistakes_inside_a_batch_block_get_batch_fixes(tmp_path):
    path = write_script(tmp_path, """
        def upgrade():
            with op.batch_alter_table('departments') as batch_op:
                batch_op.rename_column('address', 'location')

        def downgrade():
            with op.batch_alter_table('departments') as batch_op:
                batch_op.rename_table('departments', 'department')
        """)
    up = analysis.record_script_operations(path).problem
    assert "Alembic has no batch_op.rename_column()" in up
    assert "batch_op.alter_column('<old name>', new_column_name='<new name>')" in up
    down = analysis.record_script_operations(path, "downgrade").problem
    assert "call op.rename_table() outside the batch_alter_table block" in down


def test_a_script_using_the_connection_itself_is_recorded_up_to_that_call(tmp_path):
    path = write_script(tmp_path, """
        def upgrade():
            op.add_column('employees', sa.Column('email', sa.String()))
            op.get_bind().execute(sa.text("UPDATE employees SET email = ''"))

        def downgrade():
            op.drop_column('employees', 'email')
        """)
    recorded = analysis.record_script_operations(path)
    assert analysis.describe(recorded.operations) == ["adds column email to employees"]
    assert "op.get_bind()" in recorded.problem and "cannot be fully read" in recorded.problem


def test_a_broken_file_is_an_error_not_a_crash(tmp_path):
    path = write_script(tmp_path, "def upgrade(:\n    pass\n")
    recorded = analysis.record_script_operations(path)
    assert isinstance(recorded.error, SyntaxError) and recorded.operations == []
    assert path.name in recorded.problem


# ------------------------------------------------------------ find_risks


def autogenerate_drop(name, columns):
    """A DropTableOp as autogenerate makes it: it carries the reflected table."""
    table = sa.Table(name, sa.MetaData(), *(sa.Column(c, t) for c, t in columns.items()))
    return ops.DropTableOp.from_table(table)


def create(table_name, columns):
    return ops.CreateTableOp(table_name, [sa.Column(c, t) for c, t in columns.items()])


def test_step3_recorded_with_database_facts_is_exactly_one_table_rename(tmp_path):
    recorded = analysis.record_script_operations(write_script(tmp_path, STEP3_GENERATED))
    [risk] = analysis.find_risks(recorded.operations, {"department": 2}, {"department": DEPARTMENT_COLUMNS})
    assert (risk.kind, risk.table, risk.new_name, risk.rows, risk.loses_data) == (
        "table_rename", "department", "departments", 2, True)
    assert risk.fix_upgrade == "op.rename_table('department', 'departments')"
    assert risk.fix_downgrade == "op.rename_table('departments', 'department')"
    assert "'department'" in risk.message and "'departments'" in risk.message and "2 rows" in risk.message


def test_autogenerate_shaped_rename_is_found_without_any_database():
    operations = [create("departments", {"id": sa.Integer(), "name": sa.String(), "address": sa.String()}),
                  autogenerate_drop("department", DEPARTMENT_COLUMNS)]
    [risk] = analysis.find_risks(operations)
    assert (risk.kind, risk.rows, risk.loses_data) == ("table_rename", None, False)


def test_risks_found_in_a_downgrade_say_the_downgrade_deletes():
    operations = [create("department", {"id": sa.Integer(), "name": sa.String(), "address": sa.String()}),
                  autogenerate_drop("departments", DEPARTMENT_COLUMNS)]
    [risk] = analysis.find_risks(operations, row_counts={"departments": 2}, direction="downgrade")
    assert "As written, the downgrade deletes the 2 rows of 'departments'." in risk.message


def test_a_recorded_drop_without_facts_cannot_be_called_a_rename(tmp_path):
    recorded = analysis.record_script_operations(write_script(tmp_path, STEP3_GENERATED))
    assert analysis.find_risks(recorded.operations) == []
    [risk] = analysis.find_risks(recorded.operations, {"department": 2})
    assert (risk.kind, risk.table, risk.rows) == ("drop_with_rows", "department", 2)


def test_a_new_table_with_other_columns_is_a_drop_not_a_rename():
    operations = [create("departments", {"id": sa.Integer(), "title": sa.String()}),
                  autogenerate_drop("department", DEPARTMENT_COLUMNS)]
    [risk] = analysis.find_risks(operations, {"department": 3})
    assert (risk.kind, risk.table, risk.column, risk.rows) == ("drop_with_rows", "department", None, 3)
    assert "3 rows" in risk.message


def test_same_names_but_incompatible_types_are_not_a_rename():
    operations = [create("departments", {"id": sa.Integer(), "name": sa.Integer(), "address": sa.String()}),
                  autogenerate_drop("department", DEPARTMENT_COLUMNS)]
    assert kinds(analysis.find_risks(operations, {"department": 1})) == ["drop_with_rows"]


def test_dropping_an_empty_table_is_no_risk():
    assert analysis.find_risks([ops.DropTableOp("projects")], {"projects": 0}) == []
    assert analysis.find_risks([ops.DropColumnOp("projects", "title")], {"projects": 0}) == []


def test_step4_recorded_is_a_column_rename_in_batch_form(tmp_path):
    recorded = analysis.record_script_operations(write_script(tmp_path, STEP4_GENERATED))
    [risk] = analysis.find_risks(recorded.operations, {"departments": 2}, {"departments": DEPARTMENT_COLUMNS})
    assert (risk.kind, risk.table, risk.column, risk.new_name, risk.rows) == (
        "column_rename", "departments", "address", "location", 2)
    assert risk.fix_upgrade == (
        "with op.batch_alter_table('departments', schema=None) as batch_op:\n"
        "    batch_op.alter_column('address', new_column_name='location')"
    )
    assert risk.fix_downgrade == (
        "with op.batch_alter_table('departments', schema=None) as batch_op:\n"
        "    batch_op.alter_column('location', new_column_name='address')"
    )


def test_a_column_rename_outside_batch_gets_the_plain_fix():
    operations = [ops.AddColumnOp("departments", sa.Column("location", sa.String())),
                  ops.DropColumnOp("departments", "address")]
    [risk] = analysis.find_risks(operations, {"departments": 2}, {"departments": DEPARTMENT_COLUMNS})
    assert risk.fix_upgrade == "op.alter_column('departments', 'address', new_column_name='location')"
    assert risk.fix_downgrade == "op.alter_column('departments', 'location', new_column_name='address')"
    [forced] = analysis.find_risks(operations, {"departments": 2}, {"departments": DEPARTMENT_COLUMNS}, batch=True)
    assert forced.fix_upgrade.startswith("with op.batch_alter_table('departments'")


def test_a_column_of_another_type_is_no_rename_and_the_drop_loses_data():
    operations = [ops.AddColumnOp("departments", sa.Column("floor", sa.Integer())),
                  ops.DropColumnOp("departments", "address")]
    [risk] = analysis.find_risks(operations, {"departments": 2}, {"departments": DEPARTMENT_COLUMNS})
    assert (risk.kind, risk.table, risk.column, risk.rows) == ("drop_with_rows", "departments", "address", 2)


def test_not_null_column_without_default_on_a_table_with_rows():
    column = sa.Column("email", sa.String(), nullable=False)
    [risk] = analysis.find_risks([ops.AddColumnOp("employees", column)], {"employees": 2})
    assert (risk.kind, risk.table, risk.column, risk.rows, risk.loses_data) == (
        "not_null_no_default", "employees", "email", 2, False)
    assert "server_default" in risk.message and "fails" in risk.message
    assert "nullable=True" in risk.fix_upgrade and "nullable=False" in risk.fix_upgrade
    # fine with a default, on an empty table, or when it may be NULL
    with_default = sa.Column("email", sa.String(), nullable=False, server_default="")
    assert analysis.find_risks([ops.AddColumnOp("employees", with_default)], {"employees": 2}) == []
    assert analysis.find_risks([ops.AddColumnOp("employees", column)], {"employees": 0}) == []
    nullable = sa.Column("email", sa.String())
    assert analysis.find_risks([ops.AddColumnOp("employees", nullable)], {"employees": 2}) == []


def test_real_renames_are_not_flagged(tmp_path):
    for functions in (STEP3_FIXED, STEP4_FIXED):
        recorded = analysis.record_script_operations(write_script(tmp_path, functions, revision=os.urandom(6).hex()))
        assert recorded.error is None and recorded.operations
        assert analysis.find_risks(recorded.operations, {"department": 2, "departments": 2},
                                   {"department": DEPARTMENT_COLUMNS, "departments": DEPARTMENT_COLUMNS}) == []


def test_state_after_follows_renames_so_a_later_drop_counts_the_moved_rows():
    first = [ops.RenameTableOp("department", "departments")]
    rows, columns = analysis.state_after(first, {"department": 2}, {"department": DEPARTMENT_COLUMNS})
    assert rows == {"departments": 2} and set(columns["departments"]) == {"id", "name", "address"}
    second = [ops.AlterColumnOp("departments", "address", modify_name="location")]
    rows, columns = analysis.state_after(second, rows, columns)
    assert set(columns["departments"]) == {"id", "name", "location"}
    [risk] = analysis.find_risks([ops.DropColumnOp("departments", "location")], rows, columns)
    assert (risk.kind, risk.column, risk.rows) == ("drop_with_rows", "location", 2)


def test_describe_names_what_each_operation_does():
    lines = analysis.describe([
        ops.RenameTableOp("department", "departments"),
        ops.AlterColumnOp("departments", "address", modify_name="location"),
        ops.AlterColumnOp("employees", "name", modify_nullable=True),
        ops.ExecuteSQLOp("UPDATE employees SET salary = 0"),
    ])
    assert lines == [
        "renames table department to departments",
        "renames column address to location in departments",
        "makes employees.name nullable",
        "runs SQL: UPDATE employees SET salary = 0",
    ]
    assert analysis.tables_touched([ops.RenameTableOp("a", "b"), ops.DropColumnOp("c", "x")]) == {"a", "b", "c"}


# --------------------------------------------- run_review, in this process


def lesson_database(url, revision, departments):
    """A database at `revision` with the lesson's `department` table."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
        connection.execute(sa.text(
            "CREATE TABLE department (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, address VARCHAR)"))
        for number, name in enumerate(departments, 1):
            connection.execute(sa.text("INSERT INTO department VALUES (:i, :n, 'Building A')"), {"i": number, "n": name})
    engine.dispose()


def snapshot(url):
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        facts = analysis.database_facts(connection)
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    return facts[0], sorted(facts[1]), version


def test_run_review_reads_pending_scripts_and_changes_nothing(backend, tmp_path, capsys):
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    write_script(versions, "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n",
                 message="add Department", revision="bbbb00000002")
    step3 = write_script(versions, STEP3_GENERATED, message="rename department",
                         revision="cccc00000003", down="bbbb00000002")
    with throwaway_database(backend) as url:
        lesson_database(url, "bbbb00000002", ["Payroll", "Human Resources"])
        before = snapshot(url)
        assert run_review(server_dir=tmp_path, url=url) == 1
        output = capsys.readouterr().out
        assert "at revision bbbb00000002" in output and "1 migration not applied yet" in output
        assert "cccc00000003_rename_department.py" in output
        assert "Table rename written as drop + create" in output and "the 2 rows of 'department'" in output
        assert snapshot(url) == before

        step3.write_text(step3.read_text().split("\ndef upgrade")[0] + STEP3_FIXED)
        assert run_review(server_dir=tmp_path, url=url) == 0
        output = capsys.readouterr().out
        assert "renames table department to departments" in output and "!!" not in output
        assert snapshot(url) == before
    assert not list(tmp_path.rglob("__pycache__"))


def test_run_review_without_migrations_or_without_a_database(tmp_path, capsys):
    assert run_review(server_dir=tmp_path, url=f"sqlite:///{tmp_path / 'app.db'}") == 0
    assert "flask db init" in capsys.readouterr().out

    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    write_script(versions, STEP3_GENERATED, message="rename department", revision="cccc00000003")
    assert run_review(server_dir=tmp_path, url="sqlite:///app.db") == 0  # instance/app.db: not there
    output = capsys.readouterr().out
    assert "(not created yet)" in output and "no revision applied yet" in output
    assert not (tmp_path / "instance").exists()


def test_run_review_explains_a_database_it_cannot_read(tmp_path, capsys):
    (tmp_path / "migrations" / "versions").mkdir(parents=True)
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    assert run_review(server_dir=tmp_path, url=unreachable) == 2
    assert "Cannot review: the database postgresql+psycopg://nobody@127.0.0.1:1/none" in capsys.readouterr().err


# ------------------------------------- the real commands, on both backends


FRAME_RULE = re.compile(r"^-{20,}$")


def flask(scratch, *args):
    """Run `python -m flask ...` in the scratch server/ folder, as a terminal shows it."""
    finished = subprocess.run(
        [sys.executable, "-m", "flask", *args], cwd=scratch.server, env=scratch.env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180,
    )
    return finished.returncode, finished.stdout


def functions_of(text):
    """upgrade() and downgrade() of a revision's code, as syntax trees."""
    return {node.name: ast.dump(node) for node in ast.parse(textwrap.dedent(text)).body
            if isinstance(node, ast.FunctionDef) and node.name in ("upgrade", "downgrade")}


def edit_models(scratch, old, new):
    models = scratch.server / "models.py"
    text = models.read_text()
    assert old in text, f"models.py has no {old!r}"
    models.write_text(text.replace(old, new))


def frame_items(output):
    """The numbered warnings between the rules of the terminal frame."""
    lines = output.splitlines()
    rules = [index for index, line in enumerate(lines) if FRAME_RULE.match(line)]
    assert len(rules) == 2, output
    return [line[1:] for line in lines[rules[0] + 1:rules[1]]]


def file_notes(text):
    """The numbered warnings in the comment block at the top of upgrade()."""
    body = text.split("def upgrade():", 1)[1].split("def downgrade():", 1)[0]
    comments = [line.strip()[2:] if line.strip() != "#" else "" for line in body.splitlines()
                if line.strip().startswith("#")]
    start = comments.index("") + 1
    return comments[start:comments.index("", start)]


class Scratch:
    """A lasting copy of the reference walkthrough after a step, to run `flask` in."""

    def __init__(self, snapshot):
        self.server = snapshot.checkout / "server"
        self.url = snapshot.database_url or f"sqlite:///{self.server / 'instance' / 'app.db'}"
        self.env = flask_environment(snapshot.database_url)

    def new_file(self, before):
        [path] = self.versions() - before
        return path

    def versions(self):
        return set((self.server / "migrations" / "versions").glob("*.py"))

    def revision(self, message):
        """The text of the revision file of that message."""
        [path] = self.server.glob(f"migrations/versions/*_{message.replace(' ', '_')}.py")
        return path.read_text()

    def database_hash(self):
        path = self.server / "instance" / "app.db"
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


class Story:
    """Steps 1-2 by the walkthrough, then steps 3 and 4 as a careless and then
    a careful student would do them, everything recorded for the tests.

    The careless steps run in copies of the reference walkthrough as the step
    begins. The careful ones are the README's own fixes (STEP3_FIXED and
    STEP4_FIXED, checked to be the reference's revisions 3 and 4) in the same
    state: the reference walkthrough ran their `flask lesson review` and
    `flask db upgrade`, so its record of those commands is read, not run again."""

    def play(self, reference, folder, keep):
        walk = reference.result

        def scratch_after(step):
            return Scratch(snapshot_of(reference.snapshots[step], folder / f"after-step-{step}", keep))

        def reference_run(step, command):
            [run] = [run for run in walk.steps[step] if run.command == command]
            return run.returncode, run.output

        self.step_outputs = {step: walk.output(step) for step in (1, 2)}

        # Step 3, unedited, then fixed
        scratch = scratch_after(2)
        self.early_files = {path.name: path.read_text() for path in scratch.versions()}
        edit_models(scratch, '__tablename__ = "department"', '__tablename__ = "departments"')
        before = scratch.versions()
        self.step3_rc, self.step3_output = flask(scratch, "db", "migrate", "-m", "rename department")
        self.step3_file = scratch.new_file(before)
        self.step3_text = self.step3_file.read_text()
        hash_before = scratch.database_hash()
        self.review3 = flask(scratch, "lesson", "review")
        self.review3_kept_database = scratch.database_hash() == hash_before
        self.review3_fixed = reference_run(3, "flask lesson review")
        self.upgrade3 = reference_run(3, "flask db upgrade head")

        # Step 4, unedited, then fixed (the README's way: op.alter_column)
        scratch = scratch_after(3)
        self.reference_step3 = functions_of(scratch.revision("rename department"))
        edit_models(scratch, "address = db.Column(db.String)", "location = db.Column(db.String)")
        before = scratch.versions()
        self.step4_rc, self.step4_output = flask(scratch, "db", "migrate", "-m", "rename address")
        self.step4_file = scratch.new_file(before)
        self.step4_text = self.step4_file.read_text()
        self.review4_fixed = reference_run(4, "flask lesson review")
        self.upgrade4 = reference_run(4, "flask db upgrade head")
        self.departments = [(row["name"], row["location"]) for row in reference.states[4].rows["departments"]]

        # A table that never got rows, not in the models: autogenerate drops it
        scratch = scratch_after(4)
        self.reference_step4 = functions_of(scratch.revision("rename address"))
        engine = sa.create_engine(scratch.url)
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE projects (id INTEGER PRIMARY KEY, title VARCHAR)"))
        engine.dispose()
        before = scratch.versions()
        self.drop_projects = flask(scratch, "db", "migrate", "-m", "drop projects")
        self.drop_projects_text = scratch.new_file(before).read_text()
        self.review_drop = flask(scratch, "lesson", "review")


@pytest.fixture
def story(request, backend):
    """The story on a backend, played once per run and shared by every test (and xdist
    worker) below, in lasting copies of the reference walkthrough."""
    def play(root, keep):
        played = Story()
        played.play(reference_solution(request, backend), root, keep)
        return played

    return shared_build(request, f"review-story-{backend}", f"the review's story on {backend}", play)


def test_steps_1_and_2_give_no_warnings(backend, story):
    for step in (1, 2):
        assert "STOP:" not in story.step_outputs[step] and "review was skipped" not in story.step_outputs[step]
    assert len(story.early_files) == 2
    for text in story.early_files.values():
        assert "REVIEW:" not in text


def test_unedited_step3_warns_of_the_table_rename_in_the_terminal_and_the_file(backend, story):
    assert story.step3_rc == 0, story.step3_output
    output = story.step3_output
    assert "STOP: this migration would DELETE DATA" in output
    assert f" File: migrations/versions/{story.step3_file.name}" in output.splitlines()
    items = frame_items(output)
    assert [line for line in items if re.match(r"\d+\. ", line)] == ["1. Table rename written as drop + create"]
    text = " ".join(line.strip() for line in items)
    assert "Table 'department' is dropped and a new table 'departments'" in text
    assert "(id, name, address)" in text and "the 2 rows of 'department'" in text
    stripped = [line.strip() for line in items]
    assert "op.rename_table('department', 'departments')" in stripped
    assert "op.rename_table('departments', 'department')" in stripped
    # the same notes, as comments at the top of upgrade(), above the generated commands
    assert file_notes(story.step3_text) == items
    upgrade = story.step3_text.split("def upgrade():", 1)[1]
    assert upgrade.index("# REVIEW: this migration would DELETE DATA.") < upgrade.index("op.create_table(")


def test_flask_lesson_review_fails_on_unedited_step3_and_passes_once_fixed(backend, story):
    code, output = story.review3
    assert code == 1, output
    assert story.step3_file.name in output and "the 2 rows of 'department'" in output
    assert "    creates table departments (id, name, address)" in output.splitlines()
    if backend == "sqlite":
        assert story.review3_kept_database
    assert story.reference_step3 == functions_of(STEP3_FIXED)
    code, output = story.review3_fixed
    assert code == 0, output
    assert "renames table department to departments" in output and "!!" not in output
    assert story.upgrade3[0] == 0, story.upgrade3[1]


def test_unedited_step4_warns_of_the_column_rename(backend, story):
    assert story.step4_rc == 0, story.step4_output
    items = frame_items(story.step4_output)
    assert [line for line in items if re.match(r"\d+\. ", line)] == ["1. Column rename written as drop + add"]
    text = " ".join(line.strip() for line in items)
    assert "In table 'departments', column 'address' is dropped and a new column 'location'" in text
    assert "values of 'address' in 2 rows" in text
    stripped = [line.strip() for line in items]
    assert stripped.count("with op.batch_alter_table('departments', schema=None) as batch_op:") == 2
    assert "batch_op.alter_column('address', new_column_name='location')" in stripped
    assert "batch_op.alter_column('location', new_column_name='address')" in stripped
    assert f" File: migrations/versions/{story.step4_file.name}" in story.step4_output.splitlines()
    assert file_notes(story.step4_text) == items


def test_fixed_column_rename_is_not_flagged_and_keeps_the_values(backend, story):
    assert story.reference_step4 == functions_of(STEP4_FIXED)
    code, output = story.review4_fixed
    assert code == 0, output
    assert "renames column address to location in departments" in output and "!!" not in output
    assert story.upgrade4[0] == 0, story.upgrade4[1]
    assert story.departments == [("Payroll", "Building A, 4th Floor"), ("Human Resources", "Building C, 1st Floor")]


def test_dropping_an_empty_table_warns_nothing(backend, story):
    code, output = story.drop_projects
    assert code == 0 and "Detected removed table 'projects'" in output, output
    assert "STOP:" not in output and "REVIEW:" not in story.drop_projects_text
    code, output = story.review_drop
    assert code == 0 and "drops table projects" in output and "!!" not in output, output
