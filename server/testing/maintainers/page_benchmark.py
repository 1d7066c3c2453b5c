"""How fast is the lesson page? Whole HTTP requests against a real server.

    pipenv run page-benchmark [--runs N]

1. Builds the finished lesson with the reference walkthrough (real `flask db`
   commands in a scratch copy of the starter, SQLite).
2. Copies its database and adds a table of 100,000 rows to the copy.
3. Serves the page on 127.0.0.1 (werkzeug, as `flask run` does) and times
   whole requests with urllib, N runs each, and prints median and fastest:
   - the lesson page on the lesson's database, the first load (which grades
     and replays in a child process) and reloads (cached);
   - the first and the last page of rows of the 100,000-row table, and the
     lesson page with that table in the database;
   - the replay view, cached and with the cache emptied before each request.

Exit code 0 when the first page of the big table answers in under 200 ms
(median), 1 when not, 2 when something could not run.
"""
import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # server/

from testing.maintainers.walkthrough import copy_starter, run_walkthrough  # noqa: E402
from testing.student import page  # noqa: E402
from testing.student.page_tool import create_app, serving  # noqa: E402

TARGET_SECONDS = 0.200
BIG_ROWS = 100_000


def add_big_table(path, rows=BIG_ROWS):
    import sqlite3

    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, note VARCHAR)")
        connection.executemany(
            "INSERT INTO events (id, name, note) VALUES (?, ?, ?)",
            ((i, f"event {i}", f"note {i}") for i in range(1, rows + 1)),
        )
    connection.close()


def fetch(url):
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
    return time.perf_counter() - started


def timed(url, runs, before=None):
    times = []
    for _ in range(runs):
        if before:
            before()
        times.append(fetch(url))
    return times


def show(label, times):
    print(f"{label:<58} median {statistics.median(times) * 1000:8.1f} ms   fastest {min(times) * 1000:8.1f} ms   ({len(times)} runs)")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pipenv run page-benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="requests per measurement (default 20)")
    options = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    folder = Path(tempfile.mkdtemp(prefix="lesson-page-benchmark-"))
    try:
        checkout = copy_starter(folder / "lesson")
        print("Building the finished lesson with the walkthrough ...")
        run_walkthrough(checkout, report=lambda line: None)
        database = checkout / "server" / "instance" / "app.db"
        big = folder / "big.db"
        shutil.copy(database, big)
        add_big_table(big)

        lesson_app = create_app(checkout)
        big_app = create_app(checkout, f"sqlite:///{big}")
        with serving(lesson_app) as lesson, serving(big_app) as with_big:
            print(f"\nWhole requests to {lesson} (lesson database) and {with_big} (plus {BIG_ROWS:,} rows):\n")
            show("lesson page, first load (grades and replays)", timed(lesson + "/", 3, before=page._cache.clear))
            show("lesson page, reload (cached)", timed(lesson + "/", options.runs))
            table = timed(with_big + "/tables/events", options.runs)
            show(f"table of {BIG_ROWS:,} rows, first page of {page.PAGE_SIZE}", table)
            show(f"table of {BIG_ROWS:,} rows, last page", timed(with_big + f"/tables/events?page={BIG_ROWS // page.PAGE_SIZE}", options.runs))
            fetch(with_big + "/")  # fills the cache for this database
            show(f"lesson page with the {BIG_ROWS:,}-row table (cached)", timed(with_big + "/", options.runs))
            show("replay view, cache emptied before each request", timed(lesson + "/replay", 3, before=page._cache.clear))
            show("replay view (cached)", timed(lesson + "/replay", options.runs))
        median = statistics.median(table)
        verdict = "under" if median < TARGET_SECONDS else "OVER"
        print(f"\nFirst page of the big table: {median * 1000:.1f} ms median, {verdict} the {TARGET_SECONDS * 1000:.0f} ms target.")
        return 0 if median < TARGET_SECONDS else 1
    except Exception as error:  # the benchmark could not run: say why, in one line
        print(f"page benchmark failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
