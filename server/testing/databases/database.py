"""Database URLs for the app, and throw-away databases for replays and tests."""
import contextlib
import ntpath
import os
import posixpath
import sqlite3
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from ..lesson.feedback import error_line

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


def sqlite_url(path):
    """The URL of a SQLite file. A Windows path keeps its drive letter and
    backslashes (sqlite:///C:\\Users\\...), which SQLAlchemy reads back as is."""
    return URL.create("sqlite", database=str(path)).render_as_string()


def in_instance_folder(url, server_dir, paths=os.path):
    """A relative SQLite path made absolute in server/instance/, where
    Flask-SQLAlchemy puts it (with the same os.path rules); any other URL
    unchanged. `paths` is ntpath or posixpath to apply another OS's rules."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not paths.isabs(parsed.database):
        parsed = parsed.set(database=paths.join(str(server_dir), "instance", parsed.database))
    return parsed.render_as_string(hide_password=False)


def app_database_url(server_dir, environ=os.environ):
    """The database the app in server_dir uses, read without importing the app:
    DATABASE_URL from the environment, else from server/.env, else the SQLite
    default, with a relative SQLite path resolved as Flask-SQLAlchemy does."""
    from dotenv import dotenv_values

    url = environ.get("DATABASE_URL") or dotenv_values(Path(server_dir) / ".env").get("DATABASE_URL")
    return in_instance_folder(url or DEFAULT_APP_URL, server_dir)


def env_file_database_url(server_dir, name):
    """DATABASE_URL of the file server/<name> (what `flask --env-file <name>` reads), a
    relative SQLite path resolved as Flask-SQLAlchemy does; None without the file or the line."""
    from dotenv import dotenv_values

    path = Path(server_dir) / name
    url = dotenv_values(path).get("DATABASE_URL") if path.is_file() else None
    return in_instance_folder(url, server_dir) if url else None


def read_only_engine(url):
    """(engine, SQLite path or None) for reading a database without any way to change it.

    SQLite is opened with mode=ro: it refuses every write and never creates a
    missing file (check the path first). PostgreSQL sessions are read-only.
    """
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        uri = read_only_sqlite_uri(str(path.resolve()))
        return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True)), path
    engine = sa.create_engine(
        parsed, connect_args={"connect_timeout": 5}, execution_options={"postgresql_readonly": True},
    )
    return engine, None


def read_only_sqlite_uri(absolute_path, windows=os.name == "nt"):
    """SQLite's file: URI that opens a file read-only (mode=ro).

    Every character that means something in a URI is %-escaped (spaces, ?, #,
    %, letters beyond ASCII as UTF-8). On Windows the backslashes become
    slashes: C:\\Users\\x.db -> file:///C:/Users/x.db, and a network share
    \\\\server\\share\\x.db -> file:////server/share/x.db (SQLite accepts no
    host name in the URI, only an empty one).
    """
    path = ntpath.normpath(absolute_path).replace("\\", "/") if windows else posixpath.normpath(absolute_path)
    if not path.startswith("/"):
        path = "/" + path  # a drive letter: /C:/Users/...
    return f"file://{quote(path, safe='/:')}?mode=ro"


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
        return error_line(error, kind=True)
    finally:
        engine.dispose()


@contextlib.contextmanager
def throwaway_database(backend="sqlite", server_url=None, folder=None, limits=None):
    """Yield the URL of a new, empty database that is deleted afterwards.

    SQLite: a file in a new temporary folder, or in `folder`. PostgreSQL: a
    database created on the server (LESSON_POSTGRES_URL) and dropped at the
    end, named after this process (leftovers.py) so that parallel runs never
    collide and a later run can drop it if this one is killed; that later run
    is any run that makes one, as it first drops the stale ones. With `limits`
    (sandbox.Limits), every session on it has statement_timeout and, where the
    server allows it, temp_file_limit.
    """
    from . import leftovers

    if backend == "sqlite":
        if folder is not None:
            yield sqlite_url(Path(folder) / "scratch.db")
            return
        with leftovers.temporary_folder_removed("scratch") as scratch:
            yield sqlite_url(scratch / "scratch.db")
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}: use 'sqlite' or 'postgresql'")
    server = make_url(server_url or postgres_server_url())
    name = leftovers.database_name()
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        leftovers.sweep_databases(admin)
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            if limits is not None:
                _limit_sessions(admin, name, limits)
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _limit_sessions(admin, name, limits):
    """PostgreSQL's own bounds on every session of a throw-away database: no statement runs
    longer than the time limit, none spills more than the disk limit to temporary files
    (temp_file_limit needs a superuser: elsewhere the grader's size check is the bound)."""
    settings = {"statement_timeout": f"{int(limits.seconds * 1000)}", "temp_file_limit": f"{limits.disk_mb * 1024}"}
    with admin.connect() as connection:
        for setting, value in settings.items():
            try:
                connection.execute(sa.text(f'ALTER DATABASE "{name}" SET {setting} = {value}'))
            except sa.exc.DBAPIError:
                pass  # not allowed for this user: the sandbox's size check and time limit remain


def database_size(connection):
    """Bytes a PostgreSQL database takes on disk (the one `connection` is in)."""
    size = connection.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
    connection.commit()
    return size


def end_other_sessions(connection):
    """End every other session on this PostgreSQL database: a statement of a stopped worker
    would otherwise run on until the server notices its client is gone."""
    connection.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    connection.commit()
