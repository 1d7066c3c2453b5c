"""The optional "Going further" steps 6-10, graded apart from the lesson.

The reference continues the lesson's reference build with the README's steps
6-9 (the walkthrough performs them, once per run and backend), then each
realistic mistake changes one revision of a copy of it. Step 10 adds no
revision: the walkthrough makes its second database (db.create_all(), then
`flask db stamp head`) in a copy of that reference, also once per run and
backend, and each mistake leaves a copy of that database otherwise. Each is
graded on SQLite and PostgreSQL; the optional checkpoints' verdicts, the
lesson's own, both scores and the status text are pinned in
tests/golden/<backend>/further-*.json (written anew with
LESSON_UPDATE_GOLDEN=1, like the lesson's golden verdicts).
"""
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Optional

import pytest

from testing.engine.checks import FAILED, PASSED, grade
from testing.engine.report_text import further_line
from testing.lesson.checkpoints import LESSON
import sqlalchemy as sa

from testing.databases.database import env_file_database_url, normalize_url, postgres_server_url
from testing.maintainers.walkthrough import flask_environment
from testing.student.status import render, status_of

from .lesson_builds import copy_legacy, copy_reference, further_reference, legacy_reference, reference_solution
from .test_golden_verdicts import compare, normaliser

OPTIONAL = [checkpoint.id for checkpoint in LESSON.further.checkpoints]
POINTS = {checkpoint.id: checkpoint.points for checkpoint in LESSON.further.checkpoints}
LEGACY = LESSON.further.legacy  # step 10: a database made with db.create_all(), then stamped
# The bonus a checkout can earn as pushed: step 10's database is never committed, so it counts neither way.
PUSHED_MAX = LESSON.further.max_points - LEGACY.checkpoint.points


def checkout_of(request, backend, dest):
    """A copy of the steps 6-9 reference, as pushed."""
    shutil.copytree(further_reference(request, backend).checkout, dest)
    return dest


def revision(root, message):
    """The revision file whose message is `message` ("add email")."""
    [path] = [p for p in (root / "server" / "migrations" / "versions").glob("*.py")
              if p.name.split("_", 1)[1] == message.replace(" ", "_") + ".py"]
    return path


def replace_function(root, message, name, code):
    path = revision(root, message)
    source = path.read_text(encoding="utf-8")
    start = source.index(f"def {name}():")
    end = source.find("\ndef ", start + 1)
    end = len(source) if end == -1 else end + 1
    path.write_text(source[:start] + code.strip("\n") + "\n\n" + source[end:], encoding="utf-8")


@dataclass(frozen=True)
class Mistake:
    name: str
    change: Callable
    failing: dict  # backend or "any" -> {optional checkpoint: reason}
    says: str = ""  # a phrase its message must hold
    fix_says: Optional[str] = None  # a phrase its Fix must hold

    def expected(self, backend):
        return self.failing.get(backend, self.failing.get("any", {}))


def _not_null_no_default(root):
    replace_function(root, "add email", "upgrade", """
def upgrade():
    with op.batch_alter_table('employees', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(), nullable=False))
""")


def _empty_default(root):
    replace_function(root, "add email", "upgrade", """
def upgrade():
    with op.batch_alter_table('employees', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(), nullable=False, server_default=''))
""")


def _raw_sql_string(root):
    # The data migration as SQLAlchemy 1.x examples write it: SQLAlchemy 2 refuses a string.
    replace_function(root, "add building", "upgrade", """
def upgrade():
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('building', sa.String(), nullable=True))

    connection = op.get_bind()
    result = connection.execute("SELECT id, location FROM departments")
    for row in result:
        connection.execute(
            "UPDATE departments SET building = %s WHERE id = %s",
            (row.location.split(",")[0], row.id),
        )
""")


def _downgrade_left_empty(root):
    replace_function(root, "add building", "downgrade", """
def downgrade():
    pass
""")


def _plain_index(root):
    replace_function(root, "index email", "upgrade", """
def upgrade():
    with op.batch_alter_table('employees', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_employees_email'), ['email'], unique=False)
""")


