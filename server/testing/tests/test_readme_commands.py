"""Every command README.md shows works as the sentence around it says.

The walkthrough performs the marked code blocks. Every other command (code
spans in the prose, unmarked console blocks), as readme.commands() finds it,
has one line in PROOFS saying how it is proven:

- Run: run for real in a subprocess, in a fresh copy of a state where the
  command makes sense (the finished lesson, two heads, tables made with
  create_all, a half-applied SQLite upgrade, a class of two submissions...),
  on SQLite and PostgreSQL where a database is involved; then its exit code,
  its output and what it did are checked.
- Walkthrough: a `$ ` command of a marked block, so the walkthrough runs it.
- RunBy: a workflow or CI script runs it (on the platforms a test here lacks).
- ProvenBy: another test of the suite runs it.
- Exempt: impractical to run here (it installs software or pushes), with why.

A command in the README that has no line here fails the test; so does a line
whose command the README no longer shows. Commands written for PowerShell or
cmd are also checked for syntax (a lexer and patterns); the Windows jobs of
the Maintainers workflow run them for real.
"""
import importlib
import inspect
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import pytest
import sqlalchemy as sa
from pygments.lexers import BatchLexer, PowerShellLexer
from pygments.token import Error

from testing.databases.database import normalize_url, postgres_server_url, sqlite_url
from testing.lesson import readme
from testing.maintainers.walkthrough import REPO_ROOT, copy_starter, flask_environment

from ..maintainers.catalogue import Checkout
from ..maintainers.cohort_submissions import make_class
from .lesson_builds import LessonCopy, copy_reference, database_state, reference_solution
from .page_states import tree_digest
from .test_folders import pipfile_scripts, script_command

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


# --- the states a command runs in ----------------------------------------------------------


@dataclass
class Place:
    """A fresh copy of a state: where root commands run, the lesson in it, and
    the values that fill the README's placeholders (PATH, <failed revision id>...)."""

    root: Path
    lesson: Optional[LessonCopy]
    backend: str
    revisions: Tuple[str, ...] = ()
    fills: Dict[str, str] = field(default_factory=dict)
    env: Dict[str, str] = field(default_factory=dict)  # added to every command's environment


def lesson_at(step):
    def build(request, backend, folder):
        lesson = copy_reference(request, reference_solution(request, backend), folder / "lesson", step=step)
        return Place(lesson.checkout, lesson, backend, tuple(lesson.result.revisions))
    return build


finished = lesson_at(5)
after_step_4 = lesson_at(4)


def starter(request, backend, folder):
    checkout = copy_starter(folder / "lesson")
    return Place(checkout, LessonCopy(checkout, sqlite_url(checkout / "server" / "instance" / "app.db"), None), backend)


FORGED_GRADER = "the submission's own copy of the grader ran"


def grader_and_submission(request, backend, folder):
    """A pristine copy of the grader (the starter) and a finished submission beside
    it, whose own copy of the grader must not be the one that runs."""
    place = finished(request, backend, folder)
    (place.lesson.server / "testing" / "codegrade_test.py").write_text(
        f"def test_own_grader():\n    raise AssertionError({FORGED_GRADER!r})\n", encoding="utf-8")
    grader = copy_starter(folder / "grader")
    return Place(grader, place.lesson, backend, place.revisions, {"PATH": str(place.lesson.checkout),
                                                                   "/path/to/submission": str(place.lesson.checkout)})


def two_heads(request, backend, folder):
    """The finished lesson plus a revision made elsewhere on top of revision 3: two tips."""
    place = finished(request, backend, folder)
    Checkout(place.root, place.revisions).add_revision("0b0b0b0b0b0b", place.revisions[2], "another branch", "pass", "pass")
    place.revisions += ("0b0b0b0b0b0b",)
    return place


def tables_made_by_create_all(request, backend, folder):
    """Step 4's files, and a database whose tables db.create_all() made (no alembic_version)."""
    place = after_step_4(request, backend, folder)
    engine = sa.create_engine(normalize_url(place.lesson.database_url))
    try:
        with engine.begin() as connection:
            for table in sa.inspect(connection).get_table_names():
                connection.execute(sa.text(f'DROP TABLE "{table}"'))
    finally:
        engine.dispose()
    made = python_in(place, "from app import app\nfrom models import db\nwith app.app_context(): db.create_all()\n")
    assert made.returncode == 0, made.stdout
    return place


