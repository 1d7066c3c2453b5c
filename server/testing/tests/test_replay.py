"""The replay goes on while models.py loads (engine/replay.py).

models.py is compared with the schema at the lesson's end revision. On SQLite,
when it is still loading there, the replay keeps a copy of the database in
memory, replays the rest and compares that copy once models.py has loaded:
the verdict is the one a quick models.py gets.
"""
import pytest
import sqlalchemy as sa

from testing.engine import replay
from testing.engine.checks import grade

from ..maintainers.catalogue import Checkout
from .lesson_builds import copy_reference, reference_solution

SLOW_IMPORT = "import time\n\ntime.sleep(1.5)  # still loading when the replay reaches revision 3\n"


@pytest.mark.parametrize("place, passes", [("address", True), ("location", False)])
def test_a_slow_models_py_is_compared_at_the_end_revision(request, tmp_path, monkeypatch, place, passes):
    copies = []
    copy_in_memory = replay._copy_in_memory
    monkeypatch.setattr(replay, "_copy_in_memory", lambda connection: copies.append(copy_in_memory(connection))
                        or copies[-1])
    build = reference_solution(request, "sqlite")
    checkout = Checkout(copy_reference(request, build, tmp_path / "checkout").checkout, build.revisions)
    checkout.models(place=place)
    models = checkout.server / "models.py"
    models.write_text(SLOW_IMPORT + models.read_text(encoding="utf-8"), encoding="utf-8")

    report = grade(checkout.root)

    assert len(copies) == 1 and copies[0] is not None  # compared on the copy, after the replay
    result = report["models_match"]
    assert result.passed == passes, result.message
    if not passes:  # revision 3 has address; models.py says location
        assert "location" in result.message and "address" in result.message, result.message
    assert [step.ran for step in report.evidence.replay.downgrades] == [True] * 4


def test_no_copy_when_sqlite_stops_it(tmp_path):
    """A step's deadline may pass between the step and the copy: then the replay compares
    the database itself, as it would without the copy."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
    with engine.connect() as connection:
        connection.execute(sa.text("CREATE TABLE employees (id INTEGER PRIMARY KEY)"))
        connection.commit()
        copy = replay._copy_in_memory(connection)
        with copy.connect() as copied:
            assert sa.inspect(copied).get_table_names() == ["employees"]
        copy.dispose()
        connection.connection.driver_connection.set_progress_handler(lambda: 1, 1)  # the deadline has passed
        assert replay._copy_in_memory(connection) is None
    engine.dispose()
