"""The grader's engine: one function every front end calls.

    from testing.lesson.checks import grade
    report = grade("/path/to/checkout")                 # SQLite replay
    report = grade(root, server_url="postgresql://...")  # replay on PostgreSQL

`grade(root, backend="sqlite", server_url=None) -> Report` reads the checkout
(never writes to it, never imports its app.py), replays its revisions on a
throw-away database with the lesson's rows (replay.py), and judges every
checkpoint of checkpoints.CHECKPOINTS.

Report
    .results        {checkpoint id: Result}, in CHECKPOINTS order
    report[id]      the Result of one checkpoint; iterating gives the Results
    .score / .max_score / .full_marks / .failed (list of Results)
    .findings       problems of app.py and env.py (also part of `init`)
    .history        submission.History (revision files, chain, problems)
    .replay         replay.Replay (every step recorded)
    .backend, .root, .seconds

Result
    .id, .title, .points (max), .earned
    .status         PASSED, FAILED or NOT_APPLICABLE ("passed", "failed",
                    "not_applicable"); .passed is True unless FAILED
    .blocked_by     the checkpoint id that must be fixed first, or None
    .reason         why, as a stable code: "ok"; "blocked"; init: no_server_folder,
                    migrations_at_root, no_migrations_folder, app_py_broken,
                    migrations_incomplete; history: no_revisions, too_few_revisions,
                    extra_revisions, not_one_line; revisions 1-4: missing_revision,
                    work_in_another_revision, upgrade_fails, upgrade_stopped (the code
                    hung, exited or ran out of memory), loses_data,
                    does_another_steps_work, wrong_schema; downgrades:
                    downgrade_not_reversed, downgrades_not_run; models_match:
                    models_py_broken, models_not_comparable, models_not_reverted,
                    models_mismatch; local_database: other_database, no_local_database,
                    local_database_unreadable, local_database_not_migrated,
                    local_database_several_heads, local_database_wrong_revision,
                    local_database_rows_missing; any: replay_database_unusable,
                    grader_fault
    .summary        the first line of the message
    .message        the whole message (feedback.Feedback.render())

Message formats: a summary line, then titled sections (feedback.py). The
summaries, with <n> a revision's place in the chain and <file> its path
relative to the repository:
    passed            "Revision <n> (<file>) creates `employees`." (or the work of
                      revision 2-4, "... and keeps every row"); "One linear history
                      of four revisions: ..."; "Every downgrade reverses its upgrade
                      and keeps the rows, ..."; "server/models.py matches the schema
                      at revision 3 ..."; "server/instance/app.db is at revision 3
                      with your rows (...)"
    not applicable    "not applicable: <why>"  (local_database only)
    blocked           "blocked by <checkpoint id>: fix that first" + "Why"
    missing revision  "No revision <n> yet: nothing <does its work>." + "Found",
                      "Expected", "Fix" (the README step)
    revision raises   "Revision <n> (<file>) fails on upgrade." + "Error" (file, line,
                      exception, the line of code), "What it does (upgrade)",
                      "Expected", "Fix"
    revision wrong    "Revision <n> (<file>) loses data: the 2 rows of `department`."
                      or "... loses data: the values of `departments.address` in 2 rows."
                      or "... does not do what step <k> asks." + "Found", "What it
                      does (upgrade)" (operations.describe), "Why" (operations.Risk
                      messages), "Expected", "Fix" (upgrade() and downgrade() as the
                      lesson writes them; batch form when the script uses batch)
    downgrades        "The downgrade of revision <n> (<file>) does not reverse its
                      upgrade." or "<k> downgrades do not reverse their upgrade: ..."
                      + one section per revision, "Expected"
    history           "No revisions yet: ...", "Found <k> of the lesson's four
                      revisions." or "The history is not one line of the four lesson
                      revisions: <k> problems." + "Problems", "Revisions found",
                      "Expected", "Fix"
    init              "There is no server/migrations/ folder yet.", "The migrations
                      folder is at the repository root, not in server/: ...",
                      "server/app.py cannot run `flask db` commands: <k> problems." or
                      "server/migrations/ is not set up as `flask db init` makes it: ..."
    models_match      "server/models.py does not match the schema at revision 3: <k>
                      differences." + "Differences ...", "What `flask db migrate`
                      would generate", "Expected", "Fix"; or "... cannot be loaded ..."
    local_database    "server/instance/app.db is at revision <n> (<file>); at the end
                      of the lesson it is at revision 3." and others + "Found", "Fix"
Revisions are named by position in the chain (1-4) and by file path relative
to the repository; never by message or id.
"""
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .checkpoints import BY_ID, CHECKPOINTS
from .feedback import Feedback, bullet_list, code_block, one_line, plural
from .replay import DEPARTMENTS, EMPLOYEES, MODELS_REVISION, Replay, inspect_schema, replay
from .sandbox import Sandbox
from .submission import (
    REQUIRED_MIGRATION_FILES, History, Layout, check_app_py, check_env_py, load_history, load_models,
)

PASSED = "passed"
FAILED = "failed"
NOT_APPLICABLE = "not_applicable"

LESSON_REVISIONS = 4
REVISION_CHECKPOINTS = {1: "create_employees", 2: "create_department", 3: "rename_table", 4: "rename_column"}
REVISION_STEP = {position: BY_ID[checkpoint].step for position, checkpoint in REVISION_CHECKPOINTS.items()}


@dataclass
class Result:
    checkpoint: object  # checkpoints.Checkpoint
    status: str
    feedback: Feedback
    blocked_by: Optional[str] = None
    reason: str = "ok"  # why, as a stable snake_case code (REASONS)

    @property
    def id(self):
        return self.checkpoint.id

    @property
    def title(self):
        return self.checkpoint.title

    @property
    def points(self):
        """What the checkpoint counts for: nothing when it does not apply, so a
        checkout without a local database can still reach full marks."""
        return 0 if self.status == NOT_APPLICABLE else self.checkpoint.points

    @property
    def passed(self):
        return self.status != FAILED

    @property
    def earned(self):
        return self.points if self.status == PASSED else 0

    @property
    def summary(self):
        return self.feedback.summary

    @property
    def message(self):
        return self.feedback.render()