def _concurrently_in_transaction(root):
    replace_function(root, "index email", "upgrade", """
def upgrade():
    op.create_index(op.f('ix_employees_email'), 'employees', ['email'], unique=False,
                    postgresql_concurrently=True)
""")


def _only_step_6(root):
    for message in ("merge phone and budget", "add budget", "add phone", "index email", "add building"):
        revision(root, message).unlink()
    models = root / "server" / "models.py"
    text = models.read_text(encoding="utf-8")
    for line in ("    building = db.Column(db.String)\n", "    budget = db.Column(db.Integer)\n",
                 "    phone = db.Column(db.String)\n"):
        text = text.replace(line, "")
    models.write_text(text.replace("nullable=False, index=True)", "nullable=False)"), encoding="utf-8")


def _two_heads(root):
    revision(root, "merge phone and budget").unlink()


def _teammates_revision_deleted(root):
    for message in ("merge phone and budget", "add budget"):
        revision(root, message).unlink()


def _teammates_revision_rewritten(root):
    """The teammate's revision made to follow revision 8, so that the history is a line again."""
    revision(root, "merge phone and budget").unlink()
    phone_id = revision(root, "add phone").name.split("_", 1)[0]
    path = revision(root, "add budget")
    source = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^down_revision = '\w+'", f"down_revision = '{phone_id}'", source), encoding="utf-8")


def _merge_changes_the_schema(root):
    replace_function(root, "merge phone and budget", "upgrade", """
def upgrade():
    op.add_column('employees', sa.Column('nickname', sa.String(), nullable=True))
""")
    replace_function(root, "merge phone and budget", "downgrade", """
def downgrade():
    op.drop_column('employees', 'nickname')
""")


STEP_9 = {"add_phone": "blocked", "add_budget": "blocked", "merge_heads": "blocked"}  # after a failing upgrade
BLOCKED_AFTER_6 = {"fill_building": "blocked", "index_email": "blocked", **STEP_9}
MISTAKES = (
    Mistake("the reference of steps 6-9", lambda root: None, {}),
    Mistake("only step 6 done", _only_step_6,
            {"any": {"fill_building": "missing_revision", "index_email": "missing_revision",
                     "add_phone": "missing_revision", "add_budget": "missing_revision",
                     "merge_heads": "missing_revision"}}, "No revision 6 yet"),
    Mistake("NOT NULL email added with no default on a table with rows", _not_null_no_default,
            {"any": {"add_email": "upgrade_fails", **BLOCKED_AFTER_6}}, "fails on upgrade", "WHERE email IS NULL"),
    Mistake("email made NOT NULL with an empty default instead of a backfill", _empty_default,
            {"any": {"add_email": "not_filled"}}, "does not fill `employees.email`"),
    Mistake("data migration in a raw SQL string, which SQLAlchemy 2 rejects", _raw_sql_string,
            {"any": {"fill_building": "upgrade_fails", "index_email": "blocked", "add_email": "blocked", **STEP_9}},
            "ObjectNotExecutableError", "sa.text(\"UPDATE departments SET building = :building WHERE id = :id\")"),
    Mistake("data migration whose downgrade does not reverse", _downgrade_left_empty,
            {"any": {"fill_building": "downgrade_not_reversed", "add_email": "blocked"}},
            "does not reverse its upgrade"),
    Mistake("index created without CONCURRENTLY", _plain_index,
            {"any": {"index_email": "not_concurrent"}}, "without CONCURRENTLY"),
    Mistake("CONCURRENTLY inside the migration's transaction", _concurrently_in_transaction,
            {"sqlite": {"index_email": "not_concurrent"},
             "postgresql": {"index_email": "upgrade_fails", "add_email": "blocked", "fill_building": "blocked",
                            **STEP_9}},
            "autocommit_block"),
    Mistake("two heads left unmerged", _two_heads, {"any": {"merge_heads": "not_merged"}},
            "`flask db upgrade` refuses", 'flask db merge heads -m "merge phone and budget"'),
    Mistake("a merge done by deleting the teammate's revision", _teammates_revision_deleted,
            {"any": {"add_budget": "branch_deleted", "merge_heads": "blocked"}},
            "Can't locate revision", 'flask db merge heads -m "merge phone and budget"'),
    Mistake("a merge done by making the teammate's revision follow revision 8", _teammates_revision_rewritten,
            {"any": {"add_budget": "rewritten_parent", "merge_heads": "blocked"}},
            "follows revision 8, but it was made from revision 7", "put back down_revision"),
    Mistake("a merge revision that also changes the schema", _merge_changes_the_schema,
            {"any": {"merge_heads": "wrong_schema"}}, "extra column `nickname`"),
)


