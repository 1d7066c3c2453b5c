"""The replay's database as the worker sees it: its own login role, behind a gate.

    with DatabaseGate.open(server_url) as gate:                    # before the worker starts
        with replay_database("postgresql", server_url, folder, gate) as (grader_url, worker_url):
            ...

PostgreSQL: each replay gets a throw-away database (database.throwaway_database)
owned by a login role of the same name, made for it with a random password and no
other power (no superuser, CREATEDB or CREATEROLE); the database is revoked from
PUBLIC, and both are dropped afterwards. The worker gets that role's URL only,
pointing at the gate: a port of the grading process that passes a connection on
to the server only when it asks for that role and that database. The worker's
confinement allows that one TCP port, so even on a server that trusts every local
connection (trust authentication), the student's code cannot log in as anyone else.
SQLite: a file in the worker's private folder, the one place it may write.
"""
import contextlib
import secrets
import socket
import struct
import threading

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ..databases.database import postgres_server_url, throwaway_database

_SSL_REQUEST, _GSS_REQUEST, _CANCEL_REQUEST, _PROTOCOL_3 = 80877103, 80877104, 80877102, 196608
_MAX_STARTUP_BYTES = 10_000


class DatabaseGate:
    """A TCP port on 127.0.0.1 that admits PostgreSQL connections for one role and database."""

    def __init__(self, server_url):
        server = make_url(server_url)
        socket_folder = server.query.get("host")
        if socket_folder and str(socket_folder).startswith("/"):
            self.server_address = (socket.AF_UNIX, f"{socket_folder}/.s.PGSQL.{server.port or 5432}")
        else:
            self.server_address = (socket.AF_INET, (server.host or "127.0.0.1", server.port or 5432))
        self.admitted = None  # (role, database)
        self.refused = []  # what was asked for and refused (user, database)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @classmethod
    @contextlib.contextmanager
    def open(cls, server_url=None):
        gate = cls(server_url or postgres_server_url())
        try:
            yield gate
        finally:
            gate.close()

    def admit(self, role, database):
        self.admitted = (role, database)

    def close(self):
        self.closed = True
        self.admitted = None
        for connection in [self.listener] + self.connections:
            with contextlib.suppress(OSError):
                connection.close()

    # -- the gate's work ----------------------------------------------------------------
    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            startup = self._startup(client)
            if startup is None:
                return
            server = socket.socket(self.server_address[0], socket.SOCK_STREAM)
            self.connections.append(server)
            server.connect(self.server_address[1])
            server.sendall(startup)
            threading.Thread(target=_pump, args=(server, client), daemon=True).start()
            _pump(client, server)
        except OSError:
            pass
        finally:
            client.close()

    def _startup(self, client):
        """The client's startup packet when it may pass, else None (it was told why)."""
        while True:
            header = _receive(client, 8)
            length, code = struct.unpack("!ii", header)
            if not 8 <= length <= _MAX_STARTUP_BYTES:
                return None
            body = _receive(client, length - 8)
            if code in (_SSL_REQUEST, _GSS_REQUEST):
                client.sendall(b"N")  # no encryption on the loopback: ask again in the clear
                continue
            if code == _CANCEL_REQUEST:
                return header + body  # carries only a key the server checks
            if code != _PROTOCOL_3:
                return None
            words = body.split(b"\0")
            asked = dict(zip(words[0::2], words[1::2]))
            user = asked.get(b"user", b"").decode("utf-8", "replace")
            database = asked.get(b"database", b"").decode("utf-8", "replace") or user
            if self.admitted is not None and (user, database) == self.admitted:
                return header + body
            self.refused.append((user, database))
            client.sendall(_error_response(
                f"grading allows a connection only to the replay's own database as its own role "
                f"(this one asked for user {user!r}, database {database!r})"))
            return None


def _receive(connection, size):
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _pump(source, destination):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            destination.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        destination.shutdown(socket.SHUT_WR)


def _error_response(message):
    fields = b"SFATAL\0VFATAL\0C28000\0M" + message.encode("utf-8") + b"\0\0"
    return b"E" + struct.pack("!i", len(fields) + 4) + fields


@contextlib.contextmanager
def replay_database(backend, server_url=None, folder=None, gate=None, limits=None):
    """(URL for the grading process, URL for the worker) of a new, empty database,
    deleted afterwards; see the module docstring."""
    if backend != "postgresql" or gate is None:
        with throwaway_database(backend, server_url=server_url, folder=folder, limits=limits) as url:
            yield url, url
        return
    with throwaway_database(backend, server_url=server_url, limits=limits) as url:
        admin_url = make_url(url)
        name = admin_url.database  # the role takes the database's name: whatever sweeps one finds the other
        password = secrets.token_urlsafe(24)  # letters, digits, - and _ only: safe in a quoted literal
        admin = sa.create_engine(admin_url.set(database=make_url(server_url or postgres_server_url()).database),
                                 isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(
                    f'CREATE ROLE "{name}" LOGIN PASSWORD \'{password}\' NOSUPERUSER NOCREATEDB NOCREATEROLE '
                    "NOREPLICATION NOBYPASSRLS"))
            try:
                with admin.connect() as connection:
                    connection.execute(sa.text(f'ALTER DATABASE "{name}" OWNER TO "{name}"'))
                    connection.execute(sa.text(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC'))
                gate.admit(name, name)
                worker_url = sa.URL.create("postgresql+psycopg", username=name, password=password,
                                           host="127.0.0.1", port=gate.port, database=name)
                yield url, worker_url.render_as_string(hide_password=False)
            finally:
                gate.admit(None, None)
                with admin.connect() as connection:  # the database first: the role owns it
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    connection.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
        finally:
            admin.dispose()
