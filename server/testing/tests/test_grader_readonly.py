"""Grading never changes the checkout it grades.

Every file of the graded tree (its database included) is hashed before and
after a real `pytest` run, with bytecode writing switched ON as on a student's
machine (PYTHONDONTWRITEBYTECODE removed from the environment):

- in place: plain `pytest` in a copy of a finished lesson, as a student runs it;
- from a pristine grader: `pytest --lesson-root=<student checkout>` run from
  this repository, as an instructor or CodeGrade runs it, on a correct and on
  a broken submission (whose app.py would create tables if it were imported).

In place, pytest itself compiles the two files it imports before any of the
grader's code runs (server/testing/__init__.py and server/testing/conftest.py)
into server/testing/__pycache__/; nothing else may appear, and nothing at all
in the student's own folders.
"""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from testing.tests.lesson_builds import copy_reference, reference_solution

GRADER_ROOT = Path(__file__).resolve().parents[3]
# Compiled by pytest's own import of the grader's package and conftest.py (and
# of conftest.py at the root, which sends `pytest` in any folder to the grader),
# before conftest.py can switch bytecode off (see the module docstring).
PYTEST_OWN_BYTECODE = (  # the grader's conftest files and the plugin pytest.ini names (-p testing.options)
    "server/testing/__pycache__/__init__.", "server/testing/__pycache__/conftest.", "__pycache__/conftest.",
    "server/testing/__pycache__/options.",
)


def tree_state(root):
    """{relative path: sha256} for every file, and the set of folders."""
    files, folders = {}, set()
    for folder, dirnames, filenames in os.walk(root):
        relative_folder = Path(folder).relative_to(root)
        folders.update((relative_folder / name).as_posix() for name in dirnames)
        for name in filenames:
            path = Path(folder) / name
            files[(relative_folder / name).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files, folders


def changes(before, after):
    (files_before, folders_before), (files_after, folders_after) = before, after
    return {
        "added": sorted(set(files_after) - set(files_before)),
        "removed": sorted(set(files_before) - set(files_after)),
        "modified": sorted(p for p in files_before if p in files_after and files_before[p] != files_after[p]),
        "folders added": sorted(folders_after - folders_before),
        "folders removed": sorted(folders_before - folders_after),
    }


def run_pytest(cwd, *args):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "LESSON_ROOT", "LESSON_GRADE_DATABASE_URL", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )


def finished_lesson(request, dest):
    build = reference_solution(request, "sqlite")
    submission = copy_reference(request, build, dest)
    assert (submission.server / "instance" / "app.db").is_file()
    return submission.checkout


def test_grading_in_place_changes_nothing_but_pytests_own_bytecode(request, tmp_path):
    checkout = finished_lesson(request, tmp_path / "student")
    before = tree_state(checkout)
    process = run_pytest(checkout)
    assert process.returncode == 0, process.stdout
    assert "Score: 100/100 points" in process.stdout
    found = changes(before, tree_state(checkout))
    unexpected = [path for path in found["added"] if not path.startswith(PYTEST_OWN_BYTECODE)]
    assert unexpected == [], found
    assert found["removed"] == found["modified"] == found["folders removed"] == [], found
    assert set(found["folders added"]) <= {"server/testing/__pycache__", "__pycache__"}, found


def test_grading_from_a_pristine_grader_changes_nothing(request, tmp_path):
    checkout = finished_lesson(request, tmp_path / "student")
    before = tree_state(checkout)
    process = run_pytest(GRADER_ROOT, f"--lesson-root={checkout}")
    assert process.returncode == 0, process.stdout
    assert f"Score of {checkout}: 95/95 points" in process.stdout  # its own database counts only on its machine
    assert changes(before, tree_state(checkout)) == {
        "added": [], "removed": [], "modified": [], "folders added": [], "folders removed": [],
    }


def test_grading_a_broken_submission_changes_nothing(request, tmp_path):
    """Its app.py creates tables on import and revision 3 drops rows: the
    grader neither imports the one nor runs the other on the student's database."""
    checkout = finished_lesson(request, tmp_path / "student")
    server = checkout / "server"
    app_py = server / "app.py"
    app_py.write_text(app_py.read_text(encoding="utf-8") + "\nwith app.app_context():\n    db.create_all()\n",
                      encoding="utf-8")
    rename = next((server / "migrations" / "versions").glob("*_rename_department.py"))
    text = rename.read_text(encoding="utf-8")
    rename.write_text(text.replace("op.rename_table('department', 'departments')",
                                   "op.drop_table('department')\n    op.create_table('departments', "
                                   "sa.Column('id', sa.Integer(), primary_key=True))"), encoding="utf-8")
    before = tree_state(checkout)
    process = run_pytest(GRADER_ROOT, f"--lesson-root={checkout}")
    assert process.returncode == 1, process.stdout
    assert "changes tables behind Alembic's back" in process.stdout
    assert "Revision 3 (server/migrations/versions/" in process.stdout
    assert changes(before, tree_state(checkout)) == {
        "added": [], "removed": [], "modified": [], "folders added": [], "folders removed": [],
    }
