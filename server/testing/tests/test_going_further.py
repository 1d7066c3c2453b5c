"""The optional "Going further" steps 6-8, graded apart from the lesson.

The reference continues the lesson's reference build with the README's steps
6-8 (the walkthrough performs them), then each realistic mistake changes one
revision of it. Each is graded on SQLite and PostgreSQL; the optional
checkpoints' verdicts, the lesson's own, both scores and the status text are
pinned in tests/golden/<backend>/further-*.json (written anew with
LESSON_UPDATE_GOLDEN=1, like the lesson's golden verdicts).
"""
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

from testing.engine.checks import FAILED, PASSED, grade
from testing.engine.report_text import further_line
from testing.lesson.checkpoints import LESSON
from testing.maintainers.walkthrough import FURTHER_LAST_STEP, run_walkthrough
from testing.student.status import render, status_of

from .lesson_builds import copy_reference, reference_solution
from .test_golden_verdicts import compare, normaliser

OPTIONAL = [checkpoint.id for checkpoint in LESSON.further.checkpoints]
_BUILT = {}  # backend -> the reference after step 8, once per process


def further_reference(request, backend, tmp_path_factory):
    """The lesson's reference continued with README steps 6-8 (built once per process and backend)."""
    if backend not in _BUILT:
        dest = tmp_path_factory.mktemp(f"further-{backend}")
        copied = copy_reference(request, reference_solution(request, backend), dest / "checkout")
        run_walkthrough(copied.checkout, stop_after=FURTHER_LAST_STEP, report=lambda line: None,
                        database_url=copied.database_url if backend == "postgresql" else None, resume=copied.result)
        # Graded as pushed: no database and no .env (the copy's PostgreSQL database is dropped with the test).
        (copied.server / ".env").unlink(missing_ok=True)
        shutil.rmtree(copied.server / "instance", ignore_errors=True)
        _BUILT[backend] = copied
    return _BUILT[backend]


def checkout_of(request, backend, tmp_path_factory, dest):
    shutil.copytree(further_reference(request, backend, tmp_path_factory).checkout, dest)
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
    for message in ("index email", "add building"):
        revision(root, message).unlink()
    models = root / "server" / "models.py"
    text = models.read_text(encoding="utf-8").replace("    building = db.Column(db.String)\n", "")
    models.write_text(text.replace("nullable=False, index=True)", "nullable=False)"), encoding="utf-8")


