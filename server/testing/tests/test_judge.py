"""judge.judge on evidence written by hand: verdicts and reasons, no process run.

The judge is pure, so a test can hand it the evidence of a submission that
was never made (a replay's steps, the files, the folders) and read the
verdicts: status, reason, blocked_by. Wording is the renderers' and is
pinned elsewhere (tests/golden/); only one summary is read here, to show the
two halves meet.
"""
from pathlib import Path

from testing.databases.reading import Column
from testing.engine.evidence import Evidence, Folders
from testing.engine.judge import FAILED, NOT_APPLICABLE, PASSED, judge
from testing.engine.render import feedback
from testing.engine.replay import Loss, Replay, Step
from testing.engine.submission import History, Layout, Models, RevisionFile
from testing.lesson.checkpoints import LESSON

ROOT = Path("/nowhere/checkout")
INTEGER, STRING = ("integer", "INTEGER()"), ("string", "VARCHAR()")


def table(*columns):
    """{column: Column} from (name, (kind, type), nullable, primary key)."""
    return {name: Column(name, kind[0], nullable, key, kind[1]) for name, kind, nullable, key in columns}


EMPLOYEES = table(("id", INTEGER, False, True), ("name", STRING, False, False), ("salary", INTEGER, True, False))


def department(name="department", place="address"):
    return {name: table(("id", INTEGER, False, True), ("name", STRING, False, False), (place, STRING, True, False))}


SCHEMAS = [  # after each of the lesson's revisions, done right
    {},
    {"employees": EMPLOYEES},
    {"employees": EMPLOYEES, **department()},
    {"employees": EMPLOYEES, **department("departments")},
    {"employees": EMPLOYEES, **department("departments", "location")},
]


def evidence(upgrade_losses=None, failing_upgrade=None):
    """The evidence of a four-revision submission whose revisions do the lesson's work;
    `upgrade_losses` {position: [Loss]}, `failing_upgrade` the position of one that raises."""
    files = [RevisionFile(ROOT / f"server/migrations/versions/r{n}.py", f"server/migrations/versions/r{n}.py",
                          loaded=True, revision=f"r{n}", down_revision=f"r{n - 1}" if n > 1 else None)
             for n in range(1, 5)]
    replay = Replay()
    for n, revision in enumerate(files, start=1):
        step = Step("upgrade", n, revision, before=SCHEMAS[n - 1], after=SCHEMAS[n],
                    losses=(upgrade_losses or {}).get(n, []))
        if n == failing_upgrade:
            step.after, step.error = None, "OperationalError: no such table: department"
        replay.upgrades.append(step)
        if not step.ran:
            break
    else:
        replay.models_diff = []
        replay.downgrades = [Step("downgrade", n, files[n - 1], before=SCHEMAS[n], after=SCHEMAS[n - 1])
                             for n in range(4, 0, -1)]
    return Evidence(Layout.of(ROOT), "sqlite", Folders(True, True, True, False, []),
                    history=History(files=files, chain=list(files)), replay=replay, models=Models(data=[]))


def outcomes(verdicts):
    return {checkpoint: (verdict.status, verdict.reason, verdict.blocked_by) for checkpoint, verdict in verdicts.items()}


def test_the_lessons_work_done_right_passes_every_checkpoint():
    found = outcomes(judge(evidence(), LESSON))
    assert found.pop("local_database") == (NOT_APPLICABLE, "no_local_database", None)
    assert set(found.values()) == {(PASSED, "ok", None)}


def test_an_instructors_grade_leaves_the_students_own_database_out():
    given = evidence()
    given.local_counted = False  # grading another checkout: whatever its database file holds
    verdicts = judge(given, LESSON)
    assert outcomes(verdicts)["local_database"] == (NOT_APPLICABLE, "instructor_grade", None)
    words = feedback(verdicts["local_database"], given, LESSON, verdicts)
    assert words.summary.startswith("not applicable: graded for an instructor")


def test_a_table_rename_that_loses_the_rows_fails_only_its_checkpoint():
    lost = Loss("departments", "department", "departments", "address", "address", 2, 2, 0)
    given = evidence(upgrade_losses={3: [lost]})
    verdicts = judge(given, LESSON)
    failed = {checkpoint: verdict.reason for checkpoint, verdict in verdicts.items() if verdict.status == FAILED}
    assert failed == {"rename_table": "loses_data"}
    words = feedback(verdicts["rename_table"], given, LESSON, verdicts)
    assert words.summary == "Revision 3 (server/migrations/versions/r3.py) loses data: the 2 rows of `department`."
    assert "op.rename_table('department', 'departments')" in words.fix


def test_an_upgrade_that_raises_blocks_what_depends_on_it():
    found = outcomes(judge(evidence(failing_upgrade=3), LESSON))
    assert found["rename_table"] == (FAILED, "upgrade_fails", None)
    assert found["rename_column"] == (FAILED, "blocked", "rename_table")
    assert found["downgrades"] == (FAILED, "blocked", "rename_table")
    assert found["models_match"] == (FAILED, "blocked", "rename_table")
    assert found["history"] == (PASSED, "ok", None)


def test_a_revision_that_creates_the_renamed_table_directly_is_the_wrong_schema():
    given = evidence()
    step_2, step_3 = given.replay.upgrades[1:3]
    step_2.after = step_3.before = {"employees": EMPLOYEES, **department("departments")}
    verdicts = judge(given, LESSON)
    assert verdicts["create_department"].reason == "wrong_schema"
    kinds = [(mismatch.kind, mismatch.table) for mismatch in verdicts["create_department"].facts.schema_wrong]
    assert kinds == [("no_table", "department"), ("extra_table", "departments")]
    # revision 3 then starts from tables it cannot rename: it is blocked, not blamed
    assert (verdicts["rename_table"].reason, verdicts["rename_table"].blocked_by) == ("blocked", "create_department")


def test_without_a_versions_folder_everything_waits_for_init():
    given = Evidence(Layout.of(ROOT), "sqlite", Folders(True, True, False, False, ["versions/"]),
                     models=Models(data=[]))
    found = outcomes(judge(given, LESSON))
    assert found["init"] == (FAILED, "migrations_incomplete", None)
    for checkpoint in ("history", "create_employees", "create_department", "rename_table", "rename_column",
                       "downgrades"):
        assert found[checkpoint][1:] == ("blocked", "init"), (checkpoint, found[checkpoint])
