"""`flask lesson status`: where a student is in the lesson and what to do next.

One judgement, built on the grader's report (checks.grade) and a read-only
look at the student's own database (reading.read_database): which revision
it is at, pending revisions and what they would do to the rows there, rows
already lost, and models.py compared with the database. From that come the
checklist of the lesson's steps and the one next action, which follows the
grader's fix (Result.fix) wherever the grader can see the problem, so the
two never disagree. Every table, step and revision it names comes from the
lesson's declaration (checkpoints.LESSON).

status_of(root) returns it all as plain data (Status) for other front ends;
status_text(root) renders it for the terminal. It only reads: SQLite is
opened read-only and PostgreSQL in a read-only transaction.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from .checkpoints import LESSON
from .checks import FAILED, grade
from .console import tolerate_unencodable_output
from .database import app_database_url, in_instance_folder
from .definition import NUMBER_WORDS
from .feedback import INDENT, code_block, plural
from .reading import read_database
from .render import describe_difference
from .submission import Layout


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
    lesson: str = LESSON.name

    @property
    def done(self):
        return all(mark.done for mark in self.steps)


def default_root():
    return Path(__file__).resolve().parents[3]


def inspect_local_database(layout, url, metadata, lesson=LESSON):
    """The student's database at `url`, read only (reading.DatabaseReading)."""
    return read_database(url, lesson, metadata, root=layout.root)


def lesson_tables(lesson):
    """The tables the lesson's rows live in, in the order the lesson names them."""
    return [table for data_set in lesson.data_sets for table in reversed(data_set.tables)]


def lesson_rows(local, lesson):
    """{table: rows} for the lesson's tables the database has."""
    return {table: local.counts[table] for table in lesson_tables(lesson) if table in local.counts}


# --- the judgement --------------------------------------------------------------------


class _Position:
    """Where the files and the database are, in the lesson's terms."""

    def __init__(self, report, local, chain):
        self.report = report
        self.lesson = report.lesson
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
        """The lesson's revisions exist and each does its step's work."""
        checkpoints = self.lesson.revision_checkpoints.values()
        return len(self.chain) >= self.lesson.count and not any(self.failed(c) for c in checkpoints)

    @property
    def end_revision(self):
        end = self.lesson.end.revision
        return self.chain[end - 1] if len(self.chain) >= end else None

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
    lesson = report.lesson
    marks = {step: all(report[c.id].status != FAILED for c in lesson.checkpoints if c.step == step)
             for step in lesson.steps}
    if local is None or local.error:
        return marks
    where = _Position(report, local, chain)
    reached = where.position or 0
    if reached == lesson.end.revision and where.lesson_revisions_good:
        reached = lesson.count  # the last step goes back to the end revision on purpose
    for position, revision in enumerate(lesson.revisions, start=1):
        marks[revision.step] = marks[revision.step] and reached >= position
    marks[lesson.end.step] = marks[lesson.end.step] and where.position == lesson.end.revision
    lost = where.loss_on_the_way()
    for data_set in lesson.data_sets:
        rows = max(local.counts.get(table, 0) for table in data_set.tables)
        lost_later = lost is not None and lost[0] > lesson.made_by(data_set)
        marks[data_set.step] = marks[data_set.step] and (lost_later or rows > 0)
    return marks


def fix_of(result):
    return result.fix or result.summary


def diagnose(report, local, chain):
    """What the database and files say, as advice, most urgent first."""
    advice = _heads_advice(report.history)
    if local is None or local.error:
        if local is not None:
            advice.append(Advice(f"Cannot read your database {local.label}", local.error))
        return advice
    where = _Position(report, local, chain)
    if not local.exists:
        if where.ids:
            advice.append(Advice(
                f"No database yet at {local.label}",
                "Create it and apply your migrations with `flask db upgrade head`.",
            ))
        return advice
    advice += _revision_advice(report, local, where)
    if local.model_error:
        advice.append(Advice("models.py could not be compared with your database", local.model_error))
    return advice


def _heads_advice(history):
    heads_in_files = history.heads if history is not None else []
    if len(heads_in_files) <= 1:
        return []
    return [Advice(
        f"Your migrations have {len(heads_in_files)} heads: {', '.join(heads_in_files)}",
        "Two revisions claim the same parent, so `flask db upgrade` does not know which way to go.\n"
        "See them with `flask db heads`. If one is a mistake, delete its file; if both are\n"
        "wanted, join them with `flask db merge heads -m \"merge heads\"`.",
    )]


