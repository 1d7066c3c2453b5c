"""Collecting the evidence a grade is judged on: the only step that runs the
student's code, once, in two sandboxes at once (models.py in one, the
revisions in the other), and reads the student's own database.

`collect(layout, lesson, backend, server_url, limits, ...) -> Evidence`. Evidence
is plain data: what the files say (the folders `flask db init` makes, static
findings of app.py and env.py, the revision files and their history), what
the replay recorded on throw-away databases (replay.Replay), what models.py
defines, and what the local SQLite database holds. judge.py decides every verdict from it alone.
When asked, it also holds the "Before production" review of the chain's
revisions (production.py), written in the same sandbox; no verdict reads it.
"""
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from ..databases.reading import DatabaseReading, read_database
from ..isolation.database_gate import DatabaseGate
from ..isolation.sandbox import Sandbox
from .facts import Finding
from .production import RevisionReview, review_revisions
from .replay import Replay, replay
from .submission import (
    REQUIRED_MIGRATION_FILES, Fork, History, Layout, check_app_py, check_env_py, load_history, load_models,
)


@dataclass
class Folders:
    """Which of the folders and files `flask db init` makes are there."""

    server: bool = False
    migrations: bool = False
    versions: bool = False
    migrations_at_root: bool = False  # `flask db init` ran in the repository root instead
    missing: List[str] = field(default_factory=list)  # what server/migrations/ lacks ("versions/" last)

    @classmethod
    def of(cls, layout):
        folders = cls(layout.server.is_dir(), layout.migrations.is_dir(), layout.versions.is_dir(),
                      (layout.root / "migrations").is_dir())
        if folders.migrations:
            folders.missing = [name for name in REQUIRED_MIGRATION_FILES if not (layout.migrations / name).is_file()]
            folders.missing += [] if folders.versions else ["versions/"]
        return folders


@dataclass
class Evidence:
    layout: Layout
    backend: str
    folders: Folders = field(default_factory=Folders)
    findings: List[Finding] = field(default_factory=list)  # problems of app.py and env.py
    history: History = field(default_factory=History)
    replay: Replay = field(default_factory=Replay)
    models: object = None  # submission.Models
    local: Optional[DatabaseReading] = None  # the local SQLite file, when the app uses it and it exists
    legacy: Optional[DatabaseReading] = None  # the optional steps' database made without migrations, when it exists
    other_database: Optional[str] = None  # the database DATABASE_URL names instead (no password)
    production: List[RevisionReview] = field(default_factory=list)  # "Before production", when asked
    local_label: str = "server/instance/app.db"  # how the local database is named to the student
    local_counted: bool = True  # False when grading for an instructor: the student's own file is theirs
    confinement: str = ""  # one line: how confined the student's code was (confinement.summary)

    @property
    def chain(self):
        return self.history.chain

    @property
    def migrations_usable(self):
        return self.folders.versions

    def local_position(self):
        """Where the local database is in the chain, when it can be read (else None)."""
        local = self.local
        if local is None or not local.usable or local.versions is None or len(local.versions) != 1:
            return None
        return self.history.position_of(local.versions[0])

    def pending_revisions(self):
        """The chain's revisions `flask db upgrade` has yet to run on the local database: all of
        them when it has none applied or does not exist yet, none when its place is unknown."""
        if self.history is None or (self.local is not None and self.local.error):
            return []
        if self.local is None or not self.local.versions:
            return list(self.chain)
        position = self.local_position()
        return list(self.chain[position:]) if position else []


def collect(layout, lesson, backend="sqlite", server_url=None, limits=None, before_production=False, local_url=None,
            local_database=True):
    """`local_url`: the database the student's app uses, read as the local one
    (with models.py compared to it); the status and the page pass it. Without
    it, the local database is server/instance/app.db when the app uses it.
    local_database=False (an instructor's grade) reads no local database."""
    evidence = Evidence(layout, backend, Folders.of(layout), local_counted=local_database)
    gate = DatabaseGate.open(server_url) if backend == "postgresql" else contextlib.nullcontext()
    # The sandboxes close first, however the block ends (a SIGTERM too): their workers are
    # stopped before the pool waits for the thread that loads models.py.
    with ThreadPoolExecutor(max_workers=1) as pool, gate as gate, Sandbox(layout, limits, "models") as models_box, \
            Sandbox(layout, limits, database_gate=gate) as revisions_box:
        if evidence.folders.server:
            models_box.start()  # both boot while the static checks run
            revisions_box.start()
            evidence.findings += check_app_py(layout)
        if evidence.folders.migrations:
            evidence.findings += check_env_py(layout)
        models = pool.submit(load_models, layout, models_box)
        if evidence.migrations_usable:
            evidence.history = load_history(layout, revisions_box, Fork.declared_by(lesson))
        if evidence.history.chain:  # models.py is needed only at the end revision: it loads meanwhile
            evidence.replay = replay(
                evidence.history, revisions_box, lesson, _Later(models),
                backend=backend, server_url=server_url,
            )
        evidence.models = models.result()
        if before_production:
            evidence.production = review_revisions(
                revisions_box, layout, evidence.history.chain, lesson, evidence.history.position_of)
        evidence.confinement = confinement_of(models_box, revisions_box)
    if local_database:
        evidence.legacy = legacy_database(layout, lesson)
    if local_url is not None:
        reading = read_database(local_url, lesson, evidence.models.metadata if evidence.models else None, layout.root)
        evidence.local_label = reading.label
        evidence.local = reading if reading.exists else None
        return evidence
    evidence.other_database = configured_database(layout)
    if local_database and evidence.other_database is None and layout.local_database.is_file():
        evidence.local = read_database(f"sqlite:///{layout.local_database.resolve()}", lesson, root=layout.root)
    return evidence


class _Later:
    """models.py's MetaData, loading in another thread: the replay asks for it when it
    needs it, and may first ask whether it is there yet."""

    def __init__(self, future):
        self.future = future

    def ready(self):
        return self.future.done()

    def __call__(self):
        return self.future.result().metadata


def legacy_database(layout, lesson):
    """The optional steps' database made without migrations, read when it exists on this
    machine: its env file names it, and the SQLite file is there or the server answers
    (a committed env file naming a server elsewhere, as on a push, reads as none)."""
    from ..databases.database import env_file_database_url

    from sqlalchemy.exc import ArgumentError

    legacy = lesson.further.legacy if lesson.further else None
    url = env_file_database_url(layout.server, legacy.env_file) if legacy else None
    if url is None:
        return None
    try:
        reading = read_database(url, lesson, root=layout.root)
    except ArgumentError:  # not a URL: no database this names exists (flask itself says why)
        return None
    return reading if reading.exists else None


def confinement_of(*sandboxes):
    """What held in every worker that ran; what this system offers when none ran."""
    from ..isolation.confinement import available, summary

    ran = [set(box.confined) for box in sandboxes if box.confined is not None]
    return summary(set.intersection(*ran) if ran else available())


def configured_database(layout):
    """The database DATABASE_URL names (environment, then server/.env), when it
    is not the default server/instance/app.db; None otherwise. Never shows a password."""
    from sqlalchemy.engine import make_url

    from ..databases.database import app_database_url

    try:
        parsed = make_url(app_database_url(layout.server))
        if parsed.get_backend_name() == "sqlite" and parsed.database and \
                Path(parsed.database).resolve() == layout.local_database.resolve():
            return None
        return parsed.render_as_string(hide_password=True)
    except Exception:
        return "(a URL that cannot be read)"
