"""The cohort gradebook (`pipenv run cohort`): the same grades as `pytest`, graded once, shards that merge.

Submissions are copies of the walkthrough's reference solution changed by the
mistake catalogue, each with its own random revision ids (cohort_submissions.py).
"""
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path


from testing.databases.database import postgres_server_url
from testing.instructor import cohort, cohort_cache, cohort_gradebook, cohort_pool, cohort_sources, root_causes
from testing.lesson.checkpoints import CHECKPOINTS, LESSON

from ..maintainers.catalogue import VALID, WRONG
from ..maintainers.cohort_submissions import make_class
from .lesson_builds import reference_solution

REPO = Path(__file__).resolve().parents[3]
GRADER = REPO / "server" / "testing" / "codegrade_test.py"
KIND = {submission.name: submission for submission in WRONG + VALID}


def kinds(*names):
    return tuple(KIND[name] for name in names)


def a_class(request, folder, *names, backend="sqlite", seed=0):
    """Submissions of the named catalogue kinds in folder/student-NNN; [(path, kind)]."""
    build = reference_solution(request, backend)
    return make_class(build.snapshots[5].checkout, build.revisions, folder, len(names), seed=seed, kinds=kinds(*names))


def run_cohort(*args, check=True):
    """The real command, as an instructor runs it."""
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    run = subprocess.run([sys.executable, "server/testing/tools.py", "cohort", *map(str, args)], cwd=REPO,
                         capture_output=True, text=True, timeout=600, env=environment)
    output = run.stdout + run.stderr
    assert "Traceback" not in output, output
    if check:
        assert run.returncode == 0, output
    return run


def book(out):
    return json.loads((Path(out) / "gradebook.json").read_text(encoding="utf-8"))


def statistics(out):
    return json.loads((Path(out) / "run.json").read_text(encoding="utf-8"))


# --- the same grades as pytest ------------------------------------------------------------

AGREEMENT_KINDS = (  # full marks, a data loss, a local database, and everything blocked by init
    "the reference solution", "table rename kept as create+drop", "downgraded but models.py not reverted",
    "tables made with db.create_all() and no migrations",
)


def grade_alone_with_pytest(root, backend, junit):
    """Start grading one checkout with pytest (JUnit XML in junit); the process."""
    command = [sys.executable, "-m", "pytest", str(GRADER), f"--lesson-root={root}", f"--junitxml={junit}"]
    if backend == "postgresql":
        command.append(f"--lesson-database={postgres_server_url()}")
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)


def junit_results(junit):
    """{checkpoint: properties + failure text} from the grader's JUnit XML."""
    results = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        failure = case.find("failure")
        properties["failure"] = None if failure is None else (failure.get("message", "") + (failure.text or ""))
        results[properties["checkpoint"]] = properties
    return results


def test_gradebook_agrees_with_grading_each_submission_alone_with_pytest(request, backend, tmp_path):
    made = a_class(request, tmp_path / "class", *AGREEMENT_KINDS, backend=backend)
    alone = [grade_alone_with_pytest(path, backend, tmp_path / f"{path.name}.xml") for path, _ in made]
    database = ["--database", postgres_server_url()] if backend == "postgresql" else []
    run_cohort(tmp_path / "class", "--out", tmp_path / "out", "--cache", tmp_path / "cache", *database)
    assert [process.wait(timeout=300) for process in alone] == [0, 1, 1, 1]  # pytest: 0 only at full marks
    rows = {row["student"]: row for row in book(tmp_path / "out")["rows"]}
    assert len(rows) == len(made)
    for path, kind in made:
        row, alone = rows[path.name], junit_results(tmp_path / f"{path.name}.xml")
        assert row["status"] == "graded", row
        assert list(row["checkpoints"]) == [c.id for c in CHECKPOINTS]
        for checkpoint_id, result in row["checkpoints"].items():
            expected = alone[checkpoint_id]
            where = f"{kind.name}, {checkpoint_id}"
            assert result["status"] == expected["status"], where
            assert str(result["points"]) == expected["points"], where
            assert str(result["max_points"]) == expected["max_points"], where
            assert result["summary"] == expected["message"], where
            if expected["failure"] is not None:
                assert result["message"] in expected["failure"], where
        assert row["score"] == sum(int(alone[c]["points"]) for c in alone), kind.name
        assert row["max_score"] == sum(int(alone[c]["max_points"]) for c in alone) == cohort_gradebook.MAX_SCORE, kind.name
        failing = [c.id for c in CHECKPOINTS if alone[c.id]["status"] == "failed"]
        assert failing == [c for c in row["checkpoints"] if row["checkpoints"][c]["status"] == "failed"]
        assert set(failing) == set(kind.failing), kind.name
        assert row["first_failing"] == (failing[0] if failing else None)