BLOCKED_AFTER_6 = {"fill_building": "blocked", "index_email": "blocked"}
MISTAKES = (
    Mistake("the reference of steps 6-8", lambda root: None, {}),
    Mistake("only step 6 done", _only_step_6,
            {"any": {"fill_building": "missing_revision", "index_email": "missing_revision"}}, "No revision 6 yet"),
    Mistake("NOT NULL email added with no default on a table with rows", _not_null_no_default,
            {"any": {"add_email": "upgrade_fails", **BLOCKED_AFTER_6}}, "fails on upgrade", "WHERE email IS NULL"),
    Mistake("email made NOT NULL with an empty default instead of a backfill", _empty_default,
            {"any": {"add_email": "not_filled"}}, "does not fill `employees.email`"),
    Mistake("data migration in a raw SQL string, which SQLAlchemy 2 rejects", _raw_sql_string,
            {"any": {"fill_building": "upgrade_fails", "index_email": "blocked", "add_email": "blocked"}},
            "ObjectNotExecutableError", "sa.text(\"UPDATE departments SET building = :building WHERE id = :id\")"),
    Mistake("data migration whose downgrade does not reverse", _downgrade_left_empty,
            {"any": {"fill_building": "downgrade_not_reversed", "add_email": "blocked"}},
            "does not reverse its upgrade"),
    Mistake("index created without CONCURRENTLY", _plain_index,
            {"any": {"index_email": "not_concurrent"}}, "without CONCURRENTLY"),
    Mistake("CONCURRENTLY inside the migration's transaction", _concurrently_in_transaction,
            {"sqlite": {"index_email": "not_concurrent"},
             "postgresql": {"index_email": "upgrade_fails", "add_email": "blocked", "fill_building": "blocked"}},
            "autocommit_block"),
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
def test_each_mistake_fails_exactly_its_optional_checkpoints(request, backend, tmp_path_factory, tmp_path, mistake):
    root = checkout_of(request, backend, tmp_path_factory, tmp_path / "checkout")
    mistake.change(root)
    report = grade(root, backend, server_url=None if backend == "sqlite" else _server_url())
    expected = mistake.expected(backend)
    found = {result.id: result.reason for result in report.further.values() if result.status == FAILED}
    assert found == expected, {result.id: result.message for result in report.further.values()}
    assert report.max_score == 95 and report.further_max == 60  # the bonus is never in the lesson's total
    assert report.further_score == 60 - 20 * len(expected)
    if mistake.says:
        assert mistake.says in "\n".join(report[checkpoint].message for checkpoint in expected)
    if mistake.fix_says:
        assert any(mistake.fix_says in (report[checkpoint].fix or "") for checkpoint in expected)
    if not expected or all(reason in ("not_filled", "not_concurrent", "missing_revision")
                           for reason in expected.values()):
        assert report.full_marks, [result.message for result in report.failed]  # the lesson itself is intact
    status = render(status_of(root))
    compare(backend, "further " + mistake.name, observed(report, status, root))


def _server_url():
    from testing.databases.database import postgres_server_url

    return postgres_server_url()


def test_a_lesson_finished_at_step_5_is_told_the_steps_are_optional(request, backend, tmp_path):
    root = tmp_path / "checkout"
    copy_reference(request, reference_solution(request, backend), root)
    report = grade(root, backend, server_url=None if backend == "sqlite" else _server_url())
    assert report.full_marks and report.score == report.max_score
    assert not report.further_started and report.further_score == 0
    assert further_line(report) == LESSON.further.words.intro
    assert all(result.reason == "missing_revision" for result in report.further.values())
    assert "Going further" not in render(status_of(root))  # the lesson's status is as before


def test_the_optional_checkpoints_are_declared_apart():
    assert all(checkpoint.optional and checkpoint.step > max(LESSON.steps) for checkpoint in LESSON.further.checkpoints)
    assert not any(checkpoint.optional for checkpoint in LESSON.checkpoints)
    assert sum(checkpoint.points for checkpoint in LESSON.checkpoints) == 100
    assert set(OPTIONAL) == {key.split(":")[0] for key in LESSON.further.words.mistake_names}
    # Each step's own code is recognised as that step's revision.
    assert all(re.search(mark, "\n".join(revision.upgrade))
               for mark, revision in zip(LESSON.further.marks, LESSON.further.revisions))


def test_the_cohort_counts_the_optional_steps_apart(request, tmp_path_factory, tmp_path):
    from testing.instructor.cohort import GRADED, record_of
    from testing.instructor.cohort_report import further_lines

    good = grade(checkout_of(request, "sqlite", tmp_path_factory, tmp_path / "good"))
    broken = checkout_of(request, "sqlite", tmp_path_factory, tmp_path / "broken")
    _empty_default(broken)
    records = [record_of(good), record_of(grade(broken)), record_of(grade(copy_reference(
        request, reference_solution(request, "sqlite"), tmp_path / "step-5").checkout))]
    assert [record.get("further", {}).get("score") for record in records] == [60, 40, None]  # step 5: no bonus
    assert records[1]["further"]["mistakes"] == ["add_email:not_filled"]
    assert [record["score"] for record in records[:2]] == [95, 95]  # the lesson's score, bonus apart
    rows = [{"status": GRADED, **record} for record in records]
    lines = further_lines({"rows": rows})
    assert "2 submissions began them, mean bonus 50/60." in lines[1]
    assert lines[-1] == ("| `email` made NOT NULL with an empty default instead of a backfill "
                         "(`add_email:not_filled`) | 1 |")
    assert further_lines({"rows": rows[2:]}) == []  # nobody went further: the summary is as before


def test_the_cohorts_files_show_the_optional_steps_apart(request, tmp_path_factory, tmp_path):
    """The real cohort command on a class of three: steps 6-8 done, done with one mistake, and
    stopped at step 5. The lesson's columns, score and mistakes are the same for all three; the
    optional steps have columns, a report section and feedback of their own; Canvas gets the
    lesson's points only."""
    import csv
    import io

    from .test_cohort import book, run_cohort

    checkout_of(request, "sqlite", tmp_path_factory, tmp_path / "class" / "ann")
    _empty_default(checkout_of(request, "sqlite", tmp_path_factory, tmp_path / "class" / "ben"))
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
    max_bonus = str(LESSON.further.max_points)
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
    assert f"## Going further (optional steps, scored apart): {LESSON.further.max_points - missed}/{max_bonus}" in ben
    assert "### `add_email`" in ben and "does not fill `employees.email`" in ben
    assert "Going further" not in (out / "feedback" / "cy.md").read_text(encoding="utf-8")
    assert "Going further (optional steps, scored apart): 2 submissions began them" in (out / "summary.md").read_text()

    canvas = list(csv.reader(io.StringIO((out / "canvas.csv").read_text(encoding="utf-8"))))
    assert canvas[1][-1] == "95" and [line[-1] for line in canvas[2:]] == ["95", "95", "95"]  # the lesson's points
