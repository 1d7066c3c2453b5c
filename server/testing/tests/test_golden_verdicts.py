"""Golden verdicts: the grader's and the status's exact output, pinned.

For every submission of the catalogue (tests/catalogue.py) and every point of
the lesson walk (tests/test_lesson_walk.py), the verdict of each checkpoint
(status, reason, blocked_by, points and the whole message) and the status
text are compared with the files in tests/golden/<backend>/, so that no
change to the engine alters a word a student reads without a reviewed
change to those files. Revision ids, which `flask db migrate` draws at
random, read as <rev1>, <rev2>, ... in chain order; the checkout's folder
reads as <root>, a throw-away PostgreSQL database as lesson_<db> and the
installed packages' folder as <site-packages>.

The walk's verdicts are compared by test_lesson_walk.py itself, on the grade
and status it checks for agreement, so that each point is built and graded
once. After a deliberate change of wording, write the files anew and review the diff:
    LESSON_UPDATE_GOLDEN=1 pipenv run selftest -k "golden or lesson_walk"
"""
import difflib
import json
import os
import re
import shutil
import sqlite3
import sysconfig
from pathlib import Path

import pytest

from testing.engine.checks import grade
from testing.student.status import render, status_of

from ..maintainers.catalogue import VALID, WRONG, Checkout
from .lesson_builds import reference_solution, shared_by_content

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("LESSON_UPDATE_GOLDEN") == "1"
CATALOGUE = [*WRONG, *VALID]
SITE_PACKAGES = str(Path(sysconfig.get_paths()["purelib"]))
UPDATE_COMMAND = 'LESSON_UPDATE_GOLDEN=1 pipenv run selftest -k "golden or lesson_walk"'
THROWAWAY_DATABASE = re.compile(r"\blesson_[0-9a-f]{6}_\d+_[0-9a-z]+_[0-9a-f]{8}\b")  # leftovers.database_name()


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def revision_ids(report):
    """Every revision id the checkout holds, in chain order, then by file name."""
    history = report.history
    ids = [revision.revision for revision in history.chain]
    others = sorted(history.files, key=lambda f: re.sub(r"^[0-9a-f]{12}_", "", f.path.name))
    for revision in others:
        ids.append(revision.revision)
        ids.append(revision.path.name.split("_", 1)[0])
    return [i for n, i in enumerate(ids) if i and i not in ids[:n]]


def normaliser(report, root):
    ids = sorted(enumerate(revision_ids(report), start=1), key=lambda pair: -len(pair[1]))

    def normalise(text):
        text = text.replace(str(root), "<root>").replace(SITE_PACKAGES, "<site-packages>")
        text = THROWAWAY_DATABASE.sub("lesson_<db>", text)
        for number, revision in ids:
            text = text.replace(revision, f"<rev{number}>")
        return text

    return normalise


def observed(root, database_url=None, report=None, status=None):
    """What is pinned: the grade's verdicts and the status text, taken here
    unless the caller has them already."""
    report = report or grade(root)
    status = status or status_of(root, database_url)
    normalise = normaliser(report, root)
    return {
        "score": f"{report.score}/{report.max_score}",
        "checkpoints": {
            result.id: {
                "status": result.status,
                "reason": result.reason,
                "blocked_by": result.blocked_by,
                "earned": result.earned,
                "message": normalise(result.message).splitlines(),
            }
            for result in report
        },
        "status": normalise(render(status)).splitlines(),
    }


def fixed_id_submission(request, backend, submission, dest):
    """A catalogue submission made from the reference with fixed revision ids,
    so that files listed by name come in the same order on every run."""
    build = reference_solution(request, backend)
    shutil.copytree(build.snapshots[5].checkout, dest)
    (dest / "server" / ".env").unlink(missing_ok=True)
    if not submission.keep_local_database:
        shutil.rmtree(dest / "server" / "instance", ignore_errors=True)
    fixed = [f"{number:012x}" for number in range(1, len(build.revisions) + 1)]
    versions = dest / "server" / "migrations" / "versions"
    for path in sorted(versions.glob("*.py")):
        text, name = path.read_text(encoding="utf-8"), path.name
        for old, new in zip(build.revisions, fixed):
            text, name = text.replace(old, new), name.replace(old, new)
        path.unlink()
        (versions / name).write_text(text, encoding="utf-8")
    database = dest / "server" / "instance" / "app.db"
    if database.is_file():
        with sqlite3.connect(database) as connection:
            for old, new in zip(build.revisions, fixed):
                connection.execute("UPDATE alembic_version SET version_num = ? WHERE version_num = ?", (new, old))
        connection.close()
    checkout = Checkout(dest, fixed)
    submission.change(checkout)
    return checkout


def graded_files(request, root):
    """(checkout, (grade, status)) of a checkout whose database, if any, is a local SQLite
    file: both read only what is in the folder, so each distinct content (the backends'
    copies are equal but for their Create Date lines) is graded once per run."""
    return shared_by_content(request, "graded", root, lambda checkout: (grade(checkout), status_of(checkout)))


def compare(backend, name, found):
    path = GOLDEN / backend / f"{slug(name)}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert path.is_file(), f"no golden file {path.name}: write it with LESSON_UPDATE_GOLDEN=1 ({UPDATE_COMMAND})"
    expected = path.read_text(encoding="utf-8")
    shown = json.dumps(found, indent=1, ensure_ascii=False) + "\n"
    difference = "".join(difflib.unified_diff(
        expected.splitlines(True), shown.splitlines(True), "golden", "now", n=2))
    assert not difference, (f"{name}: the verdicts differ from {path.relative_to(GOLDEN.parent)} "
                            f"(after a deliberate change: {UPDATE_COMMAND}):\n{difference}")


@pytest.mark.parametrize("submission", CATALOGUE, ids=[s.name for s in CATALOGUE])
def test_catalogue_verdicts_are_unchanged(request, backend, submission, tmp_path):
    checkout = fixed_id_submission(request, backend, submission, tmp_path / "checkout")
    shared, (report, status) = graded_files(request, checkout.root)
    compare(backend, "catalogue " + submission.name, observed(shared, report=report, status=status))
