"""One voice on any checkout: the status leads with what the grader finds first.

For every catalogue submission and every point of the lesson walk, on both
backends, with the student's own database present and with it deleted (as in
a fresh clone), the status's next action names the grader's first failing
checkpoint: the file it is about (a revision, the migrations folder) or
models.py, with the grader's fix. Once the files are right it asks for no
change to them, and it never sends the database past the end revision.

Without a database a catalogue submission is its files alone: the golden
verdicts' copy of it (fixed revision ids), whose status is made once per run
for both tests and both backends.
"""
import shutil

import pytest

from testing.lesson.checkpoints import LESSON
from testing.student.status import render, status_of

from ..maintainers.catalogue import VALID, WRONG, Checkout
from .lesson_builds import copy_reference, reference_solution
from .test_golden_verdicts import fixed_id_submission, graded_files
from .test_lesson_walk import POINTS, walk_graded, walk_to

CATALOGUE = [*WRONG, *VALID]


def delete_database(checkout):
    """As in a fresh clone: no server/instance/ and no server/.env naming a database."""
    shutil.rmtree(checkout / "server" / "instance", ignore_errors=True)
    (checkout / "server" / ".env").unlink(missing_ok=True)


def first_failure(report):
    """What a student reads first in the grade: the first failing checkpoint not
    blocked by another, the local database aside (the status speaks of it)."""
    return next((result for result in report
                 if result.status == "failed" and not result.blocked_by and result.id != "local_database"), None)


def next_advice(result):
    """The history's word on what comes next (facts.Advice), when it has one."""
    return result.verdict.facts.next if result.reason == "too_few_revisions" else None


def named_file(report, result):
    """The file the grader's finding is about."""
    chain = report.history.chain if report.history else []
    position = LESSON.position_of(result.id)
    if position is not None:
        return chain[position - 1].rel
    if result.id == "models_match":
        return "models.py"
    if result.id == "downgrades":
        return chain[result.verdict.facts.failing[0].position - 1].rel
    if result.id == "init":
        return "server/app.py" if result.reason == "app_py_broken" else "server/migrations"
    if result.reason == "extra_revisions":
        return chain[LESSON.count].rel
    return "server/migrations/versions/"


# What a next action that changes the files says (the grader's fixes and the status's own words).
FILE_CHANGES = ("make the functions read", "make downgrade() read", "Change models.py", LESSON.words.model_change,
                "delete ", "Delete ")


def check_one_voice(status, database_deleted):
    shown = render(status)
    assert "Traceback" not in shown, shown
    action = f"{status.next.title}\n{status.next.text}"
    # The grader's own grade (checks.grade), with the student's database as the local one: the
    # files' verdicts are those `pytest` gives (only local_database and the history's word on
    # applying waiting revisions can differ, as the grader may not read a PostgreSQL database).
    report = status.report
    chain = report.history.chain if report.history else []
    result = first_failure(report)
    advice = next_advice(result) if result is not None else None
    kind = advice.kind if advice else None
    if result is None:
        # The files are right: nothing asks to change them.
        assert not any(words in action for words in FILE_CHANGES), shown
        assert not any(revision.rel in action for revision in chain), shown
    elif kind in ("apply_local", "next_step"):
        # The lesson in progress: the step the grader names next, or first the database to build.
        step = LESSON.step_of(advice.count if kind == "apply_local" else advice.position)
        assert status.next.step == step or (database_deleted and "not in this copy" in status.next.title), shown
    else:
        if kind == "fix_first":  # the grader's history sends to that revision's own fix
            result = report[LESSON.checkpoint_of(advice.position)]
        file = named_file(report, result)
        assert file in action, f"the grader's first finding is {result.id} ({file}):\n{result.message}\n\n{shown}"
        fix = (result.feedback.core_fix or result.summary).splitlines()[0]
        assert fix in action or result.id == "models_match", f"not the grader's fix {fix!r}:\n{shown}"
    if database_deleted:
        assert "is not in this copy" in shown, shown
        assert status.database is not None and not status.database.exists
        done = [mark.step for mark in status.steps if mark.done]
        assert done == [step for step in LESSON.steps if all(
            report[c.id].status != "failed" for c in LESSON.checkpoints if c.step == step)], shown
    if len(chain) >= LESSON.count and report["models_match"].passed:
        assert "upgrade head" not in shown, shown  # after the last step the database stays at the end revision


@pytest.mark.parametrize("database", ["database", "no-database"])
@pytest.mark.parametrize("submission", CATALOGUE, ids=[s.name for s in CATALOGUE])
def test_catalogue_status_leads_with_the_graders_finding(request, backend, monkeypatch, tmp_path, submission, database):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    if database == "no-database":
        # Files alone: the same submission as the golden verdicts', graded once for both.
        checkout = fixed_id_submission(request, backend, submission, tmp_path / "checkout")
        delete_database(checkout.root)
        _, (_, status) = graded_files(request, checkout.root)
        check_one_voice(status, database_deleted=True)
        return
    build = reference_solution(request, backend)
    copy = copy_reference(request, build, tmp_path / "checkout")
    submission.change(Checkout(copy.checkout, build.revisions))
    check_one_voice(status_of(copy.checkout), database_deleted=False)


@pytest.mark.parametrize("database", ["database", "no-database"])
@pytest.mark.parametrize("point", POINTS, ids=[point.name for point in POINTS])
def test_walk_status_leads_with_the_graders_finding(request, backend, monkeypatch, tmp_path, point, database):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    if database == "database":  # the status test_lesson_walk reads too
        _, status, _ = walk_graded(request, backend, point)
        check_one_voice(status, database_deleted=False)
        return
    _, student = walk_to(request, backend, point, tmp_path / "checkout")
    delete_database(student.copy.checkout)
    _, (_, status) = graded_files(request, student.copy.checkout)  # files alone: one status for both backends
    check_one_voice(status, database_deleted=True)
