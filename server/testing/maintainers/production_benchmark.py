"""What "Before production" (production.py) adds to `flask lesson review` and to the lesson page.

    pipenv run production-benchmark [--runs N]

Builds the finished lesson with the reference walkthrough (SQLite, a scratch
copy), then times, N runs each, median and fastest:
  - the squawk review alone of the four revisions (SQL written by the sandbox's
    worker in Alembic's offline mode, one squawk run);
  - `flask lesson review`'s work (review.review_pending: revision 4 is pending)
    with the review and without it;
  - the lesson page's facts (page_facts.facts, the child process's work on a
    first load) with the review and without it.
"Without" replaces production.review_revisions with one that returns nothing.
"""
import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # server/

from testing.databases.database import sqlite_url  # noqa: E402
from testing.engine import production  # noqa: E402
from testing.engine.submission import Layout, load_history  # noqa: E402
from testing.isolation.sandbox import Sandbox  # noqa: E402
from testing.lesson.checkpoints import LESSON  # noqa: E402
from testing.maintainers.walkthrough import copy_starter, run_walkthrough  # noqa: E402
from testing.student import page_facts, review


def timed(function, runs):
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), min(seconds)


def review_alone(root):
    layout = Layout.of(root)
    with Sandbox(layout) as sandbox:
        history = load_history(layout, sandbox)
        started = time.perf_counter()
        reviews = production.review_revisions(sandbox, layout, history.chain, LESSON, history.position_of)
        assert [r.rules() for r in reviews] == [["ban-drop-table"], ["ban-drop-table"], ["renaming-table"],
                                                ["renaming-column"]], [r.rules() for r in reviews]
        return time.perf_counter() - started


def without_review():
    real = production.review_revisions
    production.review_revisions = lambda *args, **kwargs: []
    return real


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pipenv run production-benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="production-benchmark-"))
    try:
        root = scratch / "lesson"
        copy_starter(root)
        run_walkthrough(root, report=lambda line: None)
        server, url = root / "server", sqlite_url(root / "server" / "instance" / "app.db")
        alone = [review_alone(root) for _ in range(options.runs)]
        print(f"squawk review of 4 revisions (in a running sandbox): median {statistics.median(alone) * 1000:.0f} ms, "
              f"fastest {min(alone) * 1000:.0f} ms")
        rows = []
        for name, work in (("flask lesson review", lambda: review.review_pending(server, None)),
                           ("lesson page facts", lambda: page_facts.facts(root, url))):
            with_it = timed(work, options.runs)
            real = without_review()
            try:
                without = timed(work, options.runs)
            finally:
                production.review_revisions = real
            rows.append((name, with_it, without))
        for name, (with_median, with_min), (without_median, without_min) in rows:
            print(f"{name}: median {with_median * 1000:.0f} ms with the review, {without_median * 1000:.0f} ms "
                  f"without: +{(with_median - without_median) * 1000:.0f} ms "
                  f"(fastest {with_min * 1000:.0f} / {without_min * 1000:.0f} ms)")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
