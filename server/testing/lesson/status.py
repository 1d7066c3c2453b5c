"""`flask lesson status`: where a student is in the lesson and what to do next.

One judgement, built on the grader's report (checks.grade) and a read-only
look at the student's own database: which revision it is at, pending
revisions and what they would do to the rows there, rows already lost, and
models.py compared with the database. From that come the checklist of the
five steps and the one next action, which follows the grader's fix wherever
the grader can see the problem, so the two never disagree.

status_of(root) returns it all as plain data (Status) for other front ends;
status_text(root) renders it for the terminal. It only reads: SQLite is
opened read-only and PostgreSQL in a read-only transaction.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .checkpoints import CHECKPOINTS, STEPS
from .checks import FAILED, FINAL_DEPARTMENT_MODEL, REVISION_CHECKPOINTS, REVISION_STEP, describe_difference, grade
from .console import tolerate_unencodable_output
from .database import app_database_url, in_instance_folder, read_only_engine
from .feedback import INDENT, code_block, plural
from .submission import Layout

LESSON_TABLES = ("employees", "department", "departments")
LESSON_REVISIONS = 4
END_REVISION = 3  # step 5 leaves the database here


@dataclass
class LocalDatabase:
    """What the student's own database holds (all read-only)."""

    label: str
    exists: bool = False
    error: Optional[str] = None
    heads: tuple = ()
    tables: List[str] = field(default_factory=list)
    rows: dict = field(default_factory=dict)  # lesson table -> row count
    rows_all: dict = field(default_factory=dict)  # every table -> row count, for the review
    columns: dict = field(default_factory=dict)  # table -> {column: type}, for the review
    model_differences: Optional[list] = None  # autogenerate's diff, None if unknown
    model_error: Optional[str] = None


@dataclass
class Advice:
    title: str
    text: str
    step: Optional[int] = None  # the README step the advice belongs to, when it has one


# --- the status as plain data (for the terminal, the lesson page, ...) -------------


@dataclass
class StepMark:
    step: int
    title: str
    done: bool


@dataclass
class DatabaseSummary:
    label: str  # server/instance/app.db or the URL without its password
    exists: bool
    revisions: List[str]  # what alembic_version holds
    position: Optional[int]  # place of that revision in the chain (1-4), None if unknown
    rows: dict  # lesson table -> row count
    error: Optional[str] = None


@dataclass
class NextAction:
    step: Optional[int]  # the README step it belongs to; None when it is not a step's work
    title: str
    text: str


@dataclass
class Status:
    steps: List[StepMark]
    database: Optional[DatabaseSummary]
    next: NextAction
    also: List[Advice]
    score: int
    max_score: int

    @property
    def done(self):
        return all(mark.done for mark in self.steps)


def default_root():
    return Path(__file__).resolve().parents[3]


def inspect_local_database(layout, url, metadata):
    from alembic.runtime.migration import MigrationContext

    from .operations import database_facts
    from .replay import compare_models

    engine, sqlite_path = read_only_engine(url)
    label = layout.rel(sqlite_path) if sqlite_path else make_url(url).render_as_string(hide_password=True)
    local = LocalDatabase(label=label)
    if sqlite_path is not None and not sqlite_path.is_file():
        return local
    try:
        with engine.connect() as connection:
            local.exists = True
            local.heads = tuple(MigrationContext.configure(connection).get_current_heads())
            local.tables = sorted(sa.inspect(connection).get_table_names())
            row_counts, local.columns = database_facts(connection)
            local.rows_all = row_counts
            local.rows = {table: row_counts[table] for table in LESSON_TABLES if table in row_counts}
            if metadata is not None:
                diff, _code, error = compare_models(connection, metadata)
                local.model_differences, local.model_error = diff, error
            connection.rollback()
    except Exception as error:  # an unreachable server or a damaged file
        local.error = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
    finally:
        engine.dispose()
    return local


# --- the judgement --------------------------------------------------------------------


class _Position:
    """Where the files and the database are, in the lesson's terms."""

    def __init__(self, report, local, chain):
        self.report = report
        self.local = local
        self.chain = list(chain)
        self.ids = [revision.revision for revision in self.chain]
        usable = local is not None and local.exists and not local.error and len(local.heads) == 1
        self.current = local.heads[0] if usable else None
        self.position = self.ids.index(self.current) + 1 if self.current in self.ids else None

    def failed(self, checkpoint):
        return self.report[checkpoint].status == FAILED

    @property
    def lesson_revisions_good(self):
        """The four revisions exist and each does its step's work."""
        return len(self.chain) >= LESSON_REVISIONS and not any(self.failed(c) for c in REVISION_CHECKPOINTS.values())

    @property
    def end_revision(self):
        return self.chain[END_REVISION - 1] if len(self.chain) >= END_REVISION else None

    def loss_on_the_way(self):
        """(position, loss) of the first revision the database ran that loses rows, else None."""
        if self.position is None or self.report.replay is None:
            return None
        for step in self.report.replay.upgrades:
            if step.position <= self.position and step.losses:
                return step.position, step.losses[0]
        return None

    @property
    def models_match_database(self):
        return self.local is not None and self.local.model_differences == [] and not self.local.model_error


