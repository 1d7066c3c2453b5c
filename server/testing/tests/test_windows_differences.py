"""What differs on a student's Windows machine, tested where it is handled.

- SQLite URLs and read-only file URIs built from Windows paths (drive
  letters, backslashes, network shares), with ntpath's rules applied here.
- Console encodings: a Windows console or a redirected output may use a code
  page such as cp1252 or cp437, where most of Unicode has no place. The
  review's framed warning during `flask db migrate`, `pipenv run review` and
  `pipenv run status` must print there without a UnicodeEncodeError, even for
  a migration message in Chinese or a folder with accents.
- Line endings: files the lesson's tools write keep "\\n" on every OS.
"""
import ntpath
import os
import sqlite3
import subprocess
import sys
from pathlib import PureWindowsPath

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from testing.databases.database import in_instance_folder, read_only_engine, read_only_sqlite_uri, sqlite_url
from testing.maintainers.walkthrough import shown_paths

from .lesson_builds import copy_reference, reference_solution

STUDENT_HOME = r"C:\Users\Zoë Ng\Documents\schema-migrations"
# Not in cp1252 or cp437: the console cannot show these as they are.
MESSAGE = "Rename department to departments 部门"


# --- paths and URLs ---------------------------------------------------------


def test_sqlite_url_of_a_windows_path_reads_back_unchanged():
    path = PureWindowsPath(STUDENT_HOME, "server", "instance", "app.db")
    url = make_url(sqlite_url(path))
    assert (url.get_backend_name(), url.database) == ("sqlite", str(path))


def test_relative_sqlite_path_goes_to_the_instance_folder_with_windows_rules():
    server = ntpath.join(STUDENT_HOME, "server")
    assert make_url(in_instance_folder("sqlite:///app.db", server, paths=ntpath)).database == \
        ntpath.join(server, "instance", "app.db")
    # Absolute Windows paths, with a drive or on a share, are kept.
    for absolute in (r"D:\data\app.db", r"\\school\home\kai\app.db"):
        assert make_url(in_instance_folder(sqlite_url(absolute), server, paths=ntpath)).database == absolute


def test_read_only_uri_of_windows_paths():
    assert read_only_sqlite_uri(ntpath.join(STUDENT_HOME, "app.db"), windows=True) == \
        "file:///C:/Users/Zo%C3%AB%20Ng/Documents/schema-migrations/app.db?mode=ro"
    assert read_only_sqlite_uri(r"\\school\home\kai\app.db", windows=True) == \
        "file:////school/home/kai/app.db?mode=ro"


def test_read_only_engine_opens_a_file_whose_path_needs_escaping(tmp_path):
    """Spaces, # and %, and letters beyond ASCII, in a real SQLite file's path."""
    folder = tmp_path / "Zoë's lesson #1 100% 部门"
    folder.mkdir()
    path = folder / "app.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO employees VALUES (1, 'Kai Uri')")
    connection.close()
    engine, found = read_only_engine(sqlite_url(path))
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT name FROM employees")).scalars().all() == ["Kai Uri"]
            with pytest.raises(sa.exc.OperationalError, match="readonly"):
                connection.execute(sa.text("DELETE FROM employees"))
    finally:
        engine.dispose()
    assert found == path


# --- console encodings ------------------------------------------------------


def run_on_code_page(command, cwd, code_page):
    """Run a lesson command whose output goes to a console using this code page
    (PYTHONIOENCODING makes Python encode its output as that console would)."""
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL" and not name.startswith("FLASK_")}
    env["PYTHONIOENCODING"] = code_page
    finished = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
    stdout, stderr = (stream.decode(code_page) for stream in (finished.stdout, finished.stderr))
    assert "Traceback" not in stdout + stderr and "UnicodeEncodeError" not in stdout + stderr, stdout + stderr
    return finished.returncode, stdout, stderr


@pytest.fixture
def unedited_table_rename(request, tmp_path):
    """Step 3 with autogenerate's drop + create left as it is: the review's case.
    The migration's message is one a cp1252 or cp437 console cannot show."""
    copy = copy_reference(request, reference_solution(request, "sqlite"), tmp_path / "lesson", step=2)
    models = copy.server / "models.py"
    models.write_text(models.read_text(encoding="utf-8").replace(
        '__tablename__ = "department"', '__tablename__ = "departments"'), encoding="utf-8")
    return copy


@pytest.mark.parametrize("code_page", ["cp1252", "cp437"])
def test_framed_warning_prints_on_a_windows_code_page(unedited_table_rename, code_page):
    code, _, stderr = run_on_code_page([sys.executable, "-m", "flask", "db", "migrate", "-m", MESSAGE],
                                       unedited_table_rename.server, code_page)
    assert code == 0, stderr
    assert "STOP: this migration would DELETE DATA. Do not run `flask db upgrade` yet." in stderr
    assert "=" * 76 in stderr


def test_review_and_status_print_on_a_windows_code_page(unedited_table_rename, code_page="cp437"):
    lesson = unedited_table_rename
    subprocess.run([sys.executable, "-m", "flask", "db", "migrate", "-m", MESSAGE], cwd=lesson.server,
                   capture_output=True, check=True, timeout=180,
                   env={name: value for name, value in os.environ.items() if name != "DATABASE_URL"})
    code, stdout, _ = run_on_code_page([sys.executable, "-m", "flask", "lesson", "review"], lesson.server, code_page)
    assert code == 1, stdout  # data would be lost
    assert "Rename department to departments \\u90e8\\u95e8" in stdout
    assert "Data would be lost" in stdout
    code, stdout, _ = run_on_code_page([sys.executable, str(lesson.server / "testing" / "tools.py"), "status"],
                                       lesson.checkout, code_page)
    assert code == 0, stdout
    assert "[x] Step 2 " in stdout


# --- line endings -----------------------------------------------------------


def test_walkthrough_writes_files_with_newlines_only(request, tmp_path):
    """models.py and the edited revisions, as the walkthrough writes them.
    On Windows, text mode would turn every "\\n" into "\\r\\n"; Linux and
    macOS never add one, so the Windows runners of the Maintainers workflow
    are where this test can catch a change."""
    lesson = copy_reference(request, reference_solution(request, "sqlite"), tmp_path / "lesson")
    written = [lesson.server / "models.py", *sorted((lesson.server / "migrations" / "versions").glob("*.py"))]
    assert len(written) == 5
    for path in written:
        assert b"\r" not in path.read_bytes(), path


def test_walkthrough_shows_windows_paths_as_the_readme_does():
    """Alembic prints Windows paths with backslashes; the README shows `.../server/...`."""
    checkout = r"D:\a\_temp\lesson copy"
    output = (
        f"Creating directory {checkout}\\server\\migrations ...  done\r\n"
        f"Generating {checkout}\\server\\migrations\\versions\\65db64b00caf_initial_migration.py ...  done\r\n"
        "INFO  [alembic.runtime.migration] Running upgrade  -> 65db64b00caf, Initial migration.\r\n"
    )
    assert shown_paths(output, {checkout}, sep="\\") == [
        "Creating directory .../server/migrations ...  done",
        "Generating .../server/migrations/versions/65db64b00caf_initial_migration.py ...  done",
        "INFO  [alembic.runtime.migration] Running upgrade  -> 65db64b00caf, Initial migration.",
    ]
    posix = "Generating /tmp/x/server/migrations/versions/65db64b00caf_initial_migration.py ...  done\n"
    assert shown_paths(posix, {"/tmp/x"}) == [
        "Generating .../server/migrations/versions/65db64b00caf_initial_migration.py ...  done"]
