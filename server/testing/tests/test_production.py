"""Before production: squawk's findings on each revision's PostgreSQL SQL (production.py).

Real parts throughout: the SQL is written by Alembic's offline mode in the
sandbox's worker, and linted by the squawk binary the lock installs. The
lesson's own revisions (the walkthrough's reference, graded on both
backends), the mistake catalogue and revisions written here by hand each give
the rule ids expected, and never one the lesson leaves out. A revision that
cannot be written offline, or squawk missing or failing, gives a "cannot be
checked offline" line and the same grade.
"""
import dataclasses
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testing.databases.database import postgres_server_url
from testing.engine import production
from testing.engine.checks import grade
from testing.engine.submission import Layout, load_history
from testing.isolation.sandbox import Limits, Sandbox
from testing.lesson.checkpoints import LESSON
from testing.lesson.definition import RequiredFinding
from testing.maintainers.walkthrough import flask_environment

from ..maintainers.catalogue import VALID, WRONG
from ..maintainers.lesson_files import revision_file
from .lesson_builds import copy_reference, reference_solution
from .second_lesson import LIBRARY
from .test_grader_catalogue import make_submission
from .test_second_lesson import library_checkout

LEFT_OUT = set(LESSON.production.left_out)


def review(root, lesson=LESSON, limits=None):
    """production.review_revisions of the checkout's chain, in a sandbox of its own."""
    layout = Layout.of(root)
    with Sandbox(layout, limits) as sandbox:
        history = load_history(layout, sandbox)
        return production.review_revisions(sandbox, layout, history.chain, lesson, history.position_of)


def rules(reviews):
    """{position: (upgrade rules, downgrade rules)}."""
    return {r.position: (set(r.rules("upgrade")), set(r.rules("downgrade"))) for r in reviews}


def assert_none_left_out(reviews):
    for r in reviews:
        assert not set(r.rules()) & LEFT_OUT, (r.revision.rel, r.rules())
        assert all(f.link == f"https://squawkhq.com/docs/{f.rule}" and f.explanation for f in r.findings)


# --- the lesson's own revisions -----------------------------------------------------------

LESSON_RULES = {
    1: (set(), {"ban-drop-table"}),
    2: (set(), {"ban-drop-table"}),
    3: ({"renaming-table"}, {"renaming-table"}),
    4: ({"renaming-column"}, {"renaming-column"}),
}


def test_the_lessons_revisions_flag_the_renames_and_leave_the_noise_out(request, backend, tmp_path):
    build = reference_solution(request, backend)
    root = copy_reference(request, build, tmp_path / "c").checkout
    server_url = postgres_server_url() if backend == "postgresql" else None
    with_review = grade(root, server_url=server_url, before_production=True)
    reviews = with_review.evidence.production
    assert rules(reviews) == LESSON_RULES
    assert [r.step for r in reviews] == [1, 2, 3, 4]
    assert_none_left_out(reviews)
    # Each finding points at its line of the SQL Alembic writes offline.
    rename = next(f for f in reviews[2].findings if f.direction == "upgrade")
    assert rename.statement == "ALTER TABLE department RENAME TO departments;"
    assert reviews[2].sql["upgrade"].splitlines()[rename.line - 1] == rename.statement
    assert "expand, migrate, contract" in rename.explanation
    # The noise is left out, each with the declaration's reason: Alembic's own table, integer sizes, serial.
    assert set(reviews[0].left_out) >= {LESSON.production.bookkeeping_reason, LESSON.production.left_out["prefer-identity"],
                                        LESSON.production.left_out["prefer-bigint-over-int"]}
    # The review is beside the grade, never in it.
    without = grade(root, server_url=server_url)
    assert [(r.status, r.message) for r in with_review] == [(r.status, r.message) for r in without]
    assert without.evidence.production == []
    assert not any("Before production" in r.message or "squawk" in r.message for r in with_review)


# --- the mistake catalogue ----------------------------------------------------------------

CATALOGUE_RULES = {  # name -> {position: (upgrade rules, downgrade rules)} that differ from the lesson's
    "table rename kept as create+drop": {3: ({"ban-drop-table"}, {"ban-drop-table"})},
    "column rename kept as add+drop": {4: ({"ban-drop-column"}, {"ban-drop-column"})},
    "NOT NULL location added without a default": {4: ({"adding-required-field", "ban-drop-column"}, {"ban-drop-column"})},
}


