"""The reference walkthrough: the whole lesson, done exactly as README.md says.

Every edit and every command comes from the README's marked code blocks (see
readme.py for the convention), so the README cannot drift from what is
tested: the commands really run (`python -m flask ...` in <checkout>/server),
the output the README shows must appear in the real output, and the shown
models.py and generated migrations must match the real files.

    pipenv run walkthrough [--backend sqlite|postgresql] [--stop-after N] [--dest DIR] [--keep]

The optional steps are walked as far as the README has them: a step number it
has no section for is passed over.
"""
import ast
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from dotenv import dotenv_values

from ..databases.database import sqlite_url
from ..lesson import readme
from ..lesson.reference import (
    REPO_ROOT, WalkthroughError, definition_name, models_after, parse_python, published_models_of, replace_definitions,
    without_blank_end,
)

LAST_STEP = 5  # the lesson's last step
FURTHER_LAST_STEP = 10  # the last of the optional "Going further" steps after it
COMMAND_TIMEOUT = 180  # seconds; a hung flask command must not hang the suite

# A revision id: 12 hex digits, also when followed by `_slug.py` in a file name.
REVISION_ID = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{12}(?![0-9A-Za-z])")
GENERATED_FILE = re.compile(r"Generating .*?([0-9a-f]{12})_(\w+)\.py\b")


@dataclass
class CommandRun:
    step: int
    command: str  # as written in the README
    args: List[str]  # as run (revision ids of the README replaced by the real ones)
    returncode: int
    output: str  # stdout and stderr as a student would see them in a terminal


@dataclass
class WalkthroughResult:
    checkout: Path
    database_url: str  # the database the app used
    backend: str  # "sqlite" or "postgresql"
    revisions: List[str] = field(default_factory=list)  # real ids, in the order generated
    readme_ids: Dict[str, str] = field(default_factory=dict)  # README example id -> real id
    steps: Dict[int, List[CommandRun]] = field(default_factory=dict)
    completed_step: int = 0

    @property
    def server(self):
        return self.checkout / "server"

    # -- the README's example revision ids, mapped to the real ones as flask generates them

    def learn_ids(self, block, shown, output):
        real = {match.group(2): match.group(1) for match in GENERATED_FILE.finditer(output)}
        for match in GENERATED_FILE.finditer(output):
            if match.group(1) not in self.revisions:
                self.revisions.append(match.group(1))
        for line in shown:
            match = GENERATED_FILE.search(line)
            if match is None:
                continue
            readme_id, slug = match.groups()
            if slug not in real:
                raise WalkthroughError(
                    f"{block.where()}: the README shows `{line.strip()}` but flask generated no "
                    f"{slug}.py file:\n{_indent(output)}"
                )
            self.readme_ids[readme_id] = real[slug]

    def real_ids(self, text, block):
        def replace(match):
            if match.group(0) not in self.readme_ids:
                raise WalkthroughError(
                    f"{block.where()}: revision id {match.group(0)} does not appear in any earlier "
                    "`Generating ...` line the README shows, so it cannot be mapped to a real revision"
                )
            return self.readme_ids[match.group(0)]

        return REVISION_ID.sub(replace, text)

    def shown_with_real_ids(self, line):
        return REVISION_ID.sub(lambda match: self.readme_ids.get(match.group(0), match.group(0)), line)

    def expect_lines(self, block, command, shown, real_lines):
        """Each shown line must appear in the real output, in the same order."""
        position = 0
        for line in shown:
            wanted = self.shown_with_real_ids(line)
            while position < len(real_lines) and real_lines[position] != wanted:
                position += 1
            if position == len(real_lines):
                raise WalkthroughError(
                    f"{block.where()}: `{command}` did not print the line the README shows:\n"
                    f"    {wanted}\nIt printed:\n" + _indent("\n".join(real_lines))
                )
            position += 1

    def output(self, step):
        """Everything the commands of one step printed."""
        return "\n".join(run.output for run in self.steps.get(step, []))


