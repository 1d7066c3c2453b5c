"""The shape of a lesson, as data: what the engine reads to grade one.

A lesson is a line of revisions, each declared by the change it makes to the
schema (`CreateTable`, `AddColumn`, `RenameTable`, `RenameColumn`), the rows
it must keep (`DataSet`s followed through every rename), the state the lesson
ends in (`EndState`), the checkpoints and points, the code of its fixes, and
its words (`LessonWords`, declared apart: words.py for this lesson). The engine (evidence.py, judge.py, render.py) names no table,
column or revision position of its own: it asks the lesson. checkpoints.py
declares this repository's lesson; the project's tests declare a second one
(tests/second_lesson.py), graded with `checks.grade(root, lesson=...)`.
Besides one checkpoint per revision, a lesson has the SHARED_CHECKPOINTS;
a declaration that lacks one, or whose parts disagree, is refused at once.

A change answers two questions about one upgrade, from the schemas before
and after it (plain {table: {column: schema column}} mappings):
    done_by(before, after)      did the upgrade do this change's work?
    expected_after(specs, before)  the specs a correct upgrade leaves, from the
                                specs of the schema before it (None: the
                                schema before is not one this change applies to)
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from .feedback import check_templates

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
                10: "ten"}


@dataclass(frozen=True)
class Checkpoint:
    id: str
    step: int  # the README step that completes it
    title: str
    points: int
    optional: bool = False  # a "Going further" step's: scored apart, never in the lesson's total


@dataclass(frozen=True)
class Spec:
    """What a column must be. None: either is fine."""

    kind: Optional[str]  # "integer", "string"; None: any
    nullable: Optional[bool]
    primary_key: Optional[bool] = False


Specs = Dict[str, Dict[str, Spec]]  # table -> column -> Spec


def specs_of(schema, free=()):
    """The specs a schema meets, with the NULL rule left free for the columns named in `free`."""
    return {
        table: {name: Spec(column.kind, None if name in free else column.nullable, column.primary_key)
                for name, column in columns.items()}
        for table, columns in schema.items()
    }


def any_spec(columns):
    """Specs that ask only for the columns to exist."""
    return {name: Spec(None, None, None) for name in columns}


def _created(before, after):
    return [table for table in after if table not in before]


@dataclass(frozen=True)
class CreateTable:
    table: str
    columns: Tuple[Tuple[str, Spec], ...]
    also_as: Tuple[str, ...] = ()  # later names: creating the table under one of them is this work too

    def done_by(self, before, after):
        created = _created(before, after)
        return self.table in created or any(
            name in created and self.table not in before for name in self.also_as)

    def expected_after(self, specs, before):
        specs[self.table] = dict(self.columns)
        return specs


@dataclass(frozen=True)
class AddColumn:
    table: str
    column: str
    spec: Spec

    def done_by(self, before, after):
        return self.column in after.get(self.table, {}) and self.column not in before.get(self.table, {})

    def expected_after(self, specs, before):
        if self.table not in before or self.column in before[self.table]:
            return None
        specs[self.table][self.column] = self.spec
        return specs


@dataclass(frozen=True)
class RenameTable:
    old: str
    new: str

    def done_by(self, before, after):
        return self.old in before and self.new in after and self.old not in after

    def expected_after(self, specs, before):
        if self.old not in before or self.new in before:
            return None
        specs[self.new] = specs.pop(self.old)
        return specs


@dataclass(frozen=True)
class RenameColumn:
    table: str
    old: str
    new: str
    tables: Tuple[str, ...] = ()  # every name the table has in the lesson, where the work may show

    def done_by(self, before, after):
        tables = self.tables or (self.table,)
        had_old = any(self.old in before.get(table, {}) for table in tables)
        has_new = any(self.new in after.get(table, {}) and self.old not in after.get(table, {}) for table in tables)
        return had_old and has_new

    def expected_after(self, specs, before):
        columns = before.get(self.table, {})
        if self.old not in columns or self.new in columns:
            return None
        specs[self.table] = {
            (self.new if name == self.old else name): (Spec(spec.kind, None, spec.primary_key) if name == self.old else spec)
            for name, spec in specs[self.table].items()
        }
        return specs


@dataclass(frozen=True)
class RequiredFinding:
    """A clean finding a step requires of its revision's upgrade SQL (production.py):
    squawk's `rule` flags nothing there, and the SQL does show what the rule is about
    (`shows`, a regular expression), so that nothing to flag is not taken for done."""

    rule: str  # "require-concurrent-index-creation"
    says: str  # "this index is created concurrently"
    shows: str  # r"CREATE\s+(UNIQUE\s+)?INDEX"
    shows_words: str  # "CREATE INDEX", for "the upgrade's SQL has no ..."


@dataclass(frozen=True)
class ProductionRules:
    """How a lesson reads squawk's findings on each revision's PostgreSQL SQL ("Before production")."""

    explanations: Dict[str, str]  # rule -> what breaks in production and how teams do it, for a beginner
    left_out: Dict[str, str]  # rule -> why it is noise for this lesson
    bookkeeping_table: str = "alembic_version"  # findings on statements about it are left out, because:
    bookkeeping_reason: str = "Alembic's own alembic_version table, which records the revision: not the lesson's"
    docs: str = "https://squawkhq.com/docs/{rule}"


@dataclass(frozen=True)
class Revision:
    """One revision of the lesson: its checkpoint, its change and the lesson's code for it."""

    checkpoint: Checkpoint
    change: object  # CreateTable, AddColumn, RenameTable or RenameColumn
    upgrade: Tuple[str, ...]  # the lesson's upgrade() body
    downgrade: Tuple[str, ...]  # the lesson's downgrade() body
    batch_upgrade: Tuple[str, ...] = ()  # the same in batch form, for a script written in batch mode
    batch_downgrade: Tuple[str, ...] = ()
    keeps_rows: bool = False  # "... and keeps every row" when it passes
    requires: Tuple[RequiredFinding, ...] = ()  # clean findings its upgrade SQL must give (production.py)

    @property
    def step(self):
        return self.checkpoint.step

    def fix_lines(self, direction, batch=False):
        if batch and self.batch_upgrade:
            return self.batch_upgrade if direction == "upgrade" else self.batch_downgrade
        return self.upgrade if direction == "upgrade" else self.downgrade


