"""What migrations not yet applied would do, recorded in the sandbox.

One recording for every front end (the grader's replay, `flask lesson
review`, `flask lesson status`, the lesson page): a revision's upgrade() or
downgrade() is recorded by the worker process without a database, judged
against the rows and columns given and, for pending revisions applied in
order, the state the earlier ones leave.
"""
from dataclasses import dataclass, field
from typing import List, Optional

from ..databases.operations import risk_from_data
from ..databases.schema_data import columns_as_text
from ..isolation.sandbox import ChildFailure


@dataclass
class Recording:
    revision: object  # submission.RevisionFile
    does: List[str] = field(default_factory=list)
    problem: Optional[str] = None  # why the script could not be read to the end
    risks: list = field(default_factory=list)  # operations.Risk
    failure: Optional[str] = None  # why nothing was recorded (the worker failed or the script raised)
    after: dict = field(default_factory=dict)  # row_counts and columns (as text) once it has run

    @property
    def loses_data(self):
        return any(risk.loses_data for risk in self.risks)


def record(sandbox, revision, direction="upgrade", dialect="sqlite", row_counts=None, text_columns=None):
    """What `direction`() of one revision file does and risks, recorded by the sandbox's worker
    for a database with `row_counts` and `text_columns` ({table: {column: type repr}})."""
    recording = Recording(revision)
    function = f"{direction}() in {revision.path.name}"
    try:
        answer = sandbox.request("record", path=str(sandbox.private(revision.path)), direction=direction,
                                 dialect=dialect, row_counts=row_counts or {}, columns=text_columns or {})
    except ChildFailure as failure:
        recording.failure = f"{function} {failure}"
        return recording
    if "error" in answer:
        recording.failure = f"{function} fails: {answer['error']}"
        return recording
    found = answer.get("result") or {}
    recording.does = [str(line) for line in found.get("does") or []]
    recording.problem = str(found["problem"]) if found.get("problem") else None
    recording.risks = [risk for risk in map(risk_from_data, found.get("risks") or []) if risk is not None]
    recording.after = found.get("after") or {}
    return recording


def record_pending(sandbox, revisions, row_counts, columns, dialect="sqlite"):
    """[Recording] for `revisions`, applied in order to a database with
    `row_counts` ({table: rows}) and `columns` ({table: {column: SQLAlchemy type}})."""
    rows, text_columns = dict(row_counts or {}), columns_as_text(columns)
    recordings = []
    for revision in revisions:
        if not revision.loaded:
            recordings.append(Recording(revision, problem=revision.load_error))
            continue
        recording = record(sandbox, revision, "upgrade", dialect, rows, text_columns)
        recording.problem = recording.problem or recording.failure
        recordings.append(recording)
        rows = recording.after.get("row_counts") or rows
        text_columns = recording.after.get("columns") or text_columns
    return recordings
