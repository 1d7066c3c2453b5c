"""The grader on broken checkouts: every case fails cleanly, as a real pytest run.

Each case builds a small checkout by hand (the starter's app.py, the final
models.py, the migrations folder of a real `flask db init`, and the four
lesson revisions written out below), breaks it in one way, and grades it with
`pytest --lesson-root=<checkout>` in a subprocess, exactly as an instructor or
CodeGrade would. Each test checks the exit code, which checkpoints fail, the
message a student reads, and that no traceback, internal error or collection
error reaches the output.
"""
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from testing.lesson.checkpoints import CHECKPOINTS
from testing.maintainers.lesson_files import CREATE_DEPARTMENT, CREATE_EMPLOYEES, OLDER_ENV_PY, revision_file
from testing.maintainers.walkthrough import copy_starter
from testing.tests.lesson_builds import copy_reference, reference_solution

GRADER_ROOT = Path(__file__).resolve().parents[3]
ALL = {checkpoint.id for checkpoint in CHECKPOINTS}
NEVER_IN_OUTPUT = ("Traceback", "INTERNALERROR", "ERROR collecting", "error during collection")


# --- running the grader ----------------------------------------------------------------

class Graded:
    def __init__(self, process, junit):
        self.returncode = process.returncode
        self.output = process.stdout
        tree = ElementTree.parse(junit)
        self.failed = set()
        self.passed = set()
        for case in tree.iter("testcase"):
            checkpoint = case.get("name")[len("test_"):]
            failed = case.find("failure") is not None or case.find("error") is not None
            (self.failed if failed else self.passed).add(checkpoint)


