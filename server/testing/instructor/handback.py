"""Feedback to hand back: one file per student, in Markdown and as a small HTML page.

`write_feedback(book, folder)` writes feedback/<student>.md and
feedback/<student>.html for every row of a gradebook and returns
{student: (page, markdown)} as paths relative to the gradebook's folder, which
report.html links. Each file stands alone (the lesson, the student, the score,
every checkpoint with its points, and the full message of each that failed;
the optional steps' after the lesson's, with their bonus, once begun),
so an instructor can upload it to an LMS as a comment or commit it to the
student's repository as FEEDBACK.md.
"""
import re
from pathlib import Path

from .cohort_report import page, points_text, score_text, student_html

TITLE = "Schema migrations with Flask-Migrate"
FOLDER = "feedback"


def write_feedback(book, out):
    """Write every student's two files into out/feedback/ (replacing an earlier run's)."""
    folder = Path(out) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for old in list(folder.glob("*.md")) + list(folder.glob("*.html")):
        old.unlink()
    files = {}
    for row in book["rows"]:
        stem = file_stem(row)
        (folder / f"{stem}.md").write_text(feedback_markdown(row), encoding="utf-8")
        (folder / f"{stem}.html").write_text(
            page(f"{TITLE}: feedback for {row['student']}",
                 [f"<p class=muted>{TITLE}: feedback</p>", student_html(row, every_message=True)]),
            encoding="utf-8")
        files[row["student"]] = (f"{FOLDER}/{stem}.html", f"{FOLDER}/{stem}.md")
    return files


def file_stem(row):
    """The student's name as the gradebook has it (already unique and safe), never a path."""
    return re.sub(r"[^\w.-]", "-", row["student"]).lstrip(".") or "student"


def feedback_markdown(row):
    lines = [f"# {TITLE}: feedback for {row['student']}", ""]
    who = ", ".join(f"{key} {row[key]}" for key in ("id", "email") if row.get(key))
    graded = f"`{row['source']}`" + (f" at commit `{row['commit']}`" if row["commit"] else "")
    lines += [f"- Score: **{score_text(row)}**" if row["score"] is not None else f"- Not graded: {row['status']}",
              f"- Graded: {graded}" + (f" ({who})" if who else "")]
    if row["detail"]:
        lines.append(f"- Note: {row['detail']}")
    if row["checkpoints"]:
        lines += _checkpoints_markdown(row["checkpoints"], "##")
    if row.get("further"):
        further = row["further"]
        lines += ["", f"## Going further (optional steps, scored apart): {further['score']}/{further['max_score']} "
                      "bonus points"]
        lines += _checkpoints_markdown(further["checkpoints"], "###")
    return "\n".join(lines) + "\n"


def _checkpoints_markdown(checkpoints, heading):
    """A table of checkpoints, then the full message of each that failed under its own heading."""
    lines = ["", "| Checkpoint | Result | Points | Summary |", "|---|---|---:|---|"]
    for cid, checkpoint in checkpoints.items():
        summary = checkpoint["summary"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{cid}` | {checkpoint['status']} | {points_text(checkpoint)} | {summary} |")
    for cid, checkpoint in checkpoints.items():
        if checkpoint["status"] == "failed":
            fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", checkpoint["message"])), default=0))
            lines += ["", f"{heading} `{cid}`", "", f"{fence}text", checkpoint["message"], fence]
    return lines