def half_applied_on_sqlite(request, backend, folder):
    """Step 3 on SQLite where the upgrade failed after the rename ran, and the
    file was then fixed: the database already looks like the fixed revision."""
    place = lesson_at(2)(request, backend, folder)
    server = place.lesson.server
    models = server / "models.py"
    models.write_text(models.read_text(encoding="utf-8").replace('"department"', '"departments"'), encoding="utf-8")
    mistake = "op.execute('UPDATE no_such_table SET x = 1')"
    script = Checkout(place.root, place.revisions).add_revision(
        "0f0f0f0f0f0f", place.revisions[1], "rename department", f"op.rename_table('department', 'departments')\n{mistake}",
        "op.rename_table('departments', 'department')")
    failed = run_flask(place, "db", "upgrade")
    assert failed.returncode == 1 and "no such table: no_such_table" in failed.stdout, failed.stdout
    half = database_state(place.lesson.database_url)  # as the README says: renamed, yet not recorded
    assert "departments" in half.tables and half.versions == [place.revisions[1]], half
    script.write_text(script.read_text(encoding="utf-8").replace(mistake, "pass"), encoding="utf-8")  # the fix
    place.fills["<failed revision id>"] = "0f0f0f0f0f0f"
    return place


def committed_lesson(request, backend, folder):
    """The finished lesson in a Git repository whose first commit is the starter as forked."""
    place = finished(request, backend, folder)
    git(place, "init", "-q")
    git(place, "add", "-A", "--", ".", ":!server/models.py", ":!server/migrations")
    git(place, "commit", "-qm", "starter")
    return place


def committed_then_file_lost(request, backend, folder):
    place = committed_lesson(request, backend, folder)
    run_readme(place, 'git add server/models.py server/migrations')
    run_readme(place, 'git commit -m "Schema migrations lesson"')
    lost = sorted((place.lesson.server / "migrations" / "versions").glob("*.py"))[-1]
    lost.unlink()
    place.fills["lost file"] = str(lost)
    return place


_COHORT_CACHE = pytest.StashKey[Path]()


def class_of_two(request, backend, folder):
    """A copy of the grader holding submissions/ (two students) and roster.txt naming them."""
    build = reference_solution(request, "sqlite")
    grader = copy_starter(folder / "grader")
    made = make_class(build.snapshots[5].checkout, build.revisions, grader / "submissions", 2)
    (grader / "roster.txt").write_text("# two students\n" + "".join(f"{path.name},submissions/{path.name}\n"
                                                                  for path, _ in made), encoding="utf-8")
    # One cache for the session's cohort runs (results are keyed by content), out of the user's ~/.cache.
    cache = request.config.stash.setdefault(_COHORT_CACHE, request.getfixturevalue("tmp_path_factory").mktemp("cache"))
    return Place(grader, None, backend, fills={"SOURCES...": "submissions/"}, env={"XDG_CACHE_HOME": str(cache)})


def scripts_folder(request, backend, folder):
    """Where pip puts a user's scripts (as the README's `python -c ...` prints it)."""
    place = repository(request, backend, folder)
    place.fills["<that folder>"] = str(folder / "home" / ".local" / "bin")
    return place


def repository(request, backend, folder):
    """A pristine copy of the repository (the starter), for the maintainers' tools."""
    return Place(copy_starter(folder / "repository"), None, backend)


# --- running a README command ---------------------------------------------------------------

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Student", "GIT_AUTHOR_EMAIL": "student@example.com",
                "GIT_COMMITTER_NAME": "Student", "GIT_COMMITTER_EMAIL": "student@example.com"}


