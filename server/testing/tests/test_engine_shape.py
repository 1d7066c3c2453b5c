"""The engine's one-way shape: collect -> judge -> render.

- Evidence is plain data: every field of it, down to the replay's schemas and
  models.py's differences, turns into JSON (paths as text) with nothing of
  SQLAlchemy or of the student's code inside, so it could cross a process
  boundary or be cached.
- judge.py and render.py, and the facts.py and messages.py they share, run
  nothing: they import neither the sandbox, nor the collecting modules, nor
  SQLAlchemy or Alembic.
- Judging the same evidence twice gives the same verdicts.
"""
import ast
import dataclasses
import json
from pathlib import Path, PurePath

from testing.engine.judge import judge
from testing.lesson.checkpoints import LESSON

from .lesson_builds import copy_reference, reference_solution
from .test_second_lesson import source_of

COLLECTING = {"sandbox", "evidence", "replay", "reading", "submission", "worker", "pending", "database",
              "sqlalchemy", "alembic"}


def plain(value):
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"{type(value).__module__}.{type(value).__qualname__} is not plain data")


def test_the_evidence_of_a_finished_lesson_is_plain_data(request, tmp_path):
    from testing.engine.checks import grade

    build = reference_solution(request, "sqlite")
    copy = copy_reference(request, build, tmp_path / "checkout")
    report = grade(copy.checkout)
    assert report.full_marks, [result.message for result in report.failed]
    evidence = report.evidence
    data = json.loads(json.dumps(dataclasses.asdict(evidence), default=plain))
    assert data["local"]["versions"] == [build.revisions[2]]
    assert [step["position"] for step in data["replay"]["upgrades"]] == [1, 2, 3, 4]
    assert data["replay"]["models_diff"] == []
    assert judge(evidence, LESSON) == judge(evidence, LESSON)


def imported_modules(path):
    modules = set()
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            # the grader's own modules by every part of their name (..isolation.sandbox: sandbox)
            modules.update(parts if node.level or parts[0] == "testing" else parts[:1])
            if node.level and node.module is None:
                modules.update(alias.name for alias in node.names)
    return modules


def test_judging_and_rendering_run_nothing():
    for module in ("testing.engine.facts", "testing.engine.messages", "testing.engine.judge", "testing.engine.render"):
        found = imported_modules(source_of(module)) & COLLECTING
        assert not found, f"{module} imports {sorted(found)}: it should only read the evidence"
