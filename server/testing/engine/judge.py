"""Judging: evidence in, verdicts out. Pure: it runs nothing and reads no file.

`judge(evidence, lesson) -> {checkpoint id: Verdict}`, in the lesson's
checkpoint order. A Verdict holds the status (PASSED, FAILED,
NOT_APPLICABLE), a reason from the closed set REASONS of its checkpoint's
kind, the Block that makes it wait for another checkpoint, and the facts the
renderers word (render.py), a record of facts.py per kind. One short function
per checkpoint; the revisions' checkpoints come first, since the history's
advice and the later checkpoints depend on them.
"""
from dataclasses import dataclass
from typing import Optional

from ..lesson.definition import Checkpoint, any_spec, specs_of
from .facts import (
    FACTS_OF_KIND, Advice, Block, DowngradesFacts, FailingDowngrade, HistoryFacts, InitFacts, LocalDatabaseFacts,
    Mismatch, ModelsMatchFacts, RevisionFacts,
)

PASSED = "passed"
FAILED = "failed"
NOT_APPLICABLE = "not_applicable"

REASONS = {
    "any": ("ok", "blocked", "replay_database_unusable", "grader_fault"),
    "init": ("no_server_folder", "migrations_at_root", "no_migrations_folder", "app_py_broken",
             "migrations_incomplete"),
    "history": ("no_revisions", "too_few_revisions", "extra_revisions", "not_one_line"),
    "revision": ("missing_revision", "work_in_another_revision", "upgrade_fails", "upgrade_stopped",
                 "loses_data", "does_another_steps_work", "wrong_schema"),
    "downgrades": ("downgrade_not_reversed", "downgrades_not_run"),
    "models_match": ("models_py_broken", "models_not_comparable", "models_not_reverted", "models_mismatch"),
    "local_database": ("other_database", "no_local_database", "instructor_grade", "local_database_unreadable",
                       "local_database_not_migrated", "local_database_several_heads",
                       "local_database_wrong_revision", "local_database_rows_missing",
                       "local_database_unmigrated"),
    "further": ("not_filled", "no_index", "not_concurrent", "downgrade_not_reversed",  # going_further.py
                "branch_deleted", "rewritten_parent", "not_merged", "not_a_merge"),
    "legacy": ("no_legacy_database", "instructor_grade", "legacy_unreadable", "legacy_not_stamped",
               "legacy_unknown_revision", "legacy_wrong_revision", "legacy_behind", "legacy_rows_missing"),
}
ALL_REASONS = frozenset(reason for reasons in REASONS.values() for reason in reasons)


@dataclass
class Verdict:
    checkpoint: Checkpoint
    kind: str  # the checkpoint's kind (definition.Lesson.kind_of)
    status: str
    reason: str = "ok"
    block: Optional[Block] = None  # when blocked: the checkpoint to fix first, and why
    facts: object = None  # what the renderers word: facts.FACTS_OF_KIND[kind]; empty when not given

    def __post_init__(self):
        assert self.reason in REASONS["any"] + REASONS[self.kind], (self.kind, self.reason)
        assert (self.reason == "blocked") == (self.block is not None), self.reason
        facts_type = FACTS_OF_KIND[self.kind]
        self.facts = facts_type() if self.facts is None else self.facts
        assert isinstance(self.facts, facts_type), (self.kind, self.facts)

    @property
    def id(self):
        return self.checkpoint.id

    @property
    def blocked_by(self):
        return self.block.by if self.block else None

    @property
    def failed(self):
        return self.status == FAILED


def schema_problems(actual, expected):
    """How a database's schema differs from the expected specs, as Mismatches."""
    problems = [Mismatch("no_table", table) for table in expected if table not in actual]
    problems += [Mismatch("extra_table", table, found=list(actual[table])) for table in actual if table not in expected]
    for table, columns in expected.items():
        if table in actual:
            problems += _table_problems(table, actual[table], columns)
    return problems


def _table_problems(table, found, columns):
    problems = []
    for name, spec in columns.items():
        column = found.get(name)
        if column is None:
            problems.append(Mismatch("no_column", table, name, found=list(found)))
        else:
            problems += _column_problems(table, name, column, spec)
    return problems + [Mismatch("extra_column", table, name) for name in found if name not in columns]


