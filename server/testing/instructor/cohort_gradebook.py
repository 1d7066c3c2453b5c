"""The cohort's gradebook: a row for each student, merging shards, and the files it is written to.

    book = gradebook(rows, backend, grader, roster)     # plain data, as gradebook.json keeps it
    book, warnings, statistics = merge(folders)         # one gradebook from the shards' folders
    gradebook_csv(book, feedback_files)                 # gradebook.csv's text

A row's status: "graded"; "not_a_lesson" (no server/ folder, graded all the
same); "unreachable", "too_large", "timed_out", "crashed" (not graded, no
score). Its mistakes are root causes (root_causes.py). A row whose chain holds
an optional step's revision also has `further`: the bonus, each optional
checkpoint and its own mistakes, apart from the score, the checkpoints and the
mistakes of the lesson (gradebook.csv gives them columns after the lesson's). cohort.write_gradebook
writes the files from a book; a local run and `--merge` of shards both end
there, so merged shards give the same files as one run.
"""
import csv
import io
import json
import os
from pathlib import Path

from ..lesson.checkpoints import CHECKPOINTS, LESSON
from ..lesson.feedback import plural
from .root_causes import consequence_of

GRADED, NOT_A_LESSON = "graded", "not_a_lesson"
UNREACHABLE, TOO_LARGE, TIMED_OUT, CRASHED = "unreachable", "too_large", "timed_out", "crashed"
SCORED = (GRADED, NOT_A_LESSON)
GRADEBOOK_FORMAT = 3  # 3: the optional steps' checkpoints in each row's `further`
# One maximum for every row: `local_database` (the database file on the student's own
# machine) never counts when an instructor grades, however the submission came in.
MAX_SCORE = sum(c.points for c in CHECKPOINTS if c.id != "local_database")
PEOPLE_COLUMNS = ("id", "email", "lms_id", "section")
OPTIONAL_CHECKPOINTS = LESSON.further.checkpoints if LESSON.further else ()


# --- a row ----------------------------------------------------------------------------

def mistake_of(result):
    """The stable id of a failed checkpoint result, "<checkpoint>:<reason>" (the engine's
    reason codes, see checks.py); None when it did not fail."""
    if result.status != "failed":
        return None
    return f"{result.id}:{result.reason}"


def record_of(report):
    """What the gradebook keeps of one grade (plain data, cached as JSON)."""
    verdicts = {result.id: result.verdict for result in report}
    checkpoints = {}
    for result in report:
        checkpoints[result.id] = {
            **_checkpoint_record(result),
            "caused_by": consequence_of(result.verdict, verdicts, report.lesson)
            if result.status == "failed" and not result.blocked_by else None,
        }
    record = {"score": report.score, "max_score": report.max_score, "checkpoints": checkpoints}
    if report.further_started:  # the optional steps: a bonus apart, with their own mistakes
        record["further"] = {
            "score": report.further_score, "max_score": report.further_max,
            "checkpoints": {result.id: _checkpoint_record(result) for result in report.further.values()},
            "mistakes": [mistake_of(result) for result in report.further.values()
                         if result.status == "failed" and not result.blocked_by],
        }
    return record


def _checkpoint_record(result):
    return {
        "status": result.status,
        "points": result.earned,
        "max_points": result.points,
        "summary": result.summary,
        "message": result.message,
        "blocked_by": result.blocked_by,
        "mistake": mistake_of(result),
    }


def row_of(entry, status, detail=None, record=None, seconds=None):
    """One student's line of the gradebook."""
    row = {
        "index": entry.index, "student": entry.student,
        **{key: entry.people.get(key) for key in PEOPLE_COLUMNS},
        "source": entry.source, "commit": entry.commit, "status": status, "detail": detail or entry.note,
        "score": None, "max_score": MAX_SCORE, "percent": None, "checkpoints": {},
        "first_failing": None, "first_failing_summary": None, "mistakes": [], "consequences": [],
    }
    if record is not None:
        row.update(record)
        row["percent"] = round(100 * record["score"] / record["max_score"], 1) if record["max_score"] else None
        if entry.path is not None and not (entry.path / "server").is_dir():
            row["status"] = NOT_A_LESSON
            row["detail"] = "no server/ folder: this is not a copy of the lesson"
        failing = [(cid, c) for cid, c in record["checkpoints"].items() if c["status"] == "failed"]
        if failing:
            row["first_failing"], row["first_failing_summary"] = failing[0][0], failing[0][1]["summary"]
        row["mistakes"], row["consequences"] = root_causes(record["checkpoints"])
    if seconds is not None:
        row["seconds"] = seconds
    return row


def root_causes(checkpoints):
    """(root-cause mistakes, the mistakes that follow from one) of a record's checkpoints;
    checkpoints that are only blocked are neither (root_causes.py)."""
    failed = [c for c in checkpoints.values() if c["status"] == "failed" and not c["blocked_by"]]
    return ([c["mistake"] for c in failed if not c.get("caused_by")],
            [c["mistake"] for c in failed if c.get("caused_by")])


