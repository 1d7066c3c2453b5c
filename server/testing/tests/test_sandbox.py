"""The sandbox on its own: a worker process per submission, its limits, and the file guard."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

from testing.databases.schema_data import metadata_from_data, metadata_to_data, type_from_repr
from testing.engine.submission import Layout
from testing.isolation import sandbox as sandbox_module
from testing.isolation.sandbox import ChildFailure, FileGuard, Limits, Sandbox

REVISION = '''
from alembic import op
import sqlalchemy as sa

revision = "aaaa00000001"
down_revision = None


def upgrade():
{upgrade}


def downgrade():
    op.drop_table("employees")
'''


def checkout(tmp_path, upgrade="    op.create_table('employees', sa.Column('id', sa.Integer(), primary_key=True))"):
    versions = tmp_path / "server" / "migrations" / "versions"
    versions.mkdir(parents=True)
    path = versions / "aaaa00000001_initial.py"
    path.write_text(REVISION.format(upgrade=upgrade), encoding="utf-8")
    return Layout.of(tmp_path), path


def test_a_request_is_answered_with_plain_data_from_a_private_copy(tmp_path):
    layout, path = checkout(tmp_path)
    with Sandbox(layout, Limits(10, 512)) as sandbox:
        answer = sandbox.request("load_revision", path=str(sandbox.private(path)))
        private = sandbox.private(path)
        assert private != path and private.is_file()
    assert answer["result"] == {"revision": "aaaa00000001", "down_revision": None, "functions": ["upgrade", "downgrade"]}
    assert not private.exists()  # the copy is gone with the sandbox


def test_a_run_changes_only_the_database_it_is_given(tmp_path):
    layout, path = checkout(tmp_path)
    with Sandbox(layout, Limits(10, 512)) as sandbox:
        url = f"sqlite:///{sandbox.folder / 'scratch.db'}"  # the one place a worker may write
        answer = sandbox.request("run", path=str(sandbox.private(path)), direction="upgrade", url=url)
        assert "error" not in answer and any("CREATE TABLE employees" in s for s in answer["result"]["statements"])
        assert sa.inspect(sa.create_engine(url)).get_table_names() == ["employees"]


def test_a_request_that_hangs_is_stopped_and_later_ones_get_a_short_grace(tmp_path):
    layout, path = checkout(tmp_path, upgrade="    while True:\n        pass")
    with Sandbox(layout, Limits(1, 512)) as sandbox:
        url = f"sqlite:///{sandbox.folder / 'scratch.db'}"
        started = time.monotonic()
        with pytest.raises(ChildFailure, match=r"did not finish within the time limit \(1 s\)") as failure:
            sandbox.request("run", path=str(sandbox.private(path)), direction="upgrade", url=url)
        assert failure.value.kind == "timeout"
        assert time.monotonic() - started < 1 + 10  # the worker's start-up is not counted, the loop is
        # The grace (GRACE_SECONDS) is never longer than the limit itself.
        with pytest.raises(ChildFailure, match=r"\(1 s, as an earlier step had already used up the full limit"):
            sandbox.request("run", path=str(sandbox.private(path)), direction="upgrade", url=url)
        # A fresh worker still answers what does not hang.
        assert sandbox.request("load_revision", path=str(sandbox.private(path)))["result"]["revision"] == "aaaa00000001"


def test_an_exit_at_import_ends_the_worker_and_says_so(tmp_path):
    layout, path = checkout(tmp_path)
    path.write_text("import os\nos._exit(0)\n", encoding="utf-8")
    with Sandbox(layout, Limits(10, 512)) as sandbox:
        with pytest.raises(ChildFailure, match="ended the process") as failure:
            sandbox.request("load_revision", path=str(sandbox.private(path)))
    assert failure.value.kind == "exited"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the worker's state in /proc")
def test_the_worker_ends_when_the_grading_process_is_killed(tmp_path):
    """Even in an endless loop, a worker never outlives the process that started it."""
    layout, path = checkout(tmp_path, upgrade="    while True:\n        pass")
    script = tmp_path / "grading.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(sandbox_module.GRADER_ROOT / "server")!r})
        from testing.isolation.sandbox import Limits, Sandbox
        from testing.engine.submission import Layout
        if __name__ == "__main__":
            with Sandbox(Layout.of({str(tmp_path)!r}), Limits(600, 512)) as sandbox:
                sandbox.start()
                sandbox._await_ready()
                print(sandbox.process.pid, flush=True)
                sandbox.request("run", path=str(sandbox.private({str(path)!r})), direction="upgrade",
                                url="sqlite:///" + str(sandbox.folder / "scratch.db"))
    """), encoding="utf-8")
    grading = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = int(grading.stdout.readline())
    time.sleep(0.5)  # the worker is in its loop
    grading.send_signal(signal.SIGKILL)
    grading.wait()
    for _ in range(100):
        if not _alive(worker):
            break
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_the_guard_puts_changed_files_back_and_removes_added_ones(tmp_path):
    folder = tmp_path / "grader"
    folder.mkdir()
    (folder / "conftest.py").write_text("original\n")
    guard = FileGuard([folder])
    (folder / "conftest.py").write_text("forged\n")
    (folder / "planted.py").write_text("planted\n")
    assert sorted(guard.changes()) == ["grader/conftest.py", "grader/planted.py"]
    assert (folder / "conftest.py").read_text() == "original\n" and not (folder / "planted.py").exists()
    assert guard.changes() == []