def step_marks(report, local=None, chain=()):
    """{step: done?}: every checkpoint of the step passed and, when the student
    has a local database, it has reached the step's revision with its rows.
    A step stays done while a later step undoes its work as the lesson asks
    (step 5's downgrade of revision 4), and rows lost by a later, wrong
    revision count against that revision, not against the step that added them."""
    marks = {}
    for step in STEPS:
        results = [report[c.id] for c in CHECKPOINTS if c.step == step]
        marks[step] = all(result.status != FAILED for result in results)
    if local is None or local.error:
        return marks
    where = _Position(report, local, chain)
    reached = where.position or 0
    if reached == END_REVISION and where.lesson_revisions_good:
        reached = LESSON_REVISIONS  # step 5 goes back to revision 3 on purpose
    for step in (1, 2, 3, 4):
        marks[step] = marks[step] and reached >= step
    marks[5] = marks[5] and where.position == END_REVISION  # also where the grader cannot read the database
    lost = where.loss_on_the_way()
    rows_lost_later = lost is not None and lost[0] > 2
    marks[1] = marks[1] and local.rows.get("employees", 0) > 0
    marks[2] = marks[2] and (rows_lost_later or max(local.rows.get("department", 0), local.rows.get("departments", 0)) > 0)
    return marks


def fix_of(result):
    for title, text in result.feedback.sections:
        if title == "Fix":
            return text
    return result.summary


def diagnose(report, local, chain):
    """What the database and files say, as advice, most urgent first."""
    advice = []
    history = report.history
    where = _Position(report, local, chain)
    heads_in_files = _heads(history)
    if len(heads_in_files) > 1:
        advice.append(Advice(
            f"Your migrations have {len(heads_in_files)} heads: {', '.join(heads_in_files)}",
            "Two revisions claim the same parent, so `flask db upgrade` does not know which way to go.\n"
            "See them with `flask db heads`. If one is a mistake, delete its file; if both are\n"
            "wanted, join them with `flask db merge heads -m \"merge heads\"`.",
        ))
    if local is None or local.error:
        if local is not None:
            advice.append(Advice(f"Cannot read your database {local.label}", local.error))
        return advice
    if not local.exists:
        if where.ids:
            advice.append(Advice(
                f"No database yet at {local.label}",
                "Create it and apply your migrations with `flask db upgrade head`.",
            ))
        return advice
    current = where.current
    if not local.heads:
        lesson_tables = [t for t in local.tables if t in LESSON_TABLES]
        if lesson_tables and where.ids:
            advice.append(Advice(
                "Your database has tables but no migration revision",
                "They were probably made with `db.create_all()`, not by migrations. If the tables\n"
                "match a revision exactly, record that with `flask db stamp <revision>`; otherwise\n"
                "start over: delete the database file and run `flask db upgrade head`.",
            ))
        elif where.ids:
            advice.append(Advice("Your database has no migrations applied", "Apply them with `flask db upgrade head`.", 1))
    elif current is None:
        advice.append(Advice(
            f"Your database is at {len(local.heads)} revisions at once: {', '.join(local.heads)}",
            "Merge the heads (`flask db merge heads -m \"merge heads\"`), then `flask db upgrade head`.",
        ))
    elif current not in [f.revision for f in history.files]:
        advice.append(Advice(
            f"Your database is at revision {current}, but no file in migrations/versions/ has that id",
            "This is Alembic's \"Can't locate revision\". Either the file was deleted or renamed, or\n"
            "the database belongs to other migrations. Put the file back if you can; otherwise\n"
            "tell Alembic which revision the tables really match: `flask db stamp <revision>`.",
        ))
    elif where.position is not None:
        advice += _lesson_advice(where)
    if local.model_error:
        advice.append(Advice("models.py could not be compared with your database", local.model_error))
    return advice


