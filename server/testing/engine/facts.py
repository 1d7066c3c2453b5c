"""The facts handed from the evidence to the judge and from the judge to the
words: records with a kind from a closed set, never sentences.

- `Finding`: one problem found by reading app.py or env.py (evidence.py).
- `Mismatch`: one way a schema or its rows differ from the lesson's.
- `Block`: why a checkpoint is not judged yet and which one to fix first.
- The facts of a verdict, one record per kind of checkpoint (FACTS_OF_KIND),
  and the history's `Advice` when the line of revisions is short.
messages.py words each of them.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

# kind -> what it is about
FINDING_KINDS = {
    "missing_file": "the file does not exist",
    "unreadable": "the file cannot be read (detail: the error)",
    "syntax_error": "Python cannot parse it (line; detail: the error, its code and a caret)",
    "no_module": "an import of a module that is not installed (line; detail: the import; name: the module)",
    "no_model_name": "an import of a name models.py does not define (line; detail: models.py; name: the name)",
    "no_migrate": "app.py never creates Migrate(app, db)",
    "creates_tables": "app.py calls db.create_all() or drop_all() on import (line; detail: the call)",
    "no_run_migrations": "env.py never calls context.run_migrations()",
}


@dataclass(frozen=True)
class Finding:
    kind: str
    file: str  # the file, relative to the repository ("server/app.py")
    detail: str = ""
    line: Optional[int] = None
    name: str = ""

    def __post_init__(self):
        assert self.kind in FINDING_KINDS, self.kind


# cause -> the facts a Block with it carries (the rest stay None)
BLOCK_CAUSES = {
    "no_versions": (),
    "no_versions_to_read": (),
    "history_breaks": ("position",),
    "earlier_fails": ("earlier", "position"),
    "not_run": ("position",),
    "previous_leaves_other_tables": ("position",),
    "needs_all": (),
    "upgrade_fails_first": ("earlier",),
    "later_downgrade_fails": ("earlier", "position"),
    "no_end_revision": ("end",),
    "end_fails": ("end",),
    "wrong_before_end": ("earlier", "end"),
    "branch_first": ("earlier", "position"),
    "stamped_schema_unknown": ("earlier", "position"),
}


@dataclass(frozen=True)
class Block:
    by: str  # the checkpoint to fix first
    cause: str
    position: Optional[int] = None  # the revision that cannot be judged
    earlier: Optional[int] = None  # the revision that stops it
    end: Optional[int] = None  # the lesson's end revision

    def __post_init__(self):
        given = tuple(name for name in ("earlier", "end", "position") if getattr(self, name) is not None)
        assert sorted(BLOCK_CAUSES.get(self.cause, ("?",))) == list(given), (self.cause, given)


MISMATCH_KINDS = ("no_table", "extra_table", "no_column", "extra_column", "kind", "not_primary_key", "in_primary_key",
                  "allows_null", "not_null", "no_rows", "empty_values")


@dataclass(frozen=True)
class Mismatch:
    """One way a schema or its rows differ from what the lesson expects."""

    kind: str
    table: str
    column: Optional[str] = None
    found: object = None  # the columns a table has, the kind a column holds, rows with NULL
    expected: object = None  # the kind a column should hold, the step that adds a table's rows

    def __post_init__(self):
        assert self.kind in MISMATCH_KINDS, self.kind


ADVICE_KINDS = ("apply_local", "order", "next_step", "fix_first")


@dataclass(frozen=True)
class Advice:
    """What to do when the line of revisions is short."""

    kind: str  # apply_local: upgrade the local database first; order: back to one revision per step
    #            from `position`; next_step: make revision `position`; fix_first: mend revision
    #            `position`, then make revision `then`
    position: Optional[int] = None
    then: Optional[int] = None
    local: Optional[int] = None  # apply_local: where the local database is
    count: Optional[int] = None  # apply_local: how many revisions there are

    def __post_init__(self):
        assert self.kind in ADVICE_KINDS, self.kind


@dataclass(frozen=True)
class InitFacts:
    missing: Tuple[str, ...] = ()  # what server/migrations/ lacks


@dataclass(frozen=True)
class RevisionFacts:
    schema_wrong: Tuple[Mismatch, ...] = ()
    other_work: Tuple[int, ...] = ()  # the other revisions whose work its upgrade did
    doer: Optional[int] = None  # the revision that does its work instead


@dataclass(frozen=True)
class HistoryFacts:
    next: Optional[Advice] = None


@dataclass(frozen=True)
class FailingDowngrade:
    position: int
    schema_wrong: Tuple[Mismatch, ...] = ()


@dataclass(frozen=True)
class DowngradesFacts:
    failing: Tuple[FailingDowngrade, ...] = ()  # from the newest


@dataclass(frozen=True)
class ModelsMatchFacts:
    diff: Tuple[object, ...] = ()  # entries of reading.differences_of


@dataclass(frozen=True)
class LocalDatabaseFacts:
    position: Optional[int] = None  # where the local database is in the chain
    broken: Tuple[str, ...] = ()  # failed checkpoints of the revisions up to the end
    problems: Tuple[Mismatch, ...] = ()


@dataclass(frozen=True)
class FurtherFacts:
    """What an optional step's revision left wrong beyond its schema (going_further.py)."""

    leave: object = None  # the definition.Filled or Indexed it did not leave
    found: Tuple[Tuple[int, object], ...] = ()  # not_filled: (id, value) of the lesson's rows
    indexes: Tuple[Tuple[str, ...], ...] = ()  # no_index: the columns of each index of the table
    missing: str = ""  # not_concurrent: "concurrently" (the option) or "autocommit_block" (out of the transaction)
    failing: Optional[FailingDowngrade] = None  # downgrade_not_reversed
    follows: Optional[int] = None  # rewritten_parent: the position of the revision a branch now follows


@dataclass(frozen=True)
class LegacyFacts:
    """Where a database made without migrations stands against the chain (going_further.py)."""

    position: Optional[int] = None  # the revision its alembic_version names
    head: Optional[int] = None  # the chain's head
    matches: Optional[int] = None  # the newest revision whose schema its tables have, if any
    problems: Tuple[Mismatch, ...] = ()  # how its tables differ from the stamped revision's (or its empty tables)


# A checkpoint's kind: "revision" for the lesson's revisions, "further" for what an optional
# step's revision leaves beyond its schema, "legacy" for an optional step's database of the
# student's, else its id (definition.SHARED_CHECKPOINTS).
FACTS_OF_KIND = {
    "further": FurtherFacts,
    "legacy": LegacyFacts,
    "init": InitFacts,
    "revision": RevisionFacts,
    "history": HistoryFacts,
    "downgrades": DowngradesFacts,
    "models_match": ModelsMatchFacts,
    "local_database": LocalDatabaseFacts,
}
