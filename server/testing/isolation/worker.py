"""The only place where a student's code runs: a separate process, one request at a time.

The grading process (sandbox.py) starts this file from a private copy of the
grader, in a private copy of the submission, and sends it requests as JSON
lines on stdin. Each answer is one JSON line on a channel of its own (the
original stdout); whatever the student's code prints goes nowhere. Answers
only describe: the grading process reads every schema and row itself, so an
answer can shape a message but never a verdict.

Requests (`command` and its arguments):
    load_revision  path                      -> revision, down_revision, functions, error
    load_models    path                      -> metadata (schema_data), error
    run            path, direction, url      -> error, statements
    record         path, direction, dialect, row_counts, columns -> does, problem, risks
    offline_scripts migrations               -> heads (Alembic's offline mode loads every revision file)
    offline_sql    migrations, revision, down_revision, direction -> sql (Alembic's offline mode, PostgreSQL)

An answer with "fatal": true (sys.exit, KeyboardInterrupt, MemoryError in the
student's code) is the last: the process ends after sending it.
"""
import argparse
import importlib.util
import itertools
import json
import os
import sys
import time
import traceback

_module_numbers = itertools.count(1)
# The grader's modules a worker imports: their folders stay readable once it is confined.
ENGINE_MODULES = ("testing.isolation.worker", "testing.isolation.confinement", "testing.isolation.fork_server",
                  "testing.lesson.feedback", "testing.databases.operations", "testing.databases.alembic_internals",
                  "testing.databases.reading", "testing.databases.schema_data")
_MISSING = object()


class Worker:
    def __init__(self, root, server, memory_mb, attempts=None):
        self.root = root
        self.server = server
        self.memory_mb = memory_mb
        self.attempts = attempts  # confinement.Attempts, or None where nothing is confined
        self.modules = {}  # path -> loaded module
        self.script_directories = {}  # migrations folder -> alembic ScriptDirectory

    # -- loading ------------------------------------------------------------------
    def load(self, path, block=("app",)):
        """Run a student's file as a fresh module; its own folder's modules importable, app.py not."""
        if path in self.modules:
            return self.modules[path]
        name = f"_lesson_file_{next(_module_numbers)}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        saved = {blocked: sys.modules.get(blocked, _MISSING) for blocked in block}
        for blocked in block:
            sys.modules[blocked] = None  # "import app" raises ImportError
        try:
            spec.loader.exec_module(module)
        finally:
            for blocked, previous in saved.items():
                if previous is _MISSING:
                    sys.modules.pop(blocked, None)
                else:
                    sys.modules[blocked] = previous
        self.modules[path] = module
        return module

    def load_revision(self, path):
        module = self.load(path)
        revision = getattr(module, "revision", None)
        down = getattr(module, "down_revision", None)
        if isinstance(down, (tuple, list)):
            down = [str(item) for item in down]
        elif down is not None:
            down = str(down)
        return {
            "revision": revision if isinstance(revision, str) and revision else None,
            "down_revision": down or None,
            "functions": [name for name in ("upgrade", "downgrade") if callable(getattr(module, name, None))],
        }

    def load_models(self, path):
        from sqlalchemy import MetaData

        from ..databases.schema_data import metadata_to_data

        module = self.load(path)
        metadata = getattr(getattr(module, "db", None), "metadata", None)
        if not isinstance(metadata, MetaData):
            found = [value for value in vars(module).values() if isinstance(value, MetaData)]
            metadata = max(found, key=lambda m: len(m.tables)) if found else None
        return {"metadata": metadata_to_data(metadata) if metadata is not None else None}

    # -- running ------------------------------------------------------------------
    def run(self, path, direction, url):
        """Run upgrade() or downgrade() on the database at `url`, committed when it returns."""
        import sqlalchemy as sa
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext
        from sqlalchemy.pool import NullPool

        function = getattr(self.load(path), direction)
        statements = []
        engine = sa.create_engine(url, poolclass=NullPool)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _fast_sqlite)
        sa.event.listen(engine, "before_cursor_execute", _recorder(statements))
        try:
            with engine.connect() as connection:
                try:
                    with Operations.context(MigrationContext.configure(connection)):
                        function()
                    connection.commit()
                except BaseException:
                    connection.rollback()
                    raise
        finally:
            engine.dispose()
        return {"statements": statements}

    def record(self, path, direction, dialect, row_counts, columns):
        """What the function would do, recorded without a database, and what it risks."""
        from ..databases import operations
        from ..databases.schema_data import columns_as_text, type_from_repr

        recorded = operations.record_script_operations(self.load(path), direction, dialect=dialect)
        types = {table: {name: type_from_repr(text) for name, text in cols.items()} for table, cols in columns.items()}
        risks = operations.find_risks(recorded.operations, row_counts=row_counts, columns=types, direction=direction)
        rows_after, types_after = operations.state_after(recorded.operations, row_counts, types)
        return {
            "does": operations.describe(recorded.operations),
            "problem": recorded.problem,
            "risks": [operations.risk_to_data(risk) for risk in risks],
            "after": {"row_counts": rows_after, "columns": columns_as_text(types_after)},
        }

    def offline_scripts(self, migrations):
        """Load every revision file as Alembic's offline mode does, before any SQL is asked for."""
        return {"heads": list(self._script_directory(migrations).revision_map.heads)}

    def offline_sql(self, migrations, revision, down_revision, direction):
        """The PostgreSQL SQL one revision's upgrade() or downgrade() runs, as Alembic's
        offline mode (`flask db upgrade DOWN:REV --sql`) writes it: no database is opened."""
        import io

        from alembic.config import Config
        from alembic.runtime.environment import EnvironmentContext

        scripts = self._script_directory(migrations)
        upgrade = direction == "upgrade"
        start, destination = (down_revision, revision) if upgrade else (revision, down_revision or "base")

        def steps(heads, context):  # what alembic.command.upgrade / downgrade hand to run_migrations
            if upgrade:
                return scripts._upgrade_revs(destination, heads)
            return scripts._downgrade_revs(destination, heads)

        output = io.StringIO()
        with EnvironmentContext(Config(), scripts, fn=steps, as_sql=True, starting_rev=start,
                                destination_rev=destination) as environment:
            environment.configure(dialect_name="postgresql", output_buffer=output, literal_binds=True)
            with environment.begin_transaction():
                environment.run_migrations()
        return {"sql": output.getvalue()}

    def _script_directory(self, migrations):
        """Alembic's view of migrations/versions/, read once per worker."""
        from alembic.script import ScriptDirectory

        if migrations not in self.script_directories:
            self.script_directories[migrations] = ScriptDirectory(migrations)
        return self.script_directories[migrations]


