"""`pipenv run status` / `flask lesson status` at the points a student meets it.

Each state is a copy of the reference walkthrough after some step, with the
student's own database; the status runs as a real process and only reads.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from testing.maintainers.walkthrough import copy_starter

from ..maintainers.catalogue import Checkout
from .lesson_builds import copy_reference, reference_solution

REPO = Path(__file__).resolve().parents[3]
TOOLS = REPO / "server" / "testing" / "tools.py"


def status(root):
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    run = subprocess.run(
        [sys.executable, str(TOOLS), "status", "--root", str(root)],
        capture_output=True, text=True, env=environment, timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Traceback" not in output, output
    return output


def checked_steps(output):
    return [step for step in range(1, 6) if f"[x] Step {step} " in output]


def next_section(output):
    return output.split("\nNext: ", 1)[1]


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_starter_points_to_flask_db_init(tmp_path):
    checkout = copy_starter(tmp_path / "starter")
    output = status(checkout)
    assert checked_steps(output) == []
    assert "flask db init" in next_section(output)


def test_after_step_2_the_next_step_is_the_table_rename(request, backend, tmp_path):
    copy = copy_reference(request, reference_solution(request, backend), tmp_path / "c", step=2)
    output = status(copy.checkout)
    assert checked_steps(output) == [1, 2]
    assert "Step 3" in next_section(output)
    assert "employees: 2 rows" in output and "department: 2 rows" in output


def test_an_unedited_rename_waiting_to_be_applied_is_flagged(request, backend, tmp_path):
    copy = copy_reference(request, reference_solution(request, backend), tmp_path / "c", step=2)
    # Step 3's edit of models.py, then its `flask db migrate`, left unedited.
    Checkout(copy.checkout, copy.result.revisions).edit(
        "server/models.py", '__tablename__ = "department"', '__tablename__ = "departments"'
    )
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    subprocess.run(
        [sys.executable, "-m", "flask", "db", "migrate", "-m", "rename department"],
        cwd=copy.server, env=environment, check=True, capture_output=True, timeout=120,
    )
    output = status(copy.checkout)
    advice = next_section(output)
    # The grader's fix, before anything runs on the student's rows.
    assert advice.startswith("Step 3: fix revision 3 before `flask db upgrade`")
    assert "op.rename_table('department', 'departments')" in advice
    assert "flask lesson review" in advice
    assert "2 rows" in advice


def test_the_finished_lesson_is_all_done_and_untouched(request, backend, tmp_path):
    copy = copy_reference(request, reference_solution(request, backend), tmp_path / "c")
    before = tree_digest(copy.checkout)
    output = status(copy.checkout)
    assert checked_steps(output) == [1, 2, 3, 4, 5]
    assert "All five steps are done" in output
    assert tree_digest(copy.checkout) == before


def test_models_not_reverted_after_the_downgrade(request, backend, tmp_path):
    copy = copy_reference(request, reference_solution(request, backend), tmp_path / "c")
    Checkout(copy.checkout, copy.result.revisions).models(place="location")
    output = status(copy.checkout)
    # Step 4 stays done: step 5's downgrade undid it as the lesson asks. Never upgrade again at step 5.
    assert checked_steps(output) == [1, 2, 3, 4]
    advice = next_section(output)
    assert advice.startswith("Step 5: put `address` back in models.py")
    assert "flask db upgrade" not in advice


def test_a_fresh_clone_of_the_finished_lesson_is_as_the_readme_shows(request, tmp_path):
    copy = copy_reference(request, reference_solution(request, "sqlite"), tmp_path / "c")
    shutil.rmtree(copy.server / "instance")  # databases are never committed
    output = status(copy.checkout)
    assert checked_steps(output) == [1, 2, 3, 4, 5]
    readme_ids = {real: shown for shown, real in copy.result.readme_ids.items()}
    for real, shown in readme_ids.items():
        output = output.replace(real, shown)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```console\n\$ pipenv run status\n(Flask schema migrations lesson.*?)```", readme, re.S)
    assert block, "README.md shows no status of a fresh clone"
    assert output.rstrip("\n").splitlines() == block.group(1).rstrip("\n").splitlines()


def test_rows_lost_by_a_revision_since_fixed_are_asked_back_exactly(request, backend, tmp_path, monkeypatch):
    from testing.student.status import render, status_of

    from ..maintainers.catalogue import _replace_body
    from .test_lesson_walk import Student, unfixed_step_3_upgraded

    monkeypatch.delenv("DATABASE_URL", raising=False)
    copy = copy_reference(request, reference_solution(request, backend), tmp_path / "c", step=2)
    student = Student(copy)
    unfixed_step_3_upgraded(student)  # revision 3 as drop + create, run on the student's rows
    (path,) = [p for p in (copy.server / "migrations" / "versions").glob("*.py")
               if not p.name.startswith(tuple(copy.result.revisions))]
    source = _replace_body(path.read_text(encoding="utf-8"), "upgrade", "op.rename_table('department', 'departments')")
    path.write_text(_replace_body(source, "downgrade", "op.rename_table('departments', 'department')"), encoding="utf-8")
    status = status_of(copy.checkout)
    shown = render(status)
    action = status.next.text
    # Only the department rows are gone: exactly those, none of the employees (they still have theirs).
    assert status.next.title == "Step 2: `departments` has no rows", shown
    assert 'Department(name="Payroll", address="Building A, 4th Floor")' in action, shown
    assert 'Department(name="Human Resources", address="Building C, 1st Floor")' in action, shown
    assert "Employee(" not in action, shown
    assert "upgrade" not in action, shown
