"""Database URLs: the forms providers hand out, DATABASE_URL and server/.env,
and the throw-away databases every other test relies on."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from testing.databases.database import (
    DEFAULT_APP_URL,
    DEFAULT_POSTGRES_SERVER,
    app_database_url,
    backend_of,
    database_url,
    normalize_url,
    postgres_server_url,
    read_only_engine,
    throwaway_database,
)
from testing.maintainers.walkthrough import copy_starter

# Runs inside the app's folder: which database did the app really use?
PROBE = """
from app import app
from models import db
with app.app_context():
    db.create_all()
    print(db.engine.url.get_backend_name(), db.engine.url.database)
"""

only_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.mark.parametrize(
    "given, expected",
    [
        # Heroku-style alias that SQLAlchemy 2 rejects
        ("postgres://kai:s3cret@db.example.com:5432/shop", "postgresql+psycopg://kai:s3cret@db.example.com:5432/shop"),
        # The usual form: without a driver SQLAlchemy would ask for psycopg2
        ("postgresql://kai@localhost/shop", "postgresql+psycopg://kai@localhost/shop"),
        # Hosted servers: the query string (sslmode) is kept
        (
            "postgres://kai:s3cret@ep-1.example.net/shop?sslmode=require",
            "postgresql+psycopg://kai:s3cret@ep-1.example.net/shop?sslmode=require",
        ),
        (
            "postgresql://kai:s3cret@ep-1.example.net/shop?sslmode=require",
            "postgresql+psycopg://kai:s3cret@ep-1.example.net/shop?sslmode=require",
        ),
        # Already explicit: unchanged
        (
            "postgresql+psycopg://kai@db.example.com:6543/shop?sslmode=require",
            "postgresql+psycopg://kai@db.example.com:6543/shop?sslmode=require",
        ),
        # Pasted into .env with stray spaces or a newline
        ("  postgres://kai@localhost/shop\n", "postgresql+psycopg://kai@localhost/shop"),
        ("sqlite:///app.db", "sqlite:///app.db"),
        ("sqlite:////tmp/lesson/app.db", "sqlite:////tmp/lesson/app.db"),
    ],
)
def test_normalize_url_accepts_the_forms_providers_hand_out(given, expected):
    assert normalize_url(given) == expected


def test_normalized_postgres_url_parses_with_psycopg_and_keeps_sslmode():
    url = make_url(normalize_url("postgres://kai:s3cret@ep-1.example.net:5432/shop?sslmode=require"))
    assert (url.get_backend_name(), url.get_driver_name()) == ("postgresql", "psycopg")
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "kai",
        "s3cret",
        "ep-1.example.net",
        5432,
        "shop",
    )
    assert dict(url.query) == {"sslmode": "require"}
    # create_engine loads the installed driver without connecting.
    engine = sa.create_engine(url)
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_bare_postgresql_url_would_need_psycopg2():
    """Why normalize_url exists: only psycopg (3) is installed."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed here, so a bare postgresql:// URL works anyway")
    with pytest.raises(ImportError, match="psycopg2"):
        sa.create_engine("postgresql://kai@localhost/shop")


def test_database_url_defaults_to_sqlite_and_follows_DATABASE_URL():
    assert DEFAULT_APP_URL == "sqlite:///app.db"
    assert database_url({}) == "sqlite:///app.db"
    assert database_url({"DATABASE_URL": ""}) == "sqlite:///app.db"
    assert database_url({"DATABASE_URL": "postgres://kai@localhost/shop"}) == "postgresql+psycopg://kai@localhost/shop"
    assert database_url({"DATABASE_URL": "sqlite:////tmp/x.db"}) == "sqlite:////tmp/x.db"


def test_backend_of_and_postgres_server_url():
    assert backend_of("sqlite:///app.db") == "sqlite"
    assert backend_of("postgres://kai@localhost/shop") == "postgresql"
    assert backend_of("postgresql+psycopg://kai@localhost/shop?sslmode=require") == "postgresql"
    assert postgres_server_url({}) == normalize_url(DEFAULT_POSTGRES_SERVER)
    assert postgres_server_url({"LESSON_POSTGRES_URL": "postgres://ci:pw@db:5432/postgres"}) == (
        "postgresql+psycopg://ci:pw@db:5432/postgres"
    )


def postgres_form(url, **query):
    """The same database as a postgres:// URL, the way a provider shows it."""
    url = make_url(url).set(drivername="postgres")
    if query:
        url = url.update_query_dict(query)
    return url.render_as_string(hide_password=False)


