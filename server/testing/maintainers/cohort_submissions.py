"""A class of generated submissions, for the cohort gradebook's tests, benchmark and sample.

Each submission is a copy of the finished reference checkout with fresh
random revision ids (files renamed, every reference to the old ids
rewritten), then changed by one entry of the mistake catalogue
(catalogue.WRONG) or one valid variation (catalogue.VALID).
"""
import random
import shutil
from pathlib import Path

from .catalogue import VALID, WRONG, Checkout

KINDS = WRONG + VALID


def with_new_ids(checkout, rng):
    """Give the four reference revisions new random ids, as another student's would have."""
    new_ids = ["%012x" % rng.getrandbits(48) for _ in checkout.revisions]
    paths = [checkout.revision_file(position) for position in range(1, len(new_ids) + 1)]
    for old, path in zip(checkout.revisions, paths):
        source = path.read_text(encoding="utf-8")
        for old_id, new_id in zip(checkout.revisions, new_ids):
            source = source.replace(old_id, new_id)
        path.unlink()
        (checkout.versions / path.name.replace(old, new_ids[checkout.revisions.index(old)])).write_text(
            source, encoding="utf-8")
    database = checkout.server / "instance" / "app.db"
    if database.is_file():  # alembic_version names revision 3 by its id
        import sqlite3

        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE alembic_version SET version_num = ?", (new_ids[2],))
        connection.close()
    checkout.revisions = new_ids


def make_submission(reference, revisions, dest, kind, rng):
    """Copy the finished reference (a checkout folder) to dest as `kind` would hand it in."""
    dest = Path(dest)
    shutil.copytree(reference, dest, ignore=shutil.ignore_patterns("__pycache__", ".env"))
    if not kind.keep_local_database:
        shutil.rmtree(dest / "server" / "instance", ignore_errors=True)
    checkout = Checkout(dest, revisions)
    with_new_ids(checkout, rng)
    kind.change(checkout)
    return checkout


def make_class(reference, revisions, folder, count, seed=0, kinds=KINDS):
    """`count` submissions in folder/student-NNN, cycling through kinds.

    Returns [(path, kind)] in order.
    """
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for number in range(count):
        kind = kinds[number % len(kinds)]
        path = folder / f"student-{number + 1:03d}"
        make_submission(reference, revisions, path, kind, rng)
        with open(path / "server" / "models.py", "a", encoding="utf-8") as models:
            models.write(f"# {path.name}\n")  # no two students hand in the same bytes
        made.append((path, kind))
    return made
