"""What a cohort gradebook says to people: summary.md and the self-contained report.html.

`summary_markdown(book)` gives the figures, the pass rate of every checkpoint
and the most common root causes (the README's sample and the workflow's job
summary); `report_html(book)` adds the charts, the ranked mistakes with one real
message each, the students and every student's feedback, with links to the
feedback files each student gets (handback.py). `student_html(row)` is one
student's feedback, shared by the report and those files.
The optional "Going further" steps, once anyone began them, have a section of
their own in both (their pass rates, bonus and mistakes), and a student's
feedback shows their checkpoints after the lesson's; the score, the charts
and the ranked mistakes are the lesson's alone.
"""
import html
import re
from collections import Counter

from ..lesson.checkpoints import LESSON
from ..lesson.feedback import plural
from .cohort_gradebook import GRADED, SCORED
from .root_causes import mistake_name, ranked


def common_mistakes(book):
    """[(root-cause mistake, [rows that made it])], most common first (root_causes.ranked)."""
    return ranked([row for row in book["rows"] if row["status"] in SCORED], LESSON)


def lesson_checkpoints_of(row):
    return row["checkpoints"]


def further_checkpoints_of(row):
    return row["further"]["checkpoints"]


def mistake_example(mistake, rows, checkpoints_of=lesson_checkpoints_of):
    checkpoint = mistake.split(":", 1)[0]
    return checkpoints_of(rows[0])[checkpoint]["message"]


def further_rows(book):
    """The scored rows of the submissions that began the optional steps."""
    return [row for row in book["rows"] if row["status"] in SCORED and row.get("further")]


def further_mistakes(book):
    """[(optional step's mistake, [rows that made it])], most common first."""
    return ranked(further_rows(book), LESSON, mistakes_of=lambda row: row["further"]["mistakes"])


def further_pass_rates(book):
    """[(optional checkpoint, passed, began)] over the submissions that began the optional steps."""
    began = further_rows(book)
    return [(checkpoint, sum(1 for row in began if further_checkpoints_of(row)[checkpoint["id"]]["status"] == "passed"),
             len(began)) for checkpoint in book.get("further_checkpoints", [])]


def figures(book):
    rows = book["rows"]
    scored = [row for row in rows if row["status"] in SCORED]
    statuses = Counter(row["status"] for row in rows)
    return {
        "students": len(rows), "scored": len(scored), "statuses": statuses,
        "full_marks": sum(1 for row in scored if row["score"] == row["max_score"]),
        "mean_percent": (sum(row["percent"] for row in scored) / len(scored)) if scored else None,
    }


def pass_rates(book):
    """[(checkpoint, passed, applicable)] over the scored rows."""
    rates = []
    for checkpoint in book["checkpoints"]:
        results = [row["checkpoints"][checkpoint["id"]] for row in book["rows"] if row["status"] in SCORED]
        applicable = [r for r in results if r["status"] != "not_applicable"]
        rates.append((checkpoint, sum(1 for r in applicable if r["status"] == "passed"), len(applicable)))
    return rates


def _headline(book):
    f = figures(book)
    mean = "-" if f["mean_percent"] is None else f"{f['mean_percent']:.0f}%"
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(f["statuses"].items()))
    partial = " Partial: the run was interrupted; rerun the same command to finish." if book.get("partial") else ""
    return f, mean, statuses, partial


def summary_markdown(book, limit=10):
    """The run in a few lines of Markdown (the README's sample, the job summary)."""
    f, mean, statuses, partial = _headline(book)
    lines = [f"**{plural(f['students'], 'submission')}** ({statuses}): {f['full_marks']} at full marks "
             f"(out of {book['max_score']}), mean score {mean}.{partial}",
             "", "| Checkpoint | Passed |", "|---|---:|"]
    for checkpoint, passed, applicable in pass_rates(book):
        share = f"{passed}/{applicable}" if applicable else "n/a"
        lines.append(f"| `{checkpoint['id']}` | {share} |")
    lines += ["", "| Most common mistakes (root causes) | Students |", "|---|---:|"]
    mistakes = common_mistakes(book)
    for mistake, rows in mistakes[:limit]:
        lines.append(f"| {mistake_name(mistake, LESSON).replace('|', '/')} (`{mistake}`) | {len(rows)} |")
    if not mistakes:
        lines.append("| none | 0 |")
    return "\n".join(lines + further_lines(book)) + "\n"