def observed(report, status_text, root):
    normalise = normaliser(report, root)

    def verdicts(results):
        return {result.id: {"status": result.status, "reason": result.reason, "blocked_by": result.blocked_by,
                            "earned": result.earned, "message": normalise(result.message).splitlines()}
                for result in results}

    return {
        "score": f"{report.score}/{report.max_score}",
        "further": further_line(report),
        "checkpoints": verdicts(report),
        "optional": verdicts(report.further.values()),
        "status": normalise(status_text).splitlines(),
    }


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_each_mistake_fails_exactly_its_optional_checkpoints(request, backend, tmp_path, mistake):
    root = checkout_of(request, backend, tmp_path / "checkout")
    mistake.change(root)
    report = graded(root, backend)
    expected = mistake.expected(backend)
    found = {result.id: result.reason for result in report.further.values() if result.status == FAILED}
    assert found == expected, {result.id: result.message for result in report.further.values()}
    assert report.max_score == 95 and report.further_max == PUSHED_MAX  # never in the lesson's total
    assert report.further_score == PUSHED_MAX - sum(POINTS[c] for c in expected)
    if mistake.says:
        assert mistake.says in "\n".join(report[checkpoint].message for checkpoint in expected)
    if mistake.fix_says:
        assert any(mistake.fix_says in (report[checkpoint].fix or "") for checkpoint in expected)
    if not expected or all(reason in ("not_filled", "not_concurrent", "missing_revision", "not_merged",
                                      "rewritten_parent") or (checkpoint, reason) == ("merge_heads", "blocked")
                           for checkpoint, reason in expected.items()):
        assert report.full_marks, [result.message for result in report.failed]  # the lesson itself is intact
    status = render(status_of(root))
    compare(backend, "further " + mistake.name, observed(report, status, root))


def graded(root, backend, **options):
    """The grade of the checkout, replayed on the backend (PostgreSQL: the test server)."""
    return grade(root, server_url=postgres_server_url() if backend == "postgresql" else None, **options)


def test_a_lesson_finished_at_step_5_is_told_the_steps_are_optional(request, backend, tmp_path):
    root = tmp_path / "checkout"
    copy_reference(request, reference_solution(request, backend), root)
    report = graded(root, backend)
    assert report.full_marks and report.score == report.max_score
    assert not report.further_started and report.further_score == 0
    assert further_line(report) == LESSON.further.words.intro
    assert all(result.reason == "missing_revision" for result in report.further.values()
               if result.id != LEGACY.checkpoint.id)
    assert report[LEGACY.checkpoint.id].reason == "no_legacy_database"
    assert "Going further" not in render(status_of(root))  # the lesson's status is as before


def test_the_optional_checkpoints_are_declared_apart():
    assert all(checkpoint.optional and checkpoint.step > max(LESSON.steps) for checkpoint in LESSON.further.checkpoints)
    assert not any(checkpoint.optional for checkpoint in LESSON.checkpoints)
    assert sum(checkpoint.points for checkpoint in LESSON.checkpoints) == 100
    assert set(OPTIONAL) == {key.split(":")[0] for key in LESSON.further.words.mistake_names}
    # Each step's own code is recognised as that step's revision; the merge revision by its two parents.
    merge = LESSON.further.merge.at - LESSON.count - 1
    assert all(re.search(mark, "\n".join(revision.upgrade)) for n, (mark, revision)
               in enumerate(zip(LESSON.further.marks, LESSON.further.revisions)) if n != merge)
    assert re.search(LESSON.further.marks[merge], "revision = 'c71f'\ndown_revision = ('3e8b', '6a4d')\n")
    assert not re.search(LESSON.further.marks[merge], "revision = '3e8b'\ndown_revision = '9f3b'\n")


