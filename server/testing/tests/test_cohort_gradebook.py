"""The cohort gradebook as an instructor uses it: one maximum, the committed work, the
roster's ids, root causes, feedback files to hand back, the Canvas import, and a
partial gradebook after Ctrl-C.

Submissions are the mistake catalogue's, made by cohort_submissions.py; the real
command runs in a subprocess, as an instructor runs it.
"""
import csv
import io
import re
import shutil
import subprocess
import sys

import pytest

from testing.databases.database import postgres_server_url
from testing.instructor import cohort, cohort_sources, root_causes
from testing.lesson.checkpoints import LESSON

from .test_cohort import REPO, a_class, book, git, run_cohort, statistics

MAX = 95  # every checkpoint but local_database


def database_options(backend):
    return ["--database", postgres_server_url()] if backend == "postgresql" else []


def commit_all(path, message="my work"):
    git("init", "-q", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-qm", message, cwd=path)
    return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


# --- one maximum, however a submission comes in ---------------------------------------------

def test_a_submission_scores_the_same_however_it_is_supplied(request, backend, tmp_path):
    """A folder with the student's own database, the same as a git folder, as a bare
    repository (a URL) and as files on disk: one score, out of one maximum."""
    # Made from the SQLite walkthrough, whose checkout keeps its database file; replayed on `backend`.
    (path, _), = a_class(request, tmp_path / "made", "the local database at revision 3 with its rows")
    assert (path / "server" / "instance" / "app.db").is_file()
    plain = tmp_path / "plain"
    shutil.copytree(path, plain)
    commit_all(path)  # .gitignore keeps app.db out of the commit, as on GitHub
    git("clone", "-q", "--bare", str(path), str(tmp_path / "bare.git"), cwd=tmp_path)
    roster = tmp_path / "roster.txt"
    roster.write_text(f"folder {path}\nplain {plain}\nurl {(tmp_path / 'bare.git').as_uri()}\n")
    options = ["--cache", tmp_path / "cache", *database_options(backend)]
    run_cohort(roster, "--out", tmp_path / "out", *options)
    run_cohort(roster, "--out", tmp_path / "files", "--working-tree", *options)
    rows = {row["student"]: row for row in book(tmp_path / "out")["rows"]}
    rows.update({f"{name}-files": row for name, row in
                 ((row["student"], row) for row in book(tmp_path / "files")["rows"])})
    assert {name: (row["score"], row["max_score"], row["percent"]) for name, row in rows.items()} == {
        name: (MAX, MAX, 100.0) for name in rows}
    for row in rows.values():
        local = row["checkpoints"]["local_database"]
        assert local["status"] == "not_applicable" and "graded for an instructor" in local["summary"]
    assert book(tmp_path / "out")["max_score"] == MAX


def test_the_pristine_grader_leaves_the_students_database_out_too(request, tmp_path):
    """`pytest --lesson-root` of another checkout gives the cohort's score, not the one the
    student sees on their own machine (where the database counts)."""
    from testing.engine.checks import grade

    (path, _), = a_class(request, tmp_path / "made", "downgraded but models.py not reverted")
    own = grade(path)  # as on the student's machine
    assert (own["local_database"].status, own.max_score) == ("passed", MAX + 5)
    run = subprocess.run([sys.executable, "-m", "pytest", f"--lesson-root={path}",
                          f"--junitxml={tmp_path / 'report.xml'}"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1, run.stdout
    assert f"80/{MAX}" in run.stdout, run.stdout


# --- the committed work ------------------------------------------------------------------------

def test_a_git_folder_is_graded_at_its_commit_unless_working_tree(request, tmp_path):
    (path, _), = a_class(request, tmp_path / "class", "table rename kept as create+drop")
    head = commit_all(path)
    (reference, _), = a_class(request, tmp_path / "fixed", "the reference solution")
    versions = path / "server" / "migrations" / "versions"
    for old in versions.glob("*.py"):  # an uncommitted fix: the reference's revisions
        old.unlink()
    for new in (reference / "server" / "migrations" / "versions").glob("*.py"):
        shutil.copy(new, versions / new.name)
    plain = tmp_path / "class" / "student-002"  # no git repository
    shutil.copytree(reference, plain)
    before = git_status(path)

    run_cohort(tmp_path / "class", "--out", tmp_path / "committed", "--cache", tmp_path / "cache")
    committed = {row["student"]: row for row in book(tmp_path / "committed")["rows"]}
    row = committed[path.name]
    assert (row["score"], row["commit"], row["status"], row["detail"]) == (70, head, "graded", None)
    assert committed[plain.name]["detail"] == "not a git repository: graded as the files are"
    assert (committed[plain.name]["score"], committed[plain.name]["commit"]) == (MAX, None)

    run_cohort(tmp_path / "class", "--out", tmp_path / "files", "--cache", tmp_path / "cache", "--working-tree")
    files = {row["student"]: row for row in book(tmp_path / "files")["rows"]}
    assert (files[path.name]["score"], files[path.name]["commit"]) == (MAX, head)
    assert "uncommitted changes included" in files[path.name]["detail"]
    assert git_status(path) == before  # grading wrote nothing into the student's folder


def git_status(path):
    return subprocess.run(["git", "-C", str(path), "status", "--porcelain"], capture_output=True, text=True).stdout


# --- the roster ---------------------------------------------------------------------------------

def test_a_csv_roster_gives_ids_emails_and_lms_ids(tmp_path):
    (tmp_path / "forks" / "dana").mkdir(parents=True)
    roster = tmp_path / "roster.csv"
    roster.write_text("name,email,id,source,lms_id,section\n"
                      "alice,alice@school.edu,s001,https://github.com/school/migrations-alice.git,1001,A\n"
                      "# a comment\n"
                      "dana,,s004,forks/dana\n")
    entries = cohort_sources.discover([roster])
    assert [(e.student, e.source, e.people) for e in entries] == [
        ("alice", "https://github.com/school/migrations-alice.git",
         {"id": "s001", "email": "alice@school.edu", "lms_id": "1001", "section": "A"}),
        ("dana", "forks/dana", {"id": "s004"}),
    ]
    roster.write_text("name,source,grade\nalice,a\n")
    with pytest.raises(cohort_sources.SourceError, match="unknown column 'grade'"):
        cohort_sources.discover([roster])


def test_two_students_with_one_name_are_an_error_naming_both_lines(tmp_path):
    roster = tmp_path / "roster.txt"
    roster.write_text("alice https://example.com/a.git\nbob https://example.com/b.git\n"
                      "alice https://example.com/other-a.git\n")
    with pytest.raises(cohort_sources.SourceError) as error:
        cohort_sources.discover([roster])
    assert "roster.txt line 1 and roster.txt line 3" in str(error.value)
    run = run_cohort(roster, "--out", tmp_path / "out", check=False)
    assert run.returncode == 2 and "roster.txt line 1 and roster.txt line 3" in run.stderr

    roster.write_text("name,id,source\nalice,s1,https://example.com/a.git\nalice,s2,https://example.com/b.git\n")
    assert [e.student for e in cohort_sources.discover([roster])] == ["alice-s1", "alice-s2"]  # told apart by their ids


# --- root causes ------------------------------------------------------------------------------------

ROOT_CAUSE_CLASS = (  # the catalogue's merged-steps, skipped-fix and models cases
    "table rename kept as create+drop", "steps 3 and 4 merged into one revision", "step 5 skipped: models.py still has location",
    "table rename kept as create+drop", "downgraded but models.py not reverted", "column rename kept as add+drop",
)


def test_mistakes_are_reduced_to_root_causes_before_ranking(request, backend, tmp_path):
    a_class(request, tmp_path / "class", *ROOT_CAUSE_CLASS, backend=backend)
    server_url = postgres_server_url() if backend == "postgresql" else None
    rows, _ = cohort.grade_many(cohort_sources.discover([tmp_path / "class"]), tmp_path / "cache", backend, server_url, jobs=2)
    mistakes = [(row["mistakes"], row["consequences"]) for row in rows]
    assert mistakes == [
        (["rename_table:loses_data"], ["downgrades:downgrade_not_reversed"]),  # the skipped fix, once
        (["rename_table:wrong_schema"], ["history:too_few_revisions", "rename_column:work_in_another_revision"]),
        (["models_match:models_not_reverted"], []),
        (["rename_table:loses_data"], ["downgrades:downgrade_not_reversed"]),
        (["models_match:models_not_reverted"], []),
        (["rename_column:loses_data"], ["downgrades:downgrade_not_reversed"]),
    ]
    ranking = [(mistake, len(who)) for mistake, who in root_causes.ranked(rows, LESSON)]
    assert ranking == [  # most students first; ties in step order (3 before 4 before 5), never alphabetical
        ("rename_table:loses_data", 2), ("models_match:models_not_reverted", 2),
        ("rename_table:wrong_schema", 1), ("rename_column:loses_data", 1),
    ]
    assert "merged" in root_causes.mistake_name("rename_table:wrong_schema", LESSON)


# --- feedback to hand back, and the report ------------------------------------------------------------

def test_every_student_gets_feedback_files_that_the_report_links(request, tmp_path):
    a_class(request, tmp_path / "class", "the reference solution", "table rename kept as create+drop")
    run_cohort(tmp_path / "class", "--out", tmp_path / "out", "--cache", tmp_path / "cache")
    gradebook = book(tmp_path / "out")
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    lines = list(csv.DictReader(io.StringIO((tmp_path / "out" / "gradebook.csv").read_text())))
    for row, line in zip(gradebook["rows"], lines):
        markdown = tmp_path / "out" / "feedback" / f"{row['student']}.md"
        page = markdown.with_suffix(".html")
        assert line["feedback"] == f"feedback/{markdown.name}"
        assert f'href="feedback/{page.name}"' in report and f'href="feedback/{markdown.name}"' in report
        text, html_text = markdown.read_text(), page.read_text()
        assert f"{row['score']}/{MAX}" in text and f"{row['score']}/{MAX}" in html_text
        assert "<script" not in html_text and "http" not in html_text.replace("http://www.w3.org", "")
        for checkpoint, result in row["checkpoints"].items():
            assert f"`{checkpoint}`" in text
            if result["status"] == "failed":  # the whole message, not only its summary
                assert result["message"] in text
                assert result["message"].splitlines()[-1].strip() in html_text.replace("&#x27;", "'")
    assert gradebook["rows"][1]["score"] == 70


def test_long_paths_wrap_at_every_width(request, tmp_path):
    from .test_page_browser import require_browser

    require_browser()
    from testing.student.page_tool import headless_chromium

    deep = tmp_path / ("a-rather-long-folder-name-for-a-course-" * 3).strip("-") / "week-3-submissions"
    a_class(request, deep, "table rename kept as create+drop", "the README's example revision ids copied without their parents")
    run_cohort(deep, "--out", tmp_path / "out", "--cache", tmp_path / "cache")
    pages = [tmp_path / "out" / "report.html", *sorted((tmp_path / "out" / "feedback").glob("*.html"))]
    with headless_chromium() as browser:
        for width in (375, 1200):
            for path in pages:
                view = browser.new_page()
                view.set_viewport_size({"width": width, "height": 800})
                view.goto(path.as_uri())
                view.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
                overflow = view.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"{path.name} is {overflow} px too wide at {width} px"
                view.close()


# --- the Canvas import ---------------------------------------------------------------------------------

def test_the_roster_lms_ids_give_a_canvas_import(request, tmp_path):
    made = a_class(request, tmp_path / "class", "the reference solution", "table rename kept as create+drop",
                   "an extra empty revision")
    roster = tmp_path / "roster.csv"
    roster.write_text("name,email,lms_id,section,source\n"
                      f"alice,alice@school.edu,1001,Section A,{made[0][0]}\n"
                      f"bob,bob@school.edu,1002,,{made[1][0]}\n"
                      f"carol,carol@school.edu,,,{made[2][0]}\n"
                      "dan,dan@school.edu,1004,Section A,missing-folder\n")
    run = run_cohort(roster, "--out", tmp_path / "out", "--cache", tmp_path / "cache",
                     "--canvas-assignment", "Migrations lab (5501)", check=False)
    assert run.returncode == 1 and "canvas.csv leaves out 1 student with no lms_id in the roster: carol" in run.stdout
    text = (tmp_path / "out" / "canvas.csv").read_text(encoding="utf-8")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Migrations lab (5501)"]
    assert table[1] == ["Points Possible", "", "", "", "", str(MAX)]
    assert table[2:] == [["alice", "1001", "", "", "Section A", str(MAX)], ["bob", "1002", "", "", "", "70"],
                         ["dan", "1004", "", "", "Section A", ""]]  # not graded: Canvas keeps what it has
    rows = {row["student"]: row for row in book(tmp_path / "out")["rows"]}
    assert (rows["alice"]["email"], rows["carol"]["score"]) == ("alice@school.edu", 80)
    header = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == ["student", "id", "email", "score", "max_score", "percent", "status"]


def test_no_lms_ids_no_canvas_file(request, tmp_path):
    a_class(request, tmp_path / "class", "the reference solution")
    run = run_cohort(tmp_path / "class", "--out", tmp_path / "out", "--cache", tmp_path / "cache", "--jobs", "1")
    assert not (tmp_path / "out" / "canvas.csv").exists()
    assert "1 submission;" in run.stdout and "with 1 process." in run.stdout  # plurals


# --- interrupted, merged, ignored -------------------------------------------------------------------------

def test_a_merge_writes_run_json_and_names_the_missing_students(request, tmp_path):
    a_class(request, tmp_path / "class", "the reference solution", "an extra empty revision", "two heads")
    run_cohort(tmp_path / "class", "--shard", "1/3", "--out", tmp_path / "shard-1", "--cache", tmp_path / "cache")
    run_cohort(tmp_path / "class", "--shard", "3/3", "--out", tmp_path / "shard-3", "--cache", tmp_path / "cache")
    run = run_cohort("--merge", tmp_path / "shard-1", tmp_path / "shard-3", "--out", tmp_path / "merged", check=False)
    assert run.returncode == 1
    assert "1 of 3 submissions in no shard" in run.stdout and run.stdout.rstrip().count("student-002") == 1, run.stdout
    merged = statistics(tmp_path / "merged")
    assert (merged["submissions"], merged["in_gradebook"], merged["missing"]) == (3, 2, ["student-002"])
    assert [shard["graded"] for shard in merged["shards"]] == [1, 1]
    assert book(tmp_path / "merged")["missing"] == ["student-002"]


def test_the_readmes_output_folders_are_ignored_by_git(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Grading a whole class"):]
    folders = set(re.findall(r"--out (\S+)", section)) | {"cohort-report"}
    assert len(folders) >= 3
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(REPO / ".gitignore", clone / ".gitignore")
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    for folder in folders:
        (clone / folder).mkdir(parents=True, exist_ok=True)
        (clone / folder / "gradebook.csv").write_text("student\n")
    shown = subprocess.run(["git", "-C", str(clone), "status", "--porcelain", "--untracked-files=all"],
                           capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "?? .gitignore", shown