def environment(place, extra=()):
    # As in a student's terminal: no DATABASE_URL (a PostgreSQL copy names its database in server/.env).
    env = flask_environment()
    for name in ("LESSON_ROOT", "LESSON_GRADE_DATABASE_URL", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    env.update(GIT_IDENTITY, **place.env)
    env.update(extra)
    return env


def run_flask(place, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=place.lesson.server, env=environment(place),
                          input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)


def python_in(place, code):
    return subprocess.run([sys.executable, "-c", code], cwd=place.lesson.server, env=environment(place),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)


def git(place, *args):
    subprocess.run(["git", *args], cwd=place.root, env=environment(place), check=True, capture_output=True, timeout=60)


def as_run(place, text, extra_args=()):
    """(argv, cwd, extra environment) of a README command, as a student's terminal would run it."""
    fills = {"postgresql://...": postgres_server_url(), **place.fills}
    for placeholder, value in fills.items():
        text = text.replace(placeholder, value)
    words = shlex.split(text)
    env = {}
    while words and readme.ASSIGNMENT.match(words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if words[:3] in (["python", "-m", "pipenv"], ["python3", "-m", "pipenv"]):
        words = ["pipenv"] + words[3:]
    words += list(extra_args)
    program, args = words[0], words[1:]
    if program == "flask":
        return [sys.executable, "-m", "flask", *args], place.lesson.server, env
    if program == "pipenv" and args[:1] == ["run"] and args[1] in pipfile_scripts():
        # `pipenv run` would make a virtualenv for the copy: the Pipfile's script line instead.
        return script_command(args[1], *args[2:]), place.root, env
    if program == "pipenv" and args[:1] == ["run"]:  # a program of the environment, as typed inside it
        argv, cwd, more = as_run(place, shlex.join(args[1:]))
        return argv, cwd, {**env, **more}
    if program == "pytest":
        return [sys.executable, "-m", "pytest", *args], place.root, env
    if program in ("python", "python3"):
        return [sys.executable, *args], place.root, env
    if program == "git":
        return ["git", *args], place.root, env
    if program in ("cd", "export"):  # shell builtins: bash runs them, then shows the folder and PATH it left
        return ["bash", "-c", text + '\nprintf "%s\\n%s\\n" "$PWD" "$PATH"'], place.root, env
    raise AssertionError(f"no way to run {text!r} here: prove it another way in PROOFS")


def run_readme(place, text, extra_args=(), stdin=None):
    argv, cwd, env = as_run(place, text, extra_args)
    finished = subprocess.run(argv, cwd=cwd, env=environment(place, env), input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=600)
    return finished.returncode, finished.stdout


# --- what the commands did -----------------------------------------------------------------


def versions_of(place):
    return database_state(place.lesson.database_url).versions


def at_revision(position):
    """The database is now at the lesson's revision `position` (1-based)."""
    def check(place, output):
        assert versions_of(place) == [place.revisions[position - 1]], output
    return check


def revision_files(place):
    return {path.name: path.read_text(encoding="utf-8")
            for path in (place.lesson.server / "migrations" / "versions").glob("*.py")}


def new_revision_file(place, before):
    new = {name: text for name, text in revision_files(place).items() if name not in before}
    assert len(new) == 1, new
    return new.popitem()


def creates_an_empty_revision(place, output, before):
    name, text = new_revision_file(place, before)
    assert name.endswith("_message.py") and f"down_revision = '{place.revisions[3]}'" in text, text
    assert "def upgrade():\n    pass" in text and "def downgrade():\n    pass" in text, text


def lists_both_tips(place, output):
    tips = {line.split()[0] for line in output.splitlines() if line.endswith("(head)")}
    assert tips == {place.revisions[3], place.revisions[4]}, output


def merges_both_tips(place, output, before):
    _, text = new_revision_file(place, before)
    parents = re.search(r"^down_revision = \((.*)\)$", text, re.M).group(1)
    assert {name.strip(" '") for name in parents.split(",")} == {place.revisions[3], place.revisions[4]}, text


def applies_both_branches(place, output):
    assert f"-> {place.revisions[3]}, rename address" in output and f"-> {place.revisions[4]}, another branch" in output
    assert len(versions_of(place)) == 1 and versions_of(place)[0] not in place.revisions  # the merge revision


def records_without_running(place, output, before):
    state = database_state(place.lesson.database_url)
    assert state.versions == [place.revisions[3]], output
    assert {table: list(columns) for table, columns in state.tables.items() if table != "alembic_version"} == \
        {table: list(columns) for table, columns in before.tables.items()}, "stamp changed the tables"
    assert "Running upgrade" not in output, output


def stamps_the_fixed_revision(place, output):
    code, current = run_readme(place, "flask db current")
    assert code == 0 and current.strip().endswith("0f0f0f0f0f0f (head)"), current


def only_alembic_version_left(place, output):
    state = database_state(place.lesson.database_url)
    assert set(state.tables) == {"alembic_version"} and state.versions == [], state


def stages_the_lesson(place, output):
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=place.root, capture_output=True, text=True,
                            check=True).stdout.split()
    assert "server/models.py" in staged, staged
    assert len([name for name in staged if name.startswith("server/migrations/versions/")]) == 4, staged


def commits_the_lesson_but_not_the_database(place, output):
    files = subprocess.run(["git", "ls-files"], cwd=place.root, capture_output=True, text=True, check=True).stdout.split()
    assert "server/models.py" in files and len([name for name in files if name.startswith("server/migrations/versions/")]) == 4
    assert not [name for name in files if name.startswith("server/instance") or name.endswith(".db")], files


def puts_the_file_back(place, output):
    assert Path(place.fills["lost file"]).is_file()


def grades_without_writing(place, output, before):
    assert re.search(r"^Score of .*: 95/95 points", output, re.M) and FORGED_GRADER not in output, output
    assert tree_digest(place.lesson.checkout) == before, "grading wrote into the graded checkout"


def writes_the_junit_report(place, output, before):
    grades_without_writing(place, output, before)
    report = (place.root / "report.xml").read_text(encoding="utf-8")
    assert report.count("<testcase ") == 9 and "<failure" not in report, report


def gradebook_of_two(out):
    def check(place, output):
        rows = (place.root / out / "gradebook.csv").read_text(encoding="utf-8").splitlines()
        assert len(rows) == 3 and rows[0].startswith("student,id,email,score,max_score,percent,status"), rows
        assert {row.split(",")[0] for row in rows[1:]} == {"student-001", "student-002"}, rows
    return check


def shard_of_one(out):
    def check(place, output):
        rows = (place.root / out / "gradebook.csv").read_text(encoding="utf-8").splitlines()
        assert len(rows) == 2, rows
    return check


def collects_the_suite(place, output):
    assert re.search(r"^\d+ tests collected", output, re.M) or re.search(r"collected (\d+) items", output), output
    assert "testing/tests/test_walkthrough.py" in output, output


def collects_only_golden(place, output):
    collected = re.findall(r"^(?:server/)?(testing/tests/\w+\.py)::(.*)$", output, re.M)
    assert "testing/tests/test_golden_verdicts.py" in {path for path, _ in collected}, output
    assert all("golden" in (path + name).lower() for path, name in collected), output  # what -k selects
    golden = (REPO_ROOT / "server" / "testing" / "tests" / "test_golden_verdicts.py").read_text(encoding="utf-8")
    assert "LESSON_UPDATE_GOLDEN" in golden


def a_checklist_and_what_next(place, output):
    assert all(f"Step {step}" in output for step in range(1, 6)) and "Next" in output, output


def a_checklist_where_the_database_is(place, output):
    a_checklist_and_what_next(place, output)
    assert place.revisions[2] in output, output


def prints_a_scripts_folder(place, output):
    folder = Path(output.strip())
    assert folder.is_absolute() and folder.name in ("bin", "Scripts"), output


def server_holds_the_app(place, output):
    folder = Path(output.splitlines()[0])
    assert folder == place.root / "server" and (folder / "app.py").is_file() and (folder / ".flaskenv").is_file()


def puts_the_folder_first_on_path(place, output):
    assert output.splitlines()[1] == place.fills["<that folder>"] + ":" + os.environ["PATH"], output


# --- how each command is proven -------------------------------------------------------------

BOTH = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Run:
    """Run the command in a fresh copy of `state`; check exit code, output and effect."""

    state: Callable
    expect: str = ""  # a regular expression its output must contain
    code: int = 0
    check: Optional[Callable] = None  # check(place, output) or, with `before_check`, check(place, output, before)
    before_check: Optional[Callable] = None  # what to remember before the command runs
    after: Tuple[str, ...] = ()  # README commands to run first, in order
    extra_args: Tuple[str, ...] = ()  # only to keep a long tool short; the reason is in the table
    backends: Tuple[str, ...] = ("sqlite",)
    stdin: Optional[str] = None


@dataclass(frozen=True)
class Walkthrough:
    """A `$ ` command of the README's marked blocks: the walkthrough runs it."""


@dataclass(frozen=True)
class RunBy:
    """A line of a workflow or script (path from the repository root) runs it."""

    path: str
    line: str  # a regular expression one line must match


@dataclass(frozen=True)
class ProvenBy:
    """A test of this suite runs it; its source must mention `words`."""

    module: str
    test: str
    words: str


@dataclass(frozen=True)
class Exempt:
    reason: str


PROOFS = {
    # Quick start and setup.
    "pipenv install && pipenv run status": RunBy(".github/workflows/maintainers.yml", r"run: pipenv install && pipenv run status$"),
    "pipenv install --dev && pipenv run selftest": RunBy(".github/workflows/maintainers.yml", r"run: python -m pipenv run selftest$"),
    "python3 --version": Run(repository, expect=r"^Python 3\.\d+\.\d+"),
    "py --version": Exempt("the Windows launcher `py`: Windows only; the Windows runners use setup-python's `python`"),
    "py -m pip install --user pipenv": Exempt("installs pipenv into a Windows user's Python; the Maintainers workflow "
                                              "installs it the same way with `python -m pip install --user pipenv`"),
    "python3 -m pip install --user pipenv": Exempt("installs pipenv into the user's Python (the Maintainers workflow "
                                                   "does, as `python -m pip install --user pipenv`)"),
    "brew install pipenv": Exempt("installs software with Homebrew on macOS"),
    "sudo apt install pipx": Exempt("installs a Debian package as root"),
    "pipx install pipenv": Exempt("installs software into the user's pipx environments"),
    "pipx ensurepath": Exempt("changes the user's shell startup files"),
    "python -m pipenv": RunBy(".github/workflows/maintainers.yml", r"run: python -m pipenv install --dev --deploy"),
    "python3 -m pipenv": Exempt("`python -m pipenv` (run by the Maintainers workflow) under the name macOS and Linux give Python"),
    "py -m pipenv": Exempt("`python -m pipenv` (run by the Maintainers workflow) under the Windows launcher's name"),
    'python -c "import sysconfig; print(sysconfig.get_path(\'scripts\', sysconfig.get_preferred_scheme(\'user\')))"':
        Run(repository, check=prints_a_scripts_folder),
    'export PATH="<that folder>:$PATH"': Run(scripts_folder, check=puts_the_folder_first_on_path),
    '[Environment]::SetEnvironmentVariable("Path", [Environment]::GetEnvironmentVariable("Path", "User") + ";<that folder>", "User")':
        RunBy(".github/workflows/maintainers.yml", r"python server/testing/lesson/readme.py powershell"),
    "pipenv install": RunBy(".github/workflows/maintainers.yml", r"run: pipenv install --deploy$"),
    "pipenv shell": Exempt("starts an interactive shell; the workflows run the same commands through `pipenv run`"),
    "cd server": Run(repository, check=server_holds_the_app),
    "pipenv run status": Run(starter, expect="flask db init", check=a_checklist_and_what_next),
    "flask run": ProvenBy("test_page", "test_flask_run_in_server_serves_the_page_at_the_root", '"flask", "run"'),
    "pipenv run page": ProvenBy("test_page", "test_pipenv_run_page_shows_another_checkout", '"page"'),
    "python -m pip install --user pipenv": RunBy(".github/workflows/maintainers.yml", r"run: python -m pip install --user pipenv$"),
    "python -m pipenv install": RunBy(".github/workflows/maintainers.yml", r"run: python -m pipenv install --dev --deploy"),
    "python -m pipenv run status": Run(starter, expect="flask db init", check=a_checklist_and_what_next),
    # The steps.
    "flask db migrate": Run(finished, code=1, expect=r"Target database is not up to date", backends=BOTH),
    "flask db upgrade": (Run(finished, expect=r"Running upgrade \w+ -> \w+, rename address", check=at_revision(4), backends=BOTH),
                         Run(two_heads, after=('flask db merge heads -m "merge"',), check=applies_both_branches)),
    # Offline mode writes the SQL and touches no database: the finished lesson stays at revision 3.
    "flask db upgrade --sql": Run(finished, expect=r"ALTER TABLE department RENAME TO departments", check=at_revision(3),
                                  backends=BOTH),
    "flask db downgrade": Run(after_step_4, expect=r"Running downgrade \w+ -> \w+, rename address", check=at_revision(3),
                              backends=BOTH),
    "flask db downgrade -- -1": Run(after_step_4, expect=r"Running downgrade \w+ -> \w+, rename address",
                                    check=at_revision(3), backends=BOTH),
    "flask db current": Walkthrough(),
    "flask shell": Walkthrough(),
    "flask db init": Walkthrough(),
    "flask lesson review": Walkthrough(),
    "flask db history --indicate-current": Walkthrough(),
    "git add server/models.py server/migrations": Run(committed_lesson, check=stages_the_lesson),
    'git commit -m "Schema migrations lesson"': Run(committed_lesson, after=("git add server/models.py server/migrations",),
                                                   check=commits_the_lesson_but_not_the_database),
    "git push": Exempt("needs the student's fork on GitHub; grade.yml grades what a push sends"),
    # Check your work.
    "pytest": ProvenBy("test_folders", "test_plain_pytest_grades_from_any_folder", "Score: 100/100 points"),
    "pipenv run pytest": Run(finished, expect=r"^Score: 100/100 points"),
    "pipenv run grade": Run(finished, expect=r"^Score: 100/100 points"),
    "pytest --lesson-database=postgresql://...": Run(finished, expect=r"replayed on postgresql", backends=("postgresql",)),
    "flask lesson status": Run(finished, check=a_checklist_where_the_database_is),
    # Troubleshooting.
    "flask db stamp head": Run(tables_made_by_create_all, check=records_without_running,
                               before_check=lambda place: database_state(place.lesson.database_url), backends=BOTH),
    "git checkout -- server/migrations": Run(committed_then_file_lost, check=puts_the_file_back),
    "git clean": Exempt("named only as one way a checkout loses its database; it deletes the reader's untracked files"),
    "flask lesson reset STEP": ProvenBy("test_reset", "test_reset_asks_first_and_changes_nothing_when_refused",
                                        '"flask", "lesson", "reset"'),
    "pipenv run reset STEP": Run(repository, extra_args=("--help",), expect=r"Usage: pipenv run reset \[OPTIONS\] STEP"),
    'flask db revision -m "message"': Run(after_step_4, check=creates_an_empty_revision, before_check=revision_files,
                                          backends=BOTH),
    "flask db heads": Run(two_heads, check=lists_both_tips),
    'flask db merge heads -m "merge"': Run(two_heads, check=merges_both_tips, before_check=revision_files),
    "flask db downgrade base": ProvenBy("test_walkthrough", "test_downgrade_to_base_leaves_only_alembic_version",
                                        '"downgrade", "base"'),
    "createdb -h localhost -U postgres migrations_lesson": Exempt(
        "creates a database on the student's own PostgreSQL server; the suite makes its throw-away databases with "
        "the same CREATE DATABASE"),
    "flask db stamp <failed revision id>": Run(half_applied_on_sqlite, check=stamps_the_fixed_revision),
    # Step 10 (Going further).
    "flask --env-file legacy.env db upgrade": ProvenBy(
        "test_going_further", "test_tables_of_an_older_revision_are_stamped_there_then_upgraded_with_their_rows",
        'legacy_flask(root, "db", "upgrade")'),
    # For instructors and maintainers.
    "pipenv run selftest": Run(repository, extra_args=("--collect-only", "-q"), check=collects_the_suite),  # collects: the suite cannot run itself
    "pipenv install --dev": RunBy(".ci/run", r'"\$\{pipenv\[@\]\}" install --dev --deploy'),
    "pytest server/testing/tests": ProvenBy("test_folders", "test_the_project_suite_runs_when_asked_for_by_path",
                                            "server/testing/tests"),
    "pipenv run walkthrough": RunBy(".github/workflows/maintainers.yml", r"run: pipenv run walkthrough "),
    "LESSON_ROOT=PATH pytest": Run(grader_and_submission, check=grades_without_writing,
                                   before_check=lambda place: tree_digest(place.lesson.checkout)),
    "pytest --lesson-root=/path/to/submission --junitxml=report.xml": Run(
        grader_and_submission, check=writes_the_junit_report, before_check=lambda place: tree_digest(place.lesson.checkout)),
    "pytest --lesson-root=PATH": Run(grader_and_submission, check=grades_without_writing,
                                     before_check=lambda place: tree_digest(place.lesson.checkout)),
    "LESSON_UPDATE_GOLDEN=1 pipenv run selftest -k golden": Run(repository, extra_args=("--collect-only", "-q"),
                                                                check=collects_only_golden),
    ".ci/run": Exempt("continuous integration itself: installs the environment and runs the whole self-test, this test included"),
    ".ci/check-pythons": Exempt("installs the lock on every Python the machine has, minutes each"),
    ".ci/lock": Exempt("re-locks Pipfile.lock from the package index"),
    "pipenv run benchmark": Run(repository, extra_args=("--help",), expect=r"usage: pipenv run benchmark"),
    "pipenv run page --root PATH": ProvenBy("test_page", "test_pipenv_run_page_shows_another_checkout", '"--root"'),
    "pipenv run page --screenshots docs": ProvenBy("test_page", "test_the_readme_pictures_of_the_page_are_made_by_the_screenshot_tool",
                                                   "pipenv run page --screenshots docs"),
    "apt-get install chromium": RunBy(".ci/run", r"apt-get install -y -qq chromium"),
    "pipenv run production-benchmark": Run(repository, extra_args=("--help",), expect=r"usage: pipenv run production-benchmark"),
    "pipenv run page-benchmark": Run(repository, extra_args=("--help",), expect=r"usage: pipenv run page-benchmark"),
    # GitHub Classroom and CodeGrade.
    'pytest --lesson-classroom="$GITHUB_ENV"': ProvenBy(
        "test_grading_platforms", "test_classroom_and_codegrade_give_the_graders_own_points", "--lesson-classroom="),
    "git clone --depth 1 https://github.com/YOUR-ORGANIZATION/YOUR-LESSON.git ~/lesson-grader": Exempt(
        "clones the instructor's own copy from GitHub onto CodeGrade's machine"),
    "cd ~/lesson-grader && python3 -m pip install --user pipenv && python3 -m pipenv install --deploy": Exempt(
        "installs pipenv and the lock on CodeGrade's machine, as the Maintainers workflow does on its runners"),
    'cd ~/lesson-grader && python3 -m pipenv run pip install "cg-pytest-reporter==1!1.1.3"': ProvenBy(
        "test_grading_platforms", "test_classroom_and_codegrade_give_the_graders_own_points", "codegrade_python"),
    'cd ~/lesson-grader && PYTHONDONTWRITEBYTECODE=1 python3 -m pipenv run pytest "--lesson-root=$OLDPWD"': ProvenBy(
        "test_grading_platforms", "test_classroom_and_codegrade_give_the_graders_own_points", "grade(codegrade_python"),
    'cd ~/lesson-grader && PYTHONDONTWRITEBYTECODE=1 python3 -m pipenv run pytest "--lesson-root=$OLDPWD" '
    '"--junitxml=$CG_JUNIT_XML_LOCATION"': ProvenBy(
        "test_grading_platforms", "test_classroom_and_codegrade_give_the_graders_own_points", "grade(sys.executable"),
    # Grading a whole class.
    "pipenv run cohort SOURCES...": Run(class_of_two, check=gradebook_of_two("cohort-report")),
    "pipenv run cohort submissions/": Run(class_of_two, check=gradebook_of_two("cohort-report")),
    "pipenv run cohort roster.txt --out cohort-report/week-3": Run(class_of_two,
                                                                   check=gradebook_of_two("cohort-report/week-3")),
    "git clone --depth 1": RunBy("server/testing/instructor/cohort_sources.py", r'"git", "clone", "--quiet", "--depth", "1"'),
    "pipenv run cohort roster.txt --shard 1/2 --out cohort-report/shard-1": Run(
        class_of_two, check=shard_of_one("cohort-report/shard-1")),
    "pipenv run cohort roster.txt --shard 2/2 --out cohort-report/shard-2": Run(
        class_of_two, check=shard_of_one("cohort-report/shard-2")),
    "pipenv run cohort --merge cohort-report/shard-1 cohort-report/shard-2 --out cohort-report/week-3": Run(
        class_of_two, after=("pipenv run cohort roster.txt --shard 1/2 --out cohort-report/shard-1",
                             "pipenv run cohort roster.txt --shard 2/2 --out cohort-report/shard-2"),
        check=gradebook_of_two("cohort-report/week-3")),
    "pipenv run cohort": ProvenBy("test_grader_cleanup", "test_a_cohort_run_stopped_mid_replay_removes_what_it_made",
                                  '"cohort"'),
    "pipenv run cohort-sample": Exempt("grades a generated class of 17 and rewrites docs/cohort-sample/ and the README"),
    "pipenv run cohort-benchmark": Run(repository, extra_args=("--help",), expect=r"usage: pipenv run cohort-benchmark"),
}


# --- the tests ---------------------------------------------------------------------------------

COMMANDS = readme.commands(README)


def proofs(kind):
    """[(command, proof)] of one kind; a command the README uses in several senses has a tuple of proofs."""
    return [(text, proof) for text, given in PROOFS.items()
            for proof in (given if isinstance(given, tuple) else (given,)) if isinstance(proof, kind)]


RUNS = [pytest.param(text, proof, backend, id=f"{text}-{backend}" + (f"-{index}" if index else ""))
        for text, given in PROOFS.items()
        for index, proof in enumerate(given if isinstance(given, tuple) else (given,)) if isinstance(proof, Run)
        for backend in proof.backends]
USAGE_ERROR = re.compile(r"^(Error: (No such option|No such command|Got unexpected extra argument|Missing argument|"
                         r"Invalid value)|.*error: (unrecognized arguments|the following arguments are required))", re.M)


def unproven(commands, proofs):
    return [f"{command.where()}: `{command.text}`" for command in commands if command.text not in proofs]


def test_every_readme_command_has_a_proof():
    missing = unproven(COMMANDS, PROOFS)
    assert not missing, ("README commands that nothing proves; add a line for each to PROOFS in "
                         "test_readme_commands.py:\n" + "\n".join(missing))
    stale = sorted(set(PROOFS) - {command.text for command in COMMANDS})
    assert not stale, f"PROOFS lists commands the README no longer shows: {stale}"


def test_a_new_command_in_the_prose_is_caught():
    text = README.replace("`flask db heads` lists the tips.", "`flask db heads --verbose` lists the tips.", 1)
    assert text != README
    assert unproven(readme.commands(text), PROOFS) == [
        f"README.md line {next(c.line for c in COMMANDS if c.text == 'flask db heads' and c.section == 'Troubleshooting')}"
        " (Troubleshooting): "
        "`flask db heads --verbose`"]


def test_the_reader_finds_commands_across_lines_and_skips_names():
    texts = {command.text for command in COMMANDS}
    assert "pytest --lesson-root=PATH" in texts  # a code span broken over two lines
    assert "pipenv run cohort submissions/" in texts  # a console line, its comment left out
    assert not {"flask", "pipenv", "pipenv run", "flask db", "flask db ..."} & texts
    assert not [command for command in COMMANDS if "walkthrough:" in command.context]
    # The marked blocks are the walkthrough's, not read here: step 1's `$ flask db init` is not listed there.
    marked_init = next(block for block in readme.parse_readme(README) if "$ flask db init" in block.text)
    assert not [command for command in COMMANDS if command.line == marked_init.line + 2]


def test_the_exemptions_stay_few_and_say_why():
    exempt = {text: proof.reason for text, proof in proofs(Exempt)}
    assert len(exempt) <= 20, exempt  # a cap, so that exempting stays the exception
    assert all(len(reason.split()) >= 4 for reason in exempt.values()), exempt


def walkthrough_commands():
    found = set()
    for block in readme.parse_readme(README):
        if block.kind in ("run", "refused"):
            found |= {command for command, _ in readme.console_commands(block)}
        elif block.kind == "shell":
            found.add(readme.shell_session(block)[0])
    return found


@pytest.mark.parametrize("text", [text for text, _ in proofs(Walkthrough)])
def test_the_walkthrough_runs_it(text):
    assert text in walkthrough_commands()


@pytest.mark.parametrize("text, proof", proofs(RunBy))
def test_a_workflow_or_script_runs_it(text, proof):
    lines = (REPO_ROOT / proof.path).read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if re.search(proof.line, line.strip())], f"no line of {proof.path} matches {proof.line!r}"


