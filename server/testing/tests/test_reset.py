"""`flask lesson reset STEP` (and `pipenv run reset STEP`): from a tangled lesson
back to the start of each step, the very state the reference walkthrough has
there, then the rest of the lesson as the README says, to full marks. Real
`flask` commands in subprocesses, on both backends.
"""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testing.databases.reading import read_database
from testing.engine.checks import grade
from testing.lesson import readme
from testing.lesson.checkpoints import LESSON
from testing.maintainers.walkthrough import (GENERATED_FILE, LAST_STEP, WalkthroughResult, copy_starter, flask_environment,
                                             run_walkthrough)
from testing.student.reset import BACKUPS

from .lesson_builds import (CREATE_DATE, LessonCopy, copy_reference, copy_snapshot, database_state, reference_solution,
                           shared_build, snapshot_of)

REPO = Path(__file__).resolve().parents[3]
TOOLS = REPO / "server" / "testing" / "tools.py"


def flask(copy, *args):
    finished = subprocess.run([sys.executable, "-m", "flask", *args], cwd=copy.server, env=flask_environment(),
                              capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


def squash(copy):
    """Every revision deleted and made again as one, on an emptied database: a
    chain no edit can mend (history too short, revision 1 does every step's work)."""
    for path in (copy.server / "migrations" / "versions").glob("*.py"):
        path.unlink()
    _empty_database(copy)
    flask(copy, "db", "migrate", "-m", "all of it")
    flask(copy, "db", "upgrade")


def delete_migrations(copy):
    shutil.rmtree(copy.server / "migrations")


def _empty_database(copy):
    import sqlalchemy as sa

    engine = sa.create_engine(copy.database_url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()


def tangled(request, backend, tangle):
    """The finished lesson tangled, made once per run and backend (each test resets a copy)."""
    def make(root, keep):
        finished = snapshot_of(reference_solution(request, backend).snapshots[LAST_STEP], root, keep)
        tangle(LessonCopy(finished.checkout, finished.result.database_url, finished.result))
        return finished

    return shared_build(request, f"tangled-{backend}-{tangle.__name__}", f"tangling the lesson ({tangle.__name__})", make)


def reset(copy, step):
    finished = subprocess.run(
        [sys.executable, str(TOOLS), "reset", str(step), "--root", str(copy.checkout), "--yes"],
        env=flask_environment(), capture_output=True, text=True, timeout=300,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output
    assert "Traceback" not in output, output
    return output


def reset_start(copy, ids):
    """What a reset leaves, revision ids made alike: models.py and the
    migrations folder as text, and the database's tables, rows and revision."""
    return start_of(copy.server, database_state(copy.database_url), ids)


def reference_start(request, backend, step, dest):
    """The same of the reference walkthrough as `step` begins: the starter and an
    empty database before step 1, else its snapshot and checked state after the step before."""
    if step == 1:
        return {"models.py": (copy_starter(dest) / "server" / "models.py").read_text(encoding="utf-8")}, {}, {}, []
    build = reference_solution(request, backend)
    snapshot = build.snapshots[step - 1]
    return start_of(snapshot.checkout / "server", build.states[step - 1], snapshot.result.revisions)


def start_of(server, state, ids):
    """reset_start of a server/ folder and its database's state."""
    alike = {revision: f"<revision {position}>" for position, revision in enumerate(ids, 1)}

    def same_ids(text):
        for revision, name in alike.items():
            text = text.replace(revision, name)
        return CREATE_DATE.sub(b"", text.encode()).decode()

    files = {"models.py": (server / "models.py").read_text(encoding="utf-8")}
    migrations = server / "migrations"
    for path in sorted(migrations.rglob("*")) if migrations.is_dir() else []:
        if path.is_file() and "__pycache__" not in path.parts:
            files[same_ids(path.relative_to(server).as_posix())] = same_ids(path.read_text(encoding="utf-8"))
    tables = {table: {column: (repr(type_), nullable) for column, (type_, nullable) in columns.items()}
              for table, columns in state.tables.items()}
    return files, tables, state.rows, [alike.get(version, version) for version in state.versions]


def as_code(start):
    """A reset_start with each Python file as its syntax tree: the reset writes the
    lesson's revisions without the comments and line breaks `flask db migrate` adds."""
    files, *database = start
    return [{name: ast.dump(ast.parse(text)) if name.endswith(".py") else text for name, text in files.items()},
            *database]


def resume_point(copy, step, report):
    """The walkthrough's record of steps 1..step-1, with the reset's revision ids
    (report: the grade of the reset checkout) standing for the ids the README shows."""
    readme_text = (copy.checkout / "README.md").read_text(encoding="utf-8")
    shown = [match.group(1) for block in readme.parse_readme(readme_text)
             if block.step < step and block.kind == "run" for match in GENERATED_FILE.finditer(block.text)]
    ids = [revision.revision for revision in report.history.chain]
    assert len(ids) == len(shown) == min(step - 1, LESSON.count)
    return WalkthroughResult(copy.checkout, copy.database_url, report.backend, revisions=ids,
                             readme_ids=dict(zip(shown, ids)), completed_step=step - 1)


def reset_and_check(request, backend, step, tangle, dest):
    """A copy of the tangled lesson reset to the start of step, checked; returns
    the copy and the grade of its revisions (None before step 2)."""
    copy = copy_snapshot(request, tangled(request, backend, tangle), dest)
    output = reset(copy, step)

    # What it replaced is kept, in the folder it names.
    backups = list((copy.checkout / BACKUPS).iterdir())
    assert len(backups) == 1 and f"{BACKUPS}/{backups[0].name}/" in output
    assert (backups[0] / "server" / "models.py").is_file()
    assert (backups[0] / "server" / "migrations").is_dir() == (tangle is squash)

    # The step's start: its revisions, and the database at the last of them with the earlier steps' rows.
    local = read_database(copy.database_url, LESSON, root=copy.checkout)
    revisions = min(step - 1, LESSON.count)
    if not revisions:
        assert not (copy.server / "migrations").exists()
        assert not [table for table in local.tables if table != "alembic_version"]
        return copy, None
    report = grade(copy.checkout)
    assert len(report.history.chain) == revisions
    assert local.versions == [report.history.chain[-1].revision]
    for data_set in LESSON.data_sets:
        table = next((t for t in data_set.tables if t in local.counts), None)
        assert (table is not None and local.counts[table]) == (len(data_set.rows) if data_set.step < step else 0)
        if table is not None and local.counts[table]:
            assert_a_row_without_an_id_fits(copy.database_url, table)
    return copy, report


def assert_a_row_without_an_id_fits(url, table):
    """The student's next `db.session.add(...)` gets a new id (on PostgreSQL, the id
    sequence is past the rows the reset inserted); rolled back, so the start is unchanged."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            target = sa.table(table, sa.column("name"))
            connection.execute(target.insert().values(name="one more"))
            connection.rollback()
    finally:
        engine.dispose()


# The starts walked on to full marks with real `flask` commands, one per backend:
# on SQLite step 5, which downgrades the reset's own revision 4 and names every
# revision by the reset's ids; on PostgreSQL step 3, whose migrations carry the
# rows the reset inserted and whose `flask db migrate` builds on its revisions.
# Every other start is the reference's own state there (checked in each case),
# from which the reference walkthrough itself goes on to full marks.
WALKED_FROM = {"sqlite": 5, "postgresql": 3}


@pytest.mark.parametrize("step", sorted(LESSON.steps))
def test_reset_then_finish_the_lesson(request, backend, tmp_path, step):
    """From each tangle the reset gives the step's start: both starts are the
    same but for revision ids, and the same code, tables, rows and revision as
    the reference walkthrough's when the step begins; from there the README
    leads to full marks."""
    starts = {}
    for tangle in (squash, delete_migrations):
        copy, report = reset_and_check(request, backend, step, tangle, tmp_path / tangle.__name__)
        ids = [revision.revision for revision in report.history.chain] if report else []
        starts[tangle.__name__] = reset_start(copy, ids)
    assert starts["squash"] == starts["delete_migrations"]
    assert as_code(starts["squash"]) == as_code(reference_start(request, backend, step, tmp_path / "reference"))

    if WALKED_FROM[backend] != step:
        return
    resume = resume_point(copy, step, report) if report else None
    database_url = copy.database_url if backend == "postgresql" else None
    run_walkthrough(copy.checkout, database_url=database_url, report=lambda line: None, resume=resume)
    final = grade(copy.checkout)
    assert final.full_marks, "\n".join(result.message for result in final.failed)


def test_reset_asks_first_and_changes_nothing_when_refused(request, tmp_path):
    copy = copy_reference(request, reference_solution(request, "sqlite"), tmp_path / "c")
    delete_migrations(copy)
    before = (copy.server / "instance" / "app.db").read_bytes()
    finished = subprocess.run(
        [sys.executable, "-m", "flask", "lesson", "reset", "3"], cwd=copy.server, env=flask_environment(),
        input="n\n", capture_output=True, text=True, timeout=120,
    )
    assert finished.returncode == 1, finished.stdout + finished.stderr
    assert "It replaces:" in finished.stdout and "server/instance/app.db" in finished.stdout
    assert "Nothing changed." in finished.stdout
    assert (copy.server / "instance" / "app.db").read_bytes() == before
    assert not (copy.checkout / BACKUPS).exists()


def test_reset_refuses_a_step_that_does_not_exist(tmp_path):
    finished = subprocess.run([sys.executable, str(TOOLS), "reset", "9", "--root", str(tmp_path), "--yes"],
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2 and "Traceback" not in finished.stderr
    assert "9 is not in the range 1<=x<=5" in finished.stderr
