"""Going further: optional steps after the lesson's last one, graded by the same
engine and scored apart ("Lesson 100/100 · Going further 20/60").

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

    further_count(evidence, lesson)   k, the optional revisions the chain holds
    lesson_with(lesson, k)            the lesson as judged with k optional revisions
    judge_further(evidence, lesson)   {checkpoint id: Verdict} of the optional checkpoints
"""
import ast
import dataclasses
import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from .definition import specs_of
from .facts import Block, FailingDowngrade, FurtherFacts
from .judge import FAILED, PASSED, Verdict, _ChainJudging, schema_problems


@dataclass(frozen=True)
class Filled:
    """Values an optional revision's upgrade must leave in the lesson's rows."""

    table: str
    column: str
    values: Optional[Tuple[Tuple[int, str], ...]] = None  # (id, value); None: any value but NULL or ''
    says: str = ""  # "every existing employee has an email"


@dataclass(frozen=True)
class Indexed:
    """An index an optional revision's upgrade must create, concurrently on PostgreSQL."""

    table: str
    column: str
    says: str  # "an index on `employees.email`"


@dataclass(frozen=True)
class Further:
    steps: Dict[int, str]  # README step -> title
    revisions: Tuple[object, ...]  # definition.Revision, checkpoints optional, in chain order after the lesson's
    ends: Tuple[object, ...]  # definition.EndState after each optional revision
    marks: Tuple[str, ...]  # per revision: a regular expression its file's source matches (what it is about)
    leaves: Dict[str, Tuple[object, ...]]  # checkpoint id -> Filled / Indexed its upgrade must leave
    words: object  # FurtherWords (further_words.py for this lesson)

    @property
    def checkpoints(self):
        return tuple(revision.checkpoint for revision in self.revisions)

    @property
    def max_points(self):
        return sum(checkpoint.points for checkpoint in self.checkpoints)

    @property
    def watched(self):
        """(table, column) whose values the replay reads after each upgrade."""
        return tuple((leave.table, leave.column) for leaves in self.leaves.values() for leave in leaves)


@dataclass(frozen=True)
class EndWords:
    """What models_match says once the chain ends after an optional revision (definition.LessonWords' fields)."""

    model_expected: str
    model_fix: str
    model_intro: str


@dataclass(frozen=True)
class FurtherWords:
    revisions: Dict[str, object]  # checkpoint id -> definition.RevisionWords
    ends: Tuple[EndWords, ...]  # after each optional revision
    intro: str  # told to a student who stopped at the last core step
    mistake_names: Dict[str, str] = dataclasses.field(default_factory=dict)  # "<checkpoint>:<reason>" -> words


def further_count(evidence, lesson):
    """How many optional revisions the chain holds after the lesson's own, or 0 when
    its extra revisions are not the optional ones (the core then judges them as extra)."""
    further = lesson.further
    extra = evidence.chain[lesson.count:]
    if further is None or not extra or len(extra) > len(further.revisions):
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
    further = lesson.further
    extra = chain[lesson.count:]
    if further is None or len(extra) > len(further.revisions):
        return []
    if not all(re.search(mark, revision.source) for mark, revision in zip(further.marks, extra)):
        return []
    return list(extra)


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
        verdicts[verdict.id] = verdict
    return verdicts, full


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


def _undoes(evidence, full, step):
    """(whether a downgrade brought back the schema and rows before its upgrade, the Mismatches)."""
    if not step.ran:
        return False, []
    before = specs_of(evidence.replay.upgrade(step.position).before, full.end.free_nullability)
    wrong = schema_problems(step.after, before)
    return not wrong and not step.losses, wrong


def _downgrade(evidence, full, position):
    """A verdict when the revision's downgrade does not undo its upgrade, or cannot be judged, else None."""
    replay = evidence.replay
    for step in replay.downgrades:  # newest first: one that goes wrong leaves the older ones on other tables
        undoes, wrong = _undoes(evidence, full, step)
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


# --- words --------------------------------------------------------------------------------

def further_words_class():
    """The words of the "further" kind (render.WORDS_OF_KIND): an optional revision that ran but
    left wrong values, no index, a blocking index, or a downgrade that does not undo it."""
    from .feedback import Feedback, bullet_list
    from .render import _DowngradesWords, _RevisionWords, capital

    class FurtherWordsOfKind(_RevisionWords):
        def failed(self, verdict):
            position, facts = self.lesson.position_of(verdict.id), verdict.facts
            name = capital(self.revision_name(position))
            if verdict.reason == "downgrade_not_reversed":
                section = _DowngradesWords(self.evidence, self.lesson, self.verdicts).downgrade_section(facts.failing)
                return Feedback(f"The downgrade of {self.revision_name(position)} does not reverse its upgrade.").add(
                    "Downgrade", section).add(
                    "Expected", "downgrade() brings back the tables and columns as they were before the upgrade, "
                                "with every row and value.")
            leave, rules = facts.leave, self.lesson.production
            if verdict.reason == "not_filled":
                expected = dict(leave.values) if leave.values else {}
                lines = [f"row {i}: {value!r}" + (f" (expected {expected[i]!r})" if i in expected else "")
                         for i, value in facts.found] or [f"no rows in `{leave.table}`"]
                feedback = Feedback(f"{name} does not fill `{leave.table}.{leave.column}` as step "
                                    f"{verdict.checkpoint.step} asks: {leave.says}.").add("Found", bullet_list(lines))
            elif verdict.reason == "no_index":
                indexes = [", ".join(columns) for columns in facts.indexes] or ["none"]
                feedback = Feedback(f"{name} leaves no index on `{leave.table}.{leave.column}`.").add(
                    "Found", f"indexes of `{leave.table}` on: " + "; ".join(indexes))
            elif facts.missing == "autocommit_block":
                feedback = Feedback(f"{name} asks for CONCURRENTLY inside the migration's transaction: on PostgreSQL "
                                    "the upgrade fails (CREATE INDEX CONCURRENTLY cannot run inside a transaction "
                                    "block).")
                if rules:
                    feedback.add("Why", rules.explanations["ban-concurrent-index-creation-in-transaction"])
            else:
                feedback = Feedback(f"{name} creates its index without CONCURRENTLY, which on PostgreSQL blocks "
                                    f"every write to `{leave.table}` until the index is built.")
                if rules:
                    feedback.add("Why", rules.explanations["require-concurrent-index-creation"])
            return self.revision_advice(feedback, position, self.evidence.replay.upgrade(position))

    return FurtherWordsOfKind
