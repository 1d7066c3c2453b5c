"""`flask lesson status`: where a student is in the lesson and what to do next.

It adds only what is its own to the grader's judgement (checks.grade, given
the database the student's app uses, read only): the grader's first finding
in the files (models.py, a revision, the history, the migrations folder)
leads, with the grader's fix, and a word on the student's own database where
it matters; once the files are right, the database steps follow (to the
revision where the lesson ends, never past it, with the rows each step
adds). The checklist ticks the steps the grader found right, and those the
database has reached when there is one. Every table, step and revision it
names comes from the lesson's declaration (checkpoints.LESSON).

status_of(root) returns it all as plain data (Status) for other front ends
(the lesson page too); status_text(root) renders it for the terminal. It only
reads: SQLite is opened read-only and PostgreSQL in a read-only transaction.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from ..databases.database import app_database_url, in_instance_folder
from ..databases.reading import DatabaseReading
from ..engine.checks import FAILED, grade
from ..engine.render import describe_difference, rows_code
from ..engine.report_text import further_line
from ..engine.submission import Layout
from ..lesson.checkpoints import LESSON
from ..lesson.definition import NUMBER_WORDS
from ..lesson.feedback import INDENT, code_block, plural
from .console import tolerate_unencodable_output


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
    report: object = None  # the grader's checks.Report it was built on (the page reads it too)
    further: str = ""  # "Going further (optional): 20/90 bonus points", once an optional step is begun

    @property
    def done(self):
        return all(mark.done for mark in self.steps)


def default_root():
    return Path(__file__).resolve().parents[3]


def lesson_tables(lesson):
    """The tables the lesson's rows live in, in the order the lesson names them."""
    return [table for data_set in lesson.data_sets for table in reversed(data_set.tables)]


def lesson_rows(local, lesson):
    """{table: rows} for the lesson's tables the database has."""
    return {table: local.counts[table] for table in lesson_tables(lesson) if table in local.counts}


# --- the judgement --------------------------------------------------------------------


def local_reading(report):
    """The student's database as the grader read it; a reading that says it
    does not exist when there is none (None: no server/ folder)."""
    evidence = report.evidence
    if evidence is None or not evidence.folders.server:
        return None
    return evidence.local or DatabaseReading(evidence.local_label)


class _Position:
    """Where the files and the database are, in the lesson's terms."""

    def __init__(self, report):
        self.report = report
        self.lesson = report.lesson
        self.local = local_reading(report)
        self.chain = list(report.history.chain) if report.history else []
        self.ids = [revision.revision for revision in self.chain]
        self.position = report.evidence.local_position() if report.evidence else None  # computed once, here
        self.current = self.ids[self.position - 1] if self.position else None

    @property
    def on_chain(self):
        return self.position is not None

    def failed(self, checkpoint):
        return self.report[checkpoint].status == FAILED

    @property
    def lesson_revisions_good(self):
        """The lesson's revisions exist and each does its step's work."""
        checkpoints = self.lesson.revision_checkpoints.values()
        return len(self.chain) >= self.lesson.count and not any(self.failed(c) for c in checkpoints)

    @property
    def finished_files(self):
        """The files are as the lesson ends: every revision right and models.py back at the end
        revision. The database then stays at the end revision: nothing suggests going further."""
        return self.lesson_revisions_good and not self.failed("models_match")

    @property
    def end_revision(self):
        end = self.lesson.end.revision
        return self.chain[end - 1] if len(self.chain) >= end else None

    @property
    def after_last_step(self):
        """Every revision made and models.py brought back as the last step does (it names nothing of
        what that step undoes): the database is not meant to pass the end revision any more."""
        if len(self.chain) < self.lesson.count:
            return False
        if self.finished_files:
            return True
        metadata, marker = self.report.models.metadata if self.report.models else None, self.lesson.end.reverted_marker
        return metadata is not None and bool(marker) and not any(
            marker in name for table in metadata.tables.values() for name in [table.name, *table.columns.keys()])

    def upgrade_target(self):
        """What `flask db upgrade` is given: the end revision after the last step, else head
        (also when the end revision is the head, as once an optional step is done)."""
        end = self.end_revision
        return end.revision if self.after_last_step and end is not self.chain[-1] else "head"

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


def step_marks(report, where):
    """{step: done?}: every checkpoint of the step passed and, when the student
    has a database, it has reached the step's revision with its rows. Without
    one (a fresh clone), the files alone decide.
    A step stays done while a later step undoes its work as the lesson asks
    (step 5's downgrade of revision 4), and rows lost by a later, wrong
    revision count against that revision, not against the step that added them."""
    lesson, local = report.lesson, where.local
    # An optional step of several revisions counts its checkpoints beyond the chain too (step 9's merge).
    checkpoints = [*lesson.checkpoints, *(r.checkpoint for r in report.further.values() if r.id not in lesson.by_id)]
    marks = {step: all(report[c.id].status != FAILED for c in checkpoints if c.step == step)
             for step in lesson.steps}
    if local is None or local.error or not local.exists:
        return marks
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


