"""How fast does `pipenv run cohort` grade a class? Generated classes of 30 to 300.

    pipenv run cohort-benchmark [--sizes 30 100 300] [--jobs N] [--keep]

1. Builds the reference solution with the walkthrough (real `flask db` commands).
2. Makes the largest class from the mistake catalogue and its valid variations
   (tests/catalogue.py), every submission with fresh random revision ids.
3. For each size, runs the real command (`tools.py cohort`, a roster of the
   first N submissions, an empty cache) and reports its wall time,
   submissions per second and peak memory (the coordinator's, from os.wait4,
   and the largest grading process's, from the run's run.json). Every row must
   be graded.
4. Fits time = start-up + N x time per submission over the sizes (least
   squares), shows how far each size is from that line, and extrapolates to
   1,000 submissions; then reruns the largest class on its warm cache (resume).

Exit code 0 when 1,000 submissions are predicted to take under 5 minutes, 1
otherwise, 2 when something could not run.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
GRADER_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(GRADER_ROOT / "server"))

TARGET_SECONDS = 300  # for 1,000 submissions


def build_class(scratch, size):
    from testing.maintainers.cohort_submissions import make_class
    from testing.maintainers.walkthrough import copy_starter, run_walkthrough

    print("Building the reference solution with the walkthrough ...", flush=True)
    reference = copy_starter(scratch / "reference")
    result = run_walkthrough(reference, report=lambda line: None)
    (reference / "server" / ".env").unlink(missing_ok=True)
    print(f"Making {size} submissions from the mistake catalogue ...", flush=True)
    started = time.perf_counter()
    made = make_class(reference, result.revisions, scratch / "class", size, seed=2026)
    print(f"    {time.perf_counter() - started:.1f} s", flush=True)
    return [path for path, _ in made]


def timed_cohort(roster, out, cache, jobs):
    """Run the real command once; (seconds, coordinator peak MB, run.json, gradebook rows)."""
    command = [sys.executable, str(GRADER_ROOT / "server" / "testing" / "tools.py"), "cohort", str(roster),
               "--out", str(out), "--cache", str(cache)] + (["--jobs", str(jobs)] if jobs else [])
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        output.seek(0)
        text = output.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the cohort command failed:\n{text[-3000:]}")
    statistics = json.loads((out / "run.json").read_text())
    rows = json.loads((out / "gradebook.json").read_text())["rows"]
    return seconds, usage.ru_maxrss / 1024, statistics, rows


def fit(points):
    """Least-squares line through (n, seconds): (start-up seconds, seconds per submission)."""
    count = len(points)
    mean_n = sum(n for n, _ in points) / count
    mean_t = sum(t for _, t in points) / count
    slope = sum((n - mean_n) * (t - mean_t) for n, t in points) / sum((n - mean_n) ** 2 for n, _ in points)
    return mean_t - slope * mean_n, slope


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pipenv run cohort-benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 100, 300], help="class sizes (default 30 100 300)")
    parser.add_argument("--jobs", type=int, help="grading processes (default: one per core)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    options = parser.parse_args(argv)
    if len(options.sizes) < 2:
        parser.error("give at least two sizes to see how the time grows")
    scratch = Path(tempfile.mkdtemp(prefix="lesson-cohort-benchmark-"))
    try:
        submissions = build_class(scratch, max(options.sizes))
        print(f"\n{os.cpu_count()} cores; the cohort command with an empty cache for each size:\n")
        header = f"{'submissions':>11}{'seconds':>9}{'per second':>12}{'coordinator MB':>16}{'grading process MB':>20}"
        print(header)
        print("-" * len(header))
        points = []
        for size in sorted(options.sizes):
            roster = scratch / f"roster-{size}.txt"
            roster.write_text("".join(f"{path}\n" for path in submissions[:size]))
            seconds, coordinator_mb, statistics, rows = timed_cohort(
                roster, scratch / f"out-{size}", scratch / f"cache-{size}", options.jobs)
            ungraded = [row["student"] for row in rows if row["status"] != "graded"]
            if len(rows) != size or ungraded or statistics["graded"] != size or statistics["from_cache"]:
                print(f"Not every submission was graded: {ungraded}", file=sys.stderr)
                return 2
            points.append((size, seconds))
            print(f"{size:>11}{seconds:>9.1f}{size / seconds:>12.1f}{coordinator_mb:>16.0f}"
                  f"{statistics['peak_memory_mb']['largest_grading_process']:>20.0f}", flush=True)
        startup, per_submission = fit(points)
        print(f"\nFit: {startup:.1f} s start-up + {per_submission:.3f} s per submission "
              f"({1 / per_submission:.1f} submissions per second).")
        for size, seconds in points:
            predicted = startup + per_submission * size
            print(f"    {size:>4}: measured {seconds:6.1f} s, the line says {predicted:6.1f} s "
                  f"({100 * (seconds - predicted) / predicted:+.0f}%)")
        largest = max(options.sizes)
        seconds, _, statistics, _ = timed_cohort(scratch / f"roster-{largest}.txt", scratch / "out-again",
                                                 scratch / f"cache-{largest}", options.jobs)
        print(f"Rerun of {largest} with the cache: {seconds:.1f} s, {statistics['graded']} graded again, "
              f"{statistics['from_cache']} from the cache.")
        thousand = startup + per_submission * 1000
        verdict = "under" if thousand < TARGET_SECONDS else "OVER"
        print(f"Predicted for 1,000 submissions: {thousand:.0f} s ({thousand / 60:.1f} min): "
              f"{verdict} the {TARGET_SECONDS // 60}-minute target.")
        return 0 if thousand < TARGET_SECONDS else 1
    finally:
        if options.keep:
            print(f"Files kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