def _column_problems(table, name, column, spec):
    checks = (
        ("kind", spec.kind and column.kind != spec.kind),
        ("not_primary_key", spec.primary_key and not column.primary_key),
        ("in_primary_key", spec.primary_key is False and column.primary_key),
        ("allows_null", spec.nullable is False and column.nullable and not column.primary_key),
        ("not_null", spec.nullable is True and not column.nullable),
    )
    return [Mismatch(kind, table, name, column.kind, spec.kind) for kind, wrong in checks if wrong]


def undone_by(replay, step, free_nullability=()):
    """(whether a downgrade brought back the schema and rows from before its upgrade, the
    Mismatches of its schema); a downgrade that did not run undoes nothing."""
    if not step.ran:
        return False, []
    wrong = schema_problems(step.after, specs_of(replay.upgrade(step.position).before, free_nullability))
    return not wrong and not step.losses, wrong


def free_nullability_change(change, end):
    """A NULL/NOT NULL difference on a column whose rule the lesson leaves free
    (`change`: one entry of reading.differences_of, a tuple of Differences)."""
    return bool(change) and all(
        item.kind == "modify_nullable" and item.table in end.free_nullability_tables
        and item.column in end.free_nullability for item in change)


def names_in_difference(change):
    """The tables and columns one entry of reading.differences_of names."""
    names = []
    for item in change:
        if item.kind in ("add_table", "remove_table", "add_column", "remove_column") or item.kind.startswith("modify_"):
            names += [name for name in (item.table, item.column) if name is not None]
        else:
            names.append(item.detail)
    return names


def judge(evidence, lesson):
    judging = _Judging(evidence, lesson)
    return judging.run()


class _Verdicts:
    """The verdicts judged so far, and what the judging of each checkpoint reads from them."""

    def __init__(self, evidence, lesson):
        self.evidence = evidence
        self.lesson = lesson
        self.verdicts = {}

    @property
    def chain(self):
        return self.evidence.chain

    @property
    def replay(self):
        return self.evidence.replay

    def add(self, verdict):
        self.verdicts[verdict.id] = verdict

    def verdict(self, checkpoint_id, status, reason="ok", block=None, facts=None):
        return Verdict(self.lesson.by_id[checkpoint_id], self.lesson.kind_of(checkpoint_id), status, reason, block,
                       facts)

    def failed(self, checkpoint_id, reason, facts=None):
        return self.verdict(checkpoint_id, FAILED, reason, facts=facts)

    def blocked(self, checkpoint_id, block):
        return self.verdict(checkpoint_id, FAILED, "blocked", block)

    def passed(self, checkpoint_id):
        return self.verdict(checkpoint_id, PASSED)

    def has_failed(self, checkpoint_id):
        return self.verdicts[checkpoint_id].failed

    @property
    def wrong_schema(self):
        """Positions of the revisions that leave other tables or columns than the lesson's."""
        return [position for position, checkpoint in self.lesson.revision_checkpoints.items()
                if self.verdicts[checkpoint].facts.schema_wrong]

    def revisions_doing(self, work):
        """Positions of the revisions whose upgrade did revision `work`'s work, other than its own."""
        return [step.position for step in self.replay.upgrades
                if work in self.lesson.works(step) and step.position != work]

    def blocker_before(self, position):
        """The Block that stops revision `position` from being judged, or None."""
        if not self.evidence.migrations_usable:
            return Block("init", "no_versions")
        history = self.evidence.history
        if len(self.chain) < position and history.ambiguous_after is not None and history.ambiguous_after < position:
            return Block("history", "history_breaks", position=position)
        for earlier in range(1, min(position, len(self.chain) + 1)):
            step = self.replay.upgrade(earlier)
            if step is not None and not step.ran:
                return Block(self.lesson.checkpoint_of(earlier) or "history", "earlier_fails",
                             position=position, earlier=earlier)
        return None