# The grader's reasons that say "not done yet", not "wrong": the lesson in progress.
IN_PROGRESS = {"missing_revision"}
# Findings no edit of one file mends: the lesson's own files are the way back.
TANGLED = {"work_in_another_revision", "does_another_steps_work", "not_one_line"}


def first_finding(report):
    """The grader's first finding in the files, as a student reads the grade: the
    first failing checkpoint not blocked by another, other than the local
    database and the steps not done yet. None when the files are right so far."""
    for result in report:
        if result.status != FAILED or result.blocked_by or result.id == "local_database":
            continue
        if result.reason in IN_PROGRESS:
            continue
        advice = result.verdict.facts.next if result.reason == "too_few_revisions" else None
        if advice and advice.kind in ("apply_local", "next_step"):
            continue
        if advice and advice.kind == "fix_first":  # the history's fix is that revision's: its own finding says more
            revision = report[report.lesson.checkpoint_of(advice.position)]
            return revision if revision.status == FAILED and not revision.blocked_by else result
        return result
    return None


# An optional step's findings on the history itself (a fork not merged, a branch deleted or
# rewritten): the files and the database follow from it, so it comes first.
HISTORY_FINDINGS = {"not_merged", "branch_deleted", "rewritten_parent", "not_a_merge"}


def history_finding(report):
    return next((result for result in report.further.values() if result.status == FAILED
                 and not result.blocked_by and result.reason in HISTORY_FINDINGS), None)


def diagnose(report, where):
    """What the files and the database say, as advice, most urgent first: the
    files' first finding, else the database's next step."""
    local = where.local
    advice = []
    branching = history_finding(report)
    if branching is not None:
        step = branching.checkpoint.step
        return [Advice(f"Step {step}: {branching.summary}", fix_of(branching), step)]
    finding = first_finding(report)
    if finding is not None:
        advice.append(_finding_advice(where, finding))
    if local is not None and local.error:
        advice.append(Advice(f"Cannot read your database {local.label}", local.error))
    if finding is not None or local is None or local.error:
        return advice
    if not local.exists:
        return advice + _build_database(where)
    return advice + _revision_advice(report, where)


# --- the files first --------------------------------------------------------------------


def _finding_advice(where, result):
    """The grader's finding with its fix, and what the student's database adds to it."""
    lesson = where.lesson
    position = lesson.position_of(result.id)
    if position is not None and where.on_chain:
        lost = where.loss_on_the_way()
        if lost and lost[0] == position and 0 in lesson_rows(where.local, lesson).values():
            return _rows_lost_by(where, *lost)
        if position > where.position and position <= len(where.chain):
            return _fix_before_upgrade(where, where.chain[position - 1])
    if result.reason == "extra_revisions":
        return _extra_revisions(where, result)
    if result.id == "models_match" and where.on_chain and where.lesson_revisions_good:
        return _end_advice(where)[0]  # the grader's fix, in the order the database's place asks for
    step = _step_of_finding(lesson, result)
    sections = result.feedback.sections
    if result.id == "downgrades" and sections:  # one section per revision, its fix inside
        text = sections[0][1]
    else:
        problems = dict(sections).get("Problems") if position is None else None
        text = (f"{problems}\n" if problems else "") + fix_of(result)
    text += _reset_offer(where, result)
    return Advice(f"Step {step}: {result.summary}" if step else result.summary, text, step)


def _step_of_finding(lesson, result):
    """The README step whose work the finding's fix redoes (None: no one step)."""
    if result.id == "history":
        position = result.verdict.facts.next.position if result.verdict.facts.next else None
        return lesson.step_of(position) if position else None
    position = lesson.position_of(result.id)
    return lesson.step_of(position) if position else result.checkpoint.step


def _reset_offer(where, result):
    """For a chain no edit mends: the way back to the start of a step, with the lesson's own files."""
    advice = result.verdict.facts.next if result.id == "history" else None
    kind = advice.kind if advice else None
    deleted_folder = result.reason == "no_migrations_folder" and where.local is not None and where.local.versions
    if result.reason not in TANGLED and kind not in ("order", "fix_first") and not deleted_folder:
        return ""
    what = ("models.py, the revisions and your database as that step begins (it shows what it replaces, asks "
            "first and keeps a backup).")
    if deleted_folder:
        return f"\nOr put the lesson's own files back at the start of the step you were on: `flask lesson reset <step>` puts back {what}"
    lesson = where.lesson
    failing = [n for n in range(1, lesson.count + 1) if where.failed(lesson.checkpoint_of(n))]
    step = lesson.step_of(failing[0]) if failing else 1
    return f"\nOr start step {step} again from the lesson's own files: `flask lesson reset {step}` puts back {what}"


