"""Feedback that speaks of the revisions that exist.

Submissions that skip a step, do two steps in the other order or merge steps
into one revision are graded as real pytest processes. Whatever fails, no
message may say that a step's work is missing while a revision does it, and
no fix may send the student to generate that step's revision again.
"""
from dataclasses import dataclass
from typing import Callable, FrozenSet

import pytest

from testing.lesson.checkpoints import LESSON

from ..maintainers.catalogue import RENAME_COLUMN_DOWN, RENAME_COLUMN_UP, _regenerated_as_one
from .test_grader_catalogue import make_submission, run_grader

RENAME_TABLE_UP = "op.rename_table('department', 'departments')"
RENAME_TABLE_DOWN = "op.rename_table('departments', 'department')"
RENAME_IN_DEPARTMENT_UP = "op.alter_column('department', 'address', new_column_name='location')"
RENAME_IN_DEPARTMENT_DOWN = "op.alter_column('department', 'location', new_column_name='address')"


@dataclass(frozen=True)
class Case:
    name: str
    change: Callable
    works_present: FrozenSet[int]  # the lesson steps whose work some revision does
    keep_local_database: bool = False


def _step_3_skipped(c):
    """The column renamed in revision 3, on the table still called `department`."""
    c.revision_file(3).unlink()
    c.edit(c.revision_file(4).relative_to(c.root), f"down_revision = '{c.revisions[2]}'",
           f"down_revision = '{c.revisions[1]}'")
    c.set_functions(4, RENAME_IN_DEPARTMENT_UP, RENAME_IN_DEPARTMENT_DOWN)
    c.models(department_table="department", place="location")


def _steps_3_and_4_swapped(c):
    c.set_functions(3, RENAME_IN_DEPARTMENT_UP, RENAME_IN_DEPARTMENT_DOWN)
    c.set_functions(4, RENAME_TABLE_UP, RENAME_TABLE_DOWN)


def _steps_3_and_4_merged(c):
    c.set_functions(3, RENAME_TABLE_UP + "\n" + RENAME_COLUMN_UP, RENAME_COLUMN_DOWN + "\n" + RENAME_TABLE_DOWN)
    c.revision_file(4).unlink()
    c.models(place="location")


CASES = (
    Case("step 3 skipped", _step_3_skipped, frozenset({1, 2, 4})),
    Case("steps 3 and 4 in the other order", _steps_3_and_4_swapped, frozenset({1, 2, 3, 4})),
    Case("steps 3 and 4 merged into one revision", _steps_3_and_4_merged, frozenset({1, 2, 3, 4})),
    Case("steps 1 and 2 merged into one revision", _regenerated_as_one, frozenset({1, 2})),
)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_messages_speak_of_the_revisions_that_exist(request, backend, case, tmp_path):
    checkout = make_submission(request, backend, case, tmp_path / "checkout")
    code, outcomes, output = run_grader(checkout.root, backend, tmp_path)
    assert code == 1, output
    messages = [message for passed, message in outcomes.values() if not passed]
    assert messages, output
    for work in case.works_present:
        for message in messages:
            assert f"No revision {work} yet" not in message, message
            assert LESSON.words_of(work).how not in message, f"the fix generates step {work}'s revision again:\n{message}"