def test_the_cohort_counts_the_optional_steps_apart(request, tmp_path):
    from testing.instructor.cohort import GRADED, record_of
    from testing.instructor.cohort_report import further_lines

    good = grade(checkout_of(request, "sqlite", tmp_path / "good"))
    broken = checkout_of(request, "sqlite", tmp_path / "broken")
    _empty_default(broken)
    records = [record_of(good), record_of(grade(broken)), record_of(grade(copy_reference(
        request, reference_solution(request, "sqlite"), tmp_path / "step-5").checkout))]
    assert [record.get("further", {}).get("score") for record in records] == [90, 70, None]  # step 5: no bonus
    assert records[1]["further"]["mistakes"] == ["add_email:not_filled"]
    assert [record["score"] for record in records[:2]] == [95, 95]  # the lesson's score, bonus apart
    rows = [{"status": GRADED, **record} for record in records]
    lines = further_lines({"rows": rows})
    assert "2 submissions began them, mean bonus 80/90." in lines[1]
    assert lines[-1] == ("| `email` made NOT NULL with an empty default instead of a backfill "
                         "(`add_email:not_filled`) | 1 |")
    assert further_lines({"rows": rows[2:]}) == []  # nobody went further: the summary is as before


def test_a_merge_where_the_lesson_declares_none_is_still_not_one_line(request, tmp_path):
    """The history follows only the lesson's own fork (after revision 7): a branch merged back
    in the core lesson is still a history that is not one line."""
    from ..maintainers.catalogue import Checkout

    copied = copy_reference(request, reference_solution(request, "sqlite"), tmp_path / "checkout")
    revisions = copied.result.revisions
    checkout = Checkout(copied.checkout, revisions)
    checkout.add_revision("0b0b0b0b0b0b", revisions[2], "another branch", "pass", "pass")
    checkout.add_revision("0c0c0c0c0c0c", (revisions[3], "0b0b0b0b0b0b"), "merge", "pass", "pass")
    report = grade(copied.checkout)
    assert report.history.fork is None and len(report.history.chain) == 3
    assert report["history"].reason == "not_one_line"
    assert "merges 2 revisions" in report["history"].message, report["history"].message


# --- step 10: a database made with db.create_all(), brought under Alembic with `flask db stamp` ---------


def legacy_checkout(request, backend, dest):
    """A copy of the steps 6-9 reference where the walkthrough has done README step 10 (once per
    run and backend): its second database made and stamped at the head."""
    build = legacy_reference(request, backend)
    return copy_legacy(request, build, dest), build.result.revisions


def legacy_url(root):
    return env_file_database_url(root / "server", LEGACY.env_file)


def on_legacy(root, *statements):
    """Run SQL on the step's database, as a student's hand or another tool would."""
    engine = sa.create_engine(normalize_url(legacy_url(root)))
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def legacy_flask(root, *args):
    """`flask --env-file legacy.env ...` in the checkout's server/, as the README types it."""
    finished = subprocess.run([sys.executable, "-m", "flask", "--env-file", LEGACY.env_file, *args],
                              cwd=root / "server", env=flask_environment(), capture_output=True, text=True,
                              timeout=300)
    return finished.returncode, finished.stdout + finished.stderr


def _tables_of_revision_3(root, revisions):
    """The database made again as revision 3's tables (an older models.py), with a row, no revision recorded."""
    _empty(root)
    code, output = legacy_flask(root, "db", "upgrade", revisions[2])
    assert code == 0, output
    on_legacy(root, "DROP TABLE alembic_version",
              "INSERT INTO employees (id, name, salary) VALUES (1, 'Ada Byron', 91000)",
              "INSERT INTO departments (id, name, address) VALUES (1, 'Research', 'Building B, 2nd Floor')")


