"""Whatever a submission writes, grading stays small: memory, time, disk and output.

Each case is the reference solution plus one thing written into a revision,
graded by a pristine grader in a real pytest process on SQLite and on
PostgreSQL, and watched from outside (tests/watched.py): the wall time, the
peak memory of the grading process, the disk its folders and throw-away
databases take at their largest, and the size of its output and JUnit report.
Each case is as small as it can be while still going past a limit: a grader
that loaded the rows, read every table or let the disk fill would fail it.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import pytest

from testing.lesson.checkpoints import CHECKPOINTS

from .hostile import Hostile, in_function
from .test_grader_catalogue import make_submission
from .test_grader_hostile import pristine_grader  # noqa: F401  (a fixture)
from .watched import start_grade

MEMORY_MB = 300  # the grading process's peak, whatever the submission holds
DISK_MB = 64  # --lesson-disk for these grades: small, so going past it is quick
SECONDS = 120  # a whole grade: 8 requests within the limit (20 s) that mostly finish at once
OUTPUT_BYTES = 32 * 1024  # the terminal's, and the JUnit report's
LINE_CHARACTERS = 400


def many_rows(backend):
    # 2.5 million rows: loading them (as the grader once did) takes well over MEMORY_MB.
    if backend == "sqlite":
        return ("op.execute(\"WITH RECURSIVE n(i) AS (SELECT 3 UNION ALL SELECT i + 1 FROM n WHERE i < 2500000) "
                "INSERT INTO employees (id, name, salary) SELECT i, 'x', i FROM n\")")
    return "op.execute(\"INSERT INTO employees (id, name, salary) SELECT i, 'x', i FROM generate_series(3, 2500000) i\")"


def huge_blobs(backend):
    # Blobs of 40 MB, more than DISK_MB in all (stored uncompressed on PostgreSQL).
    table = ("op.create_table('blobs', sa.Column('id', sa.Integer, primary_key=True), "
             "sa.Column('data', sa.LargeBinary))\n")
    if backend == "sqlite":
        value = "zeroblob(40000000)"
    else:
        table += "op.execute('ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL')\n"
        value = "convert_to(repeat(md5('{i}'), 1250000), 'UTF8')"
    return table + f'for i in range(6):\n    op.execute(f"INSERT INTO blobs (id, data) VALUES ({{i}}, {value})")'


def many_tables(backend):
    return "for i in range(1500):\n    op.create_table(f't{i}', sa.Column('id', sa.Integer))"


def filling_loop(backend):
    return ("index = 0\nwhile True:\n    with open(f'junk{index}', 'wb') as junk:\n"
            "        junk.write(bytes(8_000_000))\n    index += 1")


def long_names(backend):
    # SQLite keeps any length; PostgreSQL cuts names to 63 characters, as it does for everyone.
    return "op.create_table('t' * 5000, sa.Column('c' * 5000, sa.Integer))"


@dataclass(frozen=True)
class Case:
    name: str
    position: int  # the revision whose upgrade() gets the code
    code: Callable  # code(backend) -> Python lines
    failing: Tuple[str, ...]
    messages: Dict[str, Tuple[str, ...]]
    disk_mb: int = DISK_MB  # --lesson-disk


LATER = ("create_department", "rename_table", "rename_column", "downgrades", "models_match")
CASES = (
    # Extra rows that keep the lesson's rows are no mistake: full marks.
    # The default disk limit (256 MB) holds them: they are many, not big.
    Case("millions_of_rows", 2, many_rows, (), {}, disk_mb=256),
    Case("huge_blobs", 1, huge_blobs, ("create_employees",) + LATER,
         {"create_employees": (f"writes more than {DISK_MB} MB of data", "--lesson-disk")}),
    Case("thousands_of_tables", 1, many_tables, ("create_employees", "downgrades", "models_match"),
         {"create_employees": ("1,500 extra tables: `t0`, `t1`, `t2`, \u2026 and 1,497 more",)}),
    Case("disk_filling_loop", 1, filling_loop, ("create_employees",) + LATER,
         {"create_employees": (f"writes more than {DISK_MB} MB of data",)}),
    Case("very_long_names", 1, long_names, ("create_employees", "downgrades", "models_match"),
         {"create_employees": ("extra table `ttttt",)}),
)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_grading_stays_bounded(request, backend, case, tmp_path, pristine_grader):  # noqa: F811
    change = in_function(case.position, "upgrade", case.code(backend))
    checkout = make_submission(request, backend, Hostile(case.name, change), tmp_path / "checkout")

    grade = start_grade(pristine_grader, checkout.root, backend, tmp_path, options=(f"--lesson-disk={case.disk_mb}",))
    code, outcomes = grade.wait()
    output = grade.output

    assert set(outcomes) == {c.id for c in CHECKPOINTS}, output
    failed = {checkpoint for checkpoint, (passed, _) in outcomes.items() if not passed}
    assert failed == set(case.failing), output
    assert code == (1 if case.failing else 0), output
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    for checkpoint, words in case.messages.items():
        for word in words:
            assert word in outcomes[checkpoint][1], f"{word!r} not in the {checkpoint} message:\n{output}"
    figures = (f"{case.name} on {backend}: {grade.seconds:.1f} s, {grade.peak_memory_mb:.0f} MB, "
               f"disk {grade.peak_disk / 2 ** 20:.0f} MB, output {len(output)} B, JUnit {grade.junit.stat().st_size} B")
    print(figures)
    assert grade.seconds < SECONDS, figures
    assert grade.peak_memory_mb < MEMORY_MB, figures
    # The size check runs every 0.25 s: the disk may pass the limit by what is written meanwhile.
    assert grade.peak_disk < (case.disk_mb + 64) * 2 ** 20, figures
    assert len(output.encode()) < OUTPUT_BYTES and grade.junit.stat().st_size < OUTPUT_BYTES, figures
    assert max(map(len, output.splitlines())) < LINE_CHARACTERS, figures
