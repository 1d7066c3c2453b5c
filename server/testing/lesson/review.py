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
"""
import datetime
import logging
import os
import textwrap
from pathlib import Path

import click
from alembic.autogenerate import renderers
from alembic.config import Config
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from . import operations as analysis
from .database import app_database_url, in_instance_folder, normalize_url, read_only_engine

logger = logging.getLogger("alembic.env")

SERVER_DIR = Path(__file__).resolve().parents[2]
WIDTH = 76
LESSON_REVISIONS = 4

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
        directory = context.script
        # Alembic's own naming rule (file_template); its result is printed
        # right after this as "Generating <path>".
        path = directory._rev_path(
            script.version_path or directory.versions, script.rev_id, script.message, datetime.datetime.now()
        )
        return os.path.relpath(path)
    except Exception:
        return f"migrations/versions/{script.rev_id}_*.py"


def _warn_in_terminal(file_name, risks):
    rule, heavy = "-" * WIDTH, "=" * WIDTH
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
    try:
        return _review(server_dir, url)
    except _CannotReview as problem:
        click.secho(f"Cannot review: {problem}", err=True, fg="red")
        return 2


def _review(server_dir, url):
    versions = server_dir / "migrations" / "versions"
    if not versions.is_dir():
        click.echo(
            f"Nothing to review: there is no {versions.relative_to(server_dir.parent)} folder yet.\n"
            "Run `flask db init` in server/ to start the lesson."
        )
        return 0
    url = normalize_url(url) if url else app_database_url(server_dir)
    scripts = _script_directory(server_dir / "migrations")
    row_counts, columns, current = {}, {}, ()
    engine, where = _read_only_engine(url, server_dir)
    if engine is not None:
        try:
            with engine.connect() as connection:
                current = MigrationContext.configure(connection).get_current_heads()
                row_counts, columns = analysis.database_facts(connection)
        except Exception as error:  # unreachable server, missing driver, not a database, ...
            raise _CannotReview(f"the database {where} cannot be read: {_first_line(error)}")
        finally:
            engine.dispose()
    pending = _pending(scripts, current, where)
    at = f"at revision {', '.join(current)}" if current else "no revision applied yet"
    click.echo(f"Database: {where}, {at}")
    if not pending:
        click.echo("Nothing to review: every migration is already applied.")
        return 0
    if len(pending) == 1:
        click.echo("1 migration not applied yet:")
    else:
        click.echo(f"{len(pending)} migrations not applied yet, in the order `flask db upgrade` runs them:")

    losing = flagged = False
    for script in pending:
        recorded = analysis.record_script_operations(script.path, "upgrade", dialect=make_url(url).get_backend_name())
        risks = analysis.find_risks(recorded.operations, row_counts, columns)
        row_counts, columns = analysis.state_after(recorded.operations, row_counts, columns)
        losing = losing or any(risk.loses_data for risk in risks)
        flagged = flagged or bool(risks) or recorded.error is not None
        _report_script(script, recorded, risks)

    click.echo("")
    extra = _beyond_the_lesson(_chain(server_dir), pending)
    if extra:
        names = "\n".join("    " + os.path.relpath(script.path) for script in extra)
        note = ("The lesson has exactly four revisions (step 5 goes back with a downgrade instead of adding one).\n"
                f"For the lesson, do not fix or apply these; delete them:\n{names}")
        if losing:
            click.secho(note, fg="red", bold=True)
            return 1
        click.echo(note + "\n")
    if losing:
        click.secho("Data would be lost: fix what is marked !! before `flask db upgrade`.", fg="red", bold=True)
        return 1
    if flagged:
        click.secho("Nothing here deletes data, but fix what is marked !! before `flask db upgrade`.", fg="yellow")
        return 0
    if _models_describe_database(server_dir, url):
        click.secho(
            "Nothing here deletes data, but models.py already matches your database as it is, so your models\n"
            "do not need these revisions. At the end of the lesson (step 5) revision 4 stays unapplied:\n"
            "do not run `flask db upgrade`.", fg="yellow")
        return 0
    click.secho("Nothing here deletes data: `flask db upgrade` is safe to run.", fg="green")
    return 0


def _chain(server_dir):
    """The revision files in order, from the first (empty when they do not form one line)."""
    from .submission import Layout, load_history

    history = load_history(Layout.of(server_dir.parent))
    return history.chain if history.sound else []


def _beyond_the_lesson(chain, pending):
    """The pending scripts after the lesson's fourth revision."""
    extra = {revision.revision for revision in chain[LESSON_REVISIONS:]}
    return [script for script in pending if script.revision in extra]


def _models_describe_database(server_dir, url):
    """True when models.py matches the database as it is now (autogenerate finds nothing)."""
    from .status import inspect_local_database
    from .submission import Layout, load_models

    layout = Layout.of(server_dir.parent)
    metadata = getattr(load_models(layout), "metadata", None)
    if metadata is None:
        return False
    local = inspect_local_database(layout, in_instance_folder(url, server_dir), metadata)
    return local.exists and local.model_differences == [] and not local.model_error


def _report_script(script, recorded, risks):
    click.echo("")
    name = os.path.relpath(script.path)  # as the terminal's folder sees it
    click.secho(f"{name}  (revision {script.revision}: {script.doc})", bold=True)
    click.echo("  upgrade():")
    for line in analysis.describe(recorded.operations) or ["does nothing"]:
        click.echo(f"    {line}")
    if recorded.error is not None:
        click.secho("  !! " + recorded.problem, fg="red")
    for number, risk in enumerate(risks, 1):
        click.secho(f"  !! {number}. {LABELS[risk.kind]}", fg="red", bold=True)
        for line in risk_lines(risk):
            click.echo(f"     {line}")
    if not risks and recorded.error is None:
        click.echo("  ok: keeps every row")


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _script_directory(migrations):
    config = Config()
    config.set_main_option("script_location", str(migrations))
    try:
        with analysis.no_bytecode():
            scripts = ScriptDirectory.from_config(config)
            scripts.get_heads()  # loads every file now, inside no_bytecode
        return scripts
    except Exception as error:  # a broken file in versions/, a bad down_revision, ...
        raise _CannotReview(f"the migrations in {migrations} cannot be loaded: {type(error).__name__}: {error}")


def _pending(scripts, current, where):
    """The scripts an upgrade to head would run, oldest first."""
    try:
        with analysis.no_bytecode():
            newest_first = list(scripts.iterate_revisions("heads", current or "base"))
    except Exception as error:
        raise _CannotReview(
            f"the database {where} is at revision {', '.join(current)}, which the files in "
            f"migrations/versions/ do not lead to ({type(error).__name__}: {error})"
        )
    return [script for script in reversed(newest_first) if script.revision not in current]


def _read_only_engine(url, server_dir):
    """(engine or None, a description) for reading the app's database safely."""
    url = in_instance_folder(url, server_dir)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return None, "an in-memory SQLite database (nothing stored)"
        path = Path(parsed.database)
        where = f"SQLite file {os.path.relpath(path)}"
        if not path.exists():
            return None, where + " (not created yet)"
    else:
        where = parsed.render_as_string(hide_password=True)
    return read_only_engine(url)[0], where