def _rows_lost_by(where, position, loss):
    revision, lesson = where.chain[position - 1], where.lesson
    checkpoint = lesson.checkpoint_of(position)
    step = lesson.step_of(position)
    what = f"the rows of `{loss.table_before}`" if loss.missing_rows else f"the values of `{loss.table_before}.{loss.column_before}`"
    text = f"Your database ran revision {position} ({revision.rel}), which deleted {what}.\n"
    if checkpoint and where.failed(checkpoint):
        text += "Fix the file first, as the grader says:\n" + _indent(_fix_code(where.report[checkpoint])) + "\n"
    text += ("Your database already has the tables that revision makes, so do not upgrade or downgrade:\n"
             "add the missing rows again in `flask shell`:\n" + _rows_to_add(where))
    title = f"Revision {position} deleted {what} in your database"
    return Advice(f"Step {step}: {title}" if step else title, text, step)


def _rows_to_add(where, only_empty=True):
    """`flask shell` lines that add exactly the lesson's rows the database lacks, where it keeps them."""
    local, lesson = where.local, where.lesson
    missing = [data_set for data_set in lesson.data_sets if data_set.locate(local.schema)
               and not (only_empty and local.counts.get(data_set.locate(local.schema)[0], 0))]
    return _indent(rows_code(lesson, missing, local.schema))


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
        f"Then check it with `flask lesson review` and apply it with `flask db upgrade {where.upgrade_target()}`.",
        step,
    )


def _extra_revisions(where, result):
    """The grader's fix, after what the database says of it."""
    lesson = where.lesson
    extras = where.chain[lesson.count:]
    text = ""
    if where.on_chain and where.position > lesson.count:
        text = "Your database ran it, so go back first, as below.\n"
    elif where.on_chain:
        text = "Your database has not run it: only delete the file.\n"
    title = f"delete the extra revision {extras[0].rel}" if extras else result.summary
    return Advice(f"Step {lesson.end.step}: {title}", text + fix_of(result), lesson.end.step)


def _models_back(where):
    """The database is at the end revision, models.py still describes a later one."""
    lesson, end, words = where.lesson, where.lesson.end, where.lesson.words
    return Advice(
        f"Step {end.step}: {words.model_change}",
        f"Your database is at revision {end.revision}, where step {end.step} leaves it, but models.py still "
        f"describes revision {lesson.count}.\nChange models.py (not the migrations, and do not upgrade); "
        f"{words.model_intro}" + _end_model(lesson) + "\n" + words.model_early_note,
        end.step,
    )


def _end_model(lesson):
    return "\n" + code_block(lesson.end.model_code, 1) + "\n" + lesson.words.model_repr_note


# --- then the database ------------------------------------------------------------------


def _build_database(where):
    """No database in this copy: build the one the lesson expects from the files."""
    if not where.chain:
        return []
    lesson, target = where.lesson, where.upgrade_target()
    position = where.ids.index(target) + 1 if target != "head" else len(where.chain)
    step = lesson.step_of(position) or lesson.end.step
    upgrade = where.report.replay.upgrade(position) if where.report.replay else None
    schema = upgrade.after if upgrade is not None and upgrade.ran else {}
    data_sets = [data_set for data_set in lesson.data_sets if data_set.locate(schema)]
    text = f"Build it from your migrations, in server/:\n    flask db upgrade {target}\n"
    if target != "head":
        text += f"(revision {position}, where the lesson ends: not `head`)\n"
    if data_sets:
        text += ("Then add the rows the lesson's steps add, in `flask shell`:\n"
                 + _indent(rows_code(lesson, data_sets, schema)))
    return [Advice(f"Build your database {where.local.label} (it is not in this copy)", text.rstrip("\n"), step)]