def test_the_guard_only_reports_in_a_checkout_graded_in_place(tmp_path):
    folder = tmp_path / "server"
    folder.mkdir()
    (folder / "models.py").write_text("mine\n")
    guard = FileGuard([folder], restore=False, remove_added=False)
    (folder / "models.py").write_text("edited by the student meanwhile\n")
    assert guard.changes() == ["server/models.py"]
    assert (folder / "models.py").read_text() == "edited by the student meanwhile\n"


@pytest.mark.skipif(os.name == "nt", reason="Windows has no change time: every file is compared byte for byte")
def test_the_guard_reads_again_only_what_may_have_changed(tmp_path, monkeypatch):
    monkeypatch.setattr(FileGuard, "RACY_NS", 0)  # as if every file were older than the guard by far
    folder = tmp_path / "grader"
    folder.mkdir()
    conftest, models = folder / "conftest.py", folder / "models.py"
    conftest.write_text("original\n")
    models.write_text("mine\n")
    time.sleep(0.05)  # past the change times' tick
    guard = FileGuard([folder])
    os.utime(models)  # touched: new times, same bytes
    assert guard.changes() == []
    # The same size and modification time put back: the change time still moves.
    before = conftest.stat()
    conftest.write_text("forged!!\n"[:len("original\n")])
    os.utime(conftest, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert guard.changes() == ["grader/conftest.py"]
    assert conftest.read_text() == "original\n" and guard.changes() == []
    # An entry added to a folder, or taken away, moves the folder's own change time.
    (folder / "planted.py").write_text("planted\n")
    assert guard.changes() == ["grader/planted.py"] and not (folder / "planted.py").exists()
    models.unlink()
    assert guard.changes() == ["grader/models.py"] and models.read_text() == "mine\n"


def test_types_are_rebuilt_from_their_repr_without_running_anything():
    assert isinstance(type_from_repr("String(length=50)"), sa.String) and type_from_repr("String(length=50)").length == 50
    assert isinstance(type_from_repr("Numeric(precision=10, scale=2)"), sa.Numeric)
    for hostile in ("__import__('os').system('true')", "os.system(1)", "String(length=__import__('os'))", "1/0"):
        assert isinstance(type_from_repr(hostile), sa.types.NullType), hostile


def test_tables_cross_the_process_boundary_as_data():
    metadata = sa.MetaData(naming_convention={"pk": "pk_%(table_name)s", "ix": "ix_%(column_0_label)s"})
    sa.Table("departments", metadata,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(80), nullable=False, index=True),
             sa.Column("address", sa.String, server_default="unknown"))
    rebuilt = metadata_from_data(metadata_to_data(metadata))
    table = rebuilt.tables["departments"]
    assert [(c.name, repr(c.type), c.nullable, c.primary_key) for c in table.columns] == [
        ("id", "Integer()", False, True), ("name", "String(length=80)", False, False),
        ("address", "String()", True, False)]
    assert table.primary_key.name == "pk_departments"
    assert [index.name for index in table.indexes] == ["ix_departments_name"]
    assert str(table.c.address.server_default.arg) == "unknown"


# A process that says it grades many (the cohort's workers): its workers start with models.py's
# libraries imported, once in the fork server; one that grades once leaves them to models.py.
GRADES_MANY_PROBE = '''
import sys
from pathlib import Path

from testing.engine.submission import Layout
from testing.isolation import sandbox

if __name__ == "__main__":
    if sys.argv[2] == "many":
        sandbox.grades_many()
    path = Path(sys.argv[1])
    with sandbox.Sandbox(Layout.of(path.parents[3]), sandbox.Limits(10, 512)) as box:
        print(box.request("load_revision", path=str(box.private(path)))["result"]["revision"])
'''


@pytest.mark.skipif(os.name != "posix", reason="workers are forked from a fork server on POSIX only")
@pytest.mark.parametrize("grades, preloaded", [("many", "loaded"), ("once", "not-loaded")])
def test_a_process_that_grades_many_has_models_libraries_loaded_once_for_its_workers(tmp_path, grades, preloaded):
    _, path = checkout(tmp_path)
    path.write_text('import sys\nrevision = "loaded" if "flask_sqlalchemy" in sys.modules else "not-loaded"\n'
                    "down_revision = None\n", encoding="utf-8")
    probe = tmp_path / "probe.py"
    probe.write_text(GRADES_MANY_PROBE, encoding="utf-8")
    run = subprocess.run([sys.executable, str(probe), str(path), grades], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == [preloaded], run.stdout + run.stderr
