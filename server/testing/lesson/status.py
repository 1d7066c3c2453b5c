"""`flask lesson status`: where a student is in the lesson and what to do next.

It runs the grader's checks (checks.grade) and looks at the student's own
database the way an instructor would: which revision it is at compared with
the files, pending revisions and what they would do to the rows there,
several heads, and models.py out of step with the database. It only reads:
SQLite is opened read-only and PostgreSQL in a read-only transaction.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .checkpoints import CHECKPOINTS, STEPS
from .checks import FAILED, describe_difference, grade
from .console import tolerate_unencodable_output
from .database import app_database_url, in_instance_folder, read_only_engine
from .feedback import INDENT, plural
from .submission import Layout

LESSON_TABLES = ("employees", "department", "departments")


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


def step_marks(report, local=None, chain=()):
    """{step: done?}: every checkpoint of the step passed and, when the student
    has a local database, it has reached the step's revision with its rows."""
    marks = {}
    for step in STEPS:
        results = [report[c.id] for c in CHECKPOINTS if c.step == step]
        marks[step] = all(result.status != FAILED for result in results)
    if local is None or local.error:
        return marks
    ids = [revision.revision for revision in chain]
    reached = ids.index(local.heads[0]) + 1 if len(local.heads) == 1 and local.heads[0] in ids else 0
    reached = max(reached, 4 if marks[5] else 0)  # step 5 goes back to revision 3 on purpose
    for step in (1, 2, 3, 4):
        marks[step] = marks[step] and reached >= step
    marks[1] = marks[1] and local.rows.get("employees", 0) > 0
    marks[2] = marks[2] and max(local.rows.get("department", 0), local.rows.get("departments", 0)) > 0
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
    ids = [revision.revision for revision in chain]
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
        if ids:
            advice.append(Advice(
                f"No database yet at {local.label}",
                "Create it and apply your migrations with `flask db upgrade head`.",
            ))
        return advice
    current = local.heads[0] if len(local.heads) == 1 else None
    if not local.heads:
        lesson_tables = [t for t in local.tables if t in LESSON_TABLES]
        if lesson_tables and ids:
            advice.append(Advice(
                "Your database has tables but no migration revision",
                "They were probably made with `db.create_all()`, not by migrations. If the tables\n"
                "match a revision exactly, record that with `flask db stamp <revision>`; otherwise\n"
                "start over: delete the database file and run `flask db upgrade head`.",
            ))
        elif ids:
            advice.append(Advice(
                "Your database has no migrations applied",
                "Apply them with `flask db upgrade head`.",
            ))
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
    elif current in ids:
        pending = chain[ids.index(current) + 1:]
        final_state = _at_final_state(report, ids, current)
        if final_state and local.model_differences:
            advice.append(Advice(
                "Revision 4 is not applied to your database, and models.py still has `location`",
                "If you are in step 4, apply it: `flask db upgrade head`.\n"
                "If you have just done step 5's downgrade, put `address` back in models.py\n"
                "(Department: `address = db.Column(db.String)`, and in __repr__) so it matches revision 3.",
            ))
        elif pending and not final_state:
            names = "\n".join(f"{revision.revision}  {revision.rel}" for revision in pending)
            review = _pending_risks(pending, local)
            text = (
                f"Not applied yet:\n{names}\n"
                "Until you upgrade, `flask db migrate` stops with \"Target database is not up to date\".\n"
            )
            if review:
                text += "Warning: " + review + "\nRun `flask lesson review`, fix the script, then `flask db upgrade head`."
            else:
                text += "Read the script, then apply it with `flask db upgrade head`."
            advice.append(Advice(f"{plural(len(pending), 'revision')} waiting to be applied", text))
        elif local.model_differences and not final_state and current == ids[-1]:
            changes = "\n".join("- " + describe_difference(item, "your database") for item in local.model_differences[:6])
            advice.append(Advice(
                "models.py has changes that no migration contains yet",
                f"{changes}\nGenerate the migration with `flask db migrate -m \"<what changed>\"`, read the\n"
                "new file in migrations/versions/ before you upgrade (autogenerate cannot see renames).",
            ))
    for table, count in local.rows.items():
        if count == 0:
            advice.append(Advice(
                f"`{table}` has no rows",
                f"The lesson adds two rows to `{table}` in `flask shell` (see the README), so you can\n"
                "see that later migrations keep them.",
            ))
    if local.model_error:
        advice.append(Advice("models.py could not be compared with your database", local.model_error))
    return advice


def _heads(history):
    if history is None:
        return []
    parents = {down for f in history.files for down in f.down_revisions}
    return [f.revision for f in history.files if f.revision and f.revision not in parents]


def _at_final_state(report, ids, current):
    """Four good revisions and the database at revision 3: the end of the
    lesson (or step 4 before its upgrade; models.py tells them apart)."""
    return len(ids) == 4 and current == ids[2] and all(
        report[c].status != FAILED for c in ("rename_table", "rename_column")
    )


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
    """(title, what to do) for the one next thing."""
    if advice:
        return advice[0].title, advice[0].text
    for step in STEPS:
        if not marks[step]:
            failed = [report[c.id] for c in CHECKPOINTS if c.step == step and report[c.id].status == FAILED]
            if not failed:
                return f"Finish step {step} ({STEPS[step]})", "Follow the README's step {step} to the end.".format(step=step)
            failed.sort(key=lambda result: result.blocked_by is not None)
            return failed[0].summary, fix_of(failed[0])
    return "All five steps are done", "Grade your work with `pytest` from the repository root, then push."


def render(report, marks, local, advice):
    lines = ["Flask schema migrations lesson: your progress", ""]
    for step, title in STEPS.items():
        lines.append(f"  [{'x' if marks[step] else ' '}] Step {step}  {title}")
    lines.append("")
    if local is not None and local.exists and not local.error:
        where = "revision " + ", ".join(local.heads) if local.heads else "no revision applied"
        rows = ", ".join(f"{table}: {plural(count, 'row')}" for table, count in local.rows.items())
        lines.append(f"Your database: {local.label}, at {where}" + (f" ({rows})" if rows else ""))
    elif local is not None and not local.exists:
        lines.append(f"Your database: {local.label} does not exist yet")
    title, text = next_action(report, marks, advice)
    lines += ["", f"Next: {title}", _indent(text)]
    for item in advice[1:]:
        lines += ["", f"Also: {item.title}", _indent(item.text)]
    return "\n".join(lines)


def _indent(text):
    return "\n".join(INDENT + line if line else line for line in text.splitlines())


def status_text(root=None, database_url=None):
    """The status report for the checkout at `root` (default: this repository)."""
    layout = Layout.of(root or default_root())
    report = grade(layout.root)
    local = None
    if layout.server.is_dir():
        url = in_instance_folder(database_url, layout.server) if database_url else app_database_url(layout.server)
        local = inspect_local_database(layout, url, report.models.metadata if report.models else None)
    chain = report.history.chain if report.history else []
    advice = diagnose(report, local, chain)
    return render(report, step_marks(report, local, chain), local, advice)


def run_status(root=None, database_url=None):
    """Print the status; the exit code is 0 (the status is information)."""
    tolerate_unencodable_output()
    print(status_text(root, database_url))
    return 0