@dataclass
class Report:
    root: Path
    backend: str
    results: Dict[str, Result] = field(default_factory=dict)
    findings: List[str] = field(default_factory=list)
    history: Optional[History] = None
    replay: Optional[Replay] = None
    models: object = None  # submission.Models: the tables models.py defines, rebuilt here
    seconds: float = 0.0

    def __getitem__(self, checkpoint_id):
        return self.results[checkpoint_id]

    def __iter__(self):
        return iter(self.results.values())

    @property
    def score(self):
        return sum(result.earned for result in self)

    @property
    def max_score(self):
        return sum(result.points for result in self)

    @property
    def failed(self):
        return [result for result in self if not result.passed]

    @property
    def full_marks(self):
        return not self.failed


def grade(root, backend="sqlite", server_url=None, limits=None):
    """Grade the checkout at `root`; see the module docstring. `limits`
    (sandbox.Limits) bounds the time and memory of the student's code."""
    from .database import backend_of, normalize_url

    started = time.perf_counter()
    if server_url:
        server_url = normalize_url(server_url)  # postgres:// and postgresql:// use psycopg 3
        backend = backend_of(server_url)
    layout = Layout.of(root)
    grading = _Grading(layout, backend, server_url, limits)
    grading.run()
    report = Report(
        root=layout.root, backend=backend, results=grading.results, findings=grading.findings,
        history=grading.history, replay=grading.replay, models=grading.models,
    )
    report.seconds = time.perf_counter() - started
    return report


# --- the lesson's expectations --------------------------------------------------

@dataclass(frozen=True)
class Spec:
    kind: Optional[str]  # "integer", "string"; None: any
    nullable: Optional[bool]  # None: either is fine
    primary_key: Optional[bool] = False  # None: either is fine


EMPLOYEES_TABLE = {
    "id": Spec("integer", None, True),
    "name": Spec("string", False),
    "salary": Spec("integer", True),
}
DEPARTMENT_TABLE = {
    "id": Spec("integer", None, True),
    "name": Spec("string", False),
    "address": Spec("string", None),  # the lesson leaves it nullable; either is accepted
}
FREE_NULLABILITY = ("address", "location")  # renames may change it; models_match has the last word

EXPECTED_WORK = {
    1: "creates table `employees`: id (INTEGER, primary key), name (VARCHAR, NOT NULL), salary (INTEGER, nullable)",
    2: "creates table `department`: id (INTEGER, primary key), name (VARCHAR, NOT NULL), address (VARCHAR); "
       "`employees` and its rows stay as they are",
    3: "renames table `department` to `departments`, keeping its columns and every row",
    4: "renames column `address` of `departments` to `location`, keeping every value",
}

UPGRADE_FIX = {
    1: [
        "op.create_table('employees',",
        "    sa.Column('id', sa.Integer(), nullable=False),",
        "    sa.Column('name', sa.String(), nullable=False),",
        "    sa.Column('salary', sa.Integer(), nullable=True),",
        "    sa.PrimaryKeyConstraint('id', name=op.f('pk_employees'))",
        ")",
    ],
    2: [
        "op.create_table('department',",
        "    sa.Column('id', sa.Integer(), nullable=False),",
        "    sa.Column('name', sa.String(), nullable=False),",
        "    sa.Column('address', sa.String(), nullable=True),",
        "    sa.PrimaryKeyConstraint('id', name=op.f('pk_department'))",
        ")",
    ],
    3: ["op.rename_table('department', 'departments')"],
    4: ["op.alter_column('departments', 'address', new_column_name='location')"],
}
DOWNGRADE_FIX = {
    1: ["op.drop_table('employees')"],
    2: ["op.drop_table('department')"],
    3: ["op.rename_table('departments', 'department')"],
    4: ["op.alter_column('departments', 'location', new_column_name='address')"],
}
BATCH_FIX = {
    ("upgrade", 4): [
        "with op.batch_alter_table('departments', schema=None) as batch_op:",
        "    batch_op.alter_column('address', new_column_name='location')",
    ],
    ("downgrade", 4): [
        "with op.batch_alter_table('departments', schema=None) as batch_op:",
        "    batch_op.alter_column('location', new_column_name='address')",
    ],
}

SHORT_WORK = {
    1: "creates `employees`",
    2: "creates `department`",
    3: "renames `department` to `departments`",
    4: "renames `address` to `location`",
}

NEXT_STEP = {
    1: ("In server/:\n    flask db migrate -m \"Initial migration.\"\n    flask db upgrade head"),
    2: ("Add the Department model to models.py (table `department`: id, name NOT NULL, address), then in server/:\n"
        "    flask db migrate -m \"add Department\"\n    flask db upgrade head"),
    3: ("Set `__tablename__ = \"departments\"` in models.py, run `flask db migrate -m \"rename department\"`, "
        "change the new script's upgrade() to `op.rename_table('department', 'departments')` and its "
        "downgrade() to `op.rename_table('departments', 'department')`, then `flask db upgrade head`."),
    4: ("Rename `address` to `location` in models.py, run `flask db migrate -m \"rename address\"`, change the "
        "new script to `op.alter_column('departments', 'address', new_column_name='location')` (and back in "
        "downgrade()), then `flask db upgrade head`."),
}

FINAL_DEPARTMENT_MODEL = [
    "class Department(db.Model):",
    "    __tablename__ = \"departments\"",
    "",
    "    id = db.Column(db.Integer, primary_key=True)",
    "    name = db.Column(db.String, nullable=False)",
    "    address = db.Column(db.String)",
]


def fix_lines(position, direction, revision=None):
    """The lesson's code for one revision's upgrade() or downgrade()."""
    if revision is not None and revision.uses_batch and (direction, position) in BATCH_FIX:
        return BATCH_FIX[(direction, position)]
    return (UPGRADE_FIX if direction == "upgrade" else DOWNGRADE_FIX)[position]


def fix_functions(position, revision=None):
    lines = ["def upgrade():"] + ["    " + line for line in fix_lines(position, "upgrade", revision)]
    lines += ["", "", "def downgrade():"] + ["    " + line for line in fix_lines(position, "downgrade", revision)]
    return code_block(lines)


# --- schema comparison -----------------------------------------------------------------

def spec_of(column, free_nullability=False):
    return Spec(column.kind, None if free_nullability else column.nullable, column.primary_key)


def specs_of(schema, free=()):
    return {
        table: {name: spec_of(column, name in free) for name, column in columns.items()}
        for table, columns in schema.items()
    }