def _recorder(statements):
    def record(conn, cursor, statement, parameters, context, executemany):
        words = statement.lstrip().split(None, 1)
        if words and words[0].upper() in ("CREATE", "DROP", "ALTER", "INSERT", "UPDATE", "DELETE"):
            statements.append(" ".join(statement.split()))
    return record


def _fast_sqlite(dbapi_connection, connection_record):
    # A scratch file thrown away afterwards: no need to wait for the disk.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = OFF")
    cursor.close()


def _limit_resources(megabytes, disk_megabytes=0):
    """Memory, the size of any file written (a write past it fails with EFBIG instead of
    ending the process), and a backstop on CPU time in case this process is ever left alone."""
    try:
        import resource
        import signal
    except ImportError:  # Windows: the time limit and the watchdog still apply
        return
    if megabytes:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if disk_megabytes:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = disk_megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    cpu_seconds = 600
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def _watch(grader_pid):
    """End this process when the grading process is gone, whatever the student's code is doing."""
    import threading
    import time

    parent = os.getppid()  # the grading process, or the fork server that lives as long as it does

    def alive():
        try:
            os.kill(grader_pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # confined (no signal beyond its own), or Windows: the parent link says it
            pass
        return os.getppid() == parent

    def watch():
        while alive():
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def _answer(worker, request):
    """The answer to one request; student code failing is an answer too. "tried" lists what
    the code tried beyond its confinement (the grading process fails the request for it)."""
    answer = _handle(worker, request)
    if worker.attempts is not None:
        tried = worker.attempts.take()
        if tried:
            answer["tried"] = tried
    return answer


def _handle(worker, request):
    from ..lesson.feedback import describe_exception

    args = request.get("args") or {}
    handler = getattr(worker, request.get("command", ""), None)
    if handler is None or request["command"].startswith("_") or request["command"] in ("load",):
        return {"protocol_error": f"unknown command {request.get('command')!r}"}
    files = [args["path"]] if "path" in args else []
    try:
        return {"result": handler(**args)}
    except BaseException as error:  # the student's code: anything can happen
        fatal = not isinstance(error, Exception) or isinstance(error, (MemoryError, RecursionError))
        text = describe_exception(error, worker.root, files, known_file=files[0] if files else None,
                                  memory_mb=worker.memory_mb)
        imports_app = isinstance(error, ImportError) and error.name == "app" and "halted" in str(error)
        return {"error": text, "fatal": fatal, "imports_app": imports_app}


def serve(worker, requests, channel):
    for line in requests:
        try:
            request = json.loads(line)
        except ValueError:
            return
        answer = _answer(worker, request)
        answer["nonce"] = request.get("nonce")
        try:
            text = json.dumps(answer, default=str)
        except (TypeError, ValueError) as error:
            text = json.dumps({"nonce": request.get("nonce"), "protocol_error": f"unserialisable answer: {error}"})
        channel.write(text + "\n")
        channel.flush()
        if answer.get("fatal"):
            return


def _preload(role):
    """Import the grader's own libraries before the student's folder is on sys.path,
    so a student file named like one of them cannot stand in for it."""
    import sqlalchemy  # noqa: F401

    from ..databases import schema_data  # noqa: F401
    from ..lesson import feedback

    if role != "models":  # models.py needs only SQLAlchemy: that worker starts faster
        import alembic.operations  # noqa: F401
        import alembic.runtime.environment  # noqa: F401
        import alembic.runtime.migration  # noqa: F401
        import alembic.script  # noqa: F401

        from ..databases import operations  # noqa: F401


class _ConnectionLines:
    """A multiprocessing Connection read and written as lines of text (bytes only: nothing pickled)."""

    def __init__(self, connection):
        self.connection = connection

    def __iter__(self):
        while True:
            try:
                yield self.connection.recv_bytes().decode("utf-8")
            except (EOFError, OSError):
                return

    def write(self, text):
        self.connection.send_bytes(text.rstrip("\n").encode("utf-8"))

    def flush(self):
        pass


def serve_forked(connection, root, server, memory_mb, environment, grader_pid, database_port=None, disk_mb=0):
    """The worker in a process forked from a server that has already imported its libraries
    (sandbox.py, on POSIX): the same set-up as main(), without starting Python again."""
    from ..compiled import stop_keeping_compiled

    stop_keeping_compiled()  # the fork server's: the cache is outside what the worker may read
    os.setsid()  # its own process group, killed whole
    os.environ.clear()
    os.environ.update(environment)
    # Nothing of the fork server's is left open to the student's code (its pipes to the
    # grading process's resource tracker, for one): only the connection stays.
    keep = connection.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
    lines = _ConnectionLines(connection)
    _run(lines, lines, root, server, memory_mb, None, grader_pid, database_port, disk_mb)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--disk-mb", type=int, default=0)
    parser.add_argument("--role", default="revisions")
    parser.add_argument("--database-port", type=int, default=None)
    options = parser.parse_args()
    # Keep the protocol's pipes for ourselves; the student's code gets empty ones.
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    _run(requests, channel, options.root, options.server, options.memory_mb, options.role, os.getppid(),
         options.database_port, options.disk_mb)


def _confine(root, grader_pid, database_port):
    """Confine this process before any student code runs: (kinds that hold, Attempts or None).
    It writes only in its private folder (the copy, its own temporary folder, the SQLite scratch
    databases) and reads only Python, the installed packages and the grader's engine."""
    import site
    import tempfile

    from . import confinement

    folder = os.path.dirname(os.path.abspath(root))
    private_tmp = os.path.join(folder, "tmp")
    os.makedirs(private_tmp, exist_ok=True)
    for name in ("TMPDIR", "TMP", "TEMP", "HOME"):
        os.environ[name] = private_tmp
    tempfile.tempdir = private_tmp
    packages = [path for path in sys.path + site.getsitepackages()
                if os.path.basename(path) in ("site-packages", "dist-packages")]
    engine = [os.path.dirname(importlib.util.find_spec(name).origin) for name in ENGINE_MODULES]
    reach = confinement.Reach(
        writable=(folder,),
        readable=tuple(dict.fromkeys([sys.prefix, sys.base_prefix, sys.exec_prefix, *engine, *packages,
                                      *confinement.SYSTEM_FOLDERS, *confinement.SYSTEM_FILES])),
        database_port=database_port, forbidden_pids=(grader_pid, os.getppid()),
    )
    kinds = confinement.confine(reach)
    if not kinds:
        return kinds, None
    # Folders it may no longer read (the grader's own checkout) would only be listed in vain by imports.
    sys.path[:] = [path for path in sys.path if not path or confinement.within_reach(path, reach)]
    attempts = confinement.Attempts(reach, reads=sys.platform.startswith("linux"))
    attempts.install()
    return kinds, attempts


def _run(requests, channel, root, server, memory_mb, role, grader_pid, database_port=None, disk_mb=0):
    null_in, null_out = os.open(os.devnull, os.O_RDONLY), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null_in, 0)
    os.dup2(null_out, 1)
    os.dup2(null_out, 2)
    sys.stdin = open(os.devnull, "r")
    sys.stdout = sys.stderr = open(os.devnull, "w")
    sys.dont_write_bytecode = True
    if role is not None:  # a forked worker has its libraries already
        _preload(role)
    started = time.perf_counter()
    kinds, attempts = _confine(root, grader_pid, database_port)  # one thread yet: all of it is confined
    confine_seconds = time.perf_counter() - started
    sys.path.insert(0, server)  # as under `flask db`: the server's own modules import
    os.chdir(server)
    _limit_resources(memory_mb, disk_mb)
    _watch(grader_pid)
    worker = Worker(root, server, memory_mb, attempts)
    channel.write(json.dumps({"ready": True, "confined": kinds, "confine_seconds": confine_seconds}) + "\n")
    channel.flush()
    try:
        serve(worker, requests, channel)
    except BaseException:  # the channel is gone or the process is being stopped
        traceback.print_exc()
    finally:
        os._exit(0)  # no atexit handler of the student's runs after us
