"""What migrations not yet applied would do, recorded in the sandbox.

One analysis for every front end that looks ahead (`flask lesson review`,
`flask lesson status`): each pending revision's upgrade() is recorded by the
worker process without a database, judged against the rows and columns the
database has now and, for the later ones, the state the earlier ones leave.
"""
from dataclasses import dataclass, field
from typing import List, Optional

from .operations import risk_from_data
from .sandbox import ChildFailure
from .schema_data import columns_as_text


@dataclass
class Recording:
    revision: object  # submission.RevisionFile
    does: List[str] = field(default_factory=list)
    problem: Optional[str] = None  # why the script could not be read to the end
    risks: list = field(default_factory=list)  # operations.Risk

    @property
    def loses_data(self):
        return any(risk.loses_data for risk in self.risks)


def record_pending(sandbox, revisions, row_counts, columns, dialect="sqlite"):
    """[Recording] for `revisions`, applied in order to a database with
    `row_counts` ({table: rows}) and `columns` ({table: {column: SQLAlchemy type}})."""
    rows, text_columns = dict(row_counts or {}), columns_as_text(columns)
    recordings = []
    for revision in revisions:
        recording = Recording(revision)
        recordings.append(recording)
        if not revision.loaded:
            recording.problem = revision.load_error
            continue
        try:
            answer = sandbox.request("record", path=str(sandbox.private(revision.path)), direction="upgrade",
                                     dialect=dialect, row_counts=rows, columns=text_columns)
        except ChildFailure as failure:
            recording.problem = f"upgrade() in {revision.path.name} {failure}"
            continue
        if "error" in answer:
            recording.problem = f"upgrade() in {revision.path.name} fails: {answer['error']}"
            continue
        found = answer.get("result") or {}
        recording.does = [str(line) for line in found.get("does") or []]
        recording.problem = found.get("problem")
        recording.risks = [risk for risk in map(risk_from_data, found.get("risks") or []) if risk is not None]
        after = found.get("after") or {}
        rows, text_columns = after.get("row_counts") or rows, after.get("columns") or text_columns
    return recordings