@pytest.mark.parametrize("text, proof", proofs(ProvenBy))
def test_another_test_runs_it(text, proof):
    test = getattr(importlib.import_module(f"testing.tests.{proof.module}"), proof.test, None)
    assert callable(test), f"{proof.module}.{proof.test} does not exist"
    assert proof.words in inspect.getsource(test), f"{proof.module}.{proof.test} no longer mentions {proof.words!r}"


@pytest.mark.parametrize("text, proof, backend", RUNS, indirect=["backend"])
def test_the_command_does_what_the_readme_says(request, text, proof, backend, tmp_path):
    place = proof.state(request, backend, tmp_path)
    for earlier in proof.after:
        code, output = run_readme(place, earlier)
        assert code == 0, f"`{earlier}` (run first) exited {code}:\n{output}"
    before = proof.before_check(place) if proof.before_check else None
    code, output = run_readme(place, text, proof.extra_args, proof.stdin)
    assert "Traceback" not in output, output
    assert not USAGE_ERROR.search(output), f"`{text}` is a usage error:\n{output}"
    assert code == proof.code, f"`{text}` exited {code}, expected {proof.code}:\n{output}"
    if proof.expect:
        assert re.search(proof.expect, output, re.M), f"`{text}` did not print {proof.expect!r}:\n{output}"
    if proof.check:
        proof.check(*((place, output, before) if proof.before_check else (place, output)))


