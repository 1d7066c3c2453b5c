"""Everything the lesson page shows that needs the student's code, as plain data.

The page never imports a student's file in its own process: it runs this
module as a child process with a time limit (page.py), and reads the JSON it
writes. The child grades the checkout with the grader's own `grade()` (the
replay on a throw-away database), works out the status checklist, and records
what each revision file does (operations.describe, operations.find_risks).

    python -B -m testing.lesson.page_facts ROOT DATABASE_URL OUT.json
"""
import ast
import json
import sys
from pathlib import Path

import sqlalchemy as sa


# --- the status checklist (one adapter, so the data function can replace it) ---


def status_of(root, database_url):
    """(report, marks, advice, next action, pending revision ids) as status.py computes them."""
    from . import status
    from .database import in_instance_folder
    from .submission import Layout, load_models

    layout = Layout.of(root)
    report = status.grade(layout.root)
    local = None
    if layout.server.is_dir():
        url = in_instance_folder(database_url, layout.server)
        models = load_models(layout)
        local = status.inspect_local_database(layout, url, getattr(models, "metadata", None))
    chain = report.history.chain if report.history else []
    advice = status.diagnose(report, local, chain)
    marks = status.step_marks(report, local, chain)
    return report, local, marks, advice, status.next_action(report, marks, advice)


# --- plain data ---------------------------------------------------------------------


def checklist(marks, advice, action):
    from .checkpoints import STEPS

    title, text = action
    return {
        "steps": [{"step": step, "title": STEPS[step], "done": bool(marks[step])} for step in STEPS],
        "next": {"title": title, "text": text},
        "also": [{"title": item.title, "text": item.text} for item in advice[1:]],
    }


def results(report):
    return [
        {"id": r.id, "title": r.title, "status": r.status, "points": r.points, "earned": r.earned,
         "summary": r.summary, "message": r.message}
        for r in report
    ]


def message_of(path):
    """The first line of a revision file's docstring (its -m message), read without running it."""
    try:
        source = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    try:
        docstring = ast.get_docstring(ast.parse(source)) or ""
    except (SyntaxError, ValueError):
        return ""
    return docstring.strip().splitlines()[0] if docstring.strip() else ""


def revision_files(report, local):
    """Each file in migrations/versions/: ids, message, what it does, and for the
    revisions not applied yet, the review's data-loss findings."""
    from . import operations
    from .review import LABELS

    history = report.history
    if history is None:
        return []
    root = Path(report.root)
    chain_ids = [f.revision for f in history.chain]
    current = local.heads[0] if local is not None and len(local.heads) == 1 else None
    pending = set(chain_ids[chain_ids.index(current) + 1:] if current in chain_ids else ())
    if local is not None and not local.error and not local.heads:
        pending = set(chain_ids)  # no database yet, or nothing applied: `flask db upgrade` runs them all
    rows, columns = (dict(local.rows), dict(local.columns)) if local is not None else ({}, {})
    files = []
    for revision_file in history.files:
        path = root / revision_file.rel
        entry = {
            "rel": revision_file.rel, "name": path.name, "revision": revision_file.revision,
            "down_revisions": list(revision_file.down_revisions), "load_error": revision_file.load_error,
            "message": message_of(path), "pending": revision_file.revision in pending,
            "upgrade": [], "downgrade": [], "problem": None, "risks": [],
        }
        if revision_file.load_error is None:
            for direction in ("upgrade", "downgrade"):
                recorded = operations.record_script_operations(path, direction)
                entry[direction] = operations.describe(recorded.operations)
                if recorded.error is not None and direction == "upgrade":
                    entry["problem"] = recorded.problem
                if direction == "upgrade" and entry["pending"]:
                    found = operations.find_risks(recorded.operations, row_counts=rows, columns=columns)
                    entry["risks"] = [_risk(risk, LABELS) for risk in found]
                    rows, columns = operations.state_after(recorded.operations, rows, columns)
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

KIND_TYPES = {"integer": sa.Integer(), "string": sa.String()}


def replay_steps(report):
    """Every step of the grader's replay: tables and row counts before and after, losses and fixes."""
    from . import operations
    from .checks import REVISION_CHECKPOINTS, loss_lines
    from .status import fix_of

    replay = report.replay
    if replay is None:
        return {"error": None, "steps": []}
    root = Path(report.root)
    steps = []
    for step in list(replay.upgrades) + list(replay.downgrades):
        rel = step.revision.rel
        entry = {
            "direction": step.direction, "position": step.position, "rel": rel,
            "revision": step.revision.revision, "message": message_of(root / rel),
            "before": _tables(step.before, step.row_counts_before),
            "after": _tables(step.after, _counts_after(step)) if step.after is not None else None,
            "error": step.error, "losses": loss_lines(step), "fixes": [],
        }
        if step.losses:
            entry["fixes"] = _fixes(operations, root / rel, step)
            if not entry["fixes"]:
                checkpoint = REVISION_CHECKPOINTS.get(step.position) if step.direction == "upgrade" else "downgrades"
                if checkpoint in report.results:
                    entry["fixes"] = [{"label": "Fix", "message": "", "code": fix_of(report[checkpoint])}]
        steps.append(entry)
    return {"error": replay.error, "steps": steps}


def _tables(schema, counts):
    return [
        {"name": table, "columns": list(columns), "rows": counts.get(table)}
        for table, columns in (schema or {}).items() if table != "alembic_version"
    ]


def _counts_after(step):
    """Row counts of the lesson's tables after a step, from the rows the replay read."""
    from .replay import DATA_SETS

    counts = {}
    for data_set in DATA_SETS:
        rows = step.rows_after.get(data_set.name)
        place = data_set.locate(step.after)
        if rows is not None and place is not None:
            counts[place[0]] = len(rows)
    return counts


def _fixes(operations, path, step):
    recorded = operations.record_script_operations(path, step.direction)
    columns = {
        table: {name: getattr(column, "type", None) or KIND_TYPES.get(column.kind) for name, column in cols.items()}
        for table, cols in step.before.items()
    }
    found = operations.find_risks(
        recorded.operations, row_counts=step.row_counts_before, columns=columns, direction=step.direction,
    )
    fixes = []
    for risk in found:
        # fix_upgrade mends the function that was analysed, whichever it is.
        code = f"# in {step.direction}():\n{risk.fix_upgrade or ''}"
        if step.direction == "upgrade" and risk.fix_downgrade:
            code += "\n\n# and in downgrade():\n" + risk.fix_downgrade
        fixes.append({"label": risk.kind.replace("_", " "), "message": risk.message, "code": code})
    return fixes


# --- all of it -------------------------------------------------------------------------


def facts(root, database_url):
    report, local, marks, advice, action = status_of(root, database_url)
    return {
        "checklist": checklist(marks, advice, action),
        "grade": {
            "score": report.score, "max_score": report.max_score, "backend": report.backend,
            "seconds": round(report.seconds, 2), "results": results(report),
        },
        "problems": list(report.history.problems) if report.history else [],
        "chain": [f.revision for f in report.history.chain] if report.history else [],
        "files": revision_files(report, local),
        "replay": replay_steps(report),
    }


def main(argv):
    root, database_url, out = argv
    sys.dont_write_bytecode = True
    data = facts(root, database_url)
    Path(out).write_text(json.dumps(data), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
