"""Renderers of a grade report: the terminal table, the markdown summary and
the results GitHub Classroom's reporter reads.

They read only the Report's public fields: result.id, .title, .status,
.earned, .points, .summary and .message of each result, report.score and
report.max_score, and the optional steps' (report.further, .further_started,
.further_score, .further_max), which every one of them keeps apart from the score.
"""
import base64
import json
import textwrap

STATUS_WORDS = {"passed": "passed", "failed": "FAILED", "not_applicable": "n/a"}


def summary_table(results):
    """The lines of a table of results (a Report gives the lesson's own)."""
    results = list(results)
    width = max(len(result.id) for result in results)
    lines = [f"{'checkpoint':<{width}}  {'result':<7}  {'points':>6}  summary"]
    for result in results:
        points = "-" if result.status == "not_applicable" else f"{result.earned}/{result.points}"
        row = f"{result.id:<{width}}  {STATUS_WORDS[result.status]:<7}  {points:>6}  "
        first, *more = _wrapped(result.summary)
        lines.append(row + first)
        lines += [" " * len(row) + line for line in more]
    return lines


def further_line(report):
    """The optional steps' bonus, apart from the lesson's score; what they are, before one is begun."""
    if not report.further:
        return ""
    if not report.further_started:
        return report.lesson.further.words.intro
    return (f"Lesson {report.score}/{report.max_score} · Going further {report.further_score}/{report.further_max} "
            "(optional steps: bonus points, never part of the lesson's score)")


def further_table(report):
    """The optional steps' checkpoints, as summary_table lays out the lesson's."""
    if not report.further_started:
        return []
    return ["Going further (optional steps, scored apart):"] + summary_table(report.further.values())


def _points_cell(result):
    return "-" if result.status == "not_applicable" else f"{result.earned} / {result.points}"


def _wrapped(text, limit=80):
    """A summary as lines of at most `limit` characters, broken between words only."""
    return textwrap.wrap(text, width=limit, break_long_words=False, break_on_hyphens=False) or [""]


MARKDOWN_RESULTS = {"passed": "✅ passed", "failed": "❌ failed", "not_applicable": "➖ n/a"}


def markdown_summary(report):
    lines = [
        f"## Lesson grade: {report.score} / {report.max_score} points",
        "",
        *([f"Student code: {report.confinement}.", ""] if report.confinement else []),
        "| Checkpoint | Result | Points |",
        "|---|---|---:|",
    ]
    lines += [_markdown_row(result) for result in report]
    for result in report:
        if result.status != "passed":
            lines += _details(result)
    bonus = further_line(report)
    if bonus:
        lines += ["", f"### {_cell(bonus)}"]
    if report.further_started:
        lines += ["", "| Optional checkpoint | Result | Points |", "|---|---|---:|"]
        lines += [_markdown_row(result) for result in report.further.values()]
        for result in report.further.values():
            if result.status != "passed" and result.reason != "missing_revision":
                lines += _details(result)
    return "\n".join(lines) + "\n\n"


def _markdown_row(result):
    return f"| `{result.id}` {_cell(result.title)} | {MARKDOWN_RESULTS[result.status]} | {_points_cell(result)} |"


def _details(result):
    return ["", f"<details><summary><code>{result.id}</code>: {_cell(result.summary)}</summary>",
            "", "```text", result.message, "```", "", "</details>"]


def _cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


# --- GitHub Classroom ----------------------------------------------------------
# classroom-resources/autograding-grading-reporter@v1 reads, for each runner
# id named in its `runners` input, the variable <ID in capitals>_RESULTS: a
# base64 JSON result (version 1) of one grader step. Its "Points X/Y" notice,
# which Classroom records, adds up every test's `score` over the runners whose
# max_score is not 0; its "Total points for <runner>" line gives the share of
# passing tests times max_score; and it fails its step when any runner's
# status is "fail" or "error". One runner per checkpoint, holding one test,
# makes both equal the grader's own points. A checkpoint that does not apply
# has max_score 0, so it counts on neither side.
# The optional steps, once begun, follow as runners of max_score 0: their
# tests show passed or failed in the reporter's log, and Classroom's points
# (which have no bonus) stay the lesson's. Their runner's status is "pass"
# whatever the test's, so an unfinished optional step never fails a run the
# lesson passes.

CLASSROOM_RUNNERS = "LESSON_CLASSROOM_RUNNERS"  # the variable naming the runners, for the reporter's input


def classroom_results(report):
    """{runner id: the reporter's v1 result}: one runner per checkpoint, named by
    its id; then, once an optional step is begun, one per optional checkpoint."""
    results = {result.id: _classroom_result(result, result.points, result.earned, result.title)
               for result in report}
    if report.further_started:
        for result in report.further.values():
            title = f"Going further (optional, {result.checkpoint.points} bonus points, not in Classroom's total): {result.title}"
            results[result.id] = _classroom_result(result, 0, 0, title, runner_status="pass")
    return results


def _classroom_result(result, max_score, score, name, runner_status=None):
    status = "fail" if result.status == "failed" else "pass"
    return {
        "version": 1,
        "status": runner_status or status,
        "max_score": max_score,
        "tests": [{
            "name": name, "status": status, "message": result.summary,
            "score": score, "line_no": 0,  # 0: the reporter names no line
        }],
    }


def classroom_environment(report):
    """Lines for $GITHUB_ENV: each runner's <ID>_RESULTS, and the runners' list
    in LESSON_CLASSROOM_RUNNERS for the reporter's `runners` input."""
    results = classroom_results(report)
    lines = [f"{runner.upper()}_RESULTS={_base64_json(result)}" for runner, result in results.items()]
    lines.append(f"{CLASSROOM_RUNNERS}={','.join(results)}")
    return "\n".join(lines) + "\n"


def _base64_json(value):
    return base64.b64encode(json.dumps(value).encode("utf-8")).decode("ascii")