@dataclass(frozen=True)
class DataSet:
    """Rows the lesson adds, wherever the schema keeps them at each point."""

    name: str
    tables: Tuple[str, ...]  # the table's names through the lesson, latest first
    value_columns: Tuple[str, ...]  # the third column, by its possible names
    rows: Tuple[Tuple[int, str, object], ...]
    step: int  # the README step that adds them
    model: str = ""  # the class of models.py whose table holds them, for `flask shell`

    def locate(self, schema):
        """(table, value column) holding this data set in `schema`, or None."""
        for table in self.tables:
            columns = schema.get(table)
            if columns is None or "id" not in columns or "name" not in columns:
                continue
            for value_column in self.value_columns:
                if value_column in columns:
                    return table, value_column
        return None

    def expected_rows(self):
        return {i: (name, value) for i, name, value in self.rows}


@dataclass(frozen=True)
class EndState:
    """Where the lesson leaves the database and models.py."""

    revision: int  # the revision the database ends at; models.py describes it
    step: int  # the step that brings it there
    tables: Tuple[Tuple[str, Tuple[str, ...]], ...]  # the local database's tables and columns at the end
    kept_values: Tuple[Tuple[str, str], ...]  # (table, column) that must hold no NULL at the end
    model_code: Tuple[str, ...]  # the model that changes along the lesson, as it ends
    reverted_marker: Optional[str] = None  # a difference naming it: models.py was not brought back
    free_nullability: Tuple[str, ...] = ()  # columns whose NULL rule the lesson leaves free
    free_nullability_tables: Tuple[str, ...] = ()


@dataclass(frozen=True)
class RevisionWords:
    """What the messages say of one revision."""

    short: str  # "creates `employees`"
    expected: str  # the whole change, for "Expected:" ("creates table `employees`: ...")
    how: str  # how the README's step makes it (the next step's fix)


@dataclass(frozen=True)
class LessonWords:
    """What a lesson says of itself in English, declared apart from its schema (words.py
    for this lesson). The engine's own sentences, shared by every lesson, are in messages.py."""

    revisions: Dict[str, RevisionWords]  # a revision's checkpoint id -> its words
    extra_revision_note: str  # why the lesson has no more revisions than these
    model_expected: str  # "Expected:" of models_match
    model_fix: str  # "Fix:" of models_match, a template of MODEL_FIX_FIELDS
    model_change: str = ""  # the edit that brings models.py to the end ("put `address` back in models.py")
    model_intro: str = ""  # what introduces EndState.model_code ("the Department model should read:")
    model_repr_note: str = ""  # said after EndState.model_code
    model_early_note: str = ""  # for a student who makes model_change before the last revision's upgrade
    starter_models: str = "the starter"  # what models.py is before step 1's migration
    mistake_names: Dict[str, str] = field(default_factory=dict)  # "<checkpoint>:<reason>" -> words for instructors

    def __post_init__(self):
        check_templates({"model_fix": self.model_fix}, ("model_fix",), MODEL_FIX_FIELDS, "models_match's fix")


