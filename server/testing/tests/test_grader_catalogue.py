"""The grader against realistic submissions (tests/catalogue.py).

Every wrong submission fails exactly the checkpoints it should, with a message
that names the mistake and its fix, and pytest exits 1; every valid variation
gets full marks and exit 0. Each grade is a real `pytest` process on a copy of
the walkthrough's reference solution, replayed on the backend under test.
"""
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from testing.databases.database import postgres_server_url
from testing.lesson.checkpoints import CHECKPOINTS

from ..maintainers.catalogue import VALID, WRONG, Checkout
from .lesson_builds import reference_solution

REPO = Path(__file__).resolve().parents[3]


def make_submission(request, backend, submission, dest):
    build = reference_solution(request, backend)
    shutil.copytree(build.snapshots[5].checkout, dest)
    (dest / "server" / ".env").unlink(missing_ok=True)  # the reference's own database stays private
    if not submission.keep_local_database:
        shutil.rmtree(dest / "server" / "instance", ignore_errors=True)
    checkout = Checkout(dest, build.revisions)
    submission.change(checkout)
    return checkout


def run_grader(root, backend, tmp_path, grader=REPO, options=()):
    """`pytest --lesson-root=root` from the grader at `grader`, as a separate process."""
    junit = tmp_path / "report.xml"
    command = [sys.executable, "-m", "pytest", f"--lesson-root={root}", f"--junitxml={junit}", *options]
    if backend == "postgresql":
        command.append(f"--lesson-database={postgres_server_url()}")
    # As on a student's machine or a grading server, where the dev packages' pytest
    # plugins (pytest-xdist, pytest-alembic) are not installed: none is loaded.
    environment = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run = subprocess.run(command, cwd=grader, capture_output=True, text=True, timeout=300, env=environment)
    output = run.stdout + run.stderr
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    assert "error" not in run.stdout.splitlines()[-1], output  # no collection or fixture errors
    return run.returncode, _outcomes(junit), output


def _outcomes(junit):
    """{checkpoint id: (passed?, message)} from the JUnit XML."""
    outcomes = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        checkpoint = case.get("name")[len("test_"):]
        failure = case.find("failure")
        outcomes[checkpoint] = (failure is None, "" if failure is None else (failure.get("message", "") + (failure.text or "")))
    return outcomes


@pytest.mark.parametrize("submission", WRONG, ids=[s.name for s in WRONG])
def test_wrong_submission_fails_exactly_its_checkpoints(request, backend, submission, tmp_path):
    checkout = make_submission(request, backend, submission, tmp_path / "checkout")
    code, outcomes, output = run_grader(checkout.root, backend, tmp_path)
    assert set(outcomes) == {c.id for c in CHECKPOINTS}, output
    failed = {checkpoint for checkpoint, (passed, _) in outcomes.items() if not passed}
    assert failed == set(submission.failing), output
    assert code == 1, output
    for checkpoint, words in submission.messages.items():
        message = outcomes[checkpoint][1]
        for word in words:
            assert word in message, f"{word!r} not in the {checkpoint} message:\n{message}"


@pytest.mark.parametrize("submission", VALID, ids=[s.name for s in VALID])
def test_valid_submission_gets_full_marks(request, backend, submission, tmp_path):
    checkout = make_submission(request, backend, submission, tmp_path / "checkout")
    code, outcomes, output = run_grader(checkout.root, backend, tmp_path)
    failed = {checkpoint for checkpoint, (passed, _) in outcomes.items() if not passed}
    assert failed == set(), output
    assert code == 0, output
    # Full marks from a separate grader are 95/95: the student's own database file, when
    # there is one, counts only on their own machine (local_database is not applicable here).
    assert "95/95 points" in output, output
    if (checkout.server / "instance" / "app.db").is_file():
        assert "not applicable: graded for an instructor" in output, output