@pytest.mark.parametrize("submission", WRONG + VALID, ids=[s.name for s in WRONG + VALID])
def test_the_mistake_catalogue_gets_its_rule_ids_and_never_a_left_out_one(request, submission, tmp_path):
    checkout = make_submission(request, "sqlite", submission, tmp_path / "checkout")
    reviews = review(checkout.root)
    assert_none_left_out(reviews)
    for r in reviews:  # a line for every function, never an exception
        lines = production.text_lines(r)
        assert lines and not any("Traceback" in line for line in lines)
    expected = CATALOGUE_RULES.get(submission.name)
    if expected:
        for position, pair in expected.items():
            assert rules(reviews)[position] == pair, submission.name
    if submission.name == "op.rename_column, which Alembic does not have":
        (renaming,) = [r for r in reviews if r.position == 4]
        assert "Alembic cannot write upgrade() as SQL without a database" in renaming.problems["upgrade"]
        assert "rename_column" in renaming.problems["upgrade"]
    if submission.name == "the reference solution":
        assert rules(reviews) == LESSON_RULES


# --- revisions written by hand ------------------------------------------------------------

HAND_WRITTEN = {  # name: (upgrade, downgrade, upgrade rules, downgrade rules)
    "a plain index": (
        "op.create_index('ix_employees_name', 'employees', ['name'])",
        "op.drop_index('ix_employees_name', table_name='employees')",
        {"require-concurrent-index-creation"}, {"require-concurrent-index-deletion"}),
    "a NOT NULL add": (
        "op.add_column('employees', sa.Column('email', sa.String(), nullable=False))",
        "op.drop_column('employees', 'email')",
        {"adding-required-field"}, {"ban-drop-column"}),
    "a column type change": (
        "op.alter_column('employees', 'salary', existing_type=sa.Integer(), type_=sa.BigInteger())",
        "op.alter_column('employees', 'salary', existing_type=sa.BigInteger(), type_=sa.Integer())",
        {"changing-column-type"}, {"changing-column-type"}),
    "a drop column": (
        "op.drop_column('employees', 'salary')",
        "op.add_column('employees', sa.Column('salary', sa.Integer(), nullable=True))",
        {"ban-drop-column"}, set()),
    "an index created concurrently": (
        "with op.get_context().autocommit_block():\n"
        "    op.create_index('ix_employees_name', 'employees', ['name'], postgresql_concurrently=True,\n"
        "                    if_not_exists=True)",
        "with op.get_context().autocommit_block():\n"
        "    op.drop_index('ix_employees_name', table_name='employees', postgresql_concurrently=True,\n"
        "                  if_exists=True)",
        set(), set()),
    "an index created concurrently inside the migration's transaction": (
        "op.create_index('ix_employees_name', 'employees', ['name'], postgresql_concurrently=True)",
        "op.drop_index('ix_employees_name', table_name='employees')",
        {"ban-concurrent-index-creation-in-transaction", "prefer-robust-stmts"}, {"require-concurrent-index-deletion"}),
}


def hand_written_checkout(root, revisions):
    """A server/ folder whose migrations are `revisions` [(message, upgrade, downgrade)], one line from the first."""
    versions = root / "server" / "migrations" / "versions"
    versions.mkdir(parents=True)
    ids = [None] + [f"0a1b2c3d{n:04d}" for n in range(1, len(revisions) + 1)]
    for n, (message, upgrade, downgrade) in enumerate(revisions, start=1):
        text = revision_file(ids[n], ids[n - 1], textwrap.indent(upgrade, "    "), textwrap.indent(downgrade, "    "),
                             message)
        (versions / f"{ids[n]}_revision_{n}.py").write_text(text, encoding="utf-8")
    return root


def test_hand_written_revisions_get_their_rule_ids(tmp_path):
    names = list(HAND_WRITTEN)
    # Each after a revision creating `employees`, so no finding is about a table created in the same run.
    create = ("create employees", "op.create_table('employees', sa.Column('id', sa.Integer(), primary_key=True),\n"
              "    sa.Column('name', sa.String()), sa.Column('salary', sa.Integer()))", "op.drop_table('employees')")
    for name in names:
        upgrade, downgrade, upgrade_rules, downgrade_rules = HAND_WRITTEN[name]
        root = hand_written_checkout(tmp_path / name.replace(" ", "_"), [create, (name, upgrade, downgrade)])
        reviews = review(root)
        assert_none_left_out(reviews)
        assert (set(reviews[1].rules("upgrade")), set(reviews[1].rules("downgrade"))) == (
            upgrade_rules, downgrade_rules), name
        assert not reviews[1].problems, name


