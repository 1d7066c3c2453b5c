"""Going further: optional steps after the lesson's last one, graded by the same
engine and scored apart ("Lesson 100/100 · Going further 20/90").

A lesson may declare `further` (a Further): optional revisions that continue
its chain, each with its checkpoint (step >= 6, optional=True), what it must
leave beyond the schema (`Filled` values, an `Indexed` column), and where
models.py and the local database stand once it is done (one EndState per
optional revision). The core checkpoints never change for a submission
without optional revisions. For one whose extra revisions are the optional
ones (`recognised`), the core is judged against where the student
legitimately is: the lesson's revisions followed by k optional ones, with
models.py and the local database at revision count + k. The optional
checkpoints are judged on the lesson extended by every optional revision, so
a step not done yet reads "No revision 6 yet" with the README's fix.

A Further may also declare a `Merge`: two optional revisions made from the
same parent (a student's and a teammate's) and the revision that merges them.
The history then follows that fork (submission.Fork.declared_by): the two
branches one after the other, then the merge, an order `flask db upgrade` may
run them in, so the replay and every position-based judgement stay as they
are. Beyond that, each branch must follow the fork's revision (a teammate's
revision rewritten to follow the other fails) and be there at all (deleted
while models.py keeps its column fails); the merge revision must name both
branches, and two heads left unmerged fail it.

    further_count(evidence, lesson)   k, the optional revisions the chain holds
    lesson_with(lesson, k)            the lesson as judged with k optional revisions
    judge_further(evidence, lesson)   {checkpoint id: Verdict} of the optional checkpoints

A step that adds no revision (`legacy`: a database made with db.create_all(),
brought under Alembic with `flask db stamp`) is judged on the student's own
copy of that database, against the replay's schema at the revision it is
stamped with; it does not apply where there is none (a push, an instructor's
grade), and counts nothing then.
"""
import ast
import dataclasses
import re

from ..lesson.definition import Filled, Indexed, specs_of
from .facts import Block, FailingDowngrade, FurtherFacts, LegacyFacts, Mismatch
from .judge import FAILED, NOT_APPLICABLE, PASSED, Verdict, _ChainJudging, schema_problems, undone_by


def further_count(evidence, lesson):
    """How many optional revisions the chain holds after the lesson's own, or 0 when
    its extra revisions are not the optional ones (the core then judges them as extra)."""
    further, extra = lesson.further, _beyond_the_lesson(lesson, evidence.chain)
    if not extra:
        return 0
    for offset, revision_file in enumerate(extra):
        position = lesson.count + offset + 1
        step = evidence.replay.upgrade(position)
        done = step is not None and step.ran and further.revisions[offset].change.done_by(step.before, step.after)
        if not done and not re.search(further.marks[offset], revision_file.source):
            return 0
    return len(extra)


def optional_files(lesson, chain):
    """The revision files after the lesson's own that read as its optional steps', judged
    by their source alone (before any replay: `flask lesson review` of pending revisions)."""
    extra = _beyond_the_lesson(lesson, chain)
    if extra and all(re.search(mark, revision.source) for mark, revision in zip(lesson.further.marks, extra)):
        return extra
    return []


def _beyond_the_lesson(lesson, chain):
    """The revision files after the lesson's own, when the lesson has optional steps and
    there are no more of them than it has ([] otherwise)."""
    extra = list(chain[lesson.count:])
    return extra if lesson.further is not None and len(extra) <= len(lesson.further.revisions) else []


def lesson_with(lesson, k):
    """The lesson followed by its first k optional revisions, ending after them."""
    if k == 0:
        return lesson
    further = lesson.further
    return dataclasses.replace(
        lesson,
        steps={**lesson.steps, **{step: title for step, title in further.steps.items()
                                  if step <= further.revisions[k - 1].step}},
        checkpoints=lesson.checkpoints + further.checkpoints[:k],
        revisions=lesson.revisions + further.revisions[:k],
        end=further.ends[k - 1],
        words=dataclasses.replace(
            lesson.words,
            revisions={**lesson.words.revisions, **{revision.checkpoint.id: further.words.revisions[revision.checkpoint.id]
                                                    for revision in further.revisions[:k]}},
            extra_revision_note=f"the lesson's {lesson.count_word} and {k} of the optional steps",
            model_change="", model_repr_note="", model_early_note="",
            **vars(further.words.ends[k - 1]),
        ),
        by_id=None,
    )