def _revision_advice(report, local, where):
    """Advice on the revision the database is at."""
    current = where.current
    if not local.heads:
        lesson_tables_found = [t for t in local.tables if t in lesson_tables(report.lesson)]
        if lesson_tables_found and where.ids:
            return [Advice(
                "Your database has tables but no migration revision",
                "They were probably made with `db.create_all()`, not by migrations. If the tables\n"
                "match a revision exactly, record that with `flask db stamp <revision>`; otherwise\n"
                "start over: delete the database file and run `flask db upgrade head`.",
            )]
        if where.ids:
            return [Advice("Your database has no migrations applied", "Apply them with `flask db upgrade head`.", 1)]
        return []
    if current is None:
        return [Advice(
            f"Your database is at {len(local.heads)} revisions at once: {', '.join(local.heads)}",
            "Merge the heads (`flask db merge heads -m \"merge heads\"`), then `flask db upgrade head`.",
        )]
    if current not in [f.revision for f in report.history.files]:
        return [Advice(
            f"Your database is at revision {current}, but no file in migrations/versions/ has that id",
            "This is Alembic's \"Can't locate revision\". Either the file was deleted or renamed, or\n"
            "the database belongs to other migrations. Put the file back if you can; otherwise\n"
            "tell Alembic which revision the tables really match: `flask db stamp <revision>`.",
        )]
    if where.position is not None:
        return _lesson_advice(where)
    return []


def _lesson_advice(where):
    """Advice for a database on the chain: the shortest way back to the lesson's path."""
    report, local, lesson = where.report, where.local, where.lesson
    advice = []
    lost = where.loss_on_the_way()
    rows = lesson_rows(local, lesson)
    empty = [table for table, count in rows.items() if count == 0]
    if lost and empty:
        advice.append(_rows_lost_by(where, *lost))
    advice += _path_advice(where, local)
    if not lost:
        for table in empty:
            data_set = lesson.data_set_in(table)
            advice.append(Advice(
                f"Step {data_set.step}: `{table}` has no rows",
                f"The lesson adds {NUMBER_WORDS[len(data_set.rows)]} rows to `{table}` in `flask shell` (see the "
                f"README's step {data_set.step}), so\nyou can see that later migrations keep them.",
                data_set.step,
            ))
    return advice


def _path_advice(where, local):
    """The next move along the chain: delete, fix, finish, apply, or migrate what models.py has."""
    report, lesson = where.report, where.lesson
    pending = where.chain[where.position:]
    failing_pending = [
        revision for n, revision in enumerate(pending, start=where.position + 1)
        if n <= lesson.count and where.failed(lesson.checkpoint_of(n))
        and not report[lesson.checkpoint_of(n)].blocked_by
    ]
    if len(where.chain) > lesson.count:
        return [_extra_revisions(where)]
    if failing_pending:
        return [_fix_before_upgrade(where, failing_pending[0])]
    if where.lesson_revisions_good:
        return _end_advice(where)
    if pending:
        return [_waiting(where, pending)]
    if local.model_differences:
        changes = "\n".join("- " + describe_difference(item, "your database") for item in local.model_differences[:6])
        return [Advice(
            "models.py has changes that no migration contains yet",
            f"{changes}\nGenerate the migration with `flask db migrate -m \"<what changed>\"`, read the\n"
            "new file in migrations/versions/ before you upgrade (autogenerate cannot see renames).",
            len(where.chain) + 1,
        )]
    return []


def _rows_lost_by(where, position, loss):
    revision, lesson = where.chain[position - 1], where.lesson
    checkpoint = lesson.checkpoint_of(position)
    step = lesson.step_of(position)
    what = f"the rows of `{loss.table_before}`" if loss.missing_rows else f"the values of `{loss.table_before}.{loss.column_before}`"
    text = f"Your database ran revision {position} ({revision.rel}), which deleted {what}.\n"
    if checkpoint and where.failed(checkpoint):
        text += "Fix the file first, as the grader says:\n" + _indent(_fix_code(where.report[checkpoint])) + "\n"
    steps, verb = lesson.row_steps
    text += ("Your database already has the tables that revision makes, so do not upgrade or downgrade:\n"
             f"add the rows again in `flask shell` ({steps} of the README {verb} how).")
    title = f"Revision {position} deleted {what} in your database"
    return Advice(f"Step {step}: {title}" if step else title, text, step)


def _fix_code(result):
    """The grader's fix for a revision, without its remark about re-adding rows."""
    return result.feedback.core_fix or fix_of(result)


def _fix_before_upgrade(where, revision):
    position = where.ids.index(revision.revision) + 1
    step = where.lesson.step_of(position)
    result = where.report[where.lesson.checkpoint_of(position)]
    return Advice(
        f"Step {step}: fix revision {position} before `flask db upgrade`",
        f"{result.summary}\n{_fix_code(result)}\n"
        "Then check it with `flask lesson review` and apply it with `flask db upgrade head`.",
        step,
    )


