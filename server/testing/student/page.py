"""The lesson page: your database and what each migration did to it.

A read-only Flask blueprint, server-rendered HTML with inline SVG (no
JavaScript, nothing fetched from elsewhere). app.py registers it, so plain
`flask run` in server/ serves it at http://localhost:5555; `pipenv run page`
serves it without app.py (tools.py).

    /                  the checklist, the database now, the revision graph, the replay
    /tables/<name>     one table's rows, a page at a time
    /replay            what each revision does to the lesson's rows

The student's database is only read (database.read_only_engine). Everything
that runs the student's code (the grade with its replay on a throw-away
database, the status, the operations of each file) runs in a child process
with a time limit (page_facts.py), cached by the content of the files and the
state of the database, so a reload does not replay again.
"""
import hashlib
import json
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, render_template, request
from sqlalchemy.engine import make_url

from ..databases.database import app_database_url, backend_of, in_instance_folder, normalize_url, read_only_engine
from ..databases.leftovers import temporary_folder
from ..isolation import processes
from ..lesson.feedback import error_line

ENGINE_SERVER_DIR = Path(__file__).resolve().parents[2]  # this grader's server/
DEFAULT_ROOT = ENGINE_SERVER_DIR.parent
PAGE_SIZE = 50
PREVIEW_ROWS = 5
FACTS_TIMEOUT = float(os.environ.get("LESSON_PAGE_TIMEOUT", "60"))
VALUE_LIMIT = 200  # characters of one value shown in a table cell

lesson_page = Blueprint("lesson_page", __name__, template_folder="templates")


# --- which checkout and which database ---------------------------------------------------


def lesson_root():
    return Path(current_app.config.get("LESSON_ROOT") or DEFAULT_ROOT).resolve()


def lesson_database_url(root):
    """The database the checkout's app uses (DATABASE_URL, server/.env, or SQLite)."""
    configured = current_app.config.get("LESSON_DATABASE_URL")
    server = root / "server"
    return in_instance_folder(configured, server) if configured else app_database_url(server)


# --- the database now (read-only) --------------------------------------------------------


@dataclass
class TableView:
    name: str
    columns: List[dict] = field(default_factory=list)  # name, type, nullable, primary_key, default
    primary_key: List[str] = field(default_factory=list)
    foreign_keys: List[str] = field(default_factory=list)
    indexes: List[str] = field(default_factory=list)
    row_count: int = 0
    rows: List[list] = field(default_factory=list)


@dataclass
class DatabaseView:
    label: str
    backend: str
    exists: bool = False
    error: Optional[str] = None
    versions: List[str] = field(default_factory=list)  # the rows of alembic_version
    has_version_table: bool = False
    tables: List[TableView] = field(default_factory=list)

    def fingerprint(self):
        """What the status depends on: the revision and the rows of each table."""
        return [self.exists, self.error, self.versions, [(t.name, [c["name"] for c in t.columns], t.row_count) for t in self.tables]]


def describe_database(url, server_dir):
    """A label that names the database and never shows a password."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        try:
            return f"SQLite file {path.resolve().relative_to(Path(server_dir).resolve().parent)}"
        except ValueError:
            return f"SQLite file {path}"
    return "PostgreSQL " + parsed.render_as_string(hide_password=True)


def database_view(url, server_dir, preview_rows=PREVIEW_ROWS):
    """The database's revision, tables, columns, keys, indexes and first rows."""
    try:
        view = DatabaseView(describe_database(url, server_dir), backend_of(url))
        engine, sqlite_path = read_only_engine(url)
    except Exception as error:  # a URL SQLAlchemy cannot parse, a missing driver
        return DatabaseView(f"DATABASE_URL {url!r}", "unknown", error=error_line(error, kind=True))
    if sqlite_path is not None and not sqlite_path.is_file():
        return view
    try:
        with engine.connect() as connection:
            view.exists = True
            inspector = sa.inspect(connection)
            names = sorted(inspector.get_table_names())
            view.has_version_table = "alembic_version" in names
            if view.has_version_table:
                version = sa.table("alembic_version", sa.column("version_num"))
                view.versions = sorted(connection.execute(sa.select(version.c.version_num)).scalars())
            view.tables = [
                read_table(connection, inspector, name, 0, preview_rows) for name in names if name != "alembic_version"
            ]
            connection.rollback()
    except Exception as error:  # unreachable server, damaged file, no permission
        view.error = error_line(error, kind=True)
    finally:
        engine.dispose()
    return view