def grade(root, tmp_path, *options):
    """`pytest --lesson-root=root` from this grader, as a separate process."""
    junit = tmp_path / "grade.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("LESSON_ROOT", "LESSON_GRADE_DATABASE_URL", "DATABASE_URL")}
    process = subprocess.run(
        [sys.executable, "-m", "pytest", f"--lesson-root={root}", f"--junitxml={junit}", *options],
        cwd=GRADER_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    return Graded(process, junit)


def assert_fails_cleanly(graded, failing, *texts):
    """Exit code 1, exactly `failing` checkpoints failed, every text shown, no crash."""
    output = graded.output
    assert graded.returncode == 1, output
    assert graded.failed == set(failing), output
    for text in texts:
        assert text in output, f"{text!r} not in the output:\n{output}"
    for text in NEVER_IN_OUTPUT:
        assert text not in output, output


# --- a checkout built by hand ----------------------------------------------------------

IDS = ("3f1c2a9b7d01", "3f1c2a9b7d02", "3f1c2a9b7d03", "3f1c2a9b7d04")
FILES = (
    f"{IDS[0]}_initial_migration.py",
    f"{IDS[1]}_add_department.py",
    f"{IDS[2]}_rename_department.py",
    f"{IDS[3]}_rename_address.py",
)
LESSON = {
    FILES[0]: revision_file(IDS[0], None, CREATE_EMPLOYEES, "op.drop_table('employees')", "Initial migration."),
    FILES[1]: revision_file(IDS[1], IDS[0], CREATE_DEPARTMENT, "op.drop_table('department')", "add Department"),
    FILES[2]: revision_file(
        IDS[2], IDS[1], "op.rename_table('department', 'departments')",
        "op.rename_table('departments', 'department')", "rename department"),
    FILES[3]: revision_file(
        IDS[3], IDS[2], "op.alter_column('departments', 'address', new_column_name='location')",
        "op.alter_column('departments', 'location', new_column_name='address')", "rename address"),
}

DEPARTMENT_MODEL = '''

class Department(db.Model):
    __tablename__ = "departments"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String, nullable=False)
    address = db.Column(db.String)

    def __repr__(self):
        return f"<Department {self.id}, {self.name}, {self.address}>"
'''


@pytest.fixture(scope="session")
def migrations_skeleton(tmp_path_factory):
    """server/migrations as a real `flask db init` makes it (made once)."""
    checkout = copy_starter(tmp_path_factory.mktemp("skeleton") / "checkout")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    subprocess.run(
        [sys.executable, "-m", "flask", "db", "init"], cwd=checkout / "server", env=env, check=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
    )
    return checkout / "server" / "migrations"


@pytest.fixture
def checkout(tmp_path, migrations_skeleton):
    """A finished lesson, by hand: grades 100/100 until a test breaks it."""
    root = tmp_path / "checkout"
    server = root / "server"
    server.mkdir(parents=True)
    shutil.copy(GRADER_ROOT / "server" / "app.py", server / "app.py")
    starter_models = (GRADER_ROOT / "server" / "models.py").read_text(encoding="utf-8")
    (server / "models.py").write_text(starter_models.rstrip() + "\n" + DEPARTMENT_MODEL, encoding="utf-8")
    shutil.copytree(migrations_skeleton, server / "migrations")
    for name, source in LESSON.items():
        (server / "migrations" / "versions" / name).write_text(source, encoding="utf-8")
    return root


def versions(root):
    return root / "server" / "migrations" / "versions"


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


# --- the starter and a correct submission ---------------------------------------------------

def test_the_starter_fails_and_says_run_flask_db_init(tmp_path):
    starter = copy_starter(tmp_path / "starter")
    graded = grade(starter, tmp_path)
    assert_fails_cleanly(
        graded, ALL - {"local_database"},
        "There is no server/migrations/ folder yet.", "run `flask db init`", "blocked by init: fix that first",
    )
    assert "0/95 points" in graded.output  # nothing done earns nothing


def test_a_correct_submission_made_with_flask_commands_passes(request, tmp_path):
    build = reference_solution(request, "sqlite")
    submission = copy_reference(request, build, tmp_path / "submission")
    graded = grade(submission.checkout, tmp_path)
    assert graded.returncode == 0, graded.output
    assert graded.passed == ALL
    # A grader grading another checkout leaves the student's own database out: 95/95, as in the gradebook.
    assert "Score of" in graded.output and "95/95 points" in graded.output
    assert "not applicable: graded for an instructor" in graded.output


def test_a_hand_built_correct_submission_passes_on_each_backend(checkout, tmp_path, backend):
    options = []
    if backend == "postgresql":
        from testing.databases.database import postgres_server_url

        options.append(f"--lesson-database={postgres_server_url()}")
    graded = grade(checkout, tmp_path, *options)
    assert graded.returncode == 0, graded.output
    assert graded.passed == ALL
    assert f"replayed on {backend}" in graded.output
    assert "not applicable: graded for an instructor" in graded.output


def test_legitimate_variations_pass(checkout, tmp_path):
    """Other ids and messages, batch mode, existing_type, a NOT NULL location
    (so address comes back NOT NULL), comments, and the older env.py."""
    folder = versions(checkout)
    for path in folder.iterdir():
        path.unlink()
    ids = ("1", "2", "two_and_a_half", "final_one")
    (folder / "first.py").write_text(
        revision_file(ids[0], None, CREATE_EMPLOYEES, "op.drop_table('employees')  # undo step 1", "start"),
        encoding="utf-8")
    (folder / "second.py").write_text(
        revision_file(ids[1], ids[0], "# the department table\n" + CREATE_DEPARTMENT, "op.drop_table('department')", "x"),
        encoding="utf-8")
    (folder / "third.py").write_text(revision_file(
        ids[2], ids[1], "op.rename_table(\n    'department',\n    'departments',\n)",
        "op.rename_table('departments', 'department')", "a table"), encoding="utf-8")
    (folder / "fourth.py").write_text(revision_file(
        ids[3], ids[2],
        "with op.batch_alter_table('departments', schema=None) as batch_op:\n"
        "    batch_op.alter_column('address', new_column_name='location',\n"
        "                          existing_type=sa.VARCHAR(), nullable=False)",
        "with op.batch_alter_table('departments', schema=None) as batch_op:\n"
        "    batch_op.alter_column('location', new_column_name='address', existing_type=sa.String())",
        "a column"), encoding="utf-8")
    (checkout / "server" / "migrations" / "env.py").write_text(OLDER_ENV_PY, encoding="utf-8")
    graded = grade(checkout, tmp_path)
    assert graded.returncode == 0, graded.output
    assert graded.passed == ALL


# --- broken checkouts ---------------------------------------------------------------

def test_a_syntax_error_in_a_migration(checkout, tmp_path):
    edit(versions(checkout) / FILES[3], "def upgrade():", "def upgrade(:")
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, {"history", "rename_column", "downgrades"},
        f"server/migrations/versions/{FILES[3]} cannot be loaded: line", "SyntaxError",
        "blocked by rename_column: fix that first",
    )