def evidence_for(evidence, k):
    """The evidence as the core judges it with k optional revisions: models.py
    compared at the head rather than at the lesson's end revision."""
    if k == 0:
        return evidence
    replay = evidence.replay
    head = replay.head_models or (None, "", None)
    replay = dataclasses.replace(replay, models_diff=head[0], models_code=head[1], models_error=head[2])
    return dataclasses.replace(evidence, replay=replay)


def judge_further(evidence, lesson):
    """The optional checkpoints' verdicts, judged on the lesson extended by every optional revision."""
    full = lesson_with(lesson, len(lesson.further.revisions))
    judging = _ChainJudging(evidence, full)
    judging.add(judging.init())
    for position in range(1, full.count + 1):
        judging.add(judging.revision(position))
    verdicts = {}
    for position in range(lesson.count + 1, full.count + 1):
        verdict = judging.verdicts[full.checkpoint_of(position)]
        if verdict.status == PASSED:
            verdict = _leaves(evidence, lesson, full, position) or _downgrade(evidence, full, position) or verdict
        verdicts[verdict.id] = _merging(evidence, lesson, full, position, verdict, verdicts)
    if lesson.further.legacy is not None:
        verdict = judge_legacy(evidence, lesson.further.legacy.checkpoint, full)
        verdicts[verdict.id] = verdict
    return verdicts, full


def _merging(evidence, lesson, full, position, verdict, verdicts):
    """The verdict on a revision of the declared merge, from the one judged as any revision's
    (`verdicts`: those of the positions before)."""
    merge, chain = lesson.further.merge, evidence.chain
    if merge is None or position not in (*merge.branches, merge.at):
        return verdict
    if position in merge.branches:
        teammates = position == merge.branches[1]
        if teammates and verdict.reason == "missing_revision" and _models_add(evidence, full.revision(position).change):
            return _failed(full, position, "branch_deleted")  # models.py kept what the deleted revision did
        if verdict.status == PASSED and chain[position - 1].down_revisions != (chain[merge.fork - 1].revision,):
            follows = evidence.history.position_of(chain[position - 1].down_revisions[0])
            return _failed(full, position, "rewritten_parent", follows=follows)
        return verdict
    if verdict.reason == "missing_revision":
        if evidence.history.fork is not None:  # both branches there, two heads
            return _failed(full, position, "not_merged")
        failing = next((branch for branch in merge.branches if verdicts[full.checkpoint_of(branch)].failed
                        and verdicts[full.checkpoint_of(branch)].reason != "missing_revision"), None)
        if failing is not None:  # a branch deleted or rewritten, or failing: the merge waits for it
            return _blocked(full, position, failing, "branch_first", earlier=failing, position=position)
    elif verdict.status == PASSED and \
            sorted(chain[position - 1].down_revisions) != sorted(chain[branch - 1].revision for branch in merge.branches):
        return _failed(full, position, "not_a_merge")
    return verdict


def _models_add(evidence, change):
    """Whether models.py, compared at the head, has the column `change` (an AddColumn) adds."""
    diff = (evidence.replay.head_models or (None,))[0] or []
    return any(item.kind == "add_column" and (item.table, item.column) == (change.table, change.column)
               for entry in diff for item in entry) if hasattr(change, "column") else False


def judge_legacy(evidence, checkpoint, full):
    """The verdict on the database made without migrations (evidence.legacy): stamped with one
    revision of the chain, its tables that revision's, the revision the head, its rows kept."""
    def verdict(status, reason, facts=None, block=None):
        return Verdict(checkpoint, "legacy", status, reason, block, facts)

    reading, replay = evidence.legacy, evidence.replay
    if not evidence.local_counted:
        return verdict(NOT_APPLICABLE, "instructor_grade")
    if reading is None:
        return verdict(NOT_APPLICABLE, "no_legacy_database")
    if reading.error:
        return verdict(FAILED, "legacy_unreadable")
    head = len(evidence.chain)
    if not reading.versions:  # no alembic_version, or the empty one a failed `flask db upgrade` leaves on SQLite
        return verdict(FAILED, "legacy_not_stamped", LegacyFacts(head=head, matches=_matching(reading, replay, full)))
    position = evidence.history.position_of(reading.versions[0]) if len(reading.versions) == 1 else None
    if position is None:
        return verdict(FAILED, "legacy_unknown_revision",
                       LegacyFacts(head=head, matches=_matching(reading, replay, full)))
    if replay.error:
        return verdict(FAILED, "replay_database_unusable")
    stamped = replay.upgrade(position)
    if stamped is None or not stamped.ran:  # the replay never reached the stamped revision's schema
        failing = next((step.position for step in replay.upgrades if not step.ran), position)
        return verdict(FAILED, "blocked", block=Block(full.checkpoint_of(failing) or "history",
                                                      "stamped_schema_unknown", earlier=failing, position=position))
    problems = schema_problems(reading.schema, _specs_at(replay, position, full))
    facts = dict(position=position, head=head, matches=_matching(reading, replay, full))
    if problems:
        return verdict(FAILED, "legacy_wrong_revision", LegacyFacts(problems=tuple(problems), **facts))
    if position < head:
        return verdict(FAILED, "legacy_behind", LegacyFacts(**facts))
    empty = [Mismatch("no_rows", table) for table in sorted(reading.schema) if not reading.counts.get(table)]
    if empty:
        return verdict(FAILED, "legacy_rows_missing", LegacyFacts(problems=tuple(empty), **facts))
    return verdict(PASSED, "ok", LegacyFacts(**facts))