def read_table(connection, inspector, name, offset, limit):
    """One table's structure, its row count and `limit` rows from `offset`, in primary key order."""
    table = TableView(name)
    pk = inspector.get_pk_constraint(name) or {}
    table.primary_key = list(pk.get("constrained_columns") or [])
    for column in inspector.get_columns(name):
        table.columns.append({
            "name": column["name"], "type": type_name(column["type"]), "nullable": column["nullable"],
            "primary_key": column["name"] in table.primary_key, "default": column.get("default"),
        })
    for key in inspector.get_foreign_keys(name):
        table.foreign_keys.append(
            f"{', '.join(key['constrained_columns'])} \u2192 {key['referred_table']}"
            f"({', '.join(key['referred_columns'])})" + (f" ({key['name']})" if key.get("name") else "")
        )
    for index in inspector.get_indexes(name):
        unique = "unique " if index.get("unique") else ""
        table.indexes.append(f"{unique}{index['name']} ({', '.join(str(c) for c in index['column_names'])})")
    for constraint in inspector.get_unique_constraints(name):
        table.indexes.append(f"unique {constraint['name'] or '(unnamed)'} ({', '.join(constraint['column_names'])})")
    selectable = sa.table(name, *[sa.column(c["name"]) for c in table.columns])
    table.row_count = connection.execute(sa.select(sa.func.count()).select_from(selectable)).scalar_one()
    if limit:
        order = [selectable.c[c] for c in table.primary_key] or list(selectable.c)
        query = sa.select(selectable).order_by(*order).offset(offset).limit(limit)
        table.rows = [[shown(value) for value in row] for row in connection.execute(query)]
    return table


def type_name(type_):
    try:
        return str(type_)
    except Exception:  # a type the dialect cannot render
        return type(type_).__name__


def shown(value):
    """(text, is NULL) for one cell."""
    if value is None:
        return ("NULL", True)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (f"<{len(bytes(value))} bytes>", False)
    text = str(value)
    return (text if len(text) <= VALUE_LIMIT else text[:VALUE_LIMIT] + "\u2026", False)


def table_page(url, name, page, page_size=PAGE_SIZE):
    """(TableView or None, error, HTTP status) for one page of a table's rows."""
    try:
        engine, sqlite_path = read_only_engine(url)
    except Exception as error:
        return None, error_line(error, kind=True), 200
    if sqlite_path is not None and not sqlite_path.is_file():
        return None, "The database file does not exist yet: the page's \"Next\" says how to build it.", 404
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            if name not in inspector.get_table_names():
                return None, f"There is no table {name!r} in this database.", 404
            table = read_table(connection, inspector, name, (page - 1) * page_size, page_size)
            connection.rollback()
            return table, None, 200
    except Exception as error:  # unreachable server, damaged file
        return None, f"Your database cannot be read: {error_line(error, kind=True)}", 200
    finally:
        engine.dispose()


# --- the facts that need the student's code (a child process, cached) ----------------


_cache = {}
_cache_lock = threading.Lock()
_running = {}  # cache key -> lock held while its child runs
_CACHE_SIZE = 8


def source_fingerprint(root):
    """A digest of every file the grade reads: migrations/, models.py, app.py, .env."""
    digest = hashlib.sha256()
    server = root / "server"
    files = [server / "models.py", server / "app.py", server / ".env"]
    migrations = server / "migrations"
    if migrations.is_dir():
        files += sorted(p for p in migrations.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"-")
    return digest.hexdigest()


def lesson_facts(root, url, database):
    """page_facts.facts() for this checkout and database state, or {"error": ...}."""
    key = hashlib.sha256(json.dumps(
        [str(root), url, source_fingerprint(root), database.fingerprint()], default=str,
    ).encode()).hexdigest()
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        running = _running.setdefault(key, threading.Lock())
    with running:  # requests that arrive together wait for one child
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        facts = run_facts(root, url)  # a time-out is kept too: a reload must not wait again
        with _cache_lock:
            _cache[key] = facts
            _running.pop(key, None)
            while len(_cache) > _CACHE_SIZE:
                _cache.pop(next(iter(_cache)))
    return facts