def schema_problems(actual, expected):
    """What differs between a database's schema and the expected one, one line each."""
    problems = []
    for table in expected:
        if table not in actual:
            problems.append(f"there is no table `{table}`")
    for table in actual:
        if table not in expected:
            problems.append(f"there is an extra table `{table}` ({', '.join(actual[table])})")
    for table, columns in expected.items():
        if table not in actual:
            continue
        found = actual[table]
        for name, spec in columns.items():
            column = found.get(name)
            if column is None:
                problems.append(f"`{table}` has no column `{name}` (it has {', '.join(found) or 'none'})")
                continue
            where = f"`{table}.{name}`"
            if spec.kind and column.kind != spec.kind:
                problems.append(f"{where} holds {column.kind} values; expected {spec.kind}")
            if spec.primary_key and not column.primary_key:
                problems.append(f"{where} is not the primary key")
            if spec.primary_key is False and column.primary_key:
                problems.append(f"{where} is part of the primary key; it should not be")
            if spec.nullable is False and column.nullable and not column.primary_key:
                problems.append(f"{where} allows empty values (NULL); it should be NOT NULL (nullable=False)")
            if spec.nullable is True and not column.nullable:
                problems.append(f"{where} is NOT NULL; it should allow empty values (nullable=True)")
        for name in found:
            if name not in columns:
                problems.append(f"`{table}` has an extra column `{name}`")
    return problems


def loss_lines(step):
    lines = []
    for loss in step.losses:
        if loss.missing_rows:
            kept = loss.rows_before - loss.missing_rows
            if loss.table_before != loss.table_after:
                lines.append(
                    f"the {plural(loss.rows_before, 'row')} of `{loss.table_before}` are lost: after the "
                    f"{step.direction}, `{loss.table_after}` has {kept} of them"
                )
            else:
                lines.append(f"{loss.missing_rows} of the {plural(loss.rows_before, 'row')} of `{loss.table_before}` are lost")
        if loss.changed_values:
            source = f"`{loss.table_before}.{loss.column_before}`"
            target = f"`{loss.table_after}.{loss.column_after}`"
            lines.append(
                f"the values of {source} are lost: after the {step.direction}, {target} no longer holds them "
                f"in {loss.changed_values} of {plural(loss.rows_before, 'row')}"
            )
    return lines


def loss_summary(loss):
    if loss.missing_rows:
        return f"the {plural(loss.missing_rows, 'row')} of `{loss.table_before}`"
    return f"the values of `{loss.table_before}.{loss.column_before}` in {plural(loss.changed_values, 'row')}"


def lost_rows(step):
    return sum(loss.missing_rows or loss.changed_values for loss in step.losses)


def describe_schema_change(step):
    """A short phrase for what an upgrade changed, judged by its effect."""
    if step is None:
        return "not run: an earlier revision failed"
    if not step.ran:
        return "fails: " + one_line(step.error, 120)
    before, after = step.before, step.after
    created = [t for t in after if t not in before]
    dropped = [t for t in before if t not in after]
    parts = []
    renamed = set()
    for old in dropped:
        for new in created:
            if new not in renamed and set(before[old]) == set(after[new]):
                parts.append(f"replaces table `{old}` with a new `{new}`" if step.losses
                             else f"renames table `{old}` to `{new}`")
                renamed.update((old, new))
                break
    parts += [f"creates table `{t}` ({', '.join(after[t])})" for t in created if t not in renamed]
    parts += [f"drops table `{t}`" for t in dropped if t not in renamed]
    for table in after:
        if table not in before:
            continue
        added = [c for c in after[table] if c not in before[table]]
        removed = [c for c in before[table] if c not in after[table]]
        if len(added) == 1 and len(removed) == 1 and not step.losses:
            parts.append(f"renames column `{removed[0]}` of `{table}` to `{added[0]}`")
            continue
        parts += [f"adds column `{c}` to `{table}`" for c in added]
        parts += [f"drops column `{c}` from `{table}`" for c in removed]
    if step.losses:
        parts.append("loses rows")
    return ", ".join(parts) or "changes no tables"


def lesson_works(step):
    """The lesson steps (1-4) whose work an upgrade did, judged by its effect on the tables,
    so that messages speak of the revisions that exist, wherever they do the work."""
    if step is None or not step.ran:
        return set()
    before, after = step.before, step.after
    created = [table for table in after if table not in before]
    works = set()
    if "employees" in created:
        works.add(1)
    if "department" in created or ("departments" in created and "department" not in before):
        works.add(2)
    if "department" in before and "departments" in after and "department" not in after:
        works.add(3)
    had_address = any("address" in before.get(table, {}) for table in ("department", "departments"))
    has_location = any("location" in after.get(table, {}) and "address" not in after.get(table, {})
                       for table in ("department", "departments"))
    if had_address and has_location:
        works.add(4)
    return works


# --- what a script does, as the worker recorded it ---------------------------------------

def what_it_does(step):
    """Lines saying which operations a step's function runs (recorded by the worker)."""
    if step is None:
        return ""
    lines = list(step.does)
    if step.record_problem:
        lines.append(("then " if lines else "") + step.record_problem)
    if lines:
        return "\n".join(lines)
    if step.statements:
        return "\n".join(step.statements)
    return "" if step.stopped else "nothing (the function runs no operations)"


def risks_of(step):
    """operations.Risk objects for one step, judged with the rows it met."""
    return list(step.risks) if step is not None else []


# --- the checks ------------------------------------------------------------------------