class _ChainJudging(_Verdicts):
    """init, the lesson's revisions and the history: the line of revisions itself."""

    def init(self):
        folders = self.evidence.folders
        if not folders.server:
            return self.failed("init", "no_server_folder")
        if not folders.migrations:
            return self.failed("init", "migrations_at_root" if folders.migrations_at_root else "no_migrations_folder")
        missing = folders.missing
        if not missing and not self.evidence.findings:
            return self.passed("init")
        layout = self.evidence.layout
        app_rel = layout.rel(layout.app_py)
        only_app = not missing and all(finding.file == app_rel for finding in self.evidence.findings)
        return self.failed("init", "app_py_broken" if only_app else "migrations_incomplete", InitFacts(tuple(missing)))

    def revision(self, position):
        checkpoint = self.lesson.checkpoint_of(position)
        block = self.blocker_before(position)
        if block:
            return self.blocked(checkpoint, block)
        if len(self.chain) < position:
            doers = self.revisions_doing(position)
            if doers:
                return self.failed(checkpoint, "work_in_another_revision", RevisionFacts(doer=doers[0]))
            return self.failed(checkpoint, "missing_revision")
        if self.replay.error:
            return self.failed(checkpoint, "replay_database_unusable")
        step = self.replay.upgrade(position)
        if step is None:
            return self.blocked(checkpoint, Block("history", "not_run", position=position))
        if not step.ran:
            return self.failed(checkpoint, "upgrade_stopped" if step.stopped else "upgrade_fails")
        return self.revision_effect(checkpoint, position, step)

    def revision_effect(self, checkpoint, position, step):
        """The verdict on what an upgrade that ran did to the tables and rows."""
        expected = self.lesson.expected_after(position, step.before)
        if expected is None:
            return self.blocked(checkpoint, Block(self.lesson.checkpoint_of(position - 1),
                                                  "previous_leaves_other_tables", position=position))
        schema_wrong = schema_problems(step.after, expected)
        if not schema_wrong and not step.losses:
            return self.passed(checkpoint)
        works = self.lesson.works(step)
        other_work = sorted(works - {position})
        another = bool(other_work) and position not in works
        reason = "loses_data" if step.losses else ("does_another_steps_work" if another else "wrong_schema")
        return self.failed(checkpoint, reason, RevisionFacts(tuple(schema_wrong), tuple(other_work)))

    def history(self):
        if not self.evidence.migrations_usable:
            return self.blocked("history", Block("init", "no_versions_to_read"))
        history = self.evidence.history
        count = len(history.files)
        if not history.files:
            return self.failed("history", "no_revisions")
        if not history.problems and count < self.lesson.count:
            return self.failed("history", "too_few_revisions", HistoryFacts(self.next_revision(count)))
        if not history.problems and count > self.lesson.count:
            return self.failed("history", "extra_revisions")
        if not history.problems:
            return self.passed("history")
        return self.failed("history", "not_one_line")

    def next_revision(self, count):
        """What to do when the line is short (Advice)."""
        failing = [n for n in range(1, count + 1) if self.has_failed(self.lesson.checkpoint_of(n))]
        wrong = self.wrong_schema
        local = self.evidence.local_position()
        if not wrong and not failing and local is not None and local < count:
            return Advice("apply_local", local=local, count=count)
        if not wrong and not failing:
            doers = self.revisions_doing(count + 1)
            if doers:
                return Advice("order", doers[0])
            return Advice("next_step", count + 1)
        position = (wrong or failing)[0]
        if position == 1 and wrong:
            return Advice("order", 1)
        return Advice("fix_first", position, then=count + 1)


