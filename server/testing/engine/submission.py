"""Reading a student's checkout without changing it; its code runs only in the sandbox.

- `Layout.of(root)`: where the lesson's files are (server/, server/migrations/).
- `load_history(layout, sandbox)`: every revision file in migrations/versions/,
  loaded one by one in the sandbox's worker process (a broken file never
  hides the others), and the graph they form: `History.chain` is the linear
  run of revisions from the base, as far as it is unambiguous (through the
  one fork a lesson may declare, a `Fork`: its two branches, then their merge);
  `History.problems` says what is wrong with the rest; `History.heads` the
  revisions nothing follows. Alembic's own RevisionMap
  (`History.revision_map()`) confirms a history that looks sound.
- `load_models(layout, sandbox)`: the tables server/models.py defines, built
  in the worker and rebuilt here as a MetaData (app.py is never imported: it
  may create tables in the student's database).
- `check_app_py(layout)` / `check_env_py(layout)`: static checks (the files are
  parsed, never run).
"""
import ast
import functools
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from ..isolation.sandbox import ChildFailure
from ..lesson.feedback import describe_exception, relative
from .facts import Finding

REQUIRED_MIGRATION_FILES = ("alembic.ini", "env.py", "script.py.mako")
# The files Alembic itself loads from versions/ (see alembic.script.base).
_REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
_REVISION_LINE = re.compile(r"^revision\s*(?::[^=\n]*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION_LINE = re.compile(r"^down_revision\s*(?::[^=\n]*)?=\s*(.+)$", re.M)


@dataclass
class Layout:
    """Where a checkout keeps the lesson's files."""

    root: Path
    server_folder: Optional[Path] = None  # when it is not <root>/server

    @classmethod
    def of(cls, root, server=None):
        return cls(Path(root).resolve(), Path(server).resolve() if server else None)

    @property
    def server(self):
        return self.server_folder or self.root / "server"

    @property
    def migrations(self):
        return self.server / "migrations"

    @property
    def versions(self):
        return self.migrations / "versions"

    @property
    def app_py(self):
        return self.server / "app.py"

    @property
    def models_py(self):
        return self.server / "models.py"

    @property
    def env_py(self):
        return self.migrations / "env.py"

    @property
    def local_database(self):
        return self.server / "instance" / "app.db"

    def rel(self, path):
        return relative(path, self.root)


@dataclass
class RevisionFile:
    """One file in migrations/versions/ and what it declares."""

    path: Path
    rel: str  # relative to the repository root
    source: str = ""
    loaded: bool = False  # the worker imported it and found upgrade() and downgrade()
    revision: Optional[str] = None
    down_revision: object = None  # None, a string, or a tuple for a merge
    load_error: Optional[str] = None  # why the file cannot be loaded

    @property
    def name(self):
        return self.path.name

    @property
    def down_revisions(self):
        if self.down_revision is None:
            return ()
        if isinstance(self.down_revision, (tuple, list)):
            return tuple(self.down_revision)
        return (self.down_revision,)

    @property
    def uses_batch(self):
        return "batch_alter_table" in self.source

    @property
    def doc(self):
        """The first line of its docstring: the message given to `flask db migrate`."""
        try:
            text = ast.get_docstring(ast.parse(self.source)) or ""
        except (SyntaxError, ValueError):
            return ""
        return text.strip().splitlines()[0] if text.strip() else ""


@dataclass
class History:
    """The revision files and the history they form."""

    files: List[RevisionFile] = field(default_factory=list)
    chain: List[RevisionFile] = field(default_factory=list)  # linear, from the base
    problems: List[str] = field(default_factory=list)
    ambiguous_after: Optional[int] = None  # the chain cannot be followed past this length
    fork: Optional[int] = None  # the chain follows the lesson's two branches after this position (Fork)

    @property
    def sound(self):
        return not self.problems

    @property
    def heads(self):
        """The revision ids no file names as its parent, in file order."""
        parents = {down for f in self.files for down in f.down_revisions}
        return [f.revision for f in self.files if f.revision and f.revision not in parents]

    def position_of(self, revision_id):
        for number, revision in enumerate(self.chain, start=1):
            if revision.revision == revision_id:
                return number
        return None

    def files_by_id(self):
        """{revision id: file} for the files that have an id; of two files with
        the same id the later one counts, as in Alembic."""
        return {f.revision: f for f in self.files if f.revision}

    def revision_map(self):
        """Alembic's RevisionMap of the files that have an id."""
        from alembic.script.revision import Revision, RevisionMap

        by_id = self.files_by_id()
        # Alembic calls this when first asked, so a revision it refuses raises there.
        return RevisionMap(lambda: [Revision(f.revision, f.down_revision) for f in by_id.values()])


def _declared_ids(source):
    """revision/down_revision read from the text, for files that do not load."""
    revision = _REVISION_LINE.search(source)
    down = _DOWN_REVISION_LINE.search(source)
    down_revision = None
    if down:
        try:
            down_revision = ast.literal_eval(down.group(1).split("#")[0].strip())
        except (ValueError, SyntaxError):
            down_revision = None
    return (revision.group(1) if revision else None), down_revision


def load_revision_file(path, layout, sandbox):
    revision_file = RevisionFile(path=path, rel=layout.rel(path))
    try:
        revision_file.source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        revision_file.load_error = f"{revision_file.rel} cannot be read: {error}"
        return revision_file
    revision_file.revision, revision_file.down_revision = _declared_ids(revision_file.source)
    try:
        answer = sandbox.request("load_revision", path=str(sandbox.private(path)))
    except ChildFailure as failure:
        revision_file.load_error = f"{revision_file.rel} cannot be loaded: importing it {failure}."
        return revision_file
    if "error" in answer:
        revision_file.load_error = _load_error(revision_file.rel, answer, "revision")
        return revision_file
    found = answer.get("result") or {}
    revision = found.get("revision")
    revision_file.revision = revision if isinstance(revision, str) and revision else None
    down = found.get("down_revision")
    revision_file.down_revision = tuple(down) if isinstance(down, list) else down
    missing = [name + "()" for name in ("upgrade", "downgrade") if name not in (found.get("functions") or ())]
    if missing and revision_file.revision:
        revision_file.load_error = (
            f"{revision_file.rel} has no {' and no '.join(missing)} function; every revision needs "
            "both upgrade() and downgrade()."
        )
    revision_file.loaded = not missing
    return revision_file


def _load_error(rel, answer, kind):
    """The sentence for a file the worker could not import."""
    if answer.get("imports_app") and kind == "revision":
        return (f"{rel} imports app.py, which the grader never runs (it could change your database). "
                "A migration needs only `op` and `sa`; import models.py if you need more.")
    if answer.get("imports_app"):
        return (f"{rel} imports app.py. models.py must not import the app (app.py imports models.py, "
                "so this is a circular import); remove that import.")
    verb = "loaded" if kind == "revision" else "imported"
    return f"{rel} cannot be {verb}: {answer.get('error')}"


@dataclass(frozen=True)
class Fork:
    """Where a lesson lets its history fork into two one-revision branches, then merge
    (definition.Merge): after position `after`, the branches ordered by `order` (a sort
    key of a revision file). The chain lists them one after the other, then the merge
    revision: an order `flask db upgrade` may run them in."""

    after: int
    order: Callable

    @classmethod
    def declared_by(cls, lesson):
        """The Fork of a lesson's declared merge (definition.Merge), or None: its two branches
        in the declared order, told apart by their optional steps' marks."""
        merge = lesson.further.merge if lesson.further is not None else None
        if merge is None:
            return None
        marks = [lesson.further.marks[position - lesson.count - 1] for position in merge.branches]

        def order(revision_file):
            matched = (n for n, mark in enumerate(marks) if re.search(mark, revision_file.source))
            return next(matched, len(marks)), revision_file.name

        return cls(merge.fork, order)


def load_history(layout, sandbox, fork=None):
    """Load every revision file and work out the history they form (`fork`: a Fork)."""
    history = History()
    if not layout.versions.is_dir():
        return history
    names = sorted(
        entry.name for entry in layout.versions.iterdir()
        if entry.is_file() and _REVISION_FILE.match(entry.name)
    )
    history.files = [load_revision_file(layout.versions / name, layout, sandbox) for name in names]
    _analyse_graph(history, layout, fork)
    if history.sound and history.files:
        _confirm_with_alembic(history)
    return history


def _analyse_graph(history, layout, fork=None):
    """Fill in the chain, where it stops being unambiguous, and the problems."""
    problems = history.problems
    usable = _usable_files(history.files, problems)
    graph = _Graph.of(usable)
    history.chain, history.ambiguous_after, history.fork = _chain_from_base(graph, fork)
    if len(history.chain) < len(usable) and history.ambiguous_after is None:
        history.ambiguous_after = len(history.chain)  # some revisions are not on the line
    declared = _declared_fork_files(history)
    problems.extend(_duplicate_problems(graph))
    problems.extend(_parent_problems(graph, layout, _probable_parent(history.chain), declared))
    problems.extend(_base_problems(graph))
    problems.extend(_branch_problems(graph, declared))
    if not problems and len(history.chain) != len(usable):
        problems.append(
            f"Only {len(history.chain)} of the {len(usable)} revisions form a line from the first one."
        )


def _usable_files(files, problems):
    """The files that declare a revision id; why the others cannot be used goes to `problems`."""
    usable = []
    for revision_file in files:
        if revision_file.load_error:
            problems.append(revision_file.load_error)
        if revision_file.revision is None and not revision_file.load_error:
            problems.append(
                f"{revision_file.rel} has no `revision = '...'` line, so Alembic cannot use it "
                "(every `flask db` command fails). Delete the file if it is not a revision; "
                "otherwise give it its revision id and down_revision again."
            )
        elif revision_file.revision is not None:
            usable.append(revision_file)
    return usable


@dataclass
class _Graph:
    """The usable revision files, looked up by their id and by their parents' ids."""

    usable: List[RevisionFile]
    by_id: dict = field(default_factory=dict)  # revision id -> the files that declare it
    children: dict = field(default_factory=dict)  # revision id -> the files that name it as parent
    bases: List[RevisionFile] = field(default_factory=list)  # down_revision = None
    duplicated: set = field(default_factory=set)  # ids declared by more than one file

    @classmethod
    def of(cls, usable):
        graph = cls(usable)
        for revision_file in usable:
            graph.by_id.setdefault(revision_file.revision, []).append(revision_file)
            if not revision_file.down_revisions:
                graph.bases.append(revision_file)
            for parent in revision_file.down_revisions:
                graph.children.setdefault(parent, []).append(revision_file)
        graph.duplicated = {revision_id for revision_id, same in graph.by_id.items() if len(same) > 1}
        return graph


def _chain_from_base(graph, fork=None):
    """(chain, ambiguous_after, fork): the one unambiguous line from the single base,
    the length past which it cannot be followed (None when nothing stops it), and the
    position after which it follows the lesson's two branches (None when it does not)."""
    if len(graph.bases) != 1 or graph.bases[0].revision in graph.duplicated:
        return [], (0 if graph.usable else None), None
    chain, on_chain, forked = [], set(), None
    current = graph.bases[0]
    while True:
        chain.append(current)
        on_chain.add(id(current))
        followers = graph.children.get(current.revision, [])
        branches = _declared_branches(graph, followers, fork) if fork and len(chain) == fork.after else None
        if branches:
            chain += branches
            on_chain.update(map(id, branches))
            forked = fork.after
            followers = graph.children.get(branches[0].revision, [])  # the merge revision, once made
            if not followers:
                return chain, None, forked  # two heads: not merged yet
            current = followers[0]
            continue
        if len(followers) != 1 or len(followers[0].down_revisions) != 1:
            return chain, (len(chain) if followers else None), forked
        current = followers[0]
        if current.revision in graph.duplicated or id(current) in on_chain:
            return chain, len(chain), forked


def _declared_branches(graph, followers, fork):
    """The two branch revisions in `fork.order`, when `followers` are the lesson's fork: two
    revisions that follow only this one and are followed by nothing yet (two heads) or by
    one and the same revision whose down_revision names both (the merge); else None."""
    if len(followers) != 2 or any(f.revision in graph.duplicated or len(f.down_revisions) != 1 for f in followers):
        return None
    after = [graph.children.get(f.revision, []) for f in followers]
    if after[0] or after[1]:
        if not (len(after[0]) == len(after[1]) == 1 and after[0][0] is after[1][0]):
            return None
        merge = after[0][0]
        if merge.revision in graph.duplicated or sorted(merge.down_revisions) != sorted(f.revision for f in followers):
            return None
    return sorted(followers, key=fork.order)


def _declared_fork_files(history):
    """The ids of the revision the lesson's branches follow and of the one that merges them,
    when the chain follows them (their fork and merge are no problem)."""
    if history.fork is None:
        return set()
    chain, after = history.chain, history.fork
    return {revision.revision for revision in chain[after - 1:after] + chain[after + 2:after + 3]}


def _probable_parent(chain):
    """The end of a sentence suggesting the parent a revision probably follows."""
    if not chain:
        return ""
    return f" (probably '{chain[-1].revision}', the last revision of the line from the first one)"


def _duplicate_problems(graph):
    return [
        f"{_names(same)} {_all(same)} say revision = '{revision_id}'. Every revision needs its "
        "own id: if one file is a copy of another, delete the copy."
        for revision_id, same in graph.by_id.items() if len(same) > 1
    ]


def _parent_problems(graph, layout, probable_parent, declared=()):
    """Merges (other than the lesson's own) and missing parents, file by file."""
    problems = []
    for revision_file in graph.usable:
        if revision_file.revision not in declared:
            problems.extend(_merge_problems(revision_file))
        problems.extend(_missing_parent_problems(revision_file, graph, layout, probable_parent))
    return problems


def _merge_problems(revision_file):
    parents = revision_file.down_revisions
    if len(parents) <= 1:
        return []
    return [
        f"{revision_file.rel} merges {len(parents)} revisions "
        f"(down_revision = {revision_file.down_revision!r}); the lesson's history is one "
        "straight line with no merges."
    ]


def _missing_parent_problems(revision_file, graph, layout, probable_parent):
    return [
        f"{revision_file.rel} says down_revision = '{parent}', but no file in "
        f"{layout.rel(layout.versions)}/ has that revision id. "
        f"Set down_revision to the id of the revision this one follows{probable_parent}."
        for parent in revision_file.down_revisions if parent not in graph.by_id
    ]


def _base_problems(graph):
    """Several files start the history, or none does."""
    if len(graph.bases) > 1:
        return [
            f"{_names(graph.bases)} {_all(graph.bases)} start the history (down_revision = None); "
            "only the first revision may. Delete the extra file, or set its down_revision "
            "to the revision it follows."
        ]
    if graph.usable and not graph.bases:
        return [
            "No revision starts the history: every file names a down_revision, so the first "
            "revision (the one that creates `employees`) must say down_revision = None."
        ]
    return []


def _branch_problems(graph, declared=()):
    """Revisions with more than one distinct follower (but the lesson's own fork)."""
    return [
        f"{_names(followers)} {_all(followers)} follow revision '{parent}', so the history splits "
        f"into {len(followers)} branches (`flask db heads` lists more than one head). "
        "Keep one line: delete a file you do not need, or set its down_revision to the "
        "revision it should follow."
        for parent, followers in graph.children.items()
        if len(followers) > 1 and parent in graph.by_id and len({f.revision for f in followers}) > 1
        and parent not in declared
    ]


def _all(files):
    return "both" if len(files) == 2 else "all"


def _confirm_with_alembic(history):
    """Ask Alembic's own RevisionMap for the same history."""
    try:
        revision_map = history.revision_map()
        heads = revision_map.heads
        order = [revision.revision for revision in revision_map.iterate_revisions("heads", "base")]
    except Exception as error:  # Alembic refuses the history
        history.problems.append(f"Alembic cannot read the history: {error}")
        return
    chain = [revision.revision for revision in history.chain]
    if history.fork is not None:  # Alembic orders the two branches by its own rule: the same revisions will do
        unmerged = len(chain) == history.fork + 2
        if sorted(heads) != sorted(chain[-2:] if unmerged else chain[-1:]) or sorted(order) != sorted(chain):
            history.problems.append(f"Alembic reads the branches differently: heads {', '.join(heads)}.")
    elif len(heads) != 1:
        history.problems.append(f"Alembic finds {len(heads)} heads: {', '.join(heads)}.")
    elif list(reversed(order)) != chain:
        history.problems.append("Alembic reads the revisions in a different order than their down_revision lines say.")


def _names(revision_files):
    names = [f.rel for f in revision_files]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


# -- models.py ------------------------------------------------------------

@dataclass
class Models:
    """The tables models.py defines, as the worker described them (plain data)."""

    data: object = None  # schema_data's description of the MetaData (plain data)
    error: Optional[str] = None

    @functools.cached_property
    def metadata(self):
        """The tables as a SQLAlchemy MetaData, rebuilt here (None when models.py did not load)."""
        from ..databases.schema_data import metadata_from_data

        return metadata_from_data(self.data) if self.data is not None else None


def load_models(layout, sandbox):
    """The tables server/models.py defines, without importing app.py."""
    path = layout.models_py
    rel = layout.rel(path)
    if not path.is_file():
        return Models(error=f"{rel} does not exist.")
    try:
        answer = sandbox.request("load_models", path=str(sandbox.private(path)))
    except ChildFailure as failure:
        return Models(error=f"{rel} cannot be imported: importing it {failure}.")
    if "error" in answer:
        return Models(error=_load_error(rel, answer, "models"))
    data = (answer.get("result") or {}).get("metadata")
    if data is None:
        return Models(error=f"{rel} defines no `db = SQLAlchemy(...)` (no MetaData found).")
    models = Models(data=data)
    try:
        models.metadata  # rebuilt once here, so that a description that makes no tables is reported now
        return models
    except Exception as error:  # the worker's description of the tables does not make tables
        return Models(error=f"{rel} defines tables the grader cannot rebuild: {type(error).__name__}: {error}")


# -- static checks of app.py and env.py -----------------------------------------

def _parse(path, layout):
    """(tree, None) or (None, Finding) for a Python file."""
    rel = layout.rel(path)
    if not path.is_file():
        return None, Finding("missing_file", rel)
    try:
        source = path.read_text(encoding="utf-8")
        return ast.parse(source, filename=str(path)), None
    except SyntaxError as error:
        return None, Finding("syntax_error", rel, describe_exception(error, layout.root, known_file=path),
                             error.lineno)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return None, Finding("unreadable", rel, str(error))


def _module_level_statements(tree):
    """Statements that run on import (not inside functions or classes, and
    not under `if __name__ == "__main__":`)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.If) and "__main__" in ast.dump(node.test):
            continue
        yield node
        for child in ("body", "orelse", "finalbody", "handlers"):
            pending.extend(getattr(node, child, []) or [])


def _calls(nodes):
    for node in nodes:
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call):
                yield inner


def _call_name(call):
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _defined_names(tree):
    names = set()
    for node in _module_level_statements(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def _import_problems(tree, path, layout, local_folder):
    """Imports at module level that would fail, found without running them."""
    problems = []
    rel = layout.rel(path)
    for node in _module_level_statements(tree):
        if isinstance(node, ast.Import):
            modules = [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [(node.module, [alias.name for alias in node.names])]
        else:
            continue
        for module_name, imported in modules:
            top = module_name.split(".")[0]
            local = local_folder / f"{top}.py"
            if local.is_file() or (local_folder / top / "__init__.py").is_file():
                if top == "models" and module_name == "models" and imported:
                    models_tree, _ = _parse(local, layout)
                    if models_tree is not None:
                        missing = [n for n in imported if n != "*" and n not in _defined_names(models_tree)]
                        problems += [Finding("no_model_name", rel, layout.rel(local), node.lineno, name)
                                     for name in missing]
                continue
            if top in sys.builtin_module_names:
                continue
            try:
                found = importlib.util.find_spec(top) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                code = ast.unparse(node) if hasattr(ast, "unparse") else module_name
                problems.append(Finding("no_module", rel, code, node.lineno, top))
    return problems


def check_app_py(layout):
    """Problems that stop `flask db ...` from working, found by reading app.py (Findings)."""
    tree, problem = _parse(layout.app_py, layout)
    if problem:
        return [problem]
    rel = layout.rel(layout.app_py)
    problems = _import_problems(tree, layout.app_py, layout, layout.server)
    names = {_call_name(call) for call in _calls([tree])}
    if "Migrate" not in names:
        problems.append(Finding("no_migrate", rel))
    for call in _calls(list(_module_level_statements(tree))):
        if _call_name(call) in ("create_all", "drop_all"):
            code = ast.unparse(call) if hasattr(ast, "unparse") else "db.create_all()"
            problems.append(Finding("creates_tables", rel, code, call.lineno))
    return problems


def check_env_py(layout):
    """Problems in migrations/env.py, found by reading it (Findings)."""
    tree, problem = _parse(layout.env_py, layout)
    if problem:
        return [problem]
    rel = layout.rel(layout.env_py)
    problems = _import_problems(tree, layout.env_py, layout, layout.migrations)
    names = {_call_name(call) for call in _calls([tree])}
    if "run_migrations" not in names:
        problems.append(Finding("no_run_migrations", rel))
    return problems