# --- graded once -----------------------------------------------------------------------------

def test_a_rerun_grades_only_what_changed(request, tmp_path):
    a_class(request, tmp_path / "class", "the reference solution", "table rename kept as create+drop",
            "step 5 skipped: models.py still has location")
    arguments = (tmp_path / "class", "--cache", tmp_path / "cache")
    run_cohort(*arguments, "--out", tmp_path / "first")
    assert (statistics(tmp_path / "first")["graded"], statistics(tmp_path / "first")["from_cache"]) == (3, 0)

    run_cohort(*arguments, "--out", tmp_path / "second")
    assert (statistics(tmp_path / "second")["graded"], statistics(tmp_path / "second")["from_cache"]) == (0, 3)
    for name in ("gradebook.json", "gradebook.csv", "report.html"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name

    models = tmp_path / "class" / "student-003" / "server" / "models.py"  # the student fixes step 5
    models.write_text(models.read_text().replace("location", "address"), encoding="utf-8")
    run_cohort(*arguments, "--out", tmp_path / "third")
    assert (statistics(tmp_path / "third")["graded"], statistics(tmp_path / "third")["from_cache"]) == (1, 2)
    rows = book(tmp_path / "third")["rows"]
    assert [row["score"] for row in rows] == [95, 70, 95]


def test_a_new_grader_regrades_everything(request, tmp_path, monkeypatch):
    a_class(request, tmp_path / "class", "the reference solution", "an extra empty revision")
    entries = cohort_sources.discover([tmp_path / "class"])
    _, first = cohort.grade_many(entries, tmp_path / "cache", jobs=1)
    _, again = cohort.grade_many(entries, tmp_path / "cache", jobs=1)
    monkeypatch.setattr(cohort_cache, "grader_version", lambda: "a-changed-grader")
    _, changed = cohort.grade_many(entries, tmp_path / "cache", jobs=1)
    assert [(s["graded"], s["from_cache"]) for s in (first, again, changed)] == [(2, 0), (0, 2), (2, 0)]


def test_an_interrupted_run_resumes_without_grading_anything_twice(request, tmp_path):
    a_class(request, tmp_path / "class", *[kind.name for kind in WRONG[:4] + VALID[:2]])
    # The second submission's first upgrade waits 2 s (well within the limit, the same grade), so
    # the interruption lands while it is graded however quickly the others go.
    [first] = (tmp_path / "class" / "student-002" / "server" / "migrations" / "versions").glob("*initial*.py")
    source = first.read_text(encoding="utf-8")
    first.write_text(source.replace("def upgrade():\n", "def upgrade():\n    import time\n    time.sleep(2)\n", 1),
                     encoding="utf-8")
    command = [sys.executable, "server/testing/tools.py", "cohort", str(tmp_path / "class"), "--jobs", "1",
               "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:  # interrupt as soon as the first grade is done
        lines.append(line)
        if line.startswith("Graded 1/6"):
            process.send_signal(signal.SIGINT)
            break
    output = "".join(lines) + process.stdout.read()
    assert process.wait(timeout=60) == 130, output
    assert "run the same command again to resume" in output and "marked partial" in output
    assert "Traceback" not in output
    finished_first = len(list((tmp_path / "cache" / "results").glob("*.json")))
    assert 1 <= finished_first < 6
    partial = book(tmp_path / "out")  # the gradebook of what finished, marked partial
    graded = [row["student"] for row in partial["rows"]]
    assert partial["partial"] is True and len(graded) == finished_first
    assert sorted(graded + partial["missing"]) == [f"student-00{n}" for n in range(1, 7)]
    assert statistics(tmp_path / "out")["missing"] == partial["missing"]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert summary.startswith(f"**{len(graded)} submission") and "Partial: the run was interrupted" in summary
    assert len((tmp_path / "out" / "gradebook.csv").read_text().splitlines()) == 1 + len(graded)

    run_cohort(*command[3:])
    second = statistics(tmp_path / "out")
    assert second["from_cache"] == finished_first
    assert second["graded"] == 6 - finished_first  # each submission graded exactly once over both runs
    assert len(book(tmp_path / "out")["rows"]) == 6 and book(tmp_path / "out")["partial"] is False


# --- shards ------------------------------------------------------------------------------------

def test_merged_shards_equal_the_single_run(request, tmp_path):
    a_class(request, tmp_path / "class", "the reference solution", "column rename kept as add+drop",
            "two heads", "downgraded but models.py not reverted", "an import error in models.py")
    run_cohort(tmp_path / "class", "--out", tmp_path / "single", "--cache", tmp_path / "cache-single")
    for shard in (1, 2):  # each on its own, as on separate runners
        run_cohort(tmp_path / "class", "--shard", f"{shard}/2", "--out", tmp_path / f"shard-{shard}",
                   "--cache", tmp_path / f"cache-{shard}")
    shard_rows = [len(book(tmp_path / f"shard-{shard}")["rows"]) for shard in (1, 2)]
    assert shard_rows == [3, 2]
    run_cohort("--merge", tmp_path / "shard-1", tmp_path / "shard-2", "--out", tmp_path / "merged")
    names = ["gradebook.json", "gradebook.csv", "report.html", "summary.md"]
    names += [f"feedback/{path.name}" for path in (tmp_path / "single" / "feedback").iterdir()]
    assert len(names) == 4 + 2 * 5
    for name in names:
        assert (tmp_path / "single" / name).read_text() == (tmp_path / "merged" / name).read_text(), name


def test_a_missing_shard_is_reported_and_the_rest_still_written(request, tmp_path):
    a_class(request, tmp_path / "class", "the reference solution", "an extra empty revision")
    run_cohort(tmp_path / "class", "--shard", "1/2", "--out", tmp_path / "shard-1", "--cache", tmp_path / "cache")
    run = run_cohort("--merge", tmp_path / "shard-1", "--out", tmp_path / "merged", check=False)
    assert run.returncode == 1
    assert "1 of 2 submissions in no shard" in run.stdout and "student-002" in run.stdout
    assert [row["student"] for row in book(tmp_path / "merged")["rows"]] == ["student-001"]


def test_shards_of_different_graders_are_not_merged(tmp_path):
    for number, grader in ((1, "aaaa"), (2, "bbbb")):
        roster = ["alice", "bob"]
        cohort.write_gradebook(cohort_gradebook.gradebook([], "sqlite", grader, roster, (number, 2)), tmp_path / f"shard-{number}")
    run = run_cohort("--merge", tmp_path / "shard-1", tmp_path / "shard-2", "--out", tmp_path / "m", check=False)
    assert run.returncode == 2
    assert "disagree on grader" in run.stdout + run.stderr


# --- bad input -----------------------------------------------------------------------------------

def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=Student", "-c", "user.email=student@example.com", *args],
                   cwd=cwd, check=True, capture_output=True, timeout=60)


def test_every_bad_submission_is_one_row_and_the_run_finishes(request, tmp_path):
    (path, _), = a_class(request, tmp_path / "made", "table rename kept as create+drop")
    git("init", "-q", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-qm", "lesson", cwd=path)
    git("clone", "-q", "--bare", str(path), str(tmp_path / "alice.git"), cwd=tmp_path)

    checkouts = tmp_path / "checkouts"
    (checkouts / "no-server").mkdir(parents=True)
    (checkouts / "no-server" / "README.md").write_text("Another project\n")
    (path, _), = a_class(request, checkouts, "the reference solution")
    path.rename(checkouts / "huge")
    with open(checkouts / "huge" / "server" / "dump.bin", "wb") as dump:
        dump.truncate(cohort_cache.MAX_BYTES + 1)  # sparse: big without writing it
    (path, _), = a_class(request, checkouts, "the reference solution")
    path.rename(checkouts / "links")
    (checkouts / "links" / "server" / "zero").symlink_to("/dev/zero")  # endless if it were read

    roster = tmp_path / "roster.txt"
    roster.write_text("# name  source\nalice  alice.git\nbob,file:///nowhere/bob.git\ncarol missing-folder\n"
                      "alice-again alice.git\n")
    # What can be graded is graded first, in a run of its own; the run with the hanging one then
    # takes it from the cache and grades nothing else, so a short timeout stops the hanging one
    # without a slow grade on a busy machine overrunning it too.
    run_cohort(roster, checkouts, "--out", tmp_path / "first", "--cache", tmp_path / "cache")
    (path, _), = a_class(request, checkouts, "the reference solution")
    path.rename(checkouts / "hangs")
    with open(checkouts / "hangs" / "server" / "models.py", "a") as models:
        models.write("\nwhile True:\n    pass\n")
    run_cohort(roster, checkouts, "--out", tmp_path / "out", "--cache", tmp_path / "cache", "--timeout", "2")
    assert (statistics(tmp_path / "out")["graded"], statistics(tmp_path / "out")["from_cache"]) == (1, 4)
    rows = {row["student"]: row for row in book(tmp_path / "out")["rows"]}
    assert list(rows) == ["alice", "bob", "carol", "alice-again", "hangs", "huge", "links", "no-server"]
    assert rows["alice-again"]["commit"] == rows["alice"]["commit"]
    assert (rows["links"]["status"], rows["links"]["score"]) == ("graded", 95)
    assert (rows["alice"]["status"], rows["alice"]["score"]) == ("graded", 70)
    assert len(rows["alice"]["commit"]) == 40
    assert rows["alice"]["mistakes"] == ["rename_table:loses_data"]  # its downgrade follows from it
    assert rows["alice"]["consequences"] == ["downgrades:downgrade_not_reversed"]
    assert rows["bob"]["status"] == "unreachable" and "does not appear to be a git repository" in rows["bob"]["detail"]
    assert rows["carol"]["status"] == "unreachable" and "no such folder" in rows["carol"]["detail"]
    assert rows["hangs"]["status"] == "timed_out" and "2 s" in rows["hangs"]["detail"]
    assert rows["huge"]["status"] == "too_large" and "MiB" in rows["huge"]["detail"]
    assert (rows["no-server"]["status"], rows["no-server"]["score"]) == ("not_a_lesson", 0)
    assert rows["no-server"]["first_failing"] == "init"
    for row in rows.values():
        if row["status"] not in ("graded", "not_a_lesson"):
            assert row["score"] is None and row["checkpoints"] == {}
    csv_lines = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(rows)
    assert csv_lines[3].startswith("carol,,,,95,,unreachable,")


def test_an_unknown_source_is_a_usage_error(tmp_path):
    run = run_cohort(tmp_path / "nowhere", "--out", tmp_path / "out", check=False)
    assert run.returncode == 2
    assert "no such file or folder" in run.stderr
    assert not (tmp_path / "out").exists()


# --- the pool of workers -----------------------------------------------------------------------

def echo_or_misbehave(item):
    if item == "hang":
        while True:
            time.sleep(1)
    if item == "die":
        os._exit(7)
    if item == "raise":
        raise ValueError("a bad item")
    print("noise from a submission")  # goes to the worker's log, not the terminal
    return item.upper()


def test_the_pool_survives_hanging_dying_and_raising_work(tmp_path):
    items = ["a", "hang", "b", "die", "c", "raise", "d"]
    started = time.monotonic()
    # 5 s per item: the good items take milliseconds, but a busy machine may start a worker slowly.
    results = {items[number]: (outcome, detail)
               for number, outcome, detail, _ in cohort_pool.run_pool(items, echo_or_misbehave, 2, 5, tmp_path)}
    assert time.monotonic() - started < 40
    assert {item: results[item] for item in "abcd"} == {item: ("ok", item.upper()) for item in "abcd"}
    assert results["hang"][0] == "timed_out"
    assert results["die"][0] == "crashed" and "exit code 7" in results["die"][1]
    assert results["raise"] == ("error", "ValueError: a bad item")


# --- roster files and mistakes -----------------------------------------------------------------------

def test_roster_lines_name_students_and_sources(tmp_path):
    (tmp_path / "forks" / "dana").mkdir(parents=True)
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "# the class\n"
        "https://github.com/school/migrations-alice.git\n"
        "bob git@github.com:school/migrations-bob.git\n"
        "\n"
        "carol, https://github.com/school/lesson\n"
        "forks/dana\n"
        "https://example.com/other/migrations-erin\n"
    )
    entries = cohort_sources.discover([roster])
    assert [(e.student, e.source) for e in entries] == [
        ("migrations-alice", "https://github.com/school/migrations-alice.git"),
        ("bob", "git@github.com:school/migrations-bob.git"),
        ("carol", "https://github.com/school/lesson"),
        ("dana", "forks/dana"),
        ("migrations-erin", "https://example.com/other/migrations-erin"),
    ]
    assert entries[3].path == (tmp_path / "forks" / "dana").resolve()
    assert [e.url is not None for e in entries] == [True, True, True, False, True]
    assert [e.student for e in cohort_sources.select_shard(entries, (2, 2))] == ["bob", "dana"]


def test_a_mistake_has_one_id_whatever_the_revision_ids(request, tmp_path):
    names = ("table rename kept as create+drop", "downgraded but models.py not reverted",
             "op.rename_column, which Alembic does not have")
    made = a_class(request, tmp_path / "one", *names, seed=1) + a_class(request, tmp_path / "two", *names, seed=2)
    entries = cohort_sources.discover([tmp_path / "one"])
    for entry in cohort_sources.discover([tmp_path / "two"]):  # student-001... again: another class
        entry.index, entry.student = entry.index + len(entries), f"{entry.student}-b"
        entries.append(entry)
    rows, _ = cohort.grade_many(entries, tmp_path / "cache")
    assert rows[0]["checkpoints"]["rename_table"]["summary"] != rows[3]["checkpoints"]["rename_table"]["summary"]
    mistakes = [row["mistakes"] for row in rows]
    assert mistakes[:3] == mistakes[3:]
    assert mistakes[:3] == [
        ["rename_table:loses_data"],  # its downgrade follows from it: one root cause
        ["models_match:models_not_reverted"],
        ["rename_column:upgrade_fails"],  # downgrades is blocked by it: not a mistake of its own
    ]
    assert root_causes.mistake_name("models_match:models_not_reverted", LESSON).startswith("models.py not put back")
    assert len(made) == 6


class FakeResult:
    def __init__(self, reason, status="failed"):
        self.id, self.reason, self.status = "rename_table", reason, status


def test_a_mistake_is_the_checkpoint_and_the_engines_reason():
    assert cohort_gradebook.mistake_of(FakeResult("loses_data")) == "rename_table:loses_data"
    assert cohort_gradebook.mistake_of(FakeResult("ok", status="passed")) is None
    assert root_causes.mistake_name("rename_table:loses_data", LESSON).startswith("table rename kept as create+drop")
    assert "hung" in root_causes.mistake_name("rename_table:upgrade_stopped", LESSON)


def test_every_named_mistake_is_a_reason_the_engine_gives():
    from testing.engine.judge import ALL_REASONS
    from testing.lesson.checkpoints import LESSON

    for mistake in LESSON.words.mistake_names:
        checkpoint, reason = mistake.split(":")
        assert checkpoint in LESSON.by_id and reason in ALL_REASONS, mistake
    optional = {checkpoint.id for checkpoint in LESSON.further.checkpoints}
    for mistake in LESSON.further.words.mistake_names:
        checkpoint, reason = mistake.split(":")
        assert checkpoint in optional and reason in ALL_REASONS, mistake


# --- the report --------------------------------------------------------------------------------------

class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.tags, self.external = set(), [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            value = attrs.get(name) or ""
            if value.startswith("#"):
                self.links.append(value[1:])
            elif value:
                self.external.append(value)


def test_the_report_is_self_contained_and_links_every_student(request, tmp_path):
    a_class(request, tmp_path / "class", "the reference solution", "table rename kept as create+drop",
            "table rename kept as create+drop", "downgraded but models.py not reverted")
    run_cohort(tmp_path / "class", "--out", tmp_path / "out", "--cache", tmp_path / "cache")
    text = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    assert page.external and all(link.startswith("feedback/") for link in page.external)  # no CDN, nothing from elsewhere
    assert all((tmp_path / "out" / link).is_file() for link in page.external)
    assert "script" not in page.tags and page.tags.count("svg") == 2
    assert set(page.links) <= page.ids
    assert {f"s-student-00{n}" for n in range(1, 5)} <= set(page.links)
    mistakes = text[text.index("Most common mistakes"):text.index("<h2>Students")]
    assert mistakes.index("table rename kept as create+drop") < mistakes.index("models.py not put back")
    assert "2 (50%)" in mistakes
    assert "loses data: the 2 rows of `department`" in mistakes  # a real message as the example
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "**4 submissions** (4 graded): 1 at full marks (out of 95)" in summary
    assert "| `rename_table` | 2/4 |" in summary