class _Judging(_ChainJudging):
    """Every checkpoint, in the order their verdicts depend on each other: then the downgrades,
    models.py and the local database, which read the revisions' verdicts."""

    def run(self):
        self.add(self.init())
        for position in range(1, self.lesson.count + 1):
            self.add(self.revision(position))
        self.add(self.history())
        self.add(self.downgrades())
        self.add(self.models_match())
        self.add(self.local_database())
        return {checkpoint.id: self.verdicts[checkpoint.id] for checkpoint in self.lesson.checkpoints}

    def downgrades(self):
        for position in range(1, self.lesson.count + 1):
            verdict = self.verdicts.get(self.lesson.checkpoint_of(position))
            if len(self.chain) < position or (verdict and verdict.blocked_by):
                blocker = verdict.blocked_by if verdict and verdict.blocked_by else self.lesson.checkpoint_of(position)
                return self.blocked("downgrades", Block(blocker, "needs_all"))
        if self.replay.error:
            return self.failed("downgrades", "replay_database_unusable")
        if not self.replay.all_upgrades_ran:
            failing = next(s for s in self.replay.upgrades if not s.ran)
            return self.blocked("downgrades", Block(self.lesson.checkpoint_of(failing.position) or "history",
                                                    "upgrade_fails_first", earlier=failing.position))
        failing = self.failing_downgrades()
        if failing:
            return self.failed("downgrades", "downgrade_not_reversed", DowngradesFacts(tuple(failing)))
        if len(self.replay.downgrades) != len(self.chain):  # never judged: never passed
            return self.failed("downgrades", "downgrades_not_run")
        return self.passed("downgrades")

    def failing_downgrades(self):
        """FailingDowngrades for the downgrades that do not undo their upgrade, from the
        newest; the first that fails or leaves the wrong tables ends the list (those below it
        start from the wrong tables, and judging them would blame them)."""
        failing = []
        for step in self.replay.downgrades:
            undoes, schema_wrong = undone_by(self.replay, step, self.lesson.end.free_nullability)
            if undoes:
                continue
            failing.append(FailingDowngrade(step.position, tuple(schema_wrong)))
            if not step.ran or schema_wrong:
                break
        return failing

    def models_match(self):
        if self.evidence.models.error:
            return self.failed("models_match", "models_py_broken")
        if self.replay.error:
            return self.failed("models_match", "replay_database_unusable")
        block = self.models_blocker()
        if block:
            return self.blocked("models_match", block)
        if self.replay.models_error:
            return self.failed("models_match", "models_not_comparable")
        end = self.lesson.end
        diff = [item for item in self.replay.models_diff or [] if not free_nullability_change(item, end)]
        if not diff:
            return self.passed("models_match")
        reverted = not end.reverted_marker or not any(
            end.reverted_marker in name for item in diff for name in names_in_difference(item))
        return self.failed("models_match", "models_mismatch" if reverted else "models_not_reverted",
                           ModelsMatchFacts(tuple(diff)))

    def models_blocker(self):
        end = self.lesson.end.revision
        block = self.blocker_before(end)
        if block is not None:
            return block
        if len(self.chain) < end:
            return Block(self.lesson.checkpoint_of(len(self.chain) + 1), "no_end_revision", end=end)
        step = self.replay.upgrade(end)
        wrong = [n for n in self.wrong_schema if n <= end]
        if step is None or not step.ran:
            return Block(self.lesson.checkpoint_of(end), "end_fails", end=end)
        if wrong:
            return Block(self.lesson.checkpoint_of(wrong[0]), "wrong_before_end", earlier=wrong[0], end=end)
        return None

    def local_database(self):
        evidence = self.evidence
        if not evidence.local_counted:
            return self.verdict("local_database", NOT_APPLICABLE, "instructor_grade")
        if evidence.other_database:
            return self.verdict("local_database", NOT_APPLICABLE, "other_database")
        local = evidence.local
        if local is None:
            return self.verdict("local_database", NOT_APPLICABLE, "no_local_database")
        if local.error:
            return self.failed("local_database", "local_database_unreadable")
        if local.versions is None:
            return self.failed("local_database", "local_database_not_migrated")
        if len(local.versions) != 1:
            return self.failed("local_database", "local_database_several_heads")
        position = evidence.local_position()
        if position != self.lesson.end.revision:
            broken = [self.lesson.checkpoint_of(n) for n in range(1, self.lesson.end.revision + 1)
                      if self.has_failed(self.lesson.checkpoint_of(n))]
            return self.failed("local_database", "local_database_wrong_revision",
                               LocalDatabaseFacts(position, tuple(broken)))
        problems = self.local_problems(local)
        unmigrated = tuple(problem for problem in problems if problem.kind in ("extra_table", "extra_column"))
        if unmigrated:  # no revision makes them: db.create_all() or a hand-written CREATE did
            return self.failed("local_database", "local_database_unmigrated", LocalDatabaseFacts(problems=unmigrated))
        if problems:
            return self.failed("local_database", "local_database_rows_missing", LocalDatabaseFacts(problems=tuple(problems)))
        return self.passed("local_database")

    def local_problems(self, local):
        """What is wrong with the tables and rows of a local database at the end revision (Mismatches)."""
        end = self.lesson.end
        problems = schema_problems(local.schema, {table: any_spec(columns) for table, columns in end.tables})
        for table, _ in end.tables:
            data_set = self.lesson.data_set_in(table)
            if data_set and table in local.schema and not problems and local.counts.get(table, 0) == 0:
                problems.append(Mismatch("no_rows", table, expected=data_set.step))
        for table, column in end.kept_values:
            empty = local.empty_values.get(f"{table}.{column}")
            if not problems and empty:
                problems.append(Mismatch("empty_values", table, column, found=empty))
        return problems