def _lesson_advice(where):
    """Advice for a database on the chain: the shortest way back to the lesson's path."""
    report, local = where.report, where.local
    advice = []
    lost = where.loss_on_the_way()
    empty = [table for table, count in local.rows.items() if count == 0]
    if lost and empty:
        advice.append(_rows_lost_by(where, *lost))
    pending = where.chain[where.position:]
    extra = len(where.chain) > LESSON_REVISIONS
    failing_pending = [
        revision for n, revision in enumerate(pending, start=where.position + 1)
        if n <= LESSON_REVISIONS and where.failed(REVISION_CHECKPOINTS[n]) and not report[REVISION_CHECKPOINTS[n]].blocked_by
    ]
    if extra:
        advice.append(_extra_revisions(where))
    elif failing_pending:
        advice.append(_fix_before_upgrade(where, failing_pending[0]))
    elif where.lesson_revisions_good:
        advice += _step_5_advice(where)
    elif pending:
        advice.append(_waiting(where, pending))
    elif local.model_differences:
        changes = "\n".join("- " + describe_difference(item, "your database") for item in local.model_differences[:6])
        advice.append(Advice(
            "models.py has changes that no migration contains yet",
            f"{changes}\nGenerate the migration with `flask db migrate -m \"<what changed>\"`, read the\n"
            "new file in migrations/versions/ before you upgrade (autogenerate cannot see renames).",
            len(where.chain) + 1,
        ))
    if not lost:
        for table in empty:
            step = 1 if table == "employees" else 2
            advice.append(Advice(
                f"Step {step}: `{table}` has no rows",
                f"The lesson adds two rows to `{table}` in `flask shell` (see the README's step {step}), so\n"
                "you can see that later migrations keep them.",
                step,
            ))
    return advice


def _rows_lost_by(where, position, loss):
    revision = where.chain[position - 1]
    checkpoint = REVISION_CHECKPOINTS.get(position)
    step = REVISION_STEP.get(position)
    what = f"the rows of `{loss.table_before}`" if loss.missing_rows else f"the values of `{loss.table_before}.{loss.column_before}`"
    text = f"Your database ran revision {position} ({revision.rel}), which deleted {what}.\n"
    if checkpoint and where.failed(checkpoint):
        text += "Fix the file first, as the grader says:\n" + _indent(_fix_code(where.report[checkpoint])) + "\n"
    text += ("Your database already has the tables that revision makes, so do not upgrade or downgrade:\n"
             "add the rows again in `flask shell` (steps 1 and 2 of the README show how).")
    title = f"Revision {position} deleted {what} in your database"
    return Advice(f"Step {step}: {title}" if step else title, text, step)


def _fix_code(result):
    """The grader's fix for a revision, without its remark about re-adding rows."""
    return fix_of(result).split("\n\nIf `flask db upgrade` already ran", 1)[0]


def _fix_before_upgrade(where, revision):
    position = where.ids.index(revision.revision) + 1
    checkpoint = REVISION_CHECKPOINTS[position]
    step = REVISION_STEP[position]
    result = where.report[checkpoint]
    return Advice(
        f"Step {step}: fix revision {position} before `flask db upgrade`",
        f"{result.summary}\n{_fix_code(result)}\n"
        "Then check it with `flask lesson review` and apply it with `flask db upgrade head`.",
        step,
    )


def _extra_revisions(where):
    extras = where.chain[LESSON_REVISIONS:]
    last_good = where.chain[LESSON_REVISIONS - 1]
    files = "\n".join(f"    {revision.rel}" for revision in extras)
    text = ""
    if where.position > LESSON_REVISIONS:
        text += f"Your database ran it: go back first, in server/:\n    flask db downgrade {last_good.revision}\n"
    text += (f"The lesson has exactly four revisions; step 5 goes back with a downgrade instead of adding one.\n"
             f"Delete the extra revision file:\n{files}")
    return Advice(f"Step 5: delete the extra revision {extras[0].rel}", text, 5)


def _step_5_advice(where):
    """The four revisions are right: the database goes to revision 3, models.py describes it."""
    target = where.end_revision.revision
    model = "\n" + code_block(FINAL_DEPARTMENT_MODEL, 1) + "\n(and `self.address` in __repr__)"
    if where.position > END_REVISION:
        text = f"Go back one revision, in server/:\n    flask db downgrade {target}\n"
        if where.models_match_database:
            text += "Then put `address` back in models.py, so it describes revision 3:" + model
        else:
            text += "models.py already describes revision 3; leave it as it is."
        return [Advice(f"Step 5: downgrade to revision 3 ({target})", text, 5)]
    if where.position < END_REVISION:
        text = (f"Your database is at revision {where.position}: one downgrade too many. Come back to revision 3, in server/:\n"
                f"    flask db upgrade {target}\n"
                "(not `head`: revision 4 stays unapplied at the end of the lesson).")
        if where.failed("models_match"):
            text += "\nThen put `address` back in models.py, so it describes revision 3:" + model
        return [Advice(f"Step 5: upgrade to revision 3 ({target}), not further", text, 5)]
    if where.failed("models_match") or where.local.model_differences:
        return [Advice(
            "Step 5: put `address` back in models.py",
            "Your database is at revision 3, where step 5 leaves it, but models.py still describes revision 4.\n"
            "Change models.py (not the migrations, and do not upgrade); the Department model should read:" + model
            + "\n(Still in step 4, before its upgrade? Files and database are the same then: putting `address`\n"
            "back leads to the same end, or follow step 4 to its end and then step 5's downgrade.)",
            5,
        )]
    return []