def test_an_import_error_in_models_py(checkout, tmp_path):
    edit(checkout / "server" / "models.py", "from sqlalchemy import MetaData", "from sqlalchemy import Metadata")
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, {"models_match"},
        "server/models.py cannot be imported: line 2", "ImportError: cannot import name 'Metadata'",
    )


def test_a_missing_env_py(checkout, tmp_path):
    (checkout / "server" / "migrations" / "env.py").unlink()
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, {"init"}, "server/migrations/env.py is missing", "flask db init --directory fresh-migrations",
    )


def test_a_down_revision_that_points_nowhere(checkout, tmp_path):
    edit(versions(checkout) / FILES[2], f"down_revision = '{IDS[1]}'", "down_revision = 'f00f00f00f00'")
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, {"history", "rename_table", "rename_column", "downgrades", "models_match"},
        f"server/migrations/versions/{FILES[2]} says down_revision = 'f00f00f00f00', but no file",
        "blocked by history: fix that first",
    )


def test_two_files_with_the_same_revision_id(checkout, tmp_path):
    shutil.copy(versions(checkout) / FILES[3], versions(checkout) / "copy_of_rename_address.py")
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, {"history", "rename_column", "downgrades"},
        f"both say revision = '{IDS[3]}'", "if one file is a copy of another, delete the copy",
    )


def test_a_file_with_no_revision_id(checkout, tmp_path):
    (versions(checkout) / "notes.py").write_text("# what I did today\nSTEPS = 4\n", encoding="utf-8")
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, {"history"}, "server/migrations/versions/notes.py has no `revision = '...'` line",
    )


@pytest.mark.parametrize("extra_heads", [1, 2])
def test_two_or_three_heads(checkout, tmp_path, extra_heads):
    for number in range(extra_heads):
        (versions(checkout) / f"branch{number}.py").write_text(revision_file(
            f"b{number}", IDS[2], "op.add_column('departments', sa.Column('floor', sa.Integer()))",
            "op.drop_column('departments', 'floor')", "another branch"), encoding="utf-8")
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, {"history", "rename_column", "downgrades"},
        f"so the history splits into {extra_heads + 1} branches", "blocked by history: fix that first",
    )


def test_an_empty_versions_folder(checkout, tmp_path):
    for path in versions(checkout).iterdir():
        path.unlink()
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, ALL - {"init", "local_database"},
        "No revisions yet: server/migrations/versions/ is empty.", "No revision 1 yet",
        'flask db migrate -m "Initial migration."',
    )


def test_a_migration_that_raises_on_upgrade(checkout, tmp_path):
    edit(versions(checkout) / FILES[1], "def upgrade():\n", "def upgrade():\n    raise RuntimeError('the database is not ready')\n")
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, {"create_department", "rename_table", "rename_column", "downgrades", "models_match"},
        f"Revision 2 (server/migrations/versions/{FILES[1]}) fails on upgrade.",
        "in upgrade: RuntimeError: the database is not ready",
        "blocked by create_department: fix that first",
    )


def test_a_missing_migrations_folder(checkout, tmp_path):
    shutil.rmtree(checkout / "server" / "migrations")
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, ALL - {"local_database"},
        "There is no server/migrations/ folder yet.", "cd server\n        flask db init",
        "blocked by init: fix that first",
    )


def test_migrations_at_the_repository_root(checkout, tmp_path):
    shutil.move(str(checkout / "server" / "migrations"), str(checkout / "migrations"))
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(
        graded, ALL - {"local_database"},
        "The migrations folder is at the repository root, not in server/", "git mv migrations server/migrations",
    )