# --- the starter ------------------------------------------------------------

# Never part of what a student starts from: local state and generated files.
SKIPPED_EVERYWHERE = {".git", ".venv", "__pycache__", ".pytest_cache", "report.xml", "test-artifacts", "lesson-backups"}
SKIPPED_IN_SERVER = {"instance", "migrations", ".env"}  # and every other *.env: a database's URL


def copy_starter(dest, source=None):
    """Copy the lesson's starter (what a student forks) into dest; return dest."""
    source = Path(source or REPO_ROOT).resolve()
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise WalkthroughError(f"{dest} is not empty; the starter needs an empty or new folder")

    def ignore(folder, names):
        skipped = {name for name in names if name in SKIPPED_EVERYWHERE or name.endswith(".pyc")}
        if Path(folder).resolve() == source / "server":
            skipped |= (SKIPPED_IN_SERVER & set(names)) | {name for name in names if name.endswith(".env")}
        return skipped

    shutil.copytree(source, dest, ignore=ignore, dirs_exist_ok=True)
    if lesson_in_progress(source) and (source / "server" / "models.py").is_file():
        # A student's checkout: its models.py is their work, not the starter's.
        (dest / "server" / "models.py").write_text(published_models(source), encoding="utf-8")
    return dest


def shown_paths(output, checkout_paths, sep=os.sep):
    """Output lines as the README shows them: the checkout's absolute path as
    `...`, and the rest of such a path with `/` even where Windows prints `\\`."""
    for path in checkout_paths:
        output = output.replace(path, "...")
    if sep != "/":
        output = re.sub(r"\.\.\.(?:" + re.escape(sep) + r"[^\s" + re.escape(sep) + r"]+)+",
                        lambda match: match.group(0).replace(sep, "/"), output)
    return [line.rstrip() for line in output.splitlines()]


def lesson_in_progress(root):
    """True for a checkout where the lesson has begun (it has migrations or a
    database, which the published starter never has)."""
    server = Path(root) / "server"
    return (server / "migrations").exists() or (server / "instance").exists()


def published_models(root):
    """The starter's models.py as the lesson publishes it: the README's listing
    in step 1 (which the walkthrough checks against the maintainers' copy)."""
    return published_models_of((Path(root) / "README.md").read_text(encoding="utf-8"))


# --- running the README -----------------------------------------------------


def flask_environment(database_url=None):
    """The environment for `flask` commands in a scratch copy: the caller's,
    minus anything that would change what the README describes
    (server/.flaskenv sets FLASK_*), with DATABASE_URL only when given."""
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL" and not name.startswith("FLASK_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def run_walkthrough(
    checkout,
    *,
    stop_after=LAST_STEP,
    database_url=None,
    readme_text=None,
    report=print,
    after_step: Optional[Callable[[int, WalkthroughResult], None]] = None,
    check_outputs=True,
    resume: Optional[WalkthroughResult] = None,
    legacy_database_url=None,
):
    """Do steps 1..stop_after of the README in checkout (a copy of the starter).

    database_url None uses the app's default SQLite file, instance/app.db of
    the checkout; otherwise it is passed as DATABASE_URL to every flask
    command. after_step(step, result) is called after each step, so callers
    can inspect every intermediate state. check_outputs=False skips comparing
    shown with real output (tests use it to prove other checks on their own).
    resume: the result of the steps already done in this checkout (a copy of
    an earlier build); the walk continues with the step after them.
    legacy_database_url: the second database an `env` block names on PostgreSQL
    (an empty one; on SQLite the block's own line is used, a file beside app.db).
    """
    checkout = Path(checkout).resolve()
    if readme_text is None:
        readme_text = (checkout / "README.md").read_text(encoding="utf-8")
    blocks = readme.parse_readme(readme_text)
    titles = readme.step_titles(readme_text)
    walk = _Walk(checkout, database_url, report, check_outputs, legacy_database_url)
    first = 1
    if resume is not None:
        first = resume.completed_step + 1
        walk.result.revisions = list(resume.revisions)
        walk.result.readme_ids = dict(resume.readme_ids)
        walk.result.steps = {step: list(runs) for step, runs in resume.steps.items()}
        walk.result.completed_step = resume.completed_step
    for step in range(first, stop_after + 1):
        step_blocks = [block for block in blocks if block.step == step]
        if not step_blocks and step > LAST_STEP and step not in titles:
            continue  # an optional step this README does not have
        if not step_blocks:
            raise WalkthroughError(f"README.md has no walkthrough blocks in `## Step {step}`")
        report(f"Step {step}: {titles.get(step, '')}".rstrip(": "))
        walk.result.steps[step] = []
        for block in step_blocks:
            walk.perform(block)
        walk.result.completed_step = step
        if after_step is not None:
            after_step(step, walk.result)
    return walk.result