def run_facts(root, url, timeout=None):
    timeout = timeout or FACTS_TIMEOUT
    environment = dict(os.environ, PYTHONPATH=str(ENGINE_SERVER_DIR), PYTHONDONTWRITEBYTECODE="1")
    folder = temporary_folder("page")  # named after this process: swept if it is killed
    try:
        return _facts_in(folder, root, url, timeout, environment)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _facts_in(folder, root, url, timeout, environment):
    out = Path(folder) / "facts.json"
    command = [sys.executable, "-B", "-m", "testing.student.page_facts", str(root), url, str(out)]
    run = processes.run(command, timeout, cwd=folder, env=environment)
    if run.timed_out:
        return {"error": (
            f"Checking your files did not finish within {timeout:.0f} s. A revision file or "
            "models.py probably runs an endless loop or waits for something: run `pytest` from the "
            "repository root to see which one."
        )}
    if run.code != 0 or not out.is_file():
        last = [line for line in run.stderr.splitlines() if line.strip()]
        why = last[-1].strip() if last else (
            f"a revision file or models.py ended the process with exit code {run.code}"
        )
        return {"error": (
            f"Checking your files stopped early: {why}. Run `pytest` from the repository root "
            "for the grader's message."
        )}
    try:
        return json.loads(out.read_text(encoding="utf-8"))
    except ValueError as error:
        return {"error": f"Checking your files gave no usable answer ({error})."}


# --- the revision graph --------------------------------------------------------------


NODE_WIDTH, NODE_HEIGHT, ROW_GAP, COLUMN_GAP, MARGIN = 380, 74, 30, 24, 12


@dataclass
class Node:
    key: str
    revision: Optional[str]
    title: str
    subtitle: str
    kind: str  # "ok", "broken" (the file cannot be loaded), "missing" (no file has that id), "database"
    depth: int = 0
    column: int = 0
    current: bool = False
    pending: bool = False
    losses: bool = False
    badges: List[str] = field(default_factory=list)
    message: str = ""
    follows: List[str] = field(default_factory=list)  # the revisions it comes after

    @property
    def status(self):
        """The node's state in words, under its box and in the graph's table."""
        words = (["your database"] if self.current else []) + (["not applied"] if self.pending else [])
        words += (["loses data"] if self.losses else []) + (["cannot load"] if self.kind == "broken" else [])
        return " · ".join(words + ([", ".join(self.badges)] if self.badges else []))

    @property
    def x(self):
        return MARGIN + self.column * (NODE_WIDTH + COLUMN_GAP)

    @property
    def y(self):
        return MARGIN + self.depth * (NODE_HEIGHT + ROW_GAP)


@dataclass
class Edge:
    child: Node
    parent: Node
    broken: bool = False

    @property
    def path(self):
        x1, y1 = self.parent.x + NODE_WIDTH / 2, self.parent.y + NODE_HEIGHT
        x2, y2 = self.child.x + NODE_WIDTH / 2, self.child.y
        middle = (y1 + y2) / 2
        return f"M{x1:.0f},{y1:.0f} C{x1:.0f},{middle:.0f} {x2:.0f},{middle:.0f} {x2:.0f},{y2 - 6:.0f}"


@dataclass
class Graph:
    nodes: List[Node]
    edges: List[Edge]
    notes: List[str]  # what Alembic's revision map says about the history

    @property
    def width(self):
        columns = max((n.column for n in self.nodes), default=0) + 1
        return 2 * MARGIN + columns * NODE_WIDTH + (columns - 1) * COLUMN_GAP

    @property
    def height(self):
        rows = max((n.depth for n in self.nodes), default=0) + 1
        return 2 * MARGIN + rows * NODE_HEIGHT + (rows - 1) * ROW_GAP


