"""Catch data loss before it happens.

Two entry points, one analysis (operations.find_risks):

- review_new_migration: the process_revision_directives hook app.py gives
  Flask-Migrate. During `flask db migrate` it checks what autogenerate
  proposes against the rows in the database, prints a framed warning in the
  terminal and puts the same notes, as comments, at the top of upgrade() in
  the generated file.
- run_review: `flask lesson review` / `pipenv run review`. Records what each
  migration not yet applied would do and reports, for the database as it is
  now, the rows it would delete and the upgrades that would fail. Exit code
  1 when data would be lost, 2 when the review could not be done, else 0.
  It only reads: the database is opened read-only and no file is written.
  Each pending revision also gets a "Before production" section
  (production.py): squawk's findings on its PostgreSQL SQL, which never
  change the exit code.
  review_pending does the review and returns it as a PendingReview, printing
  nothing; run_review prints it.
"""
import logging
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Tuple

import click
from alembic.autogenerate import renderers
from alembic.operations import ops
from sqlalchemy.engine import make_url

from ..databases import operations as analysis
from ..databases.alembic_internals import new_revision_path
from ..databases.database import app_database_url, in_instance_folder, normalize_url
from ..databases.reading import DatabaseReading, read_database
from ..engine import production
from ..engine.pending import record_pending
from ..engine.submission import Fork, Layout, load_history, load_models
from ..isolation.sandbox import Sandbox
from ..lesson.checkpoints import LESSON
from .console import tolerate_unencodable_output

logger = logging.getLogger("alembic.env")

SERVER_DIR = Path(__file__).resolve().parents[2]
WIDTH = 76

LABELS = {
    "table_rename": "Table rename written as drop + create",
    "column_rename": "Column rename written as drop + add",
    "drop_with_rows": "Data loss",
    "not_null_no_default": "This upgrade will fail",
}


def risk_lines(risk):
    """One risk as plain text lines: what happens, then the exact fix."""
    lines = textwrap.wrap(risk.message, WIDTH - 8)
    if risk.fix_upgrade:
        lines.append("Fix: replace those commands in upgrade() with")
        lines += ["    " + line for line in risk.fix_upgrade.splitlines()]
    if risk.fix_downgrade:
        lines.append("and the reverse ones in downgrade() with")
        lines += ["    " + line for line in risk.fix_downgrade.splitlines()]
    return lines


def numbered(risks):
    """All risks, numbered, each with its label."""
    lines = []
    for number, risk in enumerate(risks, 1):
        lines.append(f"{number}. {LABELS[risk.kind]}")
        lines += ["   " + line if line else "" for line in risk_lines(risk)]
    return lines


def _headline(risks):
    if any(risk.loses_data for risk in risks):
        return "this migration would DELETE DATA"
    if any(risk.kind == "not_null_no_default" for risk in risks):
        return "this migration would FAIL"
    return "this migration does not do what you meant"


# --------------------------------------------------- during `flask db migrate`


class ReviewNotesOp(ops.MigrateOperation):
    """Comment lines placed among the generated commands."""

    def __init__(self, lines):
        self.lines = lines


@renderers.dispatch_for(ReviewNotesOp)
def _render_notes(autogen_context, operation):
    return [("# " + line).rstrip() for line in operation.lines]


def review_new_migration(context, revision, directives):
    """Alembic's process_revision_directives hook for `flask db migrate`."""
    # Keep Flask-Migrate's behaviour: no file when autogenerate finds nothing.
    if getattr(getattr(context.config, "cmd_opts", None), "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")
            return
    for script in directives:
        try:
            risks = _risks_of_new_script(context, script)
        except Exception as error:  # a review problem must never stop `flask db migrate`
            click.echo(f"(The data-loss review was skipped: {type(error).__name__}: {error})", err=True)
            continue
        if risks:
            _warn_in_terminal(_new_file_name(context, script), risks)
            script.upgrade_ops.ops.insert(0, ReviewNotesOp(_file_notes(risks)))


def _risks_of_new_script(context, script):
    upgrade_ops = script.upgrade_ops
    row_counts = columns = None
    if context.bind is not None:  # offline (--sql) runs have no database to count
        row_counts, columns = analysis.database_facts(context.bind, analysis.tables_touched(upgrade_ops))
    return analysis.find_risks(upgrade_ops, row_counts, columns, batch=bool(context.opts.get("render_as_batch")))