def test_a_usage_error_is_seen(request, tmp_path):
    """What the README once said: click reads the -1 of `flask db downgrade -1` as an option."""
    place = after_step_4(request, "sqlite", tmp_path)
    code, output = run_readme(place, "flask db downgrade -1")
    assert code == 2 and USAGE_ERROR.search(output), output
    assert versions_of(place) == [place.revisions[3]]


# --- commands for PowerShell and cmd ----------------------------------------------------------

SHELLS = {"powershell": PowerShellLexer, "cmd": BatchLexer}
CLOSING = {"(": ")", "[": "]", "{": "}"}


def syntax_problems(text, shell):
    """Why a PowerShell or cmd command would not parse: the shell's lexer (pygments)
    finds no error token, brackets and quotes close, and no bash-only form is used."""
    problems = [f"cannot read {value!r}" for token, value in SHELLS[shell]().get_tokens(text) if token in Error]
    stack, quote = [], None
    for character in text:
        if quote:
            quote = None if character == quote else quote
        elif character in "\"'":
            quote = character
        elif character in CLOSING:
            stack.append(CLOSING[character])
        elif character in CLOSING.values():
            if not stack or stack.pop() != character:
                problems.append(f"unbalanced {character!r}")
    if quote:
        problems.append(f"unclosed {quote}")
    problems += [f"unclosed bracket (expected {closing!r})" for closing in stack]
    bash_only = {r"^export\s": "export", r"\$(?!env:)[A-Za-z_]": "a bash $VARIABLE", r"(^|\s)~/": "~/ for home",
                 r"\\$": "a trailing \\ to continue the line"}
    if shell == "powershell":
        bash_only[r"&&|\|\|"] = "&& or || (not in Windows PowerShell 5)"
    problems += [f"uses {what}" for pattern, what in bash_only.items() if re.search(pattern, text)]
    return problems


SHELL_COMMANDS = [command for command in COMMANDS if command.shell != "bash"]


def test_the_readme_marks_its_powershell_commands():
    assert {command.text.split("(")[0] for command in SHELL_COMMANDS if command.shell == "powershell"} >= {
        "[Environment]::SetEnvironmentVariable"}


@pytest.mark.parametrize("command", SHELL_COMMANDS, ids=lambda command: f"{command.shell}-line-{command.line}")
def test_shell_specific_command_parses(command):
    assert syntax_problems(command.text, command.shell) == []


@pytest.mark.parametrize("broken, problem", (
    ('[Environment]::SetEnvironmentVariable("Path", "x", "User"', "unclosed bracket"),
    ('[Environment]::SetEnvironmentVariable("Path, "x", "User")', "unclosed \""),
    ('[Environment]::SetEnvironmentVariable("Path", "$PATH;x", "User")', "a bash $VARIABLE"),
    ("pipenv install && pipenv run status", "&& or ||"),
))
def test_a_broken_powershell_command_is_caught(broken, problem):
    assert any(problem in found for found in syntax_problems(broken, "powershell")), syntax_problems(broken, "powershell")
