"""Database URLs for the app, and throw-away databases for replays and tests."""
import contextlib
import os
import sqlite3
import tempfile
import uuid
from pathlib import Path
from urllib.request import pathname2url

import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_APP_URL = "sqlite:///app.db"  # Flask-SQLAlchemy puts it in server/instance/
DEFAULT_POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def normalize_url(url):
    """Accept the URL forms hosting providers hand out.

    `postgres://` is an old alias SQLAlchemy no longer accepts, and a bare
    `postgresql://` would ask for psycopg2; the lesson installs psycopg 3.
    """
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def database_url(environ=os.environ):
    """The app's database: DATABASE_URL when it is set, else SQLite."""
    return normalize_url(environ.get("DATABASE_URL") or DEFAULT_APP_URL)


def in_instance_folder(url, server_dir):
    """A relative SQLite path made absolute in server/instance/, where
    Flask-SQLAlchemy puts it; any other URL unchanged."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not Path(parsed.database).is_absolute():
        parsed = parsed.set(database=str(Path(server_dir) / "instance" / parsed.database))
    return parsed.render_as_string(hide_password=False)


def app_database_url(server_dir, environ=os.environ):
    """The database the app in server_dir uses, read without importing the app:
    DATABASE_URL from the environment, else from server/.env, else the SQLite
    default, with a relative SQLite path resolved as Flask-SQLAlchemy does."""
    from dotenv import dotenv_values

    url = environ.get("DATABASE_URL") or dotenv_values(Path(server_dir) / ".env").get("DATABASE_URL")
    return in_instance_folder(url or DEFAULT_APP_URL, server_dir)


def read_only_engine(url):
    """(engine, SQLite path or None) for reading a database without any way to change it.

    SQLite is opened with mode=ro: it refuses every write and never creates a
    missing file (check the path first). PostgreSQL sessions are read-only.
    """
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        uri = f"file:{pathname2url(str(path.resolve()))}?mode=ro"
        return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True)), path
    engine = sa.create_engine(
        parsed, connect_args={"connect_timeout": 5}, execution_options={"postgresql_readonly": True},
    )
    return engine, None


def backend_of(url):
    """'sqlite' or 'postgresql' for a database URL."""
    return make_url(normalize_url(url)).get_backend_name()


def postgres_server_url(environ=os.environ):
    """The PostgreSQL server used for throw-away databases (LESSON_POSTGRES_URL)."""
    return normalize_url(environ.get("LESSON_POSTGRES_URL") or DEFAULT_POSTGRES_SERVER)


def postgres_unreachable_reason(server_url=None):
    """None when the server answers, else a one-line reason."""
    engine = sa.create_engine(server_url or postgres_server_url(), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return None
    except Exception as error:  # any driver error means "not usable"
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
    finally:
        engine.dispose()


@contextlib.contextmanager
def throwaway_database(backend="sqlite", server_url=None):
    """Yield the URL of a new, empty database that is deleted afterwards.

    SQLite: a file in a temporary folder. PostgreSQL: a database with a random
    name created on the server (LESSON_POSTGRES_URL) and dropped at the end,
    so parallel runs never collide or leave databases behind.
    """
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="lesson-") as folder:
            yield f"sqlite:///{Path(folder) / 'scratch.db'}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}: use 'sqlite' or 'postgresql'")
    server = make_url(server_url or postgres_server_url())
    name = f"lesson_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