def further_headline(book):
    """One sentence on the optional steps: who began them and their mean bonus."""
    began = further_rows(book)
    bonus = sum(row["further"]["score"] for row in began) / len(began)
    return (f"{plural(len(began), 'submission')} began them, "
            f"mean bonus {bonus:.0f}/{began[0]['further']['max_score']}.")


def further_lines(book):
    """The optional steps, apart: who began them, their mean bonus, their pass rates and their
    mistakes; nothing when no one did."""
    if not further_rows(book):
        return []
    lines = ["", f"Going further (optional steps, scored apart): {further_headline(book)}"]
    rates = further_pass_rates(book)
    if rates:
        lines += ["", "| Optional checkpoint | Passed (of those who began) |", "|---|---:|"]
        lines += [f"| `{checkpoint['id']}` | {passed}/{began} |" for checkpoint, passed, began in rates]
    mistakes = further_mistakes(book)
    if mistakes:
        lines += ["", "| Going further mistakes | Students |", "|---|---:|"]
        lines += [f"| {mistake_name(mistake, LESSON).replace('|', '/')} (`{mistake}`) | {len(rows)} |"
                  for mistake, rows in mistakes]
    return lines


# --- the HTML report -----------------------------------------------------------------

# Long paths and messages wrap at any width, so no column runs off a 375 px phone or a
# 1,200 px window: the cells of long text (class long) and messages may break anywhere,
# the short cells (ids, results, points) only between words, so they stay readable, except
# on a narrow screen, where any cell may break.
CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1f2328}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;white-space:nowrap}code{font-size:.92em}
td,th,p,h1,h2,h3{overflow-wrap:break-word}.long,summary{overflow-wrap:anywhere}
@media (max-width:40em){td,th{overflow-wrap:anywhere;padding:.2em .25em}td.num{white-space:normal}}
pre{background:#f6f8fa;padding:.7em;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.85em}
.passed{color:#1a7f37}.failed{color:#cf222e}.other{color:#9a6700}.muted{color:#656d76}
.figures span{display:inline-block;margin-right:2em}.figures b{font-size:1.4em}
svg{max-width:100%;height:auto}svg text{font:12px system-ui,sans-serif;fill:#1f2328}
.wide{overflow-x:auto;margin:.5em 0}.wide table{margin:0}.chart th,.chart td{white-space:nowrap;overflow-wrap:normal}
a:focus-visible,summary:focus-visible,[tabindex]:focus-visible{outline:3px solid #0969da;outline-offset:2px}
"""


def page(title, body):
    """A whole self-contained HTML page (no script, nothing loaded from elsewhere)."""
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{CSS}</style></head><body><main>", *body, "</main></body></html>",
    ]) + "\n"


def report_html(book, feedback_files=None):
    """The report; feedback_files ({student: (html name, markdown name)}, relative) are linked."""
    f, mean, statuses, partial = _headline(book)
    feedback_files = feedback_files or {}
    return page("Cohort gradebook: schema migrations", [
        "<h1>Cohort gradebook: schema migrations with Flask-Migrate</h1>",
        f'<p class="figures"><span><b>{f["students"]}</b> {"submission" if f["students"] == 1 else "submissions"}</span>'
        f'<span><b>{f["scored"]}</b> graded</span><span><b>{f["full_marks"]}</b> at full marks</span>'
        f'<span><b>{mean}</b> mean score</span></p>',
        f'<p class="muted">Out of {book["max_score"]} points; replayed on {_e(book["backend"])}; '
        f'grader {_e(book["grader"])}. Statuses: {_e(statuses)}.{_e(partial)}</p>',
        "<h2>Score distribution</h2>", _histogram_svg(book),
        "<h2>Checkpoints passed</h2>", _pass_rate_svg(book),
        "<h2>Most common mistakes</h2>",
        '<p class="muted">Root causes: a failure that follows from an earlier one (a downgrade of a '
        "revision that already failed, a step merged into another) counts once, under its cause.</p>",
        _mistakes_html(common_mistakes(book), figures(book)["scored"]),
        *_further_html(book),
        "<h2>Students</h2>", _students_html(book, feedback_files),
        "<h2>Feedback, student by student</h2>",
        *(student_html(row, feedback_files.get(row["student"]), level=3) for row in book["rows"]),
    ])


def _e(text):
    return html.escape(str(text), quote=True)


def anchor(row):
    return "s-" + re.sub(r"[^\w-]", "-", row["student"])


def _scrolling(html_text, label):
    """A table wider than the window scrolls sideways in its own box, which the keyboard can focus."""
    return f'<div class="wide" role="region" aria-label="{_e(label)}" tabindex="0">{html_text}</div>'


def score_bands(book):
    """[(band, students)]: students per tenth of the score (the last band includes full marks)."""
    bins = [0] * 10
    for row in book["rows"]:
        if row["status"] in SCORED:
            bins[min(int(row["percent"] // 10), 9)] += 1
    return [(f"{number * 10}-{number * 10 + 9 if number < 9 else 100}%", count) for number, count in enumerate(bins)]


def _histogram_svg(book):
    """The score distribution as bars for the eye, and the same numbers in a table for everyone."""
    bands = score_bands(book)
    width, height, bar = 640, 220, 56
    top = max(count for _, count in bands) or 1
    shapes = []
    for number, (label, count) in enumerate(bands):
        x, h = 40 + number * (bar + 4), round(160 * count / top)
        shapes.append(f'<rect x="{x}" y="{180 - h}" width="{bar}" height="{h}" fill="#0969da">'
                      f"<title>{plural(count, 'student')} scored {label}</title></rect>")
        shapes.append(f'<text x="{x + bar / 2}" y="{174 - h}" text-anchor="middle">{count}</text>')
        shapes.append(f'<text x="{x + bar / 2}" y="198" text-anchor="middle">{label}</text>')
    table = ('<table class="chart" id="score-table"><tr><th scope="row">Score</th>'
             + "".join(f'<th scope="col">{label}</th>' for label, _ in bands)
             + '</tr><tr><th scope="row">Students</th>' + "".join(f"<td>{count}</td>" for _, count in bands)
             + "</tr></table>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" aria-hidden="true" focusable="false">'
            f'<line x1="36" y1="180" x2="{width - 4}" y2="180" stroke="#656d76"/>{"".join(shapes)}'
            f'<text x="{width / 2}" y="216" text-anchor="middle">score (share of the points that apply)</text></svg>'
            + _scrolling(table, "Score distribution as a table"))


def _pass_rate_svg(book):
    """Each checkpoint's pass rate as bars for the eye, and in a table for everyone."""
    rates = pass_rates(book)
    width, row_height, left, span = 640, 26, 150, 400
    shapes, rows = [], []
    for number, (checkpoint, passed, applicable) in enumerate(rates):
        y = 10 + number * row_height
        share = passed / applicable if applicable else 0
        text = f"{passed}/{applicable} ({100 * share:.0f}%)" if applicable else "not applicable"
        shapes.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{_e(checkpoint["id"])}</text>')
        shapes.append(f'<rect x="{left}" y="{y}" width="{span}" height="18" fill="#ffebe9"/>')
        shapes.append(f'<rect x="{left}" y="{y}" width="{round(span * share)}" height="18" fill="#1a7f37">'
                      f"<title>{_e(checkpoint['title'])}: {text}</title></rect>")
        shapes.append(f'<text x="{left + span + 8}" y="{y + 14}">{text}</text>')
        rows.append(f'<tr><th scope="row"><code>{_e(checkpoint["id"])}</code></th><td class=long>{_e(checkpoint["title"])}</td>'
                    f"<td class=num>{text}</td></tr>")
    height = 20 + len(rates) * row_height
    table = ('<table id="pass-rate-table"><tr><th scope="col">Checkpoint</th><th scope="col">What it checks</th>'
             '<th scope="col">Students who passed</th></tr>' + "".join(rows) + "</table>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" aria-hidden="true" focusable="false">{"".join(shapes)}</svg>'
            + _scrolling(table, "Checkpoints passed as a table"))


def _mistakes_html(mistakes, scored, checkpoints_of=lesson_checkpoints_of):
    """The ranked mistakes, each with who made it and one real message; `scored`: the share's whole."""
    if not mistakes:
        return "<p>No mistakes: every graded submission passed every checkpoint.</p>"
    scored = scored or 1
    lines = ["<table><tr><th>#</th><th>Mistake</th><th>Students</th><th>Who</th><th>Example message</th></tr>"]
    for rank, (mistake, rows) in enumerate(mistakes, start=1):
        who = ", ".join(f'<a href="#{anchor(row)}">{_e(row["student"])}</a>' for row in rows)
        example = mistake_example(mistake, rows, checkpoints_of)
        lines.append(
            f"<tr><td class=num>{rank}</td><td class=long>{_e(mistake_name(mistake, LESSON))}<br>"
            f"<code class=muted>{_e(mistake)}</code></td>"
            f"<td class=num>{len(rows)} ({100 * len(rows) / scored:.0f}%)</td><td class=long>{who}</td>"
            f"<td class=long><details><summary>{_e(rows[0]['student'])}: {_e(example.splitlines()[0])}</summary>"
            f"<pre>{_e(example)}</pre></details></td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _further_html(book):
    """The optional steps' section: nothing when no one began them."""
    began = further_rows(book)
    if not began:
        return []
    optional = book.get("further_checkpoints", [])
    rates = "".join(
        f'<tr><th scope="row"><code>{_e(checkpoint["id"])}</code></th><td class=long>{_e(checkpoint["title"])}</td>'
        f"<td class=num>{passed}/{count}</td></tr>" for checkpoint, passed, count in further_pass_rates(book))
    students = "".join(
        f'<tr><td class=long><a href="#{anchor(row)}">{_e(row["student"])}</a></td>'
        f'<td class=num>{row["further"]["score"]}/{row["further"]["max_score"]}</td>'
        + "".join(_result_cell(further_checkpoints_of(row)[checkpoint["id"]]) for checkpoint in optional) + "</tr>"
        for row in began)
    return [
        '<h2 id="going-further">Going further (optional steps)</h2>',
        f'<p class="muted">Scored apart: bonus points, never part of the scores, charts and mistakes above. '
        f"{_e(further_headline(book))}</p>",
        _scrolling('<table id="further-pass-rate-table"><tr><th scope="col">Optional checkpoint</th>'
                   '<th scope="col">What it checks</th><th scope="col">Passed (of those who began)</th></tr>'
                   + rates + "</table>", "Optional checkpoints passed"),
        _scrolling('<table id="further-students"><tr><th scope="col">Student</th><th scope="col">Bonus</th>'
                   + "".join(f'<th scope="col"><code>{_e(checkpoint["id"])}</code></th>' for checkpoint in optional)
                   + "</tr>" + students + "</table>", "The optional steps, student by student"),
        "<h3>Going further mistakes</h3>",
        _mistakes_html(further_mistakes(book), len(began), further_checkpoints_of),
    ]


def _result_cell(checkpoint):
    return (f"<td class={_status_class(checkpoint['status'])}>"
            f"{_e(STATUS_WORDS.get(checkpoint['status'], checkpoint['status']))}</td>")


def points_text(checkpoint):
    """"earned/max" of one checkpoint, or "-" where it does not apply."""
    return "-" if checkpoint["status"] == "not_applicable" else f"{checkpoint['points']}/{checkpoint['max_points']}"


STATUS_WORDS = {"not_applicable": "n/a"}  # short in a narrow column; the summary says why


def _status_class(status):
    return {"passed": "passed", "failed": "failed"}.get(status, "other")


def score_text(row):
    if row["score"] is None:
        return "-"
    return f"{row['score']}/{row['max_score']} ({row['percent']:g}%)"


def _students_html(book, feedback_files):
    lines = ["<table><tr><th>Student</th><th>Id</th><th>Score</th><th>Status</th><th>First failing checkpoint</th>"
             "<th>Its summary</th><th>Feedback</th></tr>"]
    for row in book["rows"]:
        status_class = "passed" if row["status"] == GRADED else "other"
        first = row["first_failing"] or ""
        summary = row["first_failing_summary"] or row["detail"] or ""
        files = _file_links(feedback_files.get(row["student"]))
        lines.append(f'<tr><td class=long><a href="#{anchor(row)}">{_e(row["student"])}</a></td>'
                     f'<td class=long>{_e(row.get("id") or row.get("email") or "")}</td><td class=num>{score_text(row)}</td>'
                     f'<td class="{status_class}">{_e(row["status"])}</td><td><code>{_e(first)}</code></td>'
                     f"<td class=long>{_e(summary)}</td><td>{files}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _file_links(files):
    if not files:
        return ""
    page_name, markdown_name = files
    return f'<a href="{_e(page_name)}">page</a>, <a href="{_e(markdown_name)}">Markdown</a>'


def student_html(row, files=None, level=1, every_message=False):
    """One student's feedback: score, every checkpoint, and the full message of each that failed
    (folded; every_message: open, blocked checkpoints too)."""
    heading = f"h{level}"
    score = "" if row["score"] is None else f": {row['score']}/{row['max_score']}"
    who = " · ".join(_e(row[key]) for key in ("id", "email") if row.get(key))
    parts = [f'<{heading} id="{anchor(row)}">{_e(row["student"])}{score}</{heading}>',
             f'<p class=muted>{who + " · " if who else ""}{_e(row["source"])}'
             f'{" at commit " + _e(row["commit"][:12]) if row["commit"] else ""} ({_e(row["status"])})'
             f'{" · feedback file: " + _file_links(files) if files else ""}</p>']
    if row["detail"]:
        parts.append(f"<p>{_e(row['detail'])}</p>")
    if row["checkpoints"]:
        parts += _checkpoints_html(row["checkpoints"], every_message)
    if row.get("further"):
        further = row["further"]
        parts.append(f'<h{level + 1}>Going further (optional steps, scored apart): '
                     f'{further["score"]}/{further["max_score"]} bonus points</h{level + 1}>')
        parts += _checkpoints_html(further["checkpoints"], every_message)
    return "\n".join(parts)


def _checkpoints_html(checkpoints, every_message):
    """A table of checkpoints, then the full message of each that failed (folded; every_message:
    open, blocked ones too)."""
    parts = ["<table><tr><th>Checkpoint</th><th>Result</th><th>Points</th><th>Summary</th></tr>"]
    for cid, checkpoint in checkpoints.items():
        parts.append(f"<tr><td><code>{_e(cid)}</code></td>{_result_cell(checkpoint)}"
                     f"<td class=num>{points_text(checkpoint)}</td>"
                     f"<td class=long>{_e(checkpoint['summary'])}</td></tr>")
    parts.append("</table>")
    for cid, checkpoint in checkpoints.items():
        if checkpoint["status"] == "failed" and (every_message or not checkpoint["blocked_by"]):
            parts.append(f"<details{' open' if every_message else ''}><summary><code>{_e(cid)}</code>: "
                         f"{_e(checkpoint['summary'])}</summary><pre>{_e(checkpoint['message'])}</pre></details>")
    return parts