def _empty(root):
    engine = sa.create_engine(normalize_url(legacy_url(root)))
    try:
        with engine.begin() as connection:
            for table in sa.inspect(connection).get_table_names():
                connection.execute(sa.text(f'DROP TABLE "{table}"'))
    finally:
        engine.dispose()


def _older_tables_stamped_head(root, revisions):
    _tables_of_revision_3(root, revisions)
    code, output = legacy_flask(root, "db", "stamp", "head")
    assert code == 0, output


@dataclass(frozen=True)
class LegacyMistake:
    name: str
    change: Callable  # change(root, revision ids)
    reason: Optional[str]  # stamp_legacy's, or None: it passes
    says: str = ""
    fix_says: str = ""


LEGACY_MISTAKES = (
    LegacyMistake("the reference of step 10", lambda root, revisions: None, None),
    LegacyMistake("never stamped", lambda root, revisions: on_legacy(root, "DROP TABLE alembic_version"),
                  "legacy_not_stamped", "records no revision", "flask --env-file legacy.env db stamp head"),
    LegacyMistake("stamped at revision 5, its tables the head's",
                  lambda root, revisions: on_legacy(root, f"UPDATE alembic_version SET version_num = '{revisions[4]}'"),
                  "legacy_wrong_revision", "extra column `building`", "flask --env-file legacy.env db stamp head"),
    LegacyMistake("tables of revision 3 stamped at the head", _older_tables_stamped_head,
                  "legacy_wrong_revision", "not that revision's", "flask --env-file legacy.env db upgrade"),
    LegacyMistake("stamped with a revision the chain does not have",
                  lambda root, revisions: on_legacy(root, "UPDATE alembic_version SET version_num = '0123456789ab'"),
                  "legacy_unknown_revision", "0123456789ab", "stamp --purge head"),
    LegacyMistake("made again instead of stamped, its rows gone",
                  lambda root, revisions: on_legacy(root, "DELETE FROM employees", "DELETE FROM departments"),
                  "legacy_rows_missing", "no rows", "flask --env-file legacy.env shell"),
)


@pytest.mark.parametrize("mistake", LEGACY_MISTAKES, ids=[m.name for m in LEGACY_MISTAKES])
def test_each_legacy_mistake_fails_exactly_the_stamp_checkpoint(request, backend, tmp_path, mistake):
    root, revisions = legacy_checkout(request, backend, tmp_path / "checkout")
    mistake.change(root, revisions)
    report = graded(root, backend)
    found = {result.id: result.reason for result in report.further.values() if result.status == FAILED}
    expected = {LEGACY.checkpoint.id: mistake.reason} if mistake.reason else {}
    assert found == expected, report[LEGACY.checkpoint.id].message
    assert report.full_marks and report.max_score == 95  # the lesson itself is untouched
    maximum = LESSON.further.max_points  # the step applies here
    assert report.further_max == maximum and report.further_score == maximum - LEGACY.checkpoint.points * len(expected)
    result = report[LEGACY.checkpoint.id]
    assert mistake.says in result.message and mistake.fix_says in (result.fix or "")
    compare(backend, "further legacy " + mistake.name, observed(report, render(status_of(root)), root))


