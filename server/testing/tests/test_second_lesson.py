"""The engine grades a second lesson declared only as data (tests/second_lesson.py).

A checkout is made as a student would make it: app.py and models.py written,
`flask db init` run for real, the three revision files written; then
checks.grade replays it on the backend under test with the lesson's rows
and judges it against that lesson. The solution gets full marks; each of
the three mistakes fails exactly its checkpoints, for its reasons, with
the fix the lesson declares. No engine module (nor the status, the review
or the page's facts) names a table of either lesson.
"""
import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testing.databases.database import postgres_server_url
from testing.engine.checks import grade
from testing.maintainers.walkthrough import flask_environment

from ..maintainers.lesson_files import revision_file
from .second_lesson import APP, LIBRARY, MISTAKES, MODELS, SOLUTION

ENGINE_MODULES = ("testing.engine.checks", "testing.engine.evidence", "testing.engine.facts", "testing.engine.judge",
                  "testing.engine.messages", "testing.engine.render",
                  "testing.engine.replay", "testing.databases.reading", "testing.student.status", "testing.student.review",
                  "testing.student.page_facts")


def source_of(module):
    """The file of one of the grader's modules, found by its name wherever it lives."""
    return Path(importlib.util.find_spec(module).origin)


def library_checkout(root, revisions=None, models=MODELS):
    server = root / "server"
    server.mkdir(parents=True)
    (server / "app.py").write_text(APP, encoding="utf-8")
    (server / "models.py").write_text(models, encoding="utf-8")
    init = subprocess.run([sys.executable, "-m", "flask", "db", "init"], cwd=server, env=flask_environment(),
                          capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stdout + init.stderr
    ids = [None, "b00c5000a001", "b00c5000a002", "b00c5000a003"]
    for position, (upgrade, downgrade) in {**SOLUTION, **(revisions or {})}.items():
        text = revision_file(ids[position], ids[position - 1], "\n".join(upgrade), "\n".join(downgrade),
                             f"library step {position}")
        (server / "migrations" / "versions" / f"{ids[position]}_step_{position}.py").write_text(text, encoding="utf-8")
    return root


def grade_library(root, backend):
    return grade(root, server_url=postgres_server_url() if backend == "postgresql" else None, lesson=LIBRARY)


def test_the_solution_gets_full_marks(backend, tmp_path):
    report = grade_library(library_checkout(tmp_path / "library"), backend)
    assert [result.id for result in report] == [checkpoint.id for checkpoint in LIBRARY.checkpoints]
    assert report.full_marks, "\n\n".join(result.message for result in report.failed)
    assert report.score == report.max_score == 100
    assert report["add_pages"].summary == f"Revision 2 ({report.history.chain[1].rel}) adds `pages` to `books` and " \
                                          "keeps every row."
    assert report["local_database"].status == "not_applicable"


@pytest.mark.parametrize("name", MISTAKES)
def test_each_mistake_fails_exactly_its_checkpoints(backend, tmp_path, name):
    mistake = MISTAKES[name]
    root = library_checkout(tmp_path / "library", mistake.get("revisions"), mistake.get("models", MODELS))
    report = grade_library(root, backend)
    failed = {result.id: result.reason for result in report.failed}
    assert failed == mistake["failing"], "\n\n".join(result.message for result in report.failed)
    first = next(result for result in report.failed if result.reason != "blocked")
    assert first.fix, first.message
    if first.id == "models_match":
        assert "the Book model should read:" in first.fix and "writer = db.Column(db.String)" in first.fix
    else:
        revision = LIBRARY.by_id[first.id]
        position = [r.checkpoint for r in LIBRARY.revisions].index(revision) + 1
        assert all(line in first.fix for line in LIBRARY.revision(position).upgrade), first.message
    for result in report.failed:
        if result.reason == "blocked":
            assert result.blocked_by in failed and result.summary == f"blocked by {result.blocked_by}: fix that first"


def code_words(source):
    """The names and strings of a module's code, docstrings left out (they show examples)."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value
        elif isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr


def test_no_engine_module_names_a_lesson_table():
    names = re.compile(r"\b(employees?|departments?|address|location|books|writer|author|pages)\b", re.I)
    for module in ENGINE_MODULES:
        words = code_words(source_of(module).read_text(encoding="utf-8"))
        found = sorted({match.group(0) for word in words for match in names.finditer(word)})
        assert not found, f"{module} names {found}: the lesson's declaration should"


def test_an_incomplete_declaration_says_what_it_lacks():
    import dataclasses

    with pytest.raises(ValueError) as raised:
        dataclasses.replace(LIBRARY, checkpoints=tuple(c for c in LIBRARY.checkpoints if c.id != "add_pages"))
    assert "revision 2's checkpoint 'add_pages' is not among the checkpoints" in str(raised.value)
    with pytest.raises(ValueError) as raised:
        dataclasses.replace(LIBRARY, end=dataclasses.replace(LIBRARY.end, revision=4))
    assert "the end revision 4 is not one of the 3 revisions" in str(raised.value)
    words = LIBRARY.words
    with pytest.raises(ValueError) as raised:
        dataclasses.replace(LIBRARY, words=dataclasses.replace(
            words, revisions={key: value for key, value in words.revisions.items() if key != "add_pages"}))
    assert "no words for revision 'add_pages'" in str(raised.value)
    with pytest.raises(ValueError) as raised:
        dataclasses.replace(words, model_fix="Change {modles}")
    assert "'model_fix' uses {modles}, which is not given" in str(raised.value)


def test_a_block_is_refused_outside_the_closed_set_of_causes():
    from testing.engine.facts import BLOCK_CAUSES, Block
    from testing.engine.messages import BLOCKED_WHY, block_fields
    from testing.lesson.feedback import check_templates

    with pytest.raises(AssertionError):
        Block("history", "history_braeks", position=2)
    with pytest.raises(AssertionError):  # each cause carries its own facts
        Block("history", "history_breaks", end=3)
    with pytest.raises(ValueError) as raised:
        check_templates({cause: words for cause, words in BLOCKED_WHY.items() if cause != "needs_all"},
                        BLOCK_CAUSES, block_fields, "the causes of a block")
    assert str(raised.value) == "the words for the causes of a block are not right: no words for 'needs_all'"
    with pytest.raises(ValueError) as raised:
        check_templates({**BLOCKED_WHY, "end_fails": "Revision {end} fails at {position}."},
                        BLOCK_CAUSES, block_fields, "the causes of a block")
    assert "'end_fails' uses {position}, which is not given" in str(raised.value)