def _revision_advice(report, where):
    """Advice on the revision the database is at."""
    local, current = where.local, where.current
    target = where.upgrade_target()
    if not local.heads:
        lesson_tables_found = [t for t in local.tables if t in lesson_tables(report.lesson)]
        if lesson_tables_found and where.ids:
            return [Advice(
                "Your database has tables but no migration revision",
                "They were probably made with `db.create_all()`, not by migrations. If the tables\n"
                "match a revision exactly, record that with `flask db stamp <revision>`; otherwise\n"
                f"start over: delete the database file and run `flask db upgrade {target}`.",
            )]
        if where.ids:
            return [Advice("Your database has no migrations applied", f"Apply them with `flask db upgrade {target}`.", 1)]
        return []
    if len(local.heads) > 1:
        return [Advice(
            f"Your database is at {len(local.heads)} revisions at once: {', '.join(local.heads)}",
            f"Merge the heads (`flask db merge heads -m \"merge heads\"`), then `flask db upgrade {target}`.",
        )]
    if current is None:
        if local.heads[0] in [f.revision for f in report.history.files]:
            return []  # a file off the lesson's line: the grader's history finding speaks of it
        return [Advice(
            f"Your database is at revision {local.heads[0]}, but no file in migrations/versions/ has that id",
            "This is Alembic's \"Can't locate revision\". Either the file was deleted or renamed, or\n"
            "the database belongs to other migrations. Put the file back if you can; otherwise\n"
            "tell Alembic which revision the tables really match: `flask db stamp <revision>`.",
        )]
    return _lesson_advice(where)


def _lesson_advice(where):
    """Advice for a database on the chain: the shortest way back to the lesson's path."""
    local, lesson = where.local, where.lesson
    advice = []
    lost = where.loss_on_the_way()
    empty = [table for table, count in lesson_rows(local, lesson).items() if count == 0]
    if lost and empty:
        advice.append(_rows_lost_by(where, *lost))
    advice += _path_advice(where, local)
    if empty and not lost:
        steps = sorted({lesson.data_set_in(table).step for table in empty})
        advice.append(Advice(
            f"Step {steps[0]}: {', '.join(f'`{table}`' for table in empty)} "
            f"{'has' if len(empty) == 1 else 'have'} no rows",
            "The lesson adds these rows in `flask shell`, so you can see that later migrations keep them:\n"
            + _rows_to_add(where),
            steps[0],
        ))
    return advice


def _path_advice(where, local):
    """The next move along the chain: finish, apply, or migrate what models.py has."""
    lesson = where.lesson
    pending = where.report.evidence.pending_revisions()
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
            min(len(where.chain) + 1, lesson.count),
        )]
    return []


def _end_advice(where):
    """The lesson's revisions are right: the database goes to the end revision, models.py describes it."""
    lesson, end = where.lesson, where.lesson.end
    target = where.end_revision.revision
    back = f"{lesson.words.model_change}, so it describes revision {end.revision}:" + _end_model(lesson)
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
    if where.failed("models_match"):
        return [_models_back(where)]
    return []


def _waiting(where, pending):
    names = "\n".join(f"{revision.revision}  {revision.rel}" for revision in pending)
    review = _pending_risks(pending, where.local)
    target = where.upgrade_target()
    text = (
        f"Not applied yet:\n{names}\n"
        "Until you upgrade, `flask db migrate` stops with \"Target database is not up to date\".\n"
    )
    if review:
        text += "Warning: " + review + f"\nRun `flask lesson review`, fix the script, then `flask db upgrade {target}`."
    else:
        text += f"Read the script, then apply it with `flask db upgrade {target}`."
    step = where.lesson.step_of(where.ids.index(pending[-1].revision) + 1)
    title = f"{plural(len(pending), 'revision')} waiting to be applied"
    return Advice(f"Step {step}: {title}" if step else title, text, step)


def _pending_risks(pending, local):
    """One line per data-loss risk in the pending revisions, applied in order."""
    from ..engine.pending import record_pending
    from ..isolation.sandbox import Sandbox

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
    """The status of the checkout at `root` (default: this repository), as data.
    `database_url`: the database to look at instead of the one the app uses."""
    layout = Layout.of(root or default_root())
    url = None
    if layout.server.is_dir():
        url = in_instance_folder(database_url, layout.server) if database_url else app_database_url(layout.server)
    report = grade(layout.root, local_url=url)
    where = _Position(report)
    advice = diagnose(report, where)
    marks = step_marks(report, where)
    return Status(
        steps=[StepMark(step, title, marks[step]) for step, title in report.lesson.steps.items()],
        database=_summary(where),
        next=next_action(report, marks, advice),
        also=advice[1:],
        score=report.score,
        max_score=report.max_score,
        lesson=report.lesson.name,
        report=report,
        further=further_line(report) if report.further_started else "",
    )


def _summary(where):
    local = where.local
    if local is None:
        return None
    return DatabaseSummary(local.label, local.exists, list(local.heads), where.position,
                           lesson_rows(local, where.lesson), local.error)


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
        lines.append(f"Your database is not in this copy: {database.label} does not exist here, "
                     "so the ticks come from your files.")
    if status.further:
        lines.append(status.further)
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