@pytest.mark.parametrize("breakage, message", [
    (("app = Flask(__name__)", "app = Flask(__name__"), "server/app.py, line"),
    (("migrate = Migrate(app, db, process_revision_directives=review_new_migration)", "migrate = None"),
     "server/app.py never creates `Migrate(app, db)`"),
    (("db.init_app(app)", "db.init_app(app)\nwith app.app_context():\n    db.create_all()"),
     "changes tables behind Alembic's back"),
], ids=["syntax-error", "no-migrate", "create-all"])
def test_a_broken_app_py_is_its_own_finding(checkout, tmp_path, breakage, message):
    edit(checkout / "server" / "app.py", *breakage)
    graded = grade(checkout, tmp_path)
    assert_fails_cleanly(graded, {"init"}, message)


def test_a_rename_by_create_and_drop_names_the_lost_rows_and_the_fix(checkout, tmp_path, backend):
    """The classic mistake: autogenerate's create+drop kept in revision 3."""
    edit(versions(checkout) / FILES[2], "op.rename_table('department', 'departments')", textwrap.dedent("""\
        op.create_table('departments',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('name', sa.String(), nullable=False),
            sa.Column('address', sa.String(), nullable=True),
            sa.PrimaryKeyConstraint('id', name=op.f('pk_departments'))
            )
            op.drop_table('department')"""))
    options = []
    if backend == "postgresql":
        from testing.databases.database import postgres_server_url

        options.append(f"--lesson-database={postgres_server_url()}")
    graded = grade(checkout, tmp_path, *options)
    assert_fails_cleanly(
        graded, {"rename_table"},
        f"Revision 3 (server/migrations/versions/{FILES[2]}) loses data: the 2 rows of `department`.",
        "creates table departments (id, name, address)\n    drops table department",
        "op.rename_table('department', 'departments')",
        "op.rename_table('departments', 'department')",
    )


# --- what the grader reports ---------------------------------------------------------

def test_points_reach_junit_the_terminal_and_the_step_summary(checkout, tmp_path):
    """LESSON_ROOT instead of the option; points from CHECKPOINTS everywhere."""
    edit(checkout / "server" / "models.py", "address = db.Column(db.String)", "location = db.Column(db.String)")
    summary = tmp_path / "step-summary.md"
    summary.write_text("## Earlier step\n", encoding="utf-8")
    junit = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("LESSON_GRADE_DATABASE_URL", "DATABASE_URL")}
    env.update(LESSON_ROOT=str(checkout), GITHUB_STEP_SUMMARY=str(summary))
    process = subprocess.run(
        [sys.executable, "-m", "pytest", f"--junitxml={junit}"], cwd=GRADER_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    assert process.returncode == 1, process.stdout
    # local_database does not apply (no instance/app.db): it counts for nothing.
    total = sum(c.points for c in CHECKPOINTS if c.id != "local_database")
    lost = next(c.points for c in CHECKPOINTS if c.id == "models_match")

    properties = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        properties[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert set(properties) == {f"test_{c.id}" for c in CHECKPOINTS}
    for checkpoint in CHECKPOINTS:
        found = properties[f"test_{checkpoint.id}"]
        counted = 0 if checkpoint.id == "local_database" else checkpoint.points
        assert found["max_points"] == str(counted)
        assert found["points"] == ("0" if checkpoint.id == "models_match" else str(counted))
    assert properties["test_local_database"]["status"] == "not_applicable"
    assert properties["test_local_database"]["message"].startswith("not applicable: ")

    assert f"Score of {checkout}: {total - lost}/{total} points" in process.stdout
    assert f"models_match       FAILED     0/{lost}" in process.stdout
    assert "local_database     n/a           -" in process.stdout

    markdown = summary.read_text(encoding="utf-8")
    assert markdown.startswith("## Earlier step\n")  # appended, never overwritten
    assert f"## Lesson grade: {total - lost} / {total} points" in markdown
    title = next(c.title for c in CHECKPOINTS if c.id == "models_match")
    assert f"| `models_match` {title} | ❌ failed | 0 / {lost} |" in markdown
    assert "<details><summary><code>models_match</code>" in markdown