def _waiting(where, pending):
    names = "\n".join(f"{revision.revision}  {revision.rel}" for revision in pending)
    review = _pending_risks(pending, where.local)
    text = (
        f"Not applied yet:\n{names}\n"
        "Until you upgrade, `flask db migrate` stops with \"Target database is not up to date\".\n"
    )
    if review:
        text += "Warning: " + review + "\nRun `flask lesson review`, fix the script, then `flask db upgrade head`."
    else:
        text += "Read the script, then apply it with `flask db upgrade head`."
    step = REVISION_STEP.get(where.ids.index(pending[-1].revision) + 1)
    title = f"{plural(len(pending), 'revision')} waiting to be applied"
    return Advice(f"Step {step}: {title}" if step else title, text, step)


def _heads(history):
    if history is None:
        return []
    parents = {down for f in history.files for down in f.down_revisions}
    return [f.revision for f in history.files if f.revision and f.revision not in parents]


def _pending_risks(pending, local):
    """One line per data-loss risk in the pending revisions, applied in order."""
    from .pending import record_pending
    from .sandbox import Sandbox

    layout = Layout.of(pending[0].path.parents[3])  # <root>/server/migrations/versions/<file>
    with Sandbox(layout) as sandbox:
        recordings = record_pending(sandbox, pending, local.rows_all, local.columns)
    return "\n".join(
        f"{recording.revision.rel}: {risk.message.splitlines()[0]}"
        for recording in recordings for risk in recording.risks
    )


def next_action(report, marks, advice):
    """The one next thing: the most urgent advice, else the grader's first fix
    for the first step not done."""
    if advice:
        return NextAction(advice[0].step, advice[0].title, advice[0].text)
    for step in STEPS:
        if not marks[step]:
            failed = [report[c.id] for c in CHECKPOINTS if c.step == step and report[c.id].status == FAILED]
            if not failed:
                return NextAction(step, f"Finish step {step} ({STEPS[step]})", f"Follow the README's step {step} to the end.")
            failed.sort(key=lambda result: result.blocked_by is not None)
            return NextAction(step, failed[0].summary, fix_of(failed[0]))
    return NextAction(None, "All five steps are done",
                      "Grade your work with `pytest` (from the repository root or server/), then push.")


def status_of(root=None, database_url=None):
    """The status of the checkout at `root` (default: this repository), as data."""
    layout = Layout.of(root or default_root())
    report = grade(layout.root)
    local = None
    if layout.server.is_dir():
        url = in_instance_folder(database_url, layout.server) if database_url else app_database_url(layout.server)
        local = inspect_local_database(layout, url, report.models.metadata if report.models else None)
    chain = report.history.chain if report.history else []
    advice = diagnose(report, local, chain)
    marks = step_marks(report, local, chain)
    return Status(
        steps=[StepMark(step, title, marks[step]) for step, title in STEPS.items()],
        database=_summary(local, chain),
        next=next_action(report, marks, advice),
        also=advice[1:],
        score=report.score,
        max_score=report.max_score,
    )


def _summary(local, chain):
    if local is None:
        return None
    ids = [revision.revision for revision in chain]
    heads = list(local.heads)
    position = ids.index(heads[0]) + 1 if len(heads) == 1 and heads[0] in ids else None
    return DatabaseSummary(local.label, local.exists, heads, position, dict(local.rows), local.error)


def render(status):
    lines = ["Flask schema migrations lesson: your progress", ""]
    for mark in status.steps:
        lines.append(f"  [{'x' if mark.done else ' '}] Step {mark.step}  {mark.title}")
    lines.append("")
    database = status.database
    if database is not None and database.exists and not database.error:
        where = "revision " + ", ".join(database.revisions) if database.revisions else "no revision applied"
        rows = ", ".join(f"{table}: {plural(count, 'row')}" for table, count in database.rows.items())
        lines.append(f"Your database: {database.label}, at {where}" + (f" ({rows})" if rows else ""))
    elif database is not None and not database.exists:
        lines.append(f"Your database: {database.label} does not exist yet")
    lines += ["", f"Next: {status.next.title}", _indent(status.next.text)]
    for item in status.also:
        lines += ["", f"Also: {item.title}", _indent(item.text)]
    return "\n".join(lines)


def _indent(text):
    return "\n".join(INDENT + line if line else line for line in text.splitlines())


def status_text(root=None, database_url=None):
    """The status report for the checkout at `root` (default: this repository)."""
    return render(status_of(root, database_url))


def run_status(root=None, database_url=None):
    """Print the status; the exit code is 0 (the status is information)."""
    tolerate_unencodable_output()
    print(status_text(root, database_url))
    return 0