def _new_file_name(context, script):
    """The path Alembic is about to write, relative to the current folder."""
    try:
        # Alembic's own naming rule; its result is printed right after this as "Generating <path>".
        return os.path.relpath(new_revision_path(context.script, script))
    except Exception:
        return f"migrations/versions/{script.rev_id}_*.py"


def _warn_in_terminal(file_name, risks):
    rule, heavy = "-" * WIDTH, "=" * WIDTH
    tolerate_unencodable_output()
    click.echo("", err=True)
    click.secho(heavy, err=True, fg="red", bold=True)
    click.secho(f" STOP: {_headline(risks)}. Do not run `flask db upgrade` yet.", err=True, fg="red", bold=True)
    click.echo(f" File: {file_name}", err=True)
    click.echo(rule, err=True)
    for line in numbered(risks):
        click.echo(" " + line, err=True)
    click.echo(rule, err=True)
    click.echo(" These notes are also at the top of upgrade() in the file. Edit the file,", err=True)
    click.echo(" then run `flask lesson review` to check it before `flask db upgrade`.", err=True)
    click.secho(heavy, err=True, fg="red", bold=True)
    click.echo("", err=True)


def _file_notes(risks):
    rule = "-" * (WIDTH - 6)
    return (
        [rule, f"REVIEW: {_headline(risks)}.", ""]
        + numbered(risks)
        + ["", "Fix the commands below, delete this note, then run `flask lesson review`.", rule]
    )


# ------------------------------------------------------ `flask lesson review`


class _CannotReview(Exception):
    pass


def run_review(server_dir=None, url=None):
    """Review the migrations not yet applied to the app's database."""
    server_dir = Path(server_dir or SERVER_DIR)
    tolerate_unencodable_output()
    try:
        return _render(review_pending(server_dir, url))
    except _CannotReview as problem:
        click.secho(f"Cannot review: {problem}", err=True, fg="red")
        return 2


@dataclass
class PendingReview:
    """What the review found, before any of it is printed."""

    where: Optional[str] = None  # the database, as the student reads it; None when it was not looked at
    current: Tuple[str, ...] = ()  # the revisions the database is at
    pending: List[Any] = field(default_factory=list)  # RevisionFile, oldest first
    recordings: List[Any] = field(default_factory=list)  # pending.Recording, one per pending revision
    extra: List[Any] = field(default_factory=list)  # pending revisions beyond the lesson's fourth
    models_describe_database: bool = False  # only looked at when nothing else needs fixing
    production: List[Any] = field(default_factory=list)  # production.RevisionReview, one per pending revision
    nothing_to_review: Optional[str] = None  # why, when there is nothing to review

    @property
    def loses_data(self):
        return any(recording.loses_data for recording in self.recordings)

    @property
    def needs_fixing(self):
        return any(recording.risks or recording.problem for recording in self.recordings)

    @property
    def exit_code(self):
        return 1 if self.loses_data else 0


def review_pending(server_dir, url):
    """Review the migrations not yet applied, printing nothing; _CannotReview when it cannot be done."""
    versions = server_dir / "migrations" / "versions"
    if not versions.is_dir():
        return PendingReview(nothing_to_review=(
            f"there is no {versions.relative_to(server_dir.parent)} folder yet.\n"
            "Run `flask db init` in server/ to start the lesson."
        ))
    url = normalize_url(url) if url else app_database_url(server_dir)
    found = PendingReview()
    layout = Layout.of(server_dir.parent, server=server_dir)
    with Sandbox(layout) as sandbox:
        history = load_history(layout, sandbox, Fork.declared_by(LESSON))
        models = load_models(layout, sandbox)
        found.where, database = _read_database(url, server_dir, models.metadata)
        found.current = database.heads
        found.pending = _pending(history, found.current, found.where)
        found.recordings = record_pending(
            sandbox, found.pending, database.counts, database.columns, make_url(url).get_backend_name())
        found.production = production.review_revisions(
            sandbox, layout, found.pending, LESSON, history.position_of)
    if not found.pending:
        found.nothing_to_review = "every migration is already applied."
        return found
    found.extra = _beyond_the_lesson(history.chain if history.sound else [], found.pending)
    found.models_describe_database = (
        database.exists and database.model_differences == [] and not database.model_error)
    return found


def _read_database(url, server_dir, metadata):
    """(where, reading.DatabaseReading) of the app's database, opened read-only;
    an empty reading where there is no database to open yet."""
    url = in_instance_folder(url, server_dir)
    where, stored = _where(url)
    if not stored:
        return where, DatabaseReading(where)
    database = read_database(url, LESSON, metadata, root=server_dir.parent)
    if database.error_kind:  # unreachable server, missing driver, not a database, ...
        raise _CannotReview(f"the database {where} cannot be read: {database.error_first_line}")
    return where, database