# --- what cannot be checked offline -------------------------------------------------------


def test_a_revision_that_reads_the_database_cannot_be_checked_offline(tmp_path):
    root = hand_written_checkout(tmp_path / "c", [(
        "read rows", "rows = op.get_bind().execute(sa.text('SELECT id FROM employees')).fetchall()", "pass")])
    (checked,) = review(root)
    assert "op.get_bind()" in checked.problems["upgrade"] and "without a database" in checked.problems["upgrade"]
    assert "downgrade" not in checked.problems and checked.sql["downgrade"]
    lines = production.text_lines(checked)
    assert lines[0].startswith("upgrade(): cannot be checked offline: Alembic cannot write upgrade() as SQL without a "
                               "database (it reads from the database with op.get_bind(), which needs a live connection): ")
    assert lines[0].endswith("AttributeError: 'NoneType' object has no attribute 'fetchall'")
    assert production.short_note([checked]) == [
        f"revision 1, step 1 ({checked.revision.rel}): upgrade() cannot be checked offline"]


def test_revision_files_whose_loading_never_ends_are_asked_for_no_sql(tmp_path):
    """Alembic's offline mode loads every file in versions/: when one never finishes loading,
    each revision would wait out the time limit again, so the review says so once for all."""
    root = hand_written_checkout(tmp_path / "c", [("drop", "op.drop_table('employees')", "pass")])
    versions = root / "server" / "migrations" / "versions"
    (versions / "0f0f0f0f0f0f_endless.py").write_text("while True:\n    pass\n", encoding="utf-8")
    (checked,) = review(root, limits=Limits(1, 512))
    assert set(checked.problems) == {"upgrade", "downgrade"} and not checked.sql
    assert all(problem.startswith("loading the revision files did not finish")
               for problem in checked.problems.values()), checked.problems


def test_a_fault_in_the_review_itself_is_a_line_too(tmp_path, monkeypatch):
    root = hand_written_checkout(tmp_path / "c", [("drop", "op.drop_table('employees')", "pass")])

    def broken(sql):
        raise RuntimeError("a fault in the review")
    monkeypatch.setattr(production, "statements", broken)
    (checked,) = review(root)
    assert checked.problems == {direction: "the review itself failed (RuntimeError: a fault in the review)"
                                for direction in ("upgrade", "downgrade")}
    assert production.text_lines(checked)[0] == (
        "upgrade(): cannot be checked offline: the review itself failed (RuntimeError: a fault in the review)")


@pytest.mark.skipif(os.name == "nt", reason="the fake squawk is a shell script")
@pytest.mark.parametrize("squawk", ["missing", "failing", "garbage"])
def test_squawk_missing_or_failing_gives_a_line_and_the_same_grade(request, squawk, tmp_path, monkeypatch):
    build = reference_solution(request, "sqlite")
    root = copy_reference(request, build, tmp_path / "c").checkout
    before = grade(root)
    fake = tmp_path / "squawk"
    if squawk == "missing":
        def not_installed():
            raise production.SquawkProblem("squawk is not installed (it comes with `pipenv install`)")
        monkeypatch.setattr(production, "squawk_command", not_installed)
    else:
        fake.write_text("#!/bin/sh\n" + ("echo 'panicked' >&2; exit 101\n" if squawk == "failing" else "echo '[{'; exit 1\n"))
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setattr(production, "squawk_command", lambda: str(fake))
    report = grade(root, before_production=True)
    assert [(r.status, r.message) for r in report] == [(r.status, r.message) for r in before]
    said = {"missing": "squawk is not installed", "failing": "squawk failed (exit code 101): panicked",
            "garbage": "squawk's report cannot be read"}[squawk]
    for checked in report.evidence.production:
        assert not checked.findings
        assert all(said in why for why in checked.problems.values()) and set(checked.problems) == {"upgrade", "downgrade"}
        assert production.text_lines(checked)[0].startswith("upgrade(): cannot be checked offline: ")


def test_the_squawk_of_the_lock_is_the_one_run():
    command = production.squawk_command()
    assert Path(command).parent == Path(sys.executable).parent or shutil.which("squawk") == command
    version = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=30)
    assert version.stdout.startswith("squawk 2.70."), version.stdout


# --- required findings, declared by a lesson ----------------------------------------------