# The placeholders of LessonWords.model_fix: the end revision's id, the models.py file, the end model's
# code (EndState.model_code) and LessonWords.model_intro.
MODEL_FIX_FIELDS = {"revision", "models", "model", "intro"}

# --- optional steps after the lesson's last one (going_further.py judges them) -------------

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
class Merge:
    """Two optional revisions made from the same parent, as two people working at once make
    them, and the revision `flask db merge` writes to join them: the one place where the
    lesson's history may fork (submission.py follows it, going_further.py judges it)."""

    branches: Tuple[int, int]  # chain positions of the two branch revisions (the second: a teammate's)
    message: str = "merge"  # the message of the README's `flask db merge heads -m ...`

    @property
    def fork(self):
        """The position both branches follow."""
        return self.branches[0] - 1

    @property
    def at(self):
        """The position of the merge revision, whose down_revision names both branches."""
        return self.branches[1] + 1


@dataclass(frozen=True)
class LegacyDatabase:
    """An optional step that adds no revision: a second database, made with db.create_all()
    and so unknown to Alembic, brought under it with `flask db stamp`. Judged on the
    student's own copy, named by DATABASE_URL in server/<env_file>, when there is one."""

    checkpoint: Checkpoint
    env_file: str  # "legacy.env", what `flask --env-file legacy.env db ...` reads


@dataclass(frozen=True)
class Further:
    steps: Dict[int, str]  # README step -> title
    revisions: Tuple["Revision", ...]  # checkpoints optional, in chain order after the lesson's
    ends: Tuple["EndState", ...]  # after each optional revision
    marks: Tuple[str, ...]  # per revision: a regular expression its file's source matches (what it is about)
    leaves: Dict[str, Tuple[object, ...]]  # checkpoint id -> Filled / Indexed its upgrade must leave
    words: "FurtherWords"  # further_words.py for this lesson
    merge: Optional[Merge] = None  # where two of the optional revisions branch and merge
    legacy: Optional[LegacyDatabase] = None  # a step judged on a database of the student's, after the revisions'

    @property
    def checkpoints(self):
        """The revisions' checkpoints in chain order, then the legacy database's."""
        return tuple(revision.checkpoint for revision in self.revisions) + \
            ((self.legacy.checkpoint,) if self.legacy else ())

    @property
    def max_points(self):
        return sum(checkpoint.points for checkpoint in self.checkpoints)

    @property
    def watched(self):
        """(table, column) whose values the replay reads after each upgrade."""
        return tuple((leave.table, leave.column) for leaves in self.leaves.values() for leave in leaves)


@dataclass(frozen=True)
class EndWords:
    """What models_match says once the chain ends after an optional revision (LessonWords' fields)."""

    model_expected: str
    model_fix: str
    model_intro: str


@dataclass(frozen=True)
class FurtherWords:
    revisions: Dict[str, "RevisionWords"]  # checkpoint id ->
    ends: Tuple[EndWords, ...]  # after each optional revision
    intro: str  # told to a student who stopped at the last core step
    mistake_names: Dict[str, str] = field(default_factory=dict)  # "<checkpoint>:<reason>" -> words
    legacy: Optional["RevisionWords"] = None  # the legacy database's step: what it is, how the README does it


# Besides one checkpoint per revision, every lesson has these; the engine judges each.
SHARED_CHECKPOINTS = ("init", "history", "downgrades", "models_match", "local_database")


