"""`flask lesson reset STEP`: the lesson put back to the start of a step.

For a lesson that cannot be mended by an edit (revisions regenerated as one,
a deleted migrations folder, a tangled chain), it writes what the lesson has
when STEP begins:
- models.py as the README leaves it after the earlier steps;
- server/migrations/ as `flask db init` makes it, with the lesson's own
  revisions of the earlier steps (their code from the lesson's declaration,
  checkpoints.py; their messages from the README);
- the app's database (SQLite or DATABASE_URL) at the last of those revisions,
  built with `flask db upgrade`, with the rows the earlier steps add.

It first says what it will replace and asks; everything it replaces is moved
into a dated folder, lesson-backups/<date>_<time>/, which it names. It is the
only lesson tool that writes to the student's files, and only when asked.
"""
import contextlib
import csv
import io
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import List, Optional

import sqlalchemy as sa

from ..databases.database import app_database_url
from ..databases.reading import inspect_schema, read_database
from ..engine.submission import Layout
from ..isolation import processes
from ..lesson.checkpoints import LESSON
from ..lesson.feedback import plural, relative
from ..lesson.reference import REPO_ROOT, reference_at_start

BACKUPS = "lesson-backups"
UPGRADE_TIMEOUT = 180  # seconds for one `flask db upgrade`


class ResetError(Exception):
    """The reset could not be done; the message says what to do."""


@dataclass
class Plan:
    """What a reset to the start of `step` writes, and what it replaces."""

    layout: Layout
    step: int
    models: str  # models.py as the step begins
    messages: List[str]  # the messages of the revisions the earlier steps make
    database_url: str
    database_label: str = ""  # server/instance/app.db, or the URL without its password
    replaced: List[str] = field(default_factory=list)  # one line per thing replaced, for the student
    backup: Optional[Path] = None  # where the replaced things went, once moved

    @property
    def revisions(self):
        """The lesson's revisions made before the step begins."""
        return LESSON.revisions[:len(self.messages)]

    def text(self):
        lesson, layout, database = LESSON, self.layout, self.database_label
        lines = [f"This puts the lesson back to the start of step {self.step} ({lesson.steps[self.step]}):",
                 f"- {layout.rel(layout.models_py)} as step {self.step} begins"]
        if self.revisions:
            lines.append(f"- {layout.rel(layout.migrations)}/ as `flask db init` makes it, with the lesson's "
                         f"revisions 1-{len(self.revisions)}")
            rows = ", ".join(data_set.name for data_set in self.data_sets) or "no rows"
            lines.append(f"- your database {database} at revision {len(self.revisions)}, with the lesson's rows "
                         f"({rows})")
        else:
            lines.append(f"- no {layout.rel(layout.migrations)}/ and no tables in your database {database}, "
                         "as in the starter")
        lines.append("It replaces:" if self.replaced else "There is nothing to replace.")
        lines += [f"- {item}" for item in self.replaced]
        return "\n".join(lines)

    @property
    def data_sets(self):
        return [data_set for data_set in LESSON.data_sets
                if data_set.step < self.step and LESSON.made_by(data_set) <= len(self.revisions)]


def plan_reset(root, step, readme_text=None):
    layout = Layout.of(root)
    if not layout.server.is_dir():
        raise ResetError(f"There is no server/ folder in {layout.root}: run this in a copy of the lesson.")
    if step not in LESSON.steps:
        raise ResetError(f"There is no step {step}; the steps are {', '.join(map(str, LESSON.steps))}.")
    readme_path = layout.root / "README.md"
    if readme_text is None:
        readme_path = readme_path if readme_path.is_file() else REPO_ROOT / "README.md"
        readme_text = readme_path.read_text(encoding="utf-8")
    models, messages = reference_at_start(step, readme_text)
    plan = Plan(layout, step, models, messages[:LESSON.count], app_database_url(layout.server))
    plan.replaced = _replaced(plan)
    return plan


def _replaced(plan):
    layout, items = plan.layout, []
    models = layout.models_py
    if models.is_file() and models.read_text(encoding="utf-8") != plan.models:
        items.append(f"{layout.rel(models)} (your version differs)")
    if layout.migrations.exists():
        count = len(list(layout.versions.glob("*.py"))) if layout.versions.is_dir() else 0
        items.append(f"{layout.rel(layout.migrations)}/ ({plural(count, 'revision file')})")
    reading = read_database(plan.database_url, LESSON, root=layout.root)
    plan.database_label = reading.label
    if reading.exists and (reading.tables or reading.error_kind):
        where = ", ".join(reading.versions or []) or "no revision"
        rows = ", ".join(f"{table}: {plural(count, 'row')}" for table, count in reading.counts.items()
                         if table != "alembic_version")
        items.append(f"your database {reading.label} (at {where}" + (f"; {rows})" if rows else ")"))
    elif reading.exists:
        items.append(f"your database {reading.label} (empty)")
    return items


def carry_out(plan, environ=None):
    """Back up what the plan replaces, write the step's files and build its database.
    Returns the backup folder (None when nothing was replaced)."""
    layout = plan.layout
    plan.backup = _backup_folder(layout.root) if plan.replaced else None
    _clear_database(plan, plan.backup)  # first: a database that cannot be reached stops it before any file moves
    if plan.backup is not None:
        _move_files(plan, plan.backup)
    layout.models_py.write_text(plan.models, encoding="utf-8", newline="\n")
    if plan.revisions:
        ids = write_migrations(layout.migrations, plan.revisions, plan.messages)
        _build_database(plan, ids, environ)
    return plan.backup