def test_tables_of_an_older_revision_are_stamped_there_then_upgraded_with_their_rows(
        request, backend, tmp_path):
    root, revisions = legacy_checkout(request, backend, tmp_path / "checkout")
    _tables_of_revision_3(root, revisions)
    report = graded(root, backend)
    result = report[LEGACY.checkpoint.id]
    assert result.reason == "legacy_not_stamped"
    fix = [line.strip() for line in result.fix.splitlines()]
    assert fix[-2:] == [f"flask --env-file legacy.env db stamp {revisions[2]}", "flask --env-file legacy.env db upgrade"]
    # Doing just that, as the README's "stamp that revision's id, then upgrade" says.
    code, output = legacy_flask(root, "db", "stamp", revisions[2])
    assert code == 0 and "Running upgrade" not in output, output
    code, output = legacy_flask(root, "db", "upgrade")
    assert code == 0 and f"Running upgrade {revisions[2]} -> {revisions[3]}" in output, output
    report = graded(root, backend)
    assert report[LEGACY.checkpoint.id].status == PASSED, report[LEGACY.checkpoint.id].message
    engine = sa.create_engine(normalize_url(legacy_url(root)))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, name, location, building FROM departments")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "Research", "Building B, 2nd Floor", "Building B")]


def test_the_stamp_waits_for_a_revision_that_fails_before_the_stamped_one(
        request, backend, tmp_path):
    root, _ = legacy_checkout(request, backend, tmp_path / "checkout")
    _not_null_no_default(root)  # revision 5 fails: the replay has no schema at the head to compare with
    report = graded(root, backend)
    result = report[LEGACY.checkpoint.id]
    assert (result.reason, result.blocked_by, result.earned) == ("blocked", "add_email", 0)
    head = LESSON.count + len(LESSON.further.revisions)
    assert f"Revision 5 fails on upgrade, so there is no schema at revision {head}" in result.message, result.message


def test_upgrading_the_unstamped_database_fails_on_its_first_table(request, backend, tmp_path):
    """What the README says `flask db upgrade` would do to it."""
    root, _ = legacy_checkout(request, backend, tmp_path / "checkout")
    on_legacy(root, "DROP TABLE alembic_version")
    code, output = legacy_flask(root, "db", "upgrade")
    words = 'table employees already exists' if backend == "sqlite" else 'relation "employees" already exists'
    assert code == 1 and words in output, output


def test_the_step_counts_nothing_where_its_database_is_not(request, backend, tmp_path):
    root, _ = legacy_checkout(request, backend, tmp_path / "checkout")
    instructor = graded(root, backend, local_database=False)
    assert instructor[LEGACY.checkpoint.id].reason == "instructor_grade"
    assert instructor.further_max == instructor.further_score == PUSHED_MAX
    # As pushed: legacy.env may travel (if forced past .gitignore), the database does not.
    (root / "server" / LEGACY.env_file).write_text(
        "DATABASE_URL=" + ("sqlite:///legacy.db" if backend == "sqlite" else
                           normalize_url(postgres_server_url()).rsplit("/", 1)[0] + "/no_such_database") + "\n",
        encoding="utf-8")
    shutil.rmtree(root / "server" / "instance", ignore_errors=True)
    pushed = graded(root, backend)
    result = pushed[LEGACY.checkpoint.id]
    assert (result.status, result.reason, result.points) == ("not_applicable", "no_legacy_database", 0)
    assert pushed.further_max == pushed.further_score == PUSHED_MAX


CREATE_ALL_MODEL = '''

class Project(db.Model):
    __tablename__ = "projects"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String, nullable=False)
'''