@dataclass(frozen=True)
class Lesson:
    name: str
    steps: Dict[int, str]  # README step -> title
    checkpoints: Tuple[Checkpoint, ...]  # in report order
    revisions: Tuple[Revision, ...]  # in chain order
    data_sets: Tuple[DataSet, ...]
    end: EndState
    words: LessonWords
    model_names: Tuple[str, ...] = ()  # the classes models.py defines, for `from models import ...`
    first_migrate: str = "flask db migrate"  # the README's first `flask db migrate` command
    production: Optional[ProductionRules] = None  # the "Before production" review; None: no such review
    further: Optional[Further] = None  # optional steps after the last one, scored apart

    by_id: Dict[str, Checkpoint] = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "by_id", {checkpoint.id: checkpoint for checkpoint in self.checkpoints})
        problems = [f"no checkpoint {name!r}" for name in SHARED_CHECKPOINTS if name not in self.by_id]
        problems += [f"revision {n}'s checkpoint {revision.checkpoint.id!r} is not among the checkpoints"
                     for n, revision in enumerate(self.revisions, start=1) if revision.checkpoint not in self.checkpoints]
        problems += [f"step {checkpoint.step} of {checkpoint.id!r} is not a step" for checkpoint in self.checkpoints
                     if checkpoint.step not in self.steps]
        revision_ids = [revision.checkpoint.id for revision in self.revisions]
        problems += [f"no words for revision {checkpoint_id!r}" for checkpoint_id in revision_ids
                     if checkpoint_id not in self.words.revisions]
        problems += [f"words for {checkpoint_id!r}, which is not a revision's checkpoint"
                     for checkpoint_id in self.words.revisions if checkpoint_id not in revision_ids]
        if not 1 <= self.end.revision <= len(self.revisions):
            problems.append(f"the end revision {self.end.revision} is not one of the {len(self.revisions)} revisions")
        if problems:
            raise ValueError(f"the lesson {self.name!r} is not complete: " + "; ".join(problems))

    @property
    def row_steps(self):
        """The steps that add the lesson's rows: ("step 1", "shows") or ("steps 1 and 2", "show")."""
        steps = [str(data_set.step) for data_set in self.data_sets]
        if len(steps) == 1:
            return f"step {steps[0]}", "shows"
        return f"steps {', '.join(steps[:-1])} and {steps[-1]}", "show"

    @property
    def count(self):
        return len(self.revisions)

    @property
    def count_word(self):
        return NUMBER_WORDS.get(self.count, str(self.count))

    def revision(self, position):
        """The lesson's revision at `position` (from 1), or None beyond the lesson."""
        return self.revisions[position - 1] if 1 <= position <= self.count else None

    def words_of(self, position):
        """The RevisionWords of the lesson's revision at `position`."""
        return self.words.revisions[self.revisions[position - 1].checkpoint.id]

    def step_of(self, position):
        """The README step of the lesson's revision at `position`, or None beyond the lesson."""
        revision = self.revision(position)
        return revision.step if revision else None

    def checkpoint_of(self, position):
        revision = self.revision(position)
        return revision.checkpoint.id if revision else None

    @property
    def revision_checkpoints(self):
        return {position: revision.checkpoint.id for position, revision in enumerate(self.revisions, start=1)}

    def kind_of(self, checkpoint_id):
        """"revision" for a revision's checkpoint, else its id (one of SHARED_CHECKPOINTS): what judges and words it."""
        return "revision" if self.position_of(checkpoint_id) is not None else checkpoint_id

    def position_of(self, checkpoint_id):
        """The position of the revision a checkpoint judges, or None for the shared checkpoints."""
        return next((position for position, revision in enumerate(self.revisions, start=1)
                     if revision.checkpoint.id == checkpoint_id), None)

    def made_by(self, data_set):
        """The position of the revision that creates a data set's table."""
        return next(position for position, revision in enumerate(self.revisions, start=1)
                    if isinstance(revision.change, CreateTable)
                    and {revision.change.table, *revision.change.also_as} & set(data_set.tables))

    def works(self, step):
        """The positions of the lesson revisions whose work an upgrade did, judged by its effect."""
        if step is None or not step.ran:
            return set()
        return {position for position, revision in enumerate(self.revisions, start=1)
                if revision.change.done_by(step.before, step.after)}

    def expected_after(self, position, before):
        """The specs a correct revision `position` leaves, from the schema it started on (None: cannot tell)."""
        return self.revision(position).change.expected_after(specs_of(before), before)

    @property
    def table_names(self):
        """Every name the lesson's tables have at some point (read first, whatever else a database holds)."""
        return frozenset(table for data_set in self.data_sets for table in data_set.tables) | \
            frozenset(table for table, _columns in self.end.tables)

    def data_set_in(self, table):
        return next((data_set for data_set in self.data_sets if table in data_set.tables), None)