@only_postgresql
def test_sslmode_in_the_url_reaches_the_server(backend):
    with throwaway_database(backend) as url:
        engine = sa.create_engine(normalize_url(postgres_form(url, sslmode="disable")))
        with engine.connect() as connection:
            server_ssl = connection.execute(sa.text("SHOW ssl")).scalar()
            uses_ssl = connection.execute(sa.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar()
        engine.dispose()
        assert uses_ssl is False

        engine = sa.create_engine(normalize_url(postgres_form(url, sslmode="require")))
        try:
            if server_ssl == "on":
                with engine.connect() as connection:
                    sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                    assert connection.execute(sa.text(sql)).scalar() is True
            else:
                # A server without SSL refuses sslmode=require: proof the option was passed on.
                with pytest.raises(sa.exc.OperationalError, match="SSL"):
                    engine.connect()
        finally:
            engine.dispose()


def copy_server(dest):
    """A scratch copy of the starter; returns its server/ folder."""
    return copy_starter(Path(dest) / "checkout") / "server"


def run_probe(server, **env_changes):
    """Import the app in a fresh interpreter, as `flask` would, and report its database."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(env_changes, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=server, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"the app failed to start:\n{result.stdout}\n{result.stderr}"
    return result.stdout.split()


def table_names(url):
    engine = sa.create_engine(normalize_url(url))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_app_defaults_to_sqlite_in_the_instance_folder(tmp_path):
    server = copy_server(tmp_path)
    backend_name, database = run_probe(server)
    app_db = server / "instance" / "app.db"
    assert (backend_name, Path(database)) == ("sqlite", app_db)
    assert table_names(f"sqlite:///{app_db}") == {"employees"}


@only_postgresql
def test_app_connects_through_a_postgres_url_in_DATABASE_URL(backend, tmp_path):
    server = copy_server(tmp_path)
    with throwaway_database(backend) as url:
        backend_name, database = run_probe(server, DATABASE_URL=postgres_form(url))
        assert (backend_name, database) == ("postgresql", make_url(url).database)
        assert table_names(url) == {"employees"}
    assert not (server / "instance").exists()


@only_postgresql
def test_app_reads_DATABASE_URL_from_server_env_and_the_environment_wins(backend, tmp_path):
    server = copy_server(tmp_path)
    example = (server / ".env.example").read_text()
    assert "DATABASE_URL=postgresql://" in example and "sslmode=require" in example
    with throwaway_database(backend) as url:
        # What a student does: copy .env.example to .env and fill in the line.
        (server / ".env").write_text(example + f"\nDATABASE_URL={postgres_form(url)}\n")
        assert run_probe(server) == ["postgresql", make_url(url).database]
        assert table_names(url) == {"employees"}

        other = tmp_path / "other.db"
        assert run_probe(server, DATABASE_URL=f"sqlite:///{other}") == ["sqlite", str(other)]


def test_throwaway_database_rejects_unknown_backends():
    with pytest.raises(ValueError, match="mysql"):
        with throwaway_database("mysql"):
            pass


def postgres_databases():
    engine = sa.create_engine(postgres_server_url())
    try:
        with engine.connect() as connection:
            return set(connection.execute(sa.text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


def test_throwaway_database_is_new_empty_and_removed(backend):
    with throwaway_database(backend) as first, throwaway_database(backend) as second:
        assert first != second
        assert backend_of(first) == backend
        for url in (first, second):
            engine = sa.create_engine(url)
            with engine.begin() as connection:
                assert sa.inspect(connection).get_table_names() == []
                connection.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
            engine.dispose()
        assert table_names(first) == {"probe"}
        if backend == "postgresql":
            assert {make_url(first).database, make_url(second).database} <= postgres_databases()
        else:
            assert Path(make_url(first).database).is_file()
    if backend == "postgresql":
        assert not {make_url(first).database, make_url(second).database} & postgres_databases()
    else:
        for url in (first, second):
            assert not Path(make_url(url).database).exists()
            assert not Path(make_url(url).database).parent.exists()


def test_throwaway_database_is_removed_after_an_error_with_a_connection_open(backend):
    with pytest.raises(RuntimeError, match="test crashed"):
        with throwaway_database(backend) as url:
            engine = sa.create_engine(url)
            connection = engine.connect()
            connection.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
            connection.commit()
            raise RuntimeError("test crashed")
    try:
        if backend == "postgresql":
            assert make_url(url).database not in postgres_databases()
        else:
            assert not Path(make_url(url).database).exists()
    finally:
        connection.close()
        engine.dispose()


def test_tools_find_the_apps_database_without_importing_the_app(tmp_path):
    server = tmp_path / "server"
    server.mkdir()
    assert app_database_url(server, environ={}) == f"sqlite:///{server / 'instance' / 'app.db'}"
    (server / ".env").write_text("DATABASE_URL=postgres://u:p@db.example.com/lesson\n", encoding="utf-8")
    assert app_database_url(server, environ={}) == "postgresql+psycopg://u:p@db.example.com/lesson"
    assert app_database_url(server, environ={"DATABASE_URL": "sqlite:///other.db"}) == \
        f"sqlite:///{server / 'instance' / 'other.db'}"


def test_read_only_engine_neither_writes_nor_creates_a_sqlite_file(tmp_path):
    path = tmp_path / "app.db"
    writable = sa.create_engine(f"sqlite:///{path}")
    with writable.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    writable.dispose()
    engine, found = read_only_engine(f"sqlite:///{path}")
    try:
        assert found == path
        with engine.connect() as connection:
            with pytest.raises(sa.exc.OperationalError, match="readonly"):
                connection.execute(sa.text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()
    missing, _ = read_only_engine(f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(sa.exc.OperationalError):
        missing.connect()
    missing.dispose()
    assert not (tmp_path / "missing.db").exists()