def test_a_table_made_with_create_all_in_the_lessons_database_fails_local_database(request, backend, tmp_path):
    """db.create_all() run on the lesson's own database for a model with no revision (the model
    then removed again): only the check of that database fails, and its fix names the way out."""
    copied = copy_reference(request, reference_solution(request, backend), tmp_path / "checkout")
    models = copied.server / "models.py"
    original = models.read_text(encoding="utf-8")
    models.write_text(original + CREATE_ALL_MODEL, encoding="utf-8")
    made = subprocess.run([sys.executable, "-m", "flask", "shell"], cwd=copied.server,
                          env=flask_environment(copied.database_url), input="db.create_all()\n",
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0 and "Traceback" not in made.stderr, made.stderr
    models.write_text(original, encoding="utf-8")
    report = graded(copied.checkout, backend, local_url=copied.database_url)
    assert {result.id: result.reason for result in report.failed} == {"local_database": "local_database_unmigrated"}
    fix = report["local_database"].fix
    assert "db.text('DROP TABLE projects')" in fix and "flask db migrate" in fix, fix
    compare(backend, "further create_all in the lesson's database",
            observed(report, render(status_of(copied.checkout, copied.database_url)), copied.checkout))


def test_the_cohorts_files_show_the_optional_steps_apart(request, tmp_path):
    """The real cohort command on a class of three: steps 6-9 done, done with one mistake, and
    stopped at step 5. The lesson's columns, score and mistakes are the same for all three; the
    optional steps have columns, a report section and feedback of their own; Canvas gets the
    lesson's points only."""
    import csv
    import io

    from .test_cohort import book, run_cohort

    checkout_of(request, "sqlite", tmp_path / "class" / "ann")
    _empty_default(checkout_of(request, "sqlite", tmp_path / "class" / "ben"))
    copy_reference(request, reference_solution(request, "sqlite"), tmp_path / "class" / "cy")
    roster = tmp_path / "roster.csv"
    roster.write_text("name,lms_id,source\n" + "".join(
        f"{name},{number},class/{name}\n" for number, name in enumerate(("ann", "ben", "cy"), start=41001)))
    out = tmp_path / "out"
    run_cohort(roster, "--out", out, "--cache", tmp_path / "cache", "--working-tree")

    gradebook = book(out)
    rows = {row["student"]: row for row in gradebook["rows"]}
    assert {name: (row["score"], row["mistakes"]) for name, row in rows.items()} == {
        "ann": (95, []), "ben": (95, []), "cy": (95, [])}  # the bonus never moves the lesson's score
    assert [c["id"] for c in gradebook["further_checkpoints"]] == OPTIONAL
    assert rows["ben"]["further"]["mistakes"] == ["add_email:not_filled"] and "further" not in rows["cy"]

    table = list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text(encoding="utf-8"))))
    header = list(table[0])
    lesson_columns = header[:header.index("feedback") + 1]
    assert not set(OPTIONAL) & set(lesson_columns)  # the optional steps' columns come after the lesson's
    assert header[len(lesson_columns):] == ["further_score", "further_max_score", *OPTIONAL, "further_mistakes"]
    by_name = {line["student"]: line for line in table}
    max_bonus = str(PUSHED_MAX)  # no step-10 database in a cohort
    assert [by_name["ann"][c] for c in ("score", "further_score", "further_max_score")] == ["95", max_bonus, max_bonus]
    assert by_name["ben"]["add_email"] == "0" and by_name["ben"]["further_mistakes"] == "add_email:not_filled"
    assert {by_name["cy"][c] for c in ("further_score", *OPTIONAL, "further_mistakes")} == {""}

    report = (out / "report.html").read_text(encoding="utf-8")
    section = report[report.index('<h2 id="going-further">'):report.index("<h2>Students")]
    assert "2 submissions began them" in section and "1/2" in section  # add_email: passed by one of the two
    assert "`email` made NOT NULL with an empty default instead of a backfill" in section
    assert "does not fill `employees.email`" in section  # the student's real message as the example
    assert "add_email:not_filled" not in report[:report.index('<h2 id="going-further">')]  # not a lesson mistake
    ben = (out / "feedback" / "ben.md").read_text(encoding="utf-8")
    missed = LESSON.further.checkpoints[0].points  # add_email, whose backfill ben left out
    assert f"## Going further (optional steps, scored apart): {PUSHED_MAX - missed}/{max_bonus}" in ben
    assert "### `add_email`" in ben and "does not fill `employees.email`" in ben
    assert "Going further" not in (out / "feedback" / "cy.md").read_text(encoding="utf-8")
    assert "Going further (optional steps, scored apart): 2 submissions began them" in (out / "summary.md").read_text()

    canvas = list(csv.reader(io.StringIO((out / "canvas.csv").read_text(encoding="utf-8"))))
    assert canvas[1][-1] == "95" and [line[-1] for line in canvas[2:]] == ["95", "95", "95"]  # the lesson's points
