"""The lesson's autograder: run `pytest` from the repository root.

One test per checkpoint of testing/lesson/checkpoints.py, all judged from a
single grade of the checkout (the session fixture `lesson_report` in
conftest.py). A failing test prints what is wrong and how to fix it. The
points of each checkpoint go into the JUnit XML (`--junitxml`) as properties
`points` (earned) and `max_points` (with `checkpoint`, `status`, `reason`, a
stable code of why it failed, and the one-line `message`), and into the
summary table at the end.
pytest exits with 0 only at full marks.

Where CodeGrade's AutoTest v2 plugin cg-pytest-reporter is loaded, each test
also carries its marks: `cg_name` (the checkpoint's title), `cg_weight` (its
points) and `cg_reason` (the one-line message), and a checkpoint that does
not apply is skipped. The plugin weighs passed tests against passed and
failed ones, leaving skipped ones out, so its final points are the grader's
score / max_score. Without the plugin nothing of this happens: the marks
would be unknown to pytest.

The optional "Going further" checkpoints are tests too, in a suite of their
own (class TestGoingFurther), but only where the plugin is loaded (conftest.py
leaves them out of every other run, so the terminal, the JUnit XML and the
exit code are the lesson's alone). Each has weight 0: CodeGrade's points are
a share of the weights, which has no room for a bonus, so an optional step
shows without moving the share. One that passed passes; one not done yet is
skipped with its message (a failure would fail pytest's exit code), and none
shows anything but a skip before an optional step is begun.

Options (testing/options.py): --lesson-root, --lesson-database, --lesson-timeout, --lesson-memory, --lesson-disk.
"""
import pytest

from testing.engine.checks import NOT_APPLICABLE, PASSED
from testing.lesson.checkpoints import CHECKPOINTS, LESSON

CODEGRADE_PLUGIN = "cg-pytest-reporter"  # the name its pytest_configure registers its reporter under
OPTIONAL_SUITE = "Going further (optional steps, weight 0: not in the points)"


def _checkpoint_test(checkpoint):
    @pytest.mark.points(checkpoint.points)
    def test(lesson_report, request):
        result = lesson_report[checkpoint.id]
        # What record_property does, without its warning about junit_family=xunit2:
        # the properties land in the JUnit XML all the same.
        _record(request.node, result)
        if request.config.pluginmanager.has_plugin(CODEGRADE_PLUGIN):
            _mark_for_codegrade(request.node, result)
        if not result.passed:
            pytest.fail(result.message, pytrace=False)

    test.__name__ = test.__qualname__ = f"test_{checkpoint.id}"
    test.__doc__ = f"{checkpoint.title} ({checkpoint.points} points)"
    return test


def _record(item, result):
    item.user_properties.extend([
        ("checkpoint", result.id),
        ("status", result.status),
        ("reason", result.reason),
        ("points", result.earned),
        ("max_points", result.points),
        ("message", result.summary),
    ])


def _optional_test(checkpoint):
    @pytest.mark.going_further
    def test(self, lesson_report, request):
        result = lesson_report.further.get(checkpoint.id)
        if result is None:  # a fault in the grader: the lesson's tests say so
            pytest.skip("The optional steps were not graded.")
        _record(request.node, result)
        request.node.user_properties.append(("optional", "true"))
        request.node.parent.add_marker(pytest.mark.cg_suite_name(OPTIONAL_SUITE))  # the plugin reads the class's
        request.node.add_marker(pytest.mark.cg_name(f"Going further (optional): {result.title}"))
        request.node.add_marker(pytest.mark.cg_weight(0))
        if not lesson_report.further_started:
            reason = LESSON.further.words.intro
        elif result.status != PASSED:
            reason = f"Not done yet (optional, {result.points} bonus points): {result.summary}"
        else:
            reason = f"Done: {result.points} bonus points, apart from the lesson's score. {result.summary}"
        request.node.add_marker(pytest.mark.cg_reason(reason))
        if result.status != PASSED or not lesson_report.further_started:
            pytest.skip(reason)

    test.__name__ = test.__qualname__ = f"test_{checkpoint.id}"
    test.__doc__ = f"{checkpoint.title} (optional, {checkpoint.points} bonus points)"
    return test


def _mark_for_codegrade(item, result):
    """The plugin reads these marks when the test's report is made, after the test ran."""
    item.add_marker(pytest.mark.cg_name(result.title))
    item.add_marker(pytest.mark.cg_weight(result.checkpoint.points))
    item.add_marker(pytest.mark.cg_reason(result.summary))
    if result.status == NOT_APPLICABLE:
        pytest.skip(result.summary)


for _checkpoint in CHECKPOINTS:
    globals()[f"test_{_checkpoint.id}"] = _checkpoint_test(_checkpoint)


class TestGoingFurther:
    """The optional steps' checkpoints, where CodeGrade's plugin is loaded (see above)."""


if LESSON.further is not None:
    for _checkpoint in LESSON.further.checkpoints:
        setattr(TestGoingFurther, f"test_{_checkpoint.id}", _optional_test(_checkpoint))
