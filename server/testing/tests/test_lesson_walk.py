"""One voice at every point of the lesson: status and grader agree.

Walks the lesson as the reference walkthrough leaves it after each step, and
the usual detours, each made at the moment a student would make it, with
real `flask db` commands on the copy's own database (SQLite or PostgreSQL).
At every point, the verdicts and the status text are the golden ones
(test_golden_verdicts.py), and the status's one next action and the grader's first fix (the
Fix of the first failing checkpoint a student reads) name the same step and
the same command or edit, and the checklist ticks the steps really done.

States walked:
    after step 1, 2, 3, 4 and 5 of the README
    unfixed step 3 upgraded        the rows of `department` are gone
    models.py changed before migrating  steps 3 and 4 in one `flask db migrate`
    models.py reverted first       end of step 4, `address` back before the downgrade
    extra revision                 then `flask db migrate` writes a fifth revision
    downgrade too far              `flask db downgrade` twice at step 5
    models.py not reverted         step 5's downgrade done, models.py still has `location`
    upgrade skipped                step 2's `flask db upgrade` skipped, step 3 begun
"""
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import pytest

from testing.engine.checks import grade
from testing.maintainers.walkthrough import flask_environment
from testing.student.review import run_review
from testing.student.status import fix_of, render, status_of

from .lesson_builds import LessonCopy, copy_snapshot, reference_solution, shared_build, snapshot_of
from .test_golden_verdicts import compare as compare_with_golden, observed


class Student:
    """A copy of the reference after some step, changed the way a student would."""

    def __init__(self, copy):
        self.copy = copy
        self.models = copy.server / "models.py"

    def flask(self, *args, ok=True):
        run = subprocess.run(
            [sys.executable, "-m", "flask", *args], cwd=self.copy.server, env=flask_environment(self.copy.database_url),
            capture_output=True, text=True, timeout=180,
        )
        assert (run.returncode == 0) == ok, f"flask {' '.join(args)}:\n{run.stdout}{run.stderr}"
        return run

    def edit(self, old, new):
        source = self.models.read_text(encoding="utf-8")
        assert old in source, f"{old!r} not in models.py"
        self.models.write_text(source.replace(old, new), encoding="utf-8")

    def rename_table(self):
        self.edit('__tablename__ = "department"', '__tablename__ = "departments"')

    def place(self, old, new):
        self.edit(f"{old} = db.Column(db.String)", f"{new} = db.Column(db.String)")
        self.edit(f"self.{old}", f"self.{new}")

    def add_department_model(self, reference_models):
        self.models.write_text(reference_models, encoding="utf-8")

    def revision_rel(self, position):
        (path,) = (self.copy.server / "migrations" / "versions").glob(f"{self.copy.result.revisions[position - 1]}_*.py")
        return path.relative_to(self.copy.checkout).as_posix()

    def new_revision_rel(self, known):
        """The revision file `flask db migrate` just wrote (not among the known ids)."""
        versions = self.copy.server / "migrations" / "versions"
        (path,) = [p for p in versions.glob("*.py") if not p.name.startswith(tuple(known))]
        return path.relative_to(self.copy.checkout).as_posix()


def unfixed_step_3_upgraded(student):
    student.rename_table()
    student.flask("db", "migrate", "-m", "rename department")
    student.flask("db", "upgrade", "head")


def models_changed_before_migrating(student):
    student.rename_table()
    student.place("address", "location")
    student.flask("db", "migrate", "-m", "rename department")


def models_reverted_first(student):
    student.place("location", "address")


def extra_revision(student):
    student.place("location", "address")
    student.flask("db", "migrate", "-m", "rename location back")


def downgrade_too_far(student):
    student.flask("db", "downgrade")
    student.flask("db", "downgrade")


def models_not_reverted(student):
    student.flask("db", "downgrade")


def upgrade_skipped(student, step_2_models):
    student.add_department_model(step_2_models)
    student.flask("db", "migrate", "-m", "add Department")
    student.rename_table()
    run = student.flask("db", "migrate", "-m", "rename department", ok=False)
    assert "Target database is not up to date" in run.stdout + run.stderr


@dataclass(frozen=True)
class Point:
    name: str
    after_step: int
    next_step: Optional[int]  # None: the lesson is done
    words: Tuple[str, ...]  # in the status's next action and in the grader's first fix
    done: Tuple[int, ...]  # steps ticked in the checklist
    change: Optional[Callable] = None
    status_words: Tuple[str, ...] = ()  # only the status can say these (it reads your database)
    grader_reads_database: bool = False  # the grader sees the problem only in a local SQLite file
    review_words: Tuple[str, ...] = ()  # in what `flask lesson review` says about the revisions not applied


REV3_FIX = "op.rename_table('department', 'departments')"
ADDRESS = "address = db.Column(db.String)"