CONCURRENT_INDEX = RequiredFinding(
    "require-concurrent-index-creation", "this index is created concurrently",
    r"CREATE\s+(UNIQUE\s+)?INDEX", "CREATE INDEX")
RENAME_WITH_INDEX = ("with op.batch_alter_table('books', schema=None) as batch_op:",
                     "    batch_op.alter_column('author', new_column_name='writer')")
PLAIN_INDEX = ("op.create_index('ix_books_writer', 'books', ['writer'])",)
CONCURRENT = ("with op.get_context().autocommit_block():",
              "    op.create_index('ix_books_writer', 'books', ['writer'], postgresql_concurrently=True,",
              "                    if_not_exists=True)")
DROP_INDEX = ("op.drop_index('ix_books_writer', table_name='books')",)
RENAME_BACK = ("with op.batch_alter_table('books', schema=None) as batch_op:",
               "    batch_op.alter_column('writer', new_column_name='author')")

# The library lesson whose step 3 also asks for an index on `writer`, created concurrently.
INDEXED_LIBRARY = dataclasses.replace(
    LIBRARY,
    revisions=LIBRARY.revisions[:2] + (dataclasses.replace(LIBRARY.revisions[2], requires=(CONCURRENT_INDEX,)),),
    production=dataclasses.replace(LESSON.production, explanations={}),  # squawk's own words are enough here
)


@pytest.mark.parametrize("index, met, why", [
    (PLAIN_INDEX, False, "squawk's require-concurrent-index-creation flags line 7"),
    (CONCURRENT, True, ""),
    ((), False, "the upgrade's SQL has no CREATE INDEX"),
], ids=["plain", "concurrently", "no index"])
def test_a_step_can_require_a_clean_finding(index, met, why, tmp_path):
    upgrade = RENAME_WITH_INDEX + index
    downgrade = (DROP_INDEX if index else ()) + RENAME_BACK
    root = library_checkout(tmp_path / "library", revisions={3: (upgrade, downgrade)})
    reviews = review(root, INDEXED_LIBRARY)
    assert [len(r.required) for r in reviews] == [0, 0, 1]
    (required,) = reviews[2].required
    assert (required.required, required.met, required.why) == (CONCURRENT_INDEX, met, why)
    assert production.text_lines(reviews[2])[-1] == (
        f"required: this index is created concurrently: {'ok' if met else 'not yet'}" + (f" ({why})" if why else ""))
    # Read through the grade too, from the declaration; the verdicts are its own.
    report = grade(root, lesson=INDEXED_LIBRARY, before_production=True)
    assert [r.required[0].met for r in report.evidence.production if r.required] == [met]
    assert report.score == grade(root, lesson=LIBRARY).score


def test_a_lesson_without_production_rules_has_no_such_review(tmp_path):
    root = library_checkout(tmp_path / "library")
    assert LIBRARY.production is None
    assert review(root, LIBRARY) == []


# --- where it shows -----------------------------------------------------------------------


def test_flask_lesson_review_has_a_before_production_section_per_pending_revision(request, tmp_path):
    build = reference_solution(request, "sqlite")
    root = copy_reference(request, build, tmp_path / "c", step=5).checkout  # revision 4 not applied
    run = subprocess.run([sys.executable, "-m", "flask", "lesson", "review"], cwd=root / "server",
                         env=flask_environment(), capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "Traceback" not in output, output
    assert output.count("Before production") == 1, output
    section = output.split("Before production (revision 4, step 4): squawk on its PostgreSQL SQL (not graded)", 1)[1]
    assert "renaming-column" in section and "https://squawkhq.com/docs/renaming-column" in section
    assert "upgrade() SQL line 5: ALTER TABLE departments RENAME address TO location;" in section
    assert not any(rule in output for rule in LEFT_OUT)


def test_pytest_prints_a_short_note_that_is_not_part_of_the_grade(request, tmp_path):
    build = reference_solution(request, "sqlite")
    root = copy_reference(request, build, tmp_path / "c").checkout
    junit = tmp_path / "report.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", f"--lesson-root={root}", f"--junitxml={junit}"],
                         cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=300)
    note = run.stdout.split("Score", 1)[1]
    assert run.returncode == 0 and "95/95 points" in note, run.stdout
    assert "Before production (squawk, on each revision's PostgreSQL SQL; a note that does not change the score):" in note
    assert "renaming-table (upgrade line 5, downgrade line 5)" in note
    assert "Before production" not in junit.read_text(encoding="utf-8")