class _Walk:
    def __init__(self, checkout, database_url, report, check_outputs, legacy_database_url=None):
        from ..databases.database import backend_of

        self.server = checkout / "server"
        if not (self.server / "app.py").is_file():
            raise WalkthroughError(f"{checkout} is not a copy of the lesson: server/app.py is missing")
        self.report = report
        self.check_outputs = check_outputs
        if database_url is None and dotenv_values(self.server / ".env").get("DATABASE_URL"):
            # The app would follow server/.env; say which database is meant.
            raise WalkthroughError(f"{self.server / '.env'} sets DATABASE_URL: pass database_url= explicitly")
        url = database_url or sqlite_url(self.server / "instance" / "app.db")
        self.result = WalkthroughResult(checkout, url, backend_of(url))
        self.env = flask_environment(database_url)
        self.legacy_database_url = legacy_database_url

    def perform(self, block):
        action = {
            "run": self.run_block,
            "refused": self.run_block,
            "shell": self.shell_block,
            "models.py": self.write_models,
            "models.py class": self.replace_model_class,
            "expect models.py": self.expect_models,
            "generated": self.check_generated,
            "migration": self.edit_migration,
            "env": self.write_env_file,
        }[block.kind]
        action(block)

    # -- commands

    def flask(self, block, command, args, stdin=None, note=""):
        self.report(f"  $ {command}{note}")
        try:
            finished = subprocess.run(
                [sys.executable, "-m", "flask"] + args,
                cwd=self.server,
                env=self.env_for(args),
                input=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if stdin is not None else subprocess.STDOUT,
                encoding="utf-8",  # what PYTHONIOENCODING asks flask for, on every OS
                errors="replace",
                timeout=COMMAND_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise WalkthroughError(f"{block.where()}: `{command}` did not finish in {COMMAND_TIMEOUT} s")
        output = finished.stdout if stdin is None else finished.stdout + finished.stderr
        run = CommandRun(block.step, command, args, finished.returncode, output)
        self.result.steps[block.step].append(run)
        refused = block.kind == "refused"
        if refused and finished.returncode == 0:
            raise WalkthroughError(f"{block.where()}: `{command}` ran, but the README shows it refused:\n{_indent(output)}")
        if finished.returncode != 0 and not refused:
            raise WalkthroughError(
                f"{block.where()}: `{command}` failed with exit code {finished.returncode}:\n{_indent(output)}"
            )
        return finished

    def env_for(self, args):
        """The environment of one command. With `--env-file`, none of DATABASE_URL: the
        README keeps it in server/.env, which the file named there overrides (a variable
        of the environment would override both)."""
        if "--env-file" not in args:
            return self.env
        return {name: value for name, value in self.env.items() if name != "DATABASE_URL"}

    def run_block(self, block):
        for command, shown in readme.console_commands(block):
            words = shlex.split(command)
            if not words or words[0] != "flask":
                raise WalkthroughError(f"{block.where()}: only `flask ...` commands can be run, not `{command}`")
            args = [self.result.real_ids(word, block) for word in words[1:]]
            note = "" if args == words[1:] else "   (with your ids: flask " + " ".join(args) + ")"
            output = self.flask(block, command, args, note=note).stdout
            self.result.learn_ids(block, shown, output)
            if self.check_outputs:
                self.result.expect_lines(block, command, shown, self.normalized(output))

    def shell_block(self, block):
        command, statements, shown = readme.shell_session(block)
        finished = self.flask(block, command, shlex.split(command)[1:], stdin="\n".join(statements) + "\n")
        if "Traceback (most recent call last)" in finished.stderr:
            raise WalkthroughError(f"{block.where()}: a statement in `flask shell` failed:\n{_indent(finished.stderr)}")
        printed = []
        for line in finished.stdout.splitlines():
            while line.startswith((">>> ", "... ")):
                line = line[4:]
            if line.strip() and line.strip() not in (">>>", "..."):
                printed.append(line.rstrip())
        expected = [self.result.shown_with_real_ids(line) for line in shown]
        if self.check_outputs and printed != expected:
            raise WalkthroughError(
                f"{block.where()}: `flask shell` printed something else than the README shows.\n"
                + _diff(expected, printed, "README", "flask shell")
            )

    # -- revision ids: the README shows example ids, the real ones differ

    # -- output

    def normalized(self, output):
        """Real output with the checkout's absolute path shown as `...`."""
        return shown_paths(output, {str(self.result.checkout), os.path.realpath(self.result.checkout)})

    # -- files

    def write_env_file(self, block):
        """server/<argument>: the block's DATABASE_URL line on SQLite; on PostgreSQL the line
        names the second database the walk was given, as a student names their own."""
        lines = [line for line in block.text.splitlines() if line.strip()]
        if len(lines) != 1 or not lines[0].startswith("DATABASE_URL="):
            raise WalkthroughError(f"{block.where()}: an env block is one `DATABASE_URL=...` line")
        line = lines[0]
        if self.result.backend != "sqlite":
            if not self.legacy_database_url:
                raise WalkthroughError(f"{block.where()}: on {self.result.backend} the walk needs a second, "
                                       "empty database for this file (legacy_database_url)")
            line = f"DATABASE_URL={self.legacy_database_url}"
        self.report(f"  (write {block.argument})")
        (self.server / block.argument).write_text(line + "\n", encoding="utf-8", newline="\n")

    def models_path(self):
        return self.server / "models.py"

    def write_models(self, block):
        self.report("  (edit models.py)")
        self.models_path().write_text(models_after(None, block), encoding="utf-8", newline="\n")

    def replace_model_class(self, block):
        self.report(f"  (edit class {block.argument} in models.py)")
        source = self.models_path().read_text(encoding="utf-8")
        self.models_path().write_text(models_after(source, block), encoding="utf-8", newline="\n")

    def expect_models(self, block):
        actual = self.models_path().read_text(encoding="utf-8")
        if _lines(actual) != _lines(block.text):
            raise WalkthroughError(
                f"{block.where()}: server/models.py is not what the README shows.\n"
                + _diff(_lines(block.text), _lines(actual), "README", "models.py")
            )

    def revision_file(self, block):
        """The revision whose message is the block's argument."""
        found = []
        for path in sorted((self.server / "migrations" / "versions").glob("*.py")):
            tree = parse_python(path.read_text(encoding="utf-8"), str(path))
            doc = (ast.get_docstring(tree) or "").strip().splitlines()
            if doc and doc[0].strip() == block.argument:
                found.append(path)
        if len(found) != 1:
            raise WalkthroughError(
                f"{block.where()}: expected one revision with the message {block.argument!r}, "
                f"found {len(found)} in migrations/versions"
            )
        return found[0]

    def check_generated(self, block):
        """What autogenerate wrote must be what the README shows.

        The README shows SQLite's output; other databases reflect types
        differently (e.g. autoincrement=True on PostgreSQL), so the comparison
        only runs on SQLite.
        """
        path = self.revision_file(block)
        if self.result.backend != "sqlite" or not self.check_outputs:
            return
        shown = parse_python(self.result.shown_with_real_ids(block.text), block.where())
        real = parse_python(path.read_text(encoding="utf-8"), str(path))
        real_nodes = {definition_name(node): node for node in real.body if definition_name(node)}
        for node in shown.body:
            name = definition_name(node)
            if name is None:
                continue
            if name not in real_nodes:
                raise WalkthroughError(f"{block.where()}: {path.name} has no `{name}`")
            if ast.dump(node) != ast.dump(real_nodes[name]):
                raise WalkthroughError(
                    f"{block.where()}: `{name}` in {path.name} is not what the README shows.\n"
                    + _diff(ast.unparse(node).splitlines(), ast.unparse(real_nodes[name]).splitlines(),
                            "README", path.name)
                )

    def edit_migration(self, block):
        path = self.revision_file(block)
        self.report(f"  (edit {path.relative_to(self.server)})")
        tree = parse_python(block.text, block.where())
        if not any(isinstance(node, ast.FunctionDef) for node in tree.body):
            raise WalkthroughError(f"{block.where()}: the block defines no function to put in {path.name}")
        source = path.read_text(encoding="utf-8")
        path.write_text(replace_definitions(source, block.text, path.name), encoding="utf-8", newline="\n")


def _lines(text):
    return [line.rstrip() for line in without_blank_end(text.splitlines())]


def _diff(expected, actual, expected_name, actual_name):
    return "\n".join(difflib.unified_diff(expected, actual, expected_name, actual_name, lineterm="", n=2))


def _indent(text):
    return "\n".join("    " + line for line in text.rstrip().splitlines())


# --- command line -----------------------------------------------------------


def main(backend="sqlite", stop_after=LAST_STEP, dest=None, keep=False):
    """`pipenv run walkthrough` (its options are parsed in testing/commands.py); the exit code.

    dest None builds the copy in a temporary folder, removed afterwards unless
    keep; a given dest is always kept. Exit code 0 when the walk succeeds, 1
    when a step cannot be done as the README says, 2 when the PostgreSQL
    server of backend "postgresql" cannot be reached.
    """
    keep = keep or dest is not None
    dest = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="lesson-walkthrough-"))
    try:
        copy_starter(dest)
        print(f"Scratch copy of the starter: {dest}")
        if backend == "postgresql":
            return _on_postgresql(dest, stop_after)
        return _finish(run_walkthrough(dest, stop_after=stop_after))
    except (WalkthroughError, readme.ReadmeError) as error:
        print(f"\nWALKTHROUGH FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        if keep:
            print(f"Files kept in {dest}")
        else:
            shutil.rmtree(dest, ignore_errors=True)


def _on_postgresql(dest, stop_after):
    from ..databases.database import postgres_server_url, postgres_unreachable_reason, throwaway_database

    problem = postgres_unreachable_reason()
    if problem:
        print(f"PostgreSQL at {postgres_server_url()} cannot be reached ({problem}).\n"
              "Start it, or point LESSON_POSTGRES_URL at a server where you may create databases.",
              file=sys.stderr)
        return 2
    with throwaway_database("postgresql") as url, throwaway_database("postgresql") as legacy_url:
        print("Throw-away PostgreSQL databases (dropped at the end)")
        return _finish(run_walkthrough(dest, stop_after=stop_after, database_url=url, legacy_database_url=legacy_url))


def _finish(result):
    chain = " -> ".join(result.revisions) or "none"
    print(f"\nDone: steps 1-{result.completed_step} on {result.backend}; revisions {chain}")
    return 0
