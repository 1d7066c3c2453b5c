"""Everything the lesson page shows that needs the student's code, as plain data.

The page never imports a student's file in its own process: it runs this
module as a child process with a time limit (page.py), and reads the JSON it
writes. The child takes the status (status.status_of, the grader's own
`grade()` with its replay on a throw-away database underneath), and has the
sandbox's worker record what each revision file does and risks.

    python -B -m testing.student.page_facts ROOT DATABASE_URL OUT.json
"""
import json
import sys
from pathlib import Path


# --- plain data ---------------------------------------------------------------------


def checklist(status):
    optional = status.report.lesson.further.steps if status.report.lesson.further else {}
    return {
        "steps": [{"step": mark.step, "title": mark.title, "done": mark.done, "optional": mark.step in optional}
                  for mark in status.steps],
        "next": {"title": status.next.title, "text": status.next.text},
        "also": [{"title": item.title, "text": item.text} for item in status.also],
    }


def results(report):
    return [
        {"id": r.id, "title": r.title, "status": r.status, "points": r.points, "earned": r.earned,
         "summary": r.summary, "message": r.message}
        for r in report
    ]


def going_further(status):
    """The optional steps: shown once one is begun (each verdict, with its message and fix), else
    as a one-line pointer once the lesson's own steps are done; None when there is nothing to show."""
    from ..engine.report_text import further_line

    report = status.report
    if not report.further or not (report.further_started or status.done):
        return None
    return {
        "started": report.further_started,
        "line": further_line(report),
        "results": [{**entry, "step": r.checkpoint.step, "reason": r.reason}
                    for entry, r in zip(results(report.further.values()), report.further.values())]
        if report.further_started else [],
    }


def revision_files(report, local):
    """Each file in migrations/versions/: ids, message, what it does, for the
    revisions not applied yet, the review's data-loss findings, and for the chain's
    revisions, "Before production" (all recorded in the sandbox)."""
    from ..engine.pending import record, record_pending
    from ..engine.production import DIRECTIONS, review_revisions, to_data
    from ..engine.submission import Layout
    from ..isolation.sandbox import Sandbox
    from .review import LABELS

    history = report.history
    if history is None:
        return []
    root = Path(report.root)
    chain_ids = [f.revision for f in history.chain]
    pending_revisions = report.evidence.pending_revisions()
    rows, columns = (dict(local.counts), dict(local.columns)) if local is not None else ({}, {})
    files = []
    with Sandbox(Layout.of(root)) as sandbox:
        pending = {r.revision.revision: r for r in record_pending(sandbox, pending_revisions, rows, columns)}
        before_production = {review.revision.revision: review for review in review_revisions(
            sandbox, Layout.of(root), history.chain, report.lesson, history.position_of)}
        for revision_file in history.files:
            entry = {
                "rel": revision_file.rel, "name": revision_file.path.name, "revision": revision_file.revision,
                "down_revisions": list(revision_file.down_revisions), "load_error": revision_file.load_error,
                "message": revision_file.doc, "pending": revision_file.revision in pending,
                "upgrade": [], "downgrade": [], "problem": None, "risks": [], "before_production": {},
            }
            if revision_file.loaded:
                for direction in ("upgrade", "downgrade"):
                    recording = record(sandbox, revision_file, direction)
                    entry[direction] = recording.does
                    if direction == "upgrade":
                        entry["problem"] = recording.problem or recording.failure
            review = before_production.get(revision_file.revision)
            if review is not None and revision_file.revision in chain_ids:
                entry["before_production"] = {direction: to_data(review, direction) for direction in DIRECTIONS}
            recording = pending.get(revision_file.revision)
            if recording is not None:
                entry["risks"] = [_risk(risk, LABELS) for risk in recording.risks]
            files.append(entry)
    # Pending risks are judged in the order `flask db upgrade` runs the revisions.
    order = {revision: index for index, revision in enumerate(chain_ids)}
    files.sort(key=lambda f: (order.get(f["revision"], len(order)), f["name"]))
    return files


def _risk(risk, labels):
    return {
        "label": labels.get(risk.kind, risk.kind), "message": risk.message, "loses_data": risk.loses_data,
        "fix_upgrade": risk.fix_upgrade, "fix_downgrade": risk.fix_downgrade,
    }


# --- the replay ------------------------------------------------------------------------

def replay_steps(report, files=()):
    """Every step of the grader's replay: tables and row counts before and after, losses and fixes,
    and beside it what "Before production" says of that function (from revision_files' `files`)."""
    from ..engine.render import loss_lines
    from .status import fix_of

    replay = report.replay
    if replay is None:
        return {"error": None, "steps": []}
    before_production = {f["revision"]: f.get("before_production") or {} for f in files}
    steps = []
    for step in list(replay.upgrades) + list(replay.downgrades):
        rel = step.revision.rel
        entry = {
            "direction": step.direction, "position": step.position, "rel": rel,
            "revision": step.revision.revision, "message": step.revision.doc,
            "before": _tables(step.before, step.row_counts_before),
            "after": _tables(step.after, step.row_counts_after) if step.after is not None else None,
            "error": step.error, "losses": loss_lines(step), "fixes": [],
            "before_production": before_production.get(step.revision.revision, {}).get(step.direction),
        }
        if step.losses:
            entry["fixes"] = _fixes(step)
            if not entry["fixes"]:
                checkpoint = report.lesson.checkpoint_of(step.position) if step.direction == "upgrade" else "downgrades"
                if checkpoint in report.results:
                    entry["fixes"] = [{"label": "Fix", "message": "", "code": fix_of(report[checkpoint])}]
        steps.append(entry)
    return {"error": replay.error, "steps": steps}


def _tables(schema, counts):
    return [
        {"name": table, "columns": list(columns), "rows": counts.get(table)}
        for table, columns in (schema or {}).items() if table != "alembic_version"
    ]


def _fixes(step):
    """The data-loss review's fixes for a step, from the risks the worker recorded with its rows."""
    fixes = []
    for risk in step.risks:
        # fix_upgrade mends the function that was analysed, whichever it is.
        code = f"# in {step.direction}():\n{risk.fix_upgrade or ''}"
        if step.direction == "upgrade" and risk.fix_downgrade:
            code += "\n\n# and in downgrade():\n" + risk.fix_downgrade
        fixes.append({"label": risk.kind.replace("_", " "), "message": risk.message, "code": code})
    return fixes


# --- all of it -------------------------------------------------------------------------


def facts(root, database_url):
    from .status import local_reading, status_of

    status = status_of(root, database_url)
    report = status.report
    local = local_reading(report)
    files = revision_files(report, local)
    return {
        "checklist": checklist(status),
        "further": going_further(status),
        "grade": {
            "score": report.score, "max_score": report.max_score, "backend": report.backend,
            "seconds": round(report.seconds, 2), "results": results(report),
        },
        "problems": list(report.history.problems) if report.history else [],
        "chain": [f.revision for f in report.history.chain] if report.history else [],
        "files": files,
        "replay": replay_steps(report, files),
    }


def main(argv):
    from ..databases.leftovers import stop_on_signals

    root, database_url, out = argv
    sys.dont_write_bytecode = True
    stop_on_signals()
    data = facts(root, database_url)
    Path(out).write_text(json.dumps(data), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