def _extra_revisions(where):
    lesson = where.lesson
    extras = where.chain[lesson.count:]
    last_good = where.chain[lesson.count - 1]
    files = "\n".join(f"    {revision.rel}" for revision in extras)
    text = ""
    if where.position > lesson.count:
        text += f"Your database ran it: go back first, in server/:\n    flask db downgrade {last_good.revision}\n"
    text += (f"The lesson has exactly {lesson.count_word} revisions; {lesson.extra_revision_note}.\n"
             f"Delete the extra revision file:\n{files}")
    return Advice(f"Step {lesson.end.step}: delete the extra revision {extras[0].rel}", text, lesson.end.step)


def _end_advice(where):
    """The lesson's revisions are right: the database goes to the end revision, models.py describes it."""
    lesson, end = where.lesson, where.lesson.end
    target = where.end_revision.revision
    model = "\n" + code_block(end.model_code, 1) + "\n" + end.model_repr_note
    back = f"{end.model_change}, so it describes revision {end.revision}:" + model
    title = f"Step {end.step}:"
    if where.position > end.revision:
        text = f"Go back one revision, in server/:\n    flask db downgrade {target}\n"
        if where.models_match_database:
            text += "Then " + back
        else:
            text += f"models.py already describes revision {end.revision}; leave it as it is."
        return [Advice(f"{title} downgrade to revision {end.revision} ({target})", text, end.step)]
    if where.position < end.revision:
        text = (f"Your database is at revision {where.position}: one downgrade too many. Come back to revision "
                f"{end.revision}, in server/:\n    flask db upgrade {target}\n"
                f"(not `head`: revision {lesson.count} stays unapplied at the end of the lesson).")
        if where.failed("models_match"):
            text += "\nThen " + back
        return [Advice(f"{title} upgrade to revision {end.revision} ({target}), not further", text, end.step)]
    if where.failed("models_match") or where.local.model_differences:
        return [Advice(
            f"{title} {end.model_change}",
            f"Your database is at revision {end.revision}, where step {end.step} leaves it, but models.py still "
            f"describes revision {lesson.count}.\nChange models.py (not the migrations, and do not upgrade); "
            f"{end.model_intro}" + model + "\n" + end.model_early_note,
            end.step,
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
    step = where.lesson.step_of(where.ids.index(pending[-1].revision) + 1)
    title = f"{plural(len(pending), 'revision')} waiting to be applied"
    return Advice(f"Step {step}: {title}" if step else title, text, step)


def _pending_risks(pending, local):
    """One line per data-loss risk in the pending revisions, applied in order."""
    from .pending import record_pending
    from .sandbox import Sandbox

    layout = Layout.of(pending[0].path.parents[3])  # <root>/server/migrations/versions/<file>
    with Sandbox(layout) as sandbox:
        recordings = record_pending(sandbox, pending, local.counts, local.columns)
    return "\n".join(
        f"{recording.revision.rel}: {risk.message.splitlines()[0]}"
        for recording in recordings for risk in recording.risks
    )


def next_action(report, marks, advice):
    """The one next thing: the most urgent advice, else the grader's first fix
    for the first step not done."""
    lesson = report.lesson
    if advice:
        return NextAction(advice[0].step, advice[0].title, advice[0].text)
    for step in lesson.steps:
        if not marks[step]:
            failed = [report[c.id] for c in lesson.checkpoints if c.step == step and report[c.id].status == FAILED]
            if not failed:
                return NextAction(step, f"Finish step {step} ({lesson.steps[step]})",
                                  f"Follow the README's step {step} to the end.")
            failed.sort(key=lambda result: result.blocked_by is not None)
            return NextAction(step, failed[0].summary, fix_of(failed[0]))
    return NextAction(None, f"All {NUMBER_WORDS[len(lesson.steps)]} steps are done",
                      "Grade your work with `pytest` (from the repository root or server/), then push.")


def status_of(root=None, database_url=None):
    """The status of the checkout at `root` (default: this repository), as data."""
    layout = Layout.of(root or default_root())
    report = grade(layout.root)
    local = None
    if layout.server.is_dir():
        url = in_instance_folder(database_url, layout.server) if database_url else app_database_url(layout.server)
        local = inspect_local_database(layout, url, report.models.metadata if report.models else None, report.lesson)
    chain = report.history.chain if report.history else []
    advice = diagnose(report, local, chain)
    marks = step_marks(report, local, chain)
    return Status(
        steps=[StepMark(step, title, marks[step]) for step, title in report.lesson.steps.items()],
        database=_summary(local, chain, report.lesson),
        next=next_action(report, marks, advice),
        also=advice[1:],
        score=report.score,
        max_score=report.max_score,
        lesson=report.lesson.name,
    )


def _summary(local, chain, lesson):
    if local is None:
        return None
    ids = [revision.revision for revision in chain]
    heads = list(local.heads)
    position = ids.index(heads[0]) + 1 if len(heads) == 1 and heads[0] in ids else None
    return DatabaseSummary(local.label, local.exists, heads, position, lesson_rows(local, lesson), local.error)


def render(status):
    lines = [f"{status.lesson}: your progress", ""]
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