def row_record(row):
    return {key: row[key] for key in ("score", "max_score", "checkpoints", "further") if key in row}


# --- the gradebook ---------------------------------------------------------------------

def gradebook(rows, backend, grader, roster, shard=None, missing=(), partial=False):
    """The gradebook of rows; roster: every student of the run, in order (shards share it)."""
    return {
        "format": GRADEBOOK_FORMAT, "grader": grader, "backend": backend, "total": len(roster),
        "max_score": MAX_SCORE, "roster": list(roster), "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "partial": bool(partial or missing), "missing": list(missing),
        "checkpoints": [{"id": c.id, "title": c.title, "points": c.points} for c in CHECKPOINTS],
        "further_checkpoints": [{"id": c.id, "title": c.title, "points": c.points} for c in OPTIONAL_CHECKPOINTS],
        "rows": sorted(rows, key=lambda row: row["index"]),
    }


class MergeError(Exception):
    """Shard gradebooks that cannot be merged into one."""


def merge(folders):
    """One gradebook from the gradebook.json of several shard folders; (book, warnings, statistics)."""
    books, runs = [], []
    for folder in folders:
        path = Path(folder) / "gradebook.json" if Path(folder).is_dir() else Path(folder)
        if not path.is_file():
            raise MergeError(f"{folder}: no gradebook.json")
        books.append(read_json(path))
        run = path.with_name("run.json")
        runs.append(read_json(run) if run.is_file() else None)
    for book in books:
        if book.get("format") != GRADEBOOK_FORMAT:
            raise MergeError(f"{folders[books.index(book)]}: a gradebook of another version of the grader; "
                             "grade every shard with this one")
    for book in books[1:]:
        for key in ("grader", "backend", "roster"):
            if book[key] != books[0][key]:
                shown = (books[0][key], book[key]) if key != "roster" else ("one roster", "another")
                raise MergeError(f"the shards disagree on {key}: {shown[0]} and {shown[1]}; "
                                 "grade every shard with the same grader and roster")
    rows, warnings = {}, []
    for book in books:
        for row in book["rows"]:
            if row["index"] in rows:
                warnings.append(f"{row['student']} is in more than one shard; kept once")
            rows[row["index"]] = row
    roster = books[0]["roster"]
    missing = [name for index, name in enumerate(roster) if index not in rows]
    if missing:
        warnings.append(f"{len(missing)} of {plural(len(roster), 'submission')} in no shard (is a shard missing, "
                        f"or was one interrupted?): {', '.join(missing)}")
    book = gradebook(list(rows.values()), books[0]["backend"], books[0]["grader"], roster, missing=missing)
    statistics = {"merged": [str(folder) for folder in folders], "submissions": len(roster), "in_gradebook": len(rows),
                  "missing": missing, "grader": books[0]["grader"], "shards": runs}
    return book, warnings, statistics


def gradebook_csv(book, feedback_files):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    ids = [c["id"] for c in book["checkpoints"]]
    optional = [c["id"] for c in book["further_checkpoints"]]
    # The optional steps' columns come after every column of the lesson, which stay where they were;
    # they are empty for a student who did not begin them.
    writer.writerow(["student", "id", "email", "score", "max_score", "percent", "status", *ids, "first_failing",
                     "first_failing_summary", "mistakes", "consequences", "source", "commit", "detail", "feedback",
                     *(["further_score", "further_max_score", *optional, "further_mistakes"] if optional else [])])
    for row in book["rows"]:
        points = [_points_cell(row["checkpoints"].get(cid)) for cid in ids]
        further = row.get("further") or {"checkpoints": {}, "mistakes": []}
        bonus = [_blank(further.get("score")), _blank(further.get("max_score")),
                 *(_points_cell(further["checkpoints"].get(cid)) for cid in optional), " ".join(further["mistakes"])]
        writer.writerow([row["student"], row["id"] or "", row["email"] or "", _blank(row["score"]), row["max_score"],
                         _blank(row["percent"]), row["status"], *points, row["first_failing"] or "",
                         row["first_failing_summary"] or "", " ".join(row["mistakes"]), " ".join(row["consequences"]),
                         row["source"], row["commit"] or "", row["detail"] or "", feedback_files[row["student"]][1],
                         *(bonus if optional else [])])
    return buffer.getvalue()


def _blank(value):
    return "" if value is None else value


def _points_cell(checkpoint):
    if checkpoint is None or checkpoint["status"] == "not_applicable":
        return ""
    return checkpoint["points"]


# --- files ---------------------------------------------------------------------------

def write_json(path, data):
    """Write atomically: an interrupted run never leaves half a file behind."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))