class _Grading:
    def __init__(self, layout, backend, server_url, limits=None):
        self.layout = layout
        self.limits = limits
        self.backend = backend
        self.server_url = server_url
        self.results = {}
        self.findings = []
        self.history = History()
        self.replay = Replay()
        self.models = None
        self.wrong_schema = []  # positions of revisions that leave the wrong tables or columns

    # helpers
    def result(self, checkpoint_id, status, feedback, reason, blocked_by=None):
        self.results[checkpoint_id] = Result(BY_ID[checkpoint_id], status, feedback, blocked_by, reason)

    def passed(self, checkpoint_id, summary):
        self.result(checkpoint_id, PASSED, Feedback(summary), "ok")

    def failed(self, checkpoint_id, feedback, reason):
        self.result(checkpoint_id, FAILED, feedback, reason)

    def blocked(self, checkpoint_id, by, why):
        self.result(checkpoint_id, FAILED, Feedback(f"blocked by {by}: fix that first").add("Why", why), "blocked", by)

    def revisions_doing(self, work):
        """Positions of the revisions whose upgrade did step `work`'s work, other than its own."""
        return [step.position for step in self.replay.upgrades
                if work in lesson_works(step) and step.position != work]

    def order_fix(self, position):
        """How to get back to one revision per step, in order, from revision `position` on."""
        revision = self.chain[position - 1]
        if position == 1:
            return (
                f"Revision 1 ({revision.rel}) does more than step 1. The lesson makes one revision per step, "
                "each run on a database that already holds the rows of the steps before, so start over:\n"
                f"    delete {revision.rel} (and any later revision file) and server/instance/app.db,\n"
                "    put models.py back to the starter (Employee only),\n"
                "    and do the steps again from step 1 (`flask db migrate -m \"Initial migration.\"`)."
            )
        later = [r.rel for r in self.chain[position - 1:]]
        return (
            f"The lesson makes one revision per step, in order. Go back to revision {position - 1} and do the "
            f"steps from step {position} again: in server/ run\n"
            f"    flask db downgrade {self.chain[position - 2].revision}\n"
            f"then delete {', '.join(later)}, change models.py back to how step {position - 1} left it, and "
            f"follow the README from step {position}."
        )

    def revision_name(self, position):
        return f"revision {position} ({self.history.chain[position - 1].rel})"

    @property
    def chain(self):
        return self.history.chain

    @property
    def migrations_usable(self):
        return self.layout.versions.is_dir()

    def run(self):
        self.collect()
        self.judge()

    def collect(self):
        """Everything the checks read: static findings, and what the student's code does,
        run in two sandboxes at once (models.py in one, the revisions in the other)."""
        layout = self.layout
        with Sandbox(layout, self.limits, "models") as models_box, Sandbox(layout, self.limits) as revisions_box:
            if layout.server.is_dir():
                models_box.start()  # both boot while the static checks run
                revisions_box.start()
                self.findings += check_app_py(layout)
            if layout.migrations.is_dir():
                self.findings += check_env_py(layout)
            with ThreadPoolExecutor(max_workers=1) as pool:
                models = pool.submit(load_models, layout, models_box)
                if self.migrations_usable:
                    self.history = load_history(layout, revisions_box)
                if self.history.chain:  # models.py is needed only at revision 3: it loads meanwhile
                    self.replay = replay(
                        self.history, revisions_box, lambda: models.result().metadata, backend=self.backend,
                        server_url=self.server_url,
                    )
                self.models = models.result()

    def judge(self):
        self.check_init()
        for position in REVISION_CHECKPOINTS:
            self.check_revision(position)
        self.check_history()  # after the revisions: its advice depends on what they do
        self.check_downgrades()
        self.check_models()
        self.check_local_database()
        self.results = {c.id: self.results[c.id] for c in CHECKPOINTS}

    # init -------------------------------------------------------------------------------
    def check_init(self):
        layout = self.layout
        migrations = layout.rel(layout.migrations)
        if not layout.server.is_dir():
            return self.failed("init", Feedback(
                f"There is no server/ folder in {layout.root}."
            ).add("Fix", "Grade the repository root: the folder that contains server/."), "no_server_folder")
        if not layout.migrations.is_dir():
            stray = layout.root / "migrations"
            if stray.is_dir():
                return self.failed("init", self.with_app_findings(Feedback(
                    "The migrations folder is at the repository root, not in server/: "
                    "`flask db init` ran in the wrong folder."
                ).add("Found", f"{layout.rel(stray)}/").add("Expected", f"{migrations}/").add(
                    "Fix", "From the repository root, move it (history and all):\n"
                    "    git mv migrations server/migrations\n"
                    "(or `mv migrations server/` if git does not track it yet), and run every "
                    "`flask db` command inside server/.")), "migrations_at_root")
            return self.failed("init", self.with_app_findings(Feedback(
                f"There is no {migrations}/ folder yet."
            ).add("Expected", f"{migrations}/ with alembic.ini, env.py, script.py.mako and versions/").add(
                "Fix", "Step 1: run `flask db init` inside server/:\n    cd server\n    flask db init")), "no_migrations_folder")
        missing = [name for name in REQUIRED_MIGRATION_FILES if not (layout.migrations / name).is_file()]
        if not layout.versions.is_dir():
            missing.append("versions/")
        problems = [f"{migrations}/{name} is missing" for name in missing] + self.findings
        if not problems:
            return self.passed("init", f"{migrations}/ has alembic.ini, env.py, script.py.mako and versions/.")
        fixes = []
        if "versions/" in missing:
            fixes.append(f"Create the empty folder: mkdir {migrations}/versions")
        if any(name != "versions/" for name in missing) or any("env.py" in p for p in self.findings):
            fixes.append(
                "Get fresh copies of Flask-Migrate's files: in server/ run\n"
                "    flask db init --directory fresh-migrations\n"
                "copy the missing or broken files (alembic.ini, env.py, script.py.mako) from "
                f"server/fresh-migrations/ into {migrations}/, then delete server/fresh-migrations/. "
                "Keep your versions/ folder as it is."
            )
        if any(p.startswith(layout.rel(layout.app_py)) for p in self.findings):
            fixes.append("Fix server/app.py as described above; `flask db ...` needs it to load.")
        app_rel = layout.rel(layout.app_py)
        if all(p.startswith(app_rel) for p in problems):
            summary = f"{app_rel} cannot run `flask db` commands: {plural(len(problems), 'problem')}."
            reason = "app_py_broken"
        else:
            summary = f"{migrations}/ is not set up as `flask db init` makes it: {plural(len(problems), 'problem')}."
            reason = "migrations_incomplete"
        feedback = Feedback(summary).add("Problems", bullet_list(problems)).add("Fix", "\n".join(fixes))
        self.failed("init", feedback, reason)

    def with_app_findings(self, feedback):
        """Add what is wrong in app.py, which `flask db init` needs too."""
        if self.findings:
            feedback.add("Also", bullet_list(self.findings) + "\nFix these too: `flask db ...` loads app.py.")
        return feedback

    # history ----------------------------------------------------------------------------
    def check_history(self):
        if not self.migrations_usable:
            return self.blocked("history", "init", f"There is no {self.layout.rel(self.layout.versions)}/ folder "
                                                   "to read revisions from.")
        history = self.history
        problems = list(history.problems)
        count = len(history.files)
        if not history.files:
            return self.failed("history", Feedback(
                f"No revisions yet: {self.layout.rel(self.layout.versions)}/ is empty."
            ).add("Expected", "Four revisions in one line (steps 1-4).").add("Fix", "Step 1: " + NEXT_STEP[1]),
                "no_revisions")
        if not problems and count < LESSON_REVISIONS:
            return self.failed("history", Feedback(
                f"Found {count} of the lesson's four revisions."
            ).add("Revisions found", self.revisions_found()).add("Fix", self.next_revision_fix(count)),
                "too_few_revisions")
        extra_fix = ""
        if not problems and count > LESSON_REVISIONS:
            extras = [self.chain[i] for i in range(LESSON_REVISIONS, len(self.chain))]
            problems.append(
                f"There are {count} revisions; the lesson has exactly four. "
                f"Extra: {', '.join(r.rel for r in extras)}."
            )
            extra_fix = (
                "The lesson has four revisions: step 5 goes back with a downgrade instead of adding one.\n"
                "Remove the extra revisions: if your database already ran them, first go back with\n"
                f"    flask db downgrade {self.chain[LESSON_REVISIONS - 1].revision}\n"
                f"then delete {', '.join(r.rel for r in extras)}."
            )
        if not problems:
            return self.passed("history", "One linear history of four revisions: one base, one head, no branches.")
        feedback = Feedback(
            f"The history is not one line of the four lesson revisions: {plural(len(problems), 'problem')}."
        ).add("Problems", bullet_list(problems)).add("Revisions found", self.revisions_found()).add(
            "Expected",
            "Four revision files in one line, each naming the one before it in down_revision:\n"
            + "\n".join(f"{n}. {EXPECTED_WORK[n]}" for n in range(1, 5))
            + "\n`flask db heads` shows one head; `flask db history` shows the four in order.",
        ).add("Fix", extra_fix or "Follow the advice under Problems, then check with `flask db heads` and `flask db history`.")
        self.failed("history", feedback, "extra_revisions" if extra_fix else "not_one_line")

    def next_revision_fix(self, count):
        """What to do when the line is short: the next step, unless a revision does another step's work."""
        failing = [n for n in range(1, count + 1) if self.results[REVISION_CHECKPOINTS[n]].status == FAILED]
        local = self.local_position()
        if not self.wrong_schema and not failing and local is not None and local < count:
            return (f"Step {REVISION_STEP[count]}: {self.layout.rel(self.layout.local_database)} is at revision {local}; "
                    f"apply the rest first, in server/:\n    flask db upgrade head\nThen step {count + 1}.")
        if not self.wrong_schema and not failing:
            doers = self.revisions_doing(count + 1)
            return self.order_fix(doers[0]) if doers else f"Step {count + 1}: " + NEXT_STEP[count + 1]
        position = (self.wrong_schema or failing)[0]
        if position == 1 and self.wrong_schema:
            return self.order_fix(1)
        return self.fix_first(position, count + 1)

    def fix_first(self, position, then):
        """Mend revision `position` into its own step's work, then go on with step `then`."""
        revision = self.chain[position - 1]
        return (f"Step {REVISION_STEP[position]} first: fix revision {position} ({revision.rel}), as "
                f"{REVISION_CHECKPOINTS[position]} says:\n\n{fix_functions(position, revision)}\n\nThen step {then}.")

    def local_position(self):
        """Where the local SQLite database is in the chain, when there is one to read (else None)."""
        path = self.layout.local_database
        if configured_database(self.layout) or not path.is_file():
            return None
        try:
            versions = read_local_database(path)["versions"] or []
        except Exception:  # local_database reports an unreadable file
            return None
        return self.history.position_of(versions[0]) if len(versions) == 1 else None

    def revisions_found(self):
        lines = []
        in_chain = {id(r): n for n, r in enumerate(self.chain, start=1)}
        ordered = list(self.chain) + [r for r in self.history.files if id(r) not in in_chain]
        for revision in ordered:
            position = in_chain.get(id(revision))
            ids = f"revision {revision.revision!r}" if revision.revision else "no revision id"
            if revision.down_revision:
                ids += f", follows {revision.down_revision!r}"
            head = f"{position}. " if position else "-  "
            if revision.load_error:
                work = "cannot be loaded"
            elif revision.revision is None:
                work = "not a revision"
            elif position:
                work = describe_schema_change(self.replay.upgrade(position))
            else:
                work = "not on the line from the first revision"
            lines.append(f"{head}{revision.rel} ({ids}): {work}")
        return "\n".join(lines)

    # revisions 1-4 ------------------------------------------------------------------------
    def blocker_before(self, position):
        """(checkpoint, why) that stops revision `position` from being judged, or None."""
        if not self.migrations_usable:
            return "init", f"There is no {self.layout.rel(self.layout.versions)}/ folder."
        history = self.history
        if len(self.chain) < position and history.ambiguous_after is not None and history.ambiguous_after < position:
            return "history", (
                f"The history cannot be followed to revision {position}: "
                + one_line(history.problems[0] if history.problems else "it splits or breaks before it.")
            )
        for earlier in range(1, min(position, len(self.chain) + 1)):
            step = self.replay.upgrade(earlier)
            if step is not None and not step.ran:
                return REVISION_CHECKPOINTS.get(earlier, "history"), (
                    f"Revision {earlier} fails on upgrade, so revision {position} cannot run."
                )
        return None

    def check_revision(self, position):
        checkpoint_id = REVISION_CHECKPOINTS[position]
        blocker = self.blocker_before(position)
        if blocker:
            return self.blocked(checkpoint_id, *blocker)
        if len(self.chain) < position:
            doers = self.revisions_doing(position)
            if doers:
                return self.failed(checkpoint_id, self.work_elsewhere(position, doers[0]), "work_in_another_revision")
            summary = f"No revision {position} yet: nothing {SHORT_WORK[position]}."
            return self.failed(checkpoint_id, Feedback(summary).add(
                "Found", f"{plural(len(self.chain), 'revision')} in {self.layout.rel(self.layout.versions)}/."
            ).add("Expected", f"Revision {position} {EXPECTED_WORK[position]}.").add(
                "Fix", f"Step {REVISION_STEP[position]}: {NEXT_STEP[position]}"), "missing_revision")
        if self.replay.error:
            return self.failed(checkpoint_id, Feedback(self.replay.error).add(
                "Fix", "Check the database server given to the grader (--lesson-database / LESSON_GRADE_DATABASE_URL)."),
                "replay_database_unusable")
        step = self.replay.upgrade(position)
        name = self.revision_name(position)
        if step is None:
            return self.blocked(checkpoint_id, "history", f"{name} was not run.")
        if not step.ran:
            feedback = Feedback(f"{name[0].upper()}{name[1:]} fails on upgrade.")
            feedback.add("Error", step.error)
            return self.failed(checkpoint_id, self.revision_advice(feedback, position, "upgrade", step),
                               "upgrade_stopped" if step.stopped else "upgrade_fails")

        expected = self.expected_after_upgrade(position, step.before)
        if expected is None:
            previous = REVISION_CHECKPOINTS[position - 1]
            return self.blocked(checkpoint_id, previous,
                                f"Revision {position - 1} does not leave the tables revision {position} works on.")
        schema_wrong = schema_problems(step.after, expected)
        if schema_wrong:
            self.wrong_schema.append(position)
        problems = schema_wrong + loss_lines(step)
        if not problems:
            keeps = " and keeps every row" if position > 2 else ""
            return self.passed(checkpoint_id, f"{name[0].upper()}{name[1:]} {SHORT_WORK[position]}{keeps}.")
        other_work = sorted(lesson_works(step) - {position})
        if step.losses:
            summary = f"{name[0].upper()}{name[1:]} loses data: {loss_summary(step.losses[0])}."
        elif other_work and position not in lesson_works(step):
            summary = (f"{name[0].upper()}{name[1:]} {SHORT_WORK[other_work[0]]} (step {other_work[0]}'s work) "
                       f"instead of step {REVISION_STEP[position]}'s: nothing {SHORT_WORK[position]} before it.")
        else:
            summary = f"{name[0].upper()}{name[1:]} does not do what step {REVISION_STEP[position]} asks."
        feedback = Feedback(summary).add("Found", bullet_list(problems))
        another = other_work and position not in lesson_works(step)
        reason = "loses_data" if step.losses else ("does_another_steps_work" if another else "wrong_schema")
        self.failed(checkpoint_id, self.revision_advice(feedback, position, "upgrade", step), reason)

    def work_elsewhere(self, position, doer):
        """Feedback for step `position`, whose work revision `doer` does instead of a revision of its own."""
        name = self.revision_name(doer)
        others = sorted(lesson_works(self.replay.upgrade(doer)) - {position})
        together = f", together with step {others[0]}'s work" if others else ""
        feedback = Feedback(f"{name[0].upper()}{name[1:]} {SHORT_WORK[position]}{together}: step "
                            f"{REVISION_STEP[position]} has no revision of its own.")
        feedback.add("Revisions found", self.revisions_found())
        feedback.add("Expected", f"Revision {position} {EXPECTED_WORK[position]}.")
        if doer < position and self.results[REVISION_CHECKPOINTS[doer]].status == FAILED:
            return feedback.add("Fix", self.fix_first(doer, position))
        return feedback.add("Fix", self.order_fix(min(doer, position)))

    def expected_after_upgrade(self, position, before):
        """The schema a correct revision leaves, from the one it started with (None: cannot tell)."""
        if position == 1:
            return {"employees": EMPLOYEES_TABLE}
        current = specs_of(before)
        if position == 2:
            current["department"] = DEPARTMENT_TABLE
            return current
        if position == 3:
            if "department" not in before or "departments" in before:
                return None
            current["departments"] = current.pop("department")
            return current
        if position == 4:
            if "address" not in before.get("departments", {}) or "location" in before["departments"]:
                return None
            columns = current["departments"]
            renamed = {}
            for name, spec in columns.items():
                if name == "address":
                    renamed["location"] = Spec(spec.kind, None, spec.primary_key)
                else:
                    renamed[name] = spec
            current["departments"] = renamed
            return current
        return current

    def revision_advice(self, feedback, position, direction, step):
        """Add what the revision does, the risk found, what was expected and the fix
        (the lesson's code for the revision)."""
        revision = self.chain[position - 1]
        feedback.add(f"What it does ({direction})", what_it_does(step))
        risks = risks_of(step)
        if risks:
            feedback.add("Why", "\n".join(risk.message for risk in risks))
        if direction == "upgrade":
            feedback.add("Expected", f"Revision {position} {EXPECTED_WORK[position]}.")
        else:
            feedback.add("Expected", f"The downgrade of revision {position} undoes exactly what its upgrade does, keeping every row.")
        fix = f"In {revision.rel}, make the functions read:\n\n{fix_functions(position, revision)}"
        if step is not None and lost_rows(step) and direction == "upgrade":
            fix += (
                "\n\nIf `flask db upgrade` already ran the old version on your own database, the rows are gone "
                "there too: after fixing the file, add them again with `flask shell` (steps 1 and 2 show how)."
            )
        feedback.add("Fix", fix)
        return feedback

    # downgrades -----------------------------------------------------------------------------
    def check_downgrades(self):
        for position in range(1, LESSON_REVISIONS + 1):
            result = self.results.get(REVISION_CHECKPOINTS[position])
            if len(self.chain) < position or (result and result.blocked_by):
                blocker = result.blocked_by if result and result.blocked_by else REVISION_CHECKPOINTS[position]
                return self.blocked("downgrades", blocker,
                                    "The downgrades are checked once all four revisions run, from revision 4 down.")
        if self.replay.error:
            return self.failed("downgrades", Feedback(self.replay.error).add(
                "Fix", "Check the database server given to the grader (--lesson-database / LESSON_GRADE_DATABASE_URL)."),
                "replay_database_unusable")
        if not self.replay.all_upgrades_ran:
            failing = next(s for s in self.replay.upgrades if not s.ran)
            return self.blocked("downgrades", REVISION_CHECKPOINTS.get(failing.position, "history"),
                                f"Revision {failing.position} fails on upgrade, so nothing can be downgraded.")
        sections = []
        failing_revisions = []
        for step in self.replay.downgrades:
            position = step.position
            name = self.revision_name(position)
            upgrade = self.replay.upgrade(position)
            schema_wrong = []
            if not step.ran:
                problems = ["it fails: " + step.error]
            else:
                schema_wrong = schema_problems(step.after, specs_of(upgrade.before, FREE_NULLABILITY))
                problems = schema_wrong + loss_lines(step)
                if not problems:
                    continue
            failing_revisions.append(name)
            text = bullet_list(problems)
            revision = self.chain[position - 1]
            does = what_it_does(step)
            if does:
                text += "\n\nWhat it does (downgrade):\n" + code_block(does.splitlines(), 1)
            risks = risks_of(step)
            if risks:
                text += "\n\nWhy:\n" + code_block([risk.message for risk in risks], 1)
            if position <= LESSON_REVISIONS:
                text += "\n\nFix: in " + revision.rel + ", make downgrade() read:\n" + code_block(
                    ["def downgrade():"] + ["    " + line for line in fix_lines(position, "downgrade", revision)], 1)
            if (not step.ran or schema_wrong) and position > 1:
                # The revisions below start from the wrong tables now: judging them would blame them.
                text += (f"\n\nThe downgrades of revisions {position - 1} to 1 are checked once this one "
                         "leaves the tables as they were before its upgrade.")
            sections.append((f"{name[0].upper()}{name[1:]}, downgrade", text))
            if not step.ran or schema_wrong:
                break
        if not sections:
            if len(self.replay.downgrades) != len(self.chain):  # never judged: never passed
                return self.failed("downgrades", Feedback("The downgrades could not all be run."), "downgrades_not_run")
            return self.passed(
                "downgrades",
                "Every downgrade reverses its upgrade and keeps the rows, down to an empty database.",
            )
        feedback = Feedback(
            f"{plural(len(failing_revisions), 'downgrade')} do not reverse their upgrade: {', '.join(failing_revisions)}."
            if len(failing_revisions) > 1 else
            f"The downgrade of {failing_revisions[0]} does not reverse its upgrade."
        )
        for title, text in sections:
            feedback.add(title, text)
        feedback.add("Expected", "Each downgrade() undoes its upgrade(): from revision 4 down to an empty database "
                                 "(only alembic_version left), every table and column comes back with its rows.")
        self.failed("downgrades", feedback, "downgrade_not_reversed")

    # models_match -----------------------------------------------------------------------
    def check_models(self):
        models_rel = self.layout.rel(self.layout.models_py)
        if self.models.error:
            return self.failed("models_match", Feedback(
                f"{models_rel} cannot be loaded, so it cannot be compared with your migrations."
            ).add("Error", self.models.error).add("Fix", f"Fix the line shown in {models_rel}."), "models_py_broken")
        if self.replay.error:
            return self.failed("models_match", Feedback(self.replay.error), "replay_database_unusable")
        blocker = self.blocker_before(MODELS_REVISION)
        if blocker is None and len(self.chain) < MODELS_REVISION:
            blocker = (REVISION_CHECKPOINTS[len(self.chain) + 1], f"There is no revision {MODELS_REVISION} yet.")
        elif blocker is None:
            step = self.replay.upgrade(MODELS_REVISION)
            wrong = [n for n in self.wrong_schema if n <= MODELS_REVISION]
            if step is None or not step.ran:
                blocker = (REVISION_CHECKPOINTS[MODELS_REVISION], "Revision 3 fails on upgrade, so there is no "
                                                                  "database at revision 3 to compare with.")
            elif wrong:
                blocker = (REVISION_CHECKPOINTS[wrong[0]], f"Revision {wrong[0]} leaves other tables or columns "
                           "than the lesson's, so the schema at revision 3 is not the one models.py should match.")
        if blocker:
            return self.blocked("models_match", *blocker)
        if self.replay.models_error:
            return self.failed("models_match", Feedback(
                f"{models_rel} cannot be compared with the database at revision 3."
            ).add("Error", self.replay.models_error).add("Fix", code_block(FINAL_DEPARTMENT_MODEL)),
                "models_not_comparable")
        diff = [item for item in self.replay.models_diff or [] if not free_nullability_change(item)]
        if not diff:
            return self.passed("models_match", f"{models_rel} matches the schema at revision 3 "
                                               "(`flask db migrate` would find nothing to do).")
        lines = [describe_difference(item) for item in diff]
        feedback = Feedback(
            f"{models_rel} does not match the schema at revision 3: {plural(len(lines), 'difference')}."
        ).add("Differences (models.py vs. the database at revision 3)", bullet_list(lines))
        feedback.add("What `flask db migrate` would generate", textwrap.dedent(self.replay.models_code))
        feedback.add("Expected", "The database stays at revision 3 (step 5), so models.py describes revision 3: "
                                 "Employee as in the starter, and Department with table `departments` and "
                                 "the column `address` (not `location`).")
        rev3 = self.chain[MODELS_REVISION - 1].revision
        feedback.add("Fix", f"Step 5: your database stays at revision 3 ({rev3}); `flask db current` in server/ shows "
                    f"where it is. At revision 4, go back with `flask db downgrade {rev3}`; at revision 1 or 2, "
                    f"come up with `flask db upgrade {rev3}` (not head).\n"
                    f"Then change {models_rel} (not the migrations); the Department model should read:\n\n"
                    + code_block(FINAL_DEPARTMENT_MODEL)
                    + "\n\n(update __repr__ to use self.address too). Then `flask db migrate` "
                      "would find nothing to do.")
        self.failed("models_match", feedback,
                    "models_not_reverted" if any("location" in line for line in lines) else "models_mismatch")

    # local_database -----------------------------------------------------------------------
    def check_local_database(self):
        path = self.layout.local_database
        rel = self.layout.rel(path)
        elsewhere = configured_database(self.layout)
        if elsewhere:
            return self.result("local_database", NOT_APPLICABLE, Feedback(
                f"not applicable: your app uses another database (DATABASE_URL={elsewhere}); only {rel} is "
                "checked here. Your migrations were checked on a scratch database."
            ), "other_database")
        if not path.is_file():
            return self.result("local_database", NOT_APPLICABLE, Feedback(
                f"not applicable: there is no {rel} in this checkout (databases are not committed, so "
                "this is normal on CodeGrade and GitHub); your migrations were checked on a scratch database."
            ), "no_local_database")
        try:
            found = read_local_database(path)
        except Exception as error:
            return self.failed("local_database", Feedback(f"{rel} cannot be read: {error}").add(
                "Fix", "Make sure it is a SQLite database made by `flask db upgrade` and that no program is "
                       "writing to it, then grade again."), "local_database_unreadable")
        rev3 = self.chain[2] if len(self.chain) >= 3 else None
        fix_upgrade = f"flask db upgrade {rev3.revision}" if rev3 else "finish steps 1-4 first"
        if found["versions"] is None:
            return self.failed("local_database", Feedback(
                f"{rel} has no alembic_version table: its tables were not made by `flask db upgrade`."
            ).add("Found", f"tables: {', '.join(found['schema']) or 'none'}").add(
                "Fix", "If models.py or app.py calls db.create_all(), remove that. Then move this database aside "
                       f"(mv {rel} {rel}.old) and rebuild it in server/ with `flask db upgrade`, adding your rows "
                       "again with `flask shell`."), "local_database_not_migrated")
        versions = found["versions"]
        if len(versions) != 1:
            return self.failed("local_database", Feedback(
                f"{rel} records {len(versions)} current revisions ({', '.join(versions) or 'none'}); "
                "it should be at revision 3."
            ).add("Fix", f"In server/: flask db stamp {rev3.revision if rev3 else '<revision 3 id>'} --purge"),
                "local_database_several_heads")
        current = versions[0]
        position = self.history.position_of(current)
        if position != MODELS_REVISION:
            if position is None:
                where = f"at revision {current!r}, which no file in {self.layout.rel(self.layout.versions)}/ has"
            else:
                where = f"at revision {position} ({self.chain[position - 1].rel})"
            if position and position > MODELS_REVISION and rev3:
                fix = f"Step 5: in server/ run\n    flask db downgrade {rev3.revision}"
            else:
                fix = f"In server/ run\n    {fix_upgrade}"
                broken = [
                    REVISION_CHECKPOINTS[n] for n in range(1, MODELS_REVISION + 1)
                    if not self.results[REVISION_CHECKPOINTS[n]].passed
                ]
                if broken and rev3:
                    fix = (f"First fix what {', '.join(broken)} reports: `flask db upgrade` runs those revisions on "
                           f"your own rows. Then, in server/ run\n    {fix_upgrade}")
            return self.failed("local_database", Feedback(
                f"{rel} is {where}; at the end of the lesson it is at revision 3."
            ).add("Fix", fix), "local_database_wrong_revision")
        problems = schema_problems(found["schema"], {
            "employees": {name: Spec(None, None, None) for name in EMPLOYEES_TABLE},
            "departments": {name: Spec(None, None, None) for name in DEPARTMENT_TABLE},
        })
        counts = found["counts"]
        for data_set, table in ((EMPLOYEES, "employees"), (DEPARTMENTS, "departments")):
            if table in found["schema"] and not problems and counts.get(table, 0) == 0:
                problems.append(f"`{table}` has no rows: the rows you added in step {1 if table == 'employees' else 2} are gone")
        if not problems and found["empty_addresses"]:
            problems.append(f"`departments.address` is empty (NULL) in {plural(found['empty_addresses'], 'row')}: "
                            "the values were lost on the way (a column dropped and added instead of renamed)")
        if not problems:
            return self.passed("local_database", f"{rel} is at revision 3 with your rows "
                                                 f"({counts.get('employees')} employees, {counts.get('departments')} departments).")
        self.failed("local_database", Feedback(
            f"{rel} is at revision 3 but its tables or rows are not right."
        ).add("Found", bullet_list(problems)).add(
            "Fix", "Add the missing rows again with `flask shell` in server/, for example:\n"
                   "    from models import db, Employee, Department\n"
                   "    db.session.add(Employee(name=\"Kai Uri\", salary=89000))\n"
                   "    db.session.add(Department(name=\"Payroll\", address=\"Building A, 4th Floor\"))\n"
                   "    db.session.commit()"), "local_database_rows_missing")