POINTS = (
    Point("after step 1", 1, 2, ('flask db migrate -m "add Department"',), (1,)),
    Point("after step 2", 2, 3, ('flask db migrate -m "rename department"',), (1, 2)),
    Point("after step 3", 3, 4, ('flask db migrate -m "rename address"',), (1, 2, 3)),
    Point("after step 4", 4, 5, ("flask db downgrade {rev3}", ADDRESS), (1, 2, 3, 4)),
    Point("after step 5", 5, None, (), (1, 2, 3, 4, 5), review_words=("do not run `flask db upgrade`",)),
    Point("unfixed step 3 upgraded", 2, 3, (REV3_FIX, "{new}"), (1, 2), unfixed_step_3_upgraded,
          status_words=("flask shell", "do not upgrade or downgrade")),
    Point("models.py changed before migrating", 2, 3, (REV3_FIX, "{new}"), (1, 2), models_changed_before_migrating,
          status_words=("before `flask db upgrade`",), review_words=("Data would be lost",)),
    Point("models.py reverted before the downgrade", 4, 5, ("flask db downgrade {rev3}",), (1, 2, 3, 4),
          models_reverted_first, status_words=("leave it as it is",), grader_reads_database=True),
    Point("extra revision", 4, 5, ("delete", "{new}"), (1, 2, 3, 4), extra_revision,
          review_words=("do not fix or apply these; delete them",)),
    Point("downgrade too far", 4, 5, ("flask db upgrade {rev3}", ADDRESS), (1, 2), downgrade_too_far,
          status_words=("one downgrade too many",)),
    Point("models.py not reverted", 4, 5, (ADDRESS,), (1, 2, 3, 4), models_not_reverted,
          status_words=("do not upgrade",)),
    Point("upgrade skipped", 1, 2, ("flask db upgrade head",), (1,), upgrade_skipped, grader_reads_database=True),
)


def first_fix(report):
    """What a student reads first in the grader's output: the Fix of the first
    failing checkpoint that is not blocked by another."""
    for result in report:
        if result.status == "failed" and not result.blocked_by:
            return result, fix_of(result)
    return None, None


def walk_to(request, backend, point, dest):
    """A copy of the reference after the point's step, changed as the point says (a Student).
    The change is made once per run and backend; each test gets its own copy of the result."""
    build, walked = _walked(request, backend, point)
    return build, Student(copy_snapshot(request, walked, dest))


def walk_graded(request, backend, point):
    """(checkout, status with its database, grade) at the point, made once per run and backend
    on a copy kept for the run: this file's test and test_one_voice's read the same."""
    def make(root, keep):
        copy = snapshot_of(_walked(request, backend, point)[1], root, keep)
        return copy.checkout, status_of(copy.checkout, copy.result.database_url), grade(copy.checkout)

    return shared_build(request, f"walk-graded-{backend}-{_slug(point)}",
                        f"the status and grade at {point.name!r} on {backend}", make)


def _walked(request, backend, point):
    """(the reference, the snapshot of the point): the reference's own, or its change, made once."""
    build = reference_solution(request, backend)
    if point.change is None:
        return build, build.snapshots[point.after_step]
    return build, shared_build(request, f"walk-{backend}-{_slug(point)}", f"walking to {point.name!r} on {backend}",
                               lambda root, keep: _walk(build, point, root, keep))


def _slug(point):
    return re.sub(r"[^a-z0-9]+", "-", point.name)


def _walk(build, point, root, keep):
    walked = snapshot_of(build.snapshots[point.after_step], root, keep)
    student = Student(LessonCopy(walked.checkout, walked.result.database_url, walked.result))
    if point.change is upgrade_skipped:
        upgrade_skipped(student, (build.snapshots[2].checkout / "server" / "models.py").read_text(encoding="utf-8"))
    else:
        point.change(student)
    return walked


@pytest.mark.parametrize("point", POINTS, ids=[point.name for point in POINTS])
def test_status_and_grader_agree(request, backend, tmp_path, capsys, point):
    known = list(reference_solution(request, backend).snapshots[point.after_step].result.revisions)
    build, student = walk_to(request, backend, point, tmp_path / "checkout")
    copy = student.copy
    values = {"rev3": build.revisions[2] if len(build.revisions) > 2 else ""}
    if point.change in (unfixed_step_3_upgraded, models_changed_before_migrating, extra_revision):
        values["new"] = student.new_revision_rel(known)
    words = [word.format(**values) for word in point.words]

    if point.review_words:
        run_review(copy.server, copy.database_url)
        review = capsys.readouterr().out
        for word in point.review_words:
            assert word in review, review

    checkout, status, report = walk_graded(request, backend, point)  # the same files and database as the copy's
    shown = render(status)
    assert "Traceback" not in shown
    assert [mark.step for mark in status.steps if mark.done] == list(point.done), shown
    action = f"{status.next.title}\n{status.next.text}"
    compare_with_golden(backend, "walk " + point.name, observed(checkout, report=report, status=status))
    result, fix = first_fix(report)

    if point.next_step is None:
        assert status.next.step is None and "All five steps are done" in action, shown
        assert result is None and report.full_marks, f"{result.id}: {result.message}"
        return
    assert status.next.step == point.next_step, shown
    for word in words + list(point.status_words):
        assert word in action, f"status does not say {word!r}:\n{shown}"
    if point.grader_reads_database and backend != "sqlite":
        # The grader reads only a local SQLite file; of a database named by
        # DATABASE_URL it says that it did not check it, and the status speaks.
        local = report["local_database"]
        assert local.status == "not_applicable" and "another database" in local.summary, local.message
        return
    assert result is not None, shown
    assert f"step {point.next_step}" in fix.lower(), f"{result.id}: {result.message}"
    for word in words:
        assert word in fix, f"the grader's first fix ({result.id}) does not say {word!r}:\n{result.message}"