def _specs_at(replay, position, full):
    """What the tables are at revision `position`, as the replay left them (its NULL rules the
    lesson leaves free, free)."""
    return specs_of(replay.upgrade(position).after, full.end.free_nullability)


def _matching(reading, replay, full):
    """The newest revision whose tables and columns a database has exactly, or None."""
    return next((step.position for step in reversed(replay.upgrades) if step.ran and step.after
                 and not schema_problems(reading.schema, _specs_at(replay, step.position, full))), None)


def _failed(full, position, reason, **facts):
    return Verdict(full.revision(position).checkpoint, "further", FAILED, reason, None, FurtherFacts(**facts))


def _blocked(full, judged, by_position, cause, **facts):
    """Revision `judged`'s checkpoint waits for revision `by_position`'s (facts: the Block's)."""
    block = Block(full.checkpoint_of(by_position), cause, **facts)
    return Verdict(full.revision(judged).checkpoint, "further", FAILED, "blocked", block)


def _leaves(evidence, lesson, full, position):
    """A failed verdict when the upgrade left wrong values or no index, else None."""
    step = evidence.replay.upgrade(position)
    checkpoint = full.checkpoint_of(position)
    for leave in lesson.further.leaves.get(checkpoint, ()):
        if isinstance(leave, Filled):
            found = step.values_after.get(f"{leave.table}.{leave.column}", {})
            expected = dict(leave.values) if leave.values is not None else None
            wrong = {i: value for i, value in found.items()
                     if (value != expected.get(i) if expected is not None else value in (None, ""))}
            if wrong or not found:
                return _failed(full, position, "not_filled", leave=leave, found=tuple(found.items()))
        elif isinstance(leave, Indexed):
            indexes = step.indexes_after.get(leave.table, [])
            if not any(list(index) == [leave.column] for index in indexes):
                return _failed(full, position, "no_index", leave=leave, indexes=tuple(map(tuple, indexes)))
            missing = _not_concurrent(evidence, step)
            if missing:
                return _failed(full, position, "not_concurrent", leave=leave, missing=missing)
    return None


def _not_concurrent(evidence, step):
    """What keeps an index from being built concurrently, or "". On PostgreSQL, from the
    statements that ran; elsewhere (SQLite has no concurrent build and ignores the option)
    from the revision's source: the option, and the block that leaves the transaction."""
    if evidence.backend == "postgresql":
        ran = any(re.search(r"CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY", statement, re.I)
                  for statement in step.statements)
        return "" if ran else "concurrently"
    source = _function_source(step.revision.source, "upgrade")
    if not re.search(r"postgresql_concurrently\s*=\s*True", source):
        return "concurrently"
    return "" if "autocommit_block(" in source else "autocommit_block"


def _function_source(source, name):
    """The text of a module's top-level function `name` ("" when it has none)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    return next((ast.get_source_segment(source, node) or "" for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name == name), "")


def _downgrade(evidence, full, position):
    """A verdict when the revision's downgrade does not undo its upgrade, or cannot be judged, else None."""
    replay = evidence.replay
    for step in replay.downgrades:  # newest first: one that goes wrong leaves the older ones on other tables
        undoes, wrong = undone_by(replay, step, full.end.free_nullability)
        if step.position == position:
            if undoes:
                return None
            return _failed(full, position, "downgrade_not_reversed",
                           failing=FailingDowngrade(position, tuple(wrong)))
        if not undoes:
            return _blocked(full, position, step.position, "later_downgrade_fails", earlier=step.position,
                            position=position)
    failing = next(s for s in replay.upgrades if not s.ran)  # the replay stopped before any downgrade
    return _blocked(full, position, failing.position, "upgrade_fails_first", earlier=failing.position)