def configured_database(layout):
    """The database DATABASE_URL names (environment, then server/.env), when it
    is not the default server/instance/app.db; None otherwise. Never shows a password."""
    from sqlalchemy.engine import make_url

    from .database import app_database_url

    try:
        parsed = make_url(app_database_url(layout.server))
        if parsed.get_backend_name() == "sqlite" and parsed.database and \
                Path(parsed.database).resolve() == layout.local_database.resolve():
            return None
        return parsed.render_as_string(hide_password=True)
    except Exception:
        return "(a URL that cannot be read)"


def read_local_database(path):
    """Read the student's SQLite database without changing it (read-only mode)."""
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext

    from .database import read_only_engine
    from .operations import row_counts

    engine, _ = read_only_engine(f"sqlite:///{Path(path).resolve()}")
    try:
        with engine.connect() as connection:
            versions = None
            if sa.inspect(connection).has_table("alembic_version"):
                versions = list(MigrationContext.configure(connection).get_current_heads())
            schema = inspect_schema(connection)
            counts = row_counts(connection, schema)
            empty_addresses = 0
            if "address" in schema.get("departments", {}):
                departments = sa.table("departments", sa.column("address"))
                empty_addresses = connection.execute(
                    sa.select(sa.func.count()).select_from(departments).where(departments.c.address.is_(None))
                ).scalar_one()
    finally:
        engine.dispose()
    return {"versions": versions, "schema": schema, "counts": counts, "empty_addresses": empty_addresses}


