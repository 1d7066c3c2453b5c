"""The gradebook as a Canvas import: canvas.csv, in the layout of Canvas's own gradebook export.

Canvas imports a CSV laid out as its Grades > Export writes it (lib/gradebook_exporter.rb
in canvas-lms): the fixed leading columns `Student`, `ID` (Canvas's user id),
`SIS User ID`, `SIS Login ID` and `Section`, then one column per assignment, and
a second row `Points Possible` with each assignment's points. Canvas finds each
student by those ids, so the file is written only for students whose roster line
gives an `lms_id` (their Canvas user id); `section` fills Section when given. A
new column title makes Canvas create the assignment; an existing one is named as
Canvas exports it, "Title (assignment id)" (`--canvas-assignment`).
"""
import csv
import io

LEADING = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
ASSIGNMENT = "Schema migrations with Flask-Migrate"


def canvas_csv(book, assignment=ASSIGNMENT):
    """(the CSV text, [students left out for want of an lms_id]); None as text when nobody has one."""
    rows = [row for row in book["rows"] if row.get("lms_id")]
    left_out = [row["student"] for row in book["rows"] if not row.get("lms_id")]
    if not rows:
        return None, left_out
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180, as Canvas's own files
    writer.writerow([*LEADING, assignment])
    writer.writerow(["Points Possible", "", "", "", "", book["max_score"]])
    for row in rows:
        score = "" if row["score"] is None else row["score"]  # no score: the cell stays empty, Canvas keeps its own
        writer.writerow([row["student"], row["lms_id"], "", "", row.get("section") or "", score])
    return buffer.getvalue(), left_out