def _backup_folder(root):
    base = Path(root) / BACKUPS / datetime.now().strftime("%Y-%m-%d_%H%M%S")
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    folder.mkdir(parents=True)
    return folder


def _move_files(plan, backup):
    layout = plan.layout
    if layout.models_py.is_file():
        (backup / "server").mkdir(parents=True, exist_ok=True)
        shutil.copy2(layout.models_py, backup / "server" / "models.py")
    if layout.migrations.exists():
        shutil.move(str(layout.migrations), str(backup / "server" / "migrations"))


def _sqlite_path(url):
    parsed = sa.engine.make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def _clear_database(plan, backup):
    """Leave the app's database empty: a SQLite file moves into the backup; on
    PostgreSQL every table is written to the backup as CSV, then dropped."""
    path = _sqlite_path(plan.database_url)
    if path is not None:
        if path.is_file():
            inside = relative(path, plan.layout.root)
            target = backup / (path.name if Path(inside).is_absolute() else inside)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
        return
    engine = sa.create_engine(plan.database_url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        if metadata.tables and backup is not None:
            folder = backup / "database"
            folder.mkdir()
            with engine.connect() as connection:
                for table in metadata.sorted_tables:
                    _write_csv(connection, table, folder / f"{table.name}.csv")
        metadata.drop_all(engine)
    finally:
        engine.dispose()


def _write_csv(connection, table, path):
    result = connection.execute(sa.select(table))
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(result.keys())
        writer.writerows(result)


def write_migrations(migrations, revisions, messages):
    """A migrations folder as `flask db init` makes it (Flask-Migrate's template,
    through Alembic's own commands) holding the lesson's revisions, each with
    the declared upgrade() and downgrade(); returns their ids in order."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import rev_id
    from flask_migrate import Config

    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.config_file_name = str(migrations / "alembic.ini")
    ids, parent = [], None
    with contextlib.redirect_stdout(io.StringIO()):  # Alembic's "Generating ..." lines are not the student's
        command.init(config, str(migrations), template="flask")
        scripts = ScriptDirectory.from_config(config)
        for revision, message in zip(revisions, messages):
            ids.append(rev_id())
            scripts.generate_revision(
                ids[-1], message, head=parent or "base",
                upgrades="\n    ".join(revision.upgrade), downgrades="\n    ".join(revision.downgrade),
            )
            parent = ids[-1]
    return ids


def _build_database(plan, ids, environ):
    """One `flask db upgrade` to the step's revision, then the earlier steps' rows
    where its tables keep them. The lesson's revisions keep every row, so the rows
    are those a revision-by-revision build would carry, without a `flask` start
    (about a second) for each revision that creates a table."""
    _flask_upgrade(plan.layout, ids[-1], environ)
    if plan.data_sets:
        add_rows(plan.database_url, plan.data_sets)


def _flask_upgrade(layout, revision, environ):
    finished = processes.run([sys.executable, "-m", "flask", "db", "upgrade", revision], UPGRADE_TIMEOUT,
                             cwd=layout.server, env=dict(os.environ if environ is None else environ))
    if finished.timed_out:
        raise ResetError(f"`flask db upgrade {revision}` did not finish in {UPGRADE_TIMEOUT} s.")
    if finished.code != 0:
        raise ResetError(f"`flask db upgrade {revision}` failed in server/:\n{finished.stdout}{finished.stderr}")


def add_rows(url, data_sets):
    """Insert the data sets' rows wherever the database keeps them now."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            schema = inspect_schema(connection)
            for data_set in data_sets:
                table, value_column = data_set.locate(schema)
                target = sa.table(table, sa.column("id"), sa.column("name"), sa.column(value_column))
                connection.execute(target.insert(), [
                    {"id": i, "name": name, value_column: value} for i, name, value in data_set.rows])
                if connection.dialect.name == "postgresql":
                    # Rows inserted with their ids leave the id sequence at 1: move it past them,
                    # or the student's next row without an id collides with the first.
                    quoted = connection.dialect.identifier_preparer.quote(table)
                    connection.execute(sa.text(
                        f"SELECT setval(pg_get_serial_sequence(:table, 'id'), (SELECT max(id) FROM {quoted}))"),
                        {"table": quoted})
    finally:
        engine.dispose()


def run_reset(root, step, yes=False, echo=print, confirm=None):
    """The command: show the plan, ask (unless `yes`), reset, name the backup. Exit code."""
    plan = None
    try:
        plan = plan_reset(root, step)
        echo(plan.text())
        if not yes and plan.replaced and not (confirm and confirm("Go on?")):
            echo("Nothing changed.")
            return 1
        backup = carry_out(plan)
    except (ResetError, sa.exc.SQLAlchemyError, OSError) as error:
        echo(f"Reset stopped: {str(error).strip()}")
        if plan is not None and plan.backup is not None:
            echo(f"What it replaced so far is kept in {relative(plan.backup, plan.layout.root)}/.")
        return 1
    if backup is not None:
        echo(f"What it replaced is kept in {relative(backup, plan.layout.root)}/.")
    echo(f"Done: the lesson is at the start of step {step}. Follow the README from step {step}.")
    return 0