def free_nullability_change(item):
    """A NULL/NOT NULL difference on address or location: the lesson accepts either."""
    if isinstance(item, list):
        return bool(item) and all(free_nullability_change(inner) for inner in item)
    return item[0] == "modify_nullable" and item[2] in ("department", "departments") and item[3] in FREE_NULLABILITY


def describe_difference(item, database="the database at revision 3"):
    """One line for an entry of Alembic's compare_metadata() result."""
    if isinstance(item, list):  # column modifications come wrapped in a list
        return "; ".join(describe_difference(inner, database) for inner in item)
    kind = item[0]
    if kind == "add_table":
        return f"models.py defines table `{item[1].name}`, which {database} does not have"
    if kind == "remove_table":
        return f"{database} has table `{item[1].name}`, which models.py does not define"
    if kind == "add_column":
        return f"models.py gives `{item[2]}` a column `{item[3].name}`, which {database} does not have"
    if kind == "remove_column":
        return f"{database} has column `{item[2]}.{item[3].name}`, which models.py does not define"
    if kind == "modify_nullable":
        _, _, table, column, _, existing, new = item
        return (f"`{table}.{column}`: models.py says nullable={new}, {database} "
                f"says nullable={existing}")
    if kind == "modify_type":
        _, _, table, column, _, existing, new = item
        return f"`{table}.{column}`: models.py says {new!r}, {database} has {existing!r}"
    if kind == "modify_default":
        return f"`{item[2]}.{item[3]}`: the server default differs"
    return f"{kind.replace('_', ' ')}: {item[1:]}"
