"""The grader against hostile and wrecking submissions (tests/hostile.py).

Each case is graded by a pristine copy of the grader in a real pytest
process, as an instructor or CodeGrade would: the JUnit report always has
one test case per checkpoint, exactly the expected checkpoints fail with a
message naming what happened, pytest exits 0 only for an honest full mark,
the grader's files and the graded checkout are byte-identical afterwards,
and nothing the submission started is still running.
"""
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from testing.lesson.checkpoints import CHECKPOINTS

from .hostile import HOSTILE, marker_of
from .test_grader_catalogue import REPO, make_submission, run_grader

# Seconds for each request of the student's code, so that the hanging cases stay short. The
# honest requests of a hostile submission take a few hundredths of a second; those after
# the one that hangs already had no more than GRACE_SECONDS (2 s) before this was lowered.
TIME_LIMIT = 2


@pytest.fixture
def pristine_grader(tmp_path):
    """A copy of the grader alone, as an instructor keeps it apart from submissions."""
    grader = tmp_path / "grader"
    shutil.copytree(REPO / "server" / "testing", grader / "server" / "testing",
                    ignore=shutil.ignore_patterns("__pycache__", "tests"))
    shutil.copy2(REPO / "pytest.ini", grader / "pytest.ini")
    return grader


def fingerprints(folder):
    """{relative path: digest} of every file below `folder`, bytecode aside."""
    prints = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            if not name.endswith(".pyc"):
                path = os.path.join(directory, name)
                with open(path, "rb") as stream:
                    prints[os.path.relpath(path, folder)] = hashlib.blake2b(stream.read()).hexdigest()
    return prints


def assert_graded_as_expected(case, code, outcomes, output):
    """Every checkpoint reported, exactly the case's failing, its exit code, and its words in the messages."""
    assert set(outcomes) == {c.id for c in CHECKPOINTS}, output
    failed = {checkpoint for checkpoint, (passed, _) in outcomes.items() if not passed}
    assert failed == set(case.failing), output
    assert code == case.exit_code, output
    for checkpoint, words in case.messages.items():
        for word in words:
            assert word in outcomes[checkpoint][1], f"{word!r} not in the {checkpoint} message:\n{output}"


def stray_processes(checkout_root):
    found = subprocess.run(["pgrep", "-f", marker_of(checkout_root)], capture_output=True, text=True)
    return found.stdout.split()


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
def test_hostile_submission_is_graded_honestly(request, backend, case, tmp_path, pristine_grader):
    if case.needs_proc and not sys.platform.startswith("linux"):
        pytest.skip("this attack finds the grader through /proc, which only Linux has")
    checkout = make_submission(request, backend, case, tmp_path / "checkout")
    grader_before, checkout_before = fingerprints(pristine_grader), fingerprints(checkout.root)

    code, outcomes, output = run_grader(
        checkout.root, backend, tmp_path, grader=pristine_grader,
        options=(f"--lesson-timeout={TIME_LIMIT}", "--lesson-memory=512"),
    )

    assert_graded_as_expected(case, code, outcomes, output)
    assert fingerprints(pristine_grader) == grader_before
    assert fingerprints(checkout.root) == checkout_before
    assert not stray_processes(checkout.root)