def _render(found):
    """Print the review as the student reads it; the exit code."""
    if found.where is not None:
        at = f"at revision {', '.join(found.current)}" if found.current else "no revision applied yet"
        click.echo(f"Database: {found.where}, {at}")
    if found.nothing_to_review:
        click.echo(f"Nothing to review: {found.nothing_to_review}")
        return found.exit_code
    if len(found.pending) == 1:
        click.echo("1 migration not applied yet:")
    else:
        click.echo(f"{len(found.pending)} migrations not applied yet, in the order `flask db upgrade` runs them:")
    before_production = {review.revision.revision: review for review in found.production}
    for recording in found.recordings:
        _report_script(recording, before_production.get(recording.revision.revision))
    click.echo("")
    if found.extra:
        names = "\n".join("    " + os.path.relpath(revision.path) for revision in found.extra)
        note = (f"The lesson has exactly {LESSON.count_word} revisions ({LESSON.words.extra_revision_note}).\n"
                f"For the lesson, do not fix or apply these; delete them:\n{names}")
        if found.loses_data:
            click.secho(note, fg="red", bold=True)
            return found.exit_code
        click.echo(note + "\n")
    text, style = _conclusion(found)
    click.secho(text, **style)
    return found.exit_code


def _conclusion(found):
    """The review's last words and their colour."""
    if found.loses_data:
        return "Data would be lost: fix what is marked !! before `flask db upgrade`.", {"fg": "red", "bold": True}
    if found.needs_fixing:
        return "Nothing here deletes data, but fix what is marked !! before `flask db upgrade`.", {"fg": "yellow"}
    if found.models_describe_database:
        return (
            "Nothing here deletes data, but models.py already matches your database as it is, so your models\n"
            f"do not need these revisions. At the end of the lesson (step {LESSON.end.step}) revision {LESSON.count} "
            "stays unapplied:\ndo not run `flask db upgrade`."), {"fg": "yellow"}
    return "Nothing here deletes data: `flask db upgrade` is safe to run.", {"fg": "green"}


def _beyond_the_lesson(chain, pending):
    """The pending revisions after the lesson's fourth, but for its optional steps' (Going further)."""
    from ..engine.going_further import optional_files

    optional = {revision.revision for revision in optional_files(LESSON, chain)}
    extra = {revision.revision for revision in chain[LESSON.count:]} - optional
    return [revision for revision in pending if revision.revision in extra]


def _report_script(recording, before_production=None):
    revision = recording.revision
    click.echo("")
    name = os.path.relpath(revision.path)  # as the terminal's folder sees it
    click.secho(f"{name}  (revision {revision.revision}: {revision.doc})", bold=True)
    click.echo("  upgrade():")
    for line in recording.does or ["does nothing"]:
        click.echo(f"    {line}")
    if recording.problem:
        click.secho("  !! " + recording.problem, fg="red")
    for number, risk in enumerate(recording.risks, 1):
        click.secho(f"  !! {number}. {LABELS[risk.kind]}", fg="red", bold=True)
        for line in risk_lines(risk):
            click.echo(f"     {line}")
    if not recording.risks and not recording.problem:
        click.echo("  ok: keeps every row")
    if before_production is not None:
        click.echo("  " + production.heading(before_production))
        for line in production.text_lines(before_production, WIDTH - 4):
            click.echo(f"    {line}")


def _pending(history, current, where):
    """The revision files an upgrade to head would run, oldest first."""
    broken = [f.load_error for f in history.files if f.load_error]
    if broken:
        raise _CannotReview(f"the migrations cannot be loaded: {broken[0]}")
    by_id = history.files_by_id()
    try:
        newest_first = list(history.revision_map().iterate_revisions("heads", current or "base"))
    except Exception as error:
        raise _CannotReview(
            f"the database {where} is at revision {', '.join(current)}, which the files in "
            f"migrations/versions/ do not lead to ({type(error).__name__}: {error})"
        )
    return [by_id[r.revision] for r in reversed(newest_first) if r.revision not in current]


def _where(url):
    """(the database as the student reads it, whether there is a stored database to open)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return parsed.render_as_string(hide_password=True), True
    if not parsed.database or parsed.database == ":memory:":
        return "an in-memory SQLite database (nothing stored)", False
    path = Path(parsed.database)
    where = f"SQLite file {os.path.relpath(path)}"
    if not path.exists():
        return where + " (not created yet)", False
    return where, True
