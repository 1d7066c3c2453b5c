"""Renderers of a grade report: the terminal table and the markdown summary.

They read only the Report's public fields: result.id, .title, .status,
.earned, .points, .summary and .message of each result, and report.score and
report.max_score.
"""
import textwrap

STATUS_WORDS = {"passed": "passed", "failed": "FAILED", "not_applicable": "n/a"}


def summary_table(report):
    width = max(len(result.id) for result in report)
    lines = [f"{'checkpoint':<{width}}  {'result':<7}  {'points':>6}  summary"]
    for result in report:
        points = "-" if result.status == "not_applicable" else f"{result.earned}/{result.points}"
        row = f"{result.id:<{width}}  {STATUS_WORDS[result.status]:<7}  {points:>6}  "
        first, *more = _wrapped(result.summary)
        lines.append(row + first)
        lines += [" " * len(row) + line for line in more]
    return lines


def _points_cell(result):
    return "-" if result.status == "not_applicable" else f"{result.earned} / {result.points}"


def _wrapped(text, limit=80):
    """A summary as lines of at most `limit` characters, broken between words only."""
    return textwrap.wrap(text, width=limit, break_long_words=False, break_on_hyphens=False) or [""]


def markdown_summary(report):
    icons = {"passed": "✅ passed", "failed": "❌ failed", "not_applicable": "➖ n/a"}
    lines = [
        f"## Lesson grade: {report.score} / {report.max_score} points",
        "",
        *([f"Student code: {report.confinement}.", ""] if report.confinement else []),
        "| Checkpoint | Result | Points |",
        "|---|---|---:|",
    ]
    for result in report:
        lines.append(f"| `{result.id}` {_cell(result.title)} | {icons[result.status]} | {_points_cell(result)} |")
    for result in report:
        if result.status != "passed":
            lines += ["", f"<details><summary><code>{result.id}</code>: {_cell(result.summary)}</summary>",
                      "", "```text", result.message, "```", "", "</details>"]
    return "\n".join(lines) + "\n\n"


def _cell(text):
    return text.replace("|", "\\|").replace("\n", " ")