def revision_graph(files, current_versions):
    """Nodes and links of the revision files, drawn as they are: branches, merges,
    links to revisions no file has, and files that cannot be loaded."""
    from alembic.script.revision import Revision, RevisionError, RevisionMap

    nodes, by_revision = [], {}
    for entry in files:
        node = Node(
            key=entry["name"], revision=entry["revision"],
            title=f"{entry['revision'] or '(no revision id)'}  {entry['message']}".strip(),
            subtitle=entry["name"], kind="broken" if entry["load_error"] or not entry["revision"] else "ok",
            pending=entry["pending"], losses=any(r["loses_data"] for r in entry["risks"]),
            message=entry["message"] or "", follows=list(entry["down_revisions"]),
        )
        nodes.append(node)
        if entry["revision"]:
            if entry["revision"] in by_revision:
                node.badges.append("duplicate id")
                by_revision[entry["revision"]].badges.append("duplicate id")
            by_revision.setdefault(entry["revision"], node)
    links = [(node, parent) for node, entry in zip(nodes, files) for parent in entry["down_revisions"]]
    for _, parent in links:
        if parent not in by_revision:
            missing = Node(f"missing-{parent}", parent, f"{parent}  (no file)", "no file in migrations/versions/ has this id", "missing")
            nodes.append(missing)
            by_revision[parent] = missing
    for version in current_versions:
        if version not in by_revision:
            stray = Node(f"database-{version}", version, f"{version}  (your database)",
                         "your database is at this revision, but no file has its id", "missing", current=True)
            nodes.append(stray)
            by_revision[version] = stray
        else:
            by_revision[version].current = True
    edges = [Edge(node, by_revision[parent], broken=by_revision[parent].kind == "missing") for node, parent in links]

    notes = []
    present = [e for e in files if e["revision"] and by_revision.get(e["revision"]) is not None and by_revision[e["revision"]].kind != "missing"]
    try:
        revision_map = RevisionMap(lambda: [
            Revision(e["revision"], tuple(p for p in e["down_revisions"] if by_revision[p].kind != "missing") or None)
            for e in {e["revision"]: e for e in present}.values()
        ])
        heads, bases = revision_map.heads, revision_map.bases
        if len(heads) > 1:
            notes.append(f"{len(heads)} heads: {', '.join(heads)} (the history splits into branches)")
        if len(bases) > 1:
            notes.append(f"{len(bases)} bases: {', '.join(bases)} (more than one revision starts the history)")
        for revision_id, node in by_revision.items():
            if node.kind == "missing":
                continue
            revision = revision_map.get_revision(revision_id)
            if revision.is_merge_point:
                node.badges.append("merge")
            if revision.is_branch_point:
                node.badges.append("branch point")
    except (RevisionError, ValueError, KeyError) as error:
        notes.append(f"Alembic cannot read this history: {error}")
    _layout(nodes, edges)
    nodes.sort(key=lambda node: (node.depth, node.column))  # oldest first, as the table reads
    return Graph(nodes, edges, notes)


def _layout(nodes, edges):
    parents = {}
    for edge in edges:
        parents.setdefault(id(edge.child), []).append(edge.parent)
    depth = {}

    def depth_of(node, visiting=()):
        if id(node) in depth:
            return depth[id(node)]
        if id(node) in visiting:  # a cycle: Alembic's map reports it
            return 0
        above = [depth_of(parent, visiting + (id(node),)) + 1 for parent in parents.get(id(node), [])]
        depth[id(node)] = max(above, default=0)
        return depth[id(node)]

    used = {}
    for node in nodes:
        node.depth = depth_of(node)
        node.column = used.get(node.depth, 0)
        used[node.depth] = node.column + 1


# --- routes ----------------------------------------------------------------------------


def _context():
    root = lesson_root()
    problems = []
    if not (root / "server").is_dir():
        problems.append(f"{root} has no server/ folder: point the page at a checkout of the lesson.")
    try:
        url = lesson_database_url(root)
    except Exception as error:
        url, problems = None, problems + [
            f"DATABASE_URL cannot be read ({error_line(error, kind=True)}). Fix the DATABASE_URL line in server/.env "
            "(or the variable in your environment): see the README's section SQLite and PostgreSQL."
        ]
    return root, url, problems


@lesson_page.route("/")
def index():
    root, url, problems = _context()
    database = database_view(url, root / "server") if url else None
    facts = lesson_facts(root, url, database) if url and not problems else {"error": None}
    files = facts.get("files", [])
    graph = revision_graph(files, database.versions if database else [])
    return render_template(
        "lesson_page/index.html", root=root, database=database, facts=facts, files=files, graph=graph,
        problems=problems, migrations_exist=(root / "server" / "migrations").is_dir(),
        node_width=NODE_WIDTH, node_height=NODE_HEIGHT,
    )


@lesson_page.route("/replay")
def replay_view():
    root, url, problems = _context()
    database = database_view(url, root / "server", preview_rows=0) if url else None
    facts = lesson_facts(root, url, database) if url and not problems else {"error": None}
    return render_template("lesson_page/replay.html", root=root, database=database, facts=facts, problems=problems)


@lesson_page.route("/tables/<name>")
def table_view(name):
    root, url, problems = _context()
    if problems:
        return render_template("lesson_page/table.html", root=root, problems=problems, table=None, error=None, name=name)
    page = request.args.get("page", "1")
    if not page.isdigit() or int(page) < 1:
        abort(404)
    table, error, status = table_page(url, name, int(page))
    pages = max(1, -(-table.row_count // PAGE_SIZE)) if table else 1
    return render_template(
        "lesson_page/table.html", root=root, problems=problems, table=table, error=error, name=name,
        page=int(page), pages=pages, page_size=PAGE_SIZE, label=describe_database(url, root / "server"),
    ), status
