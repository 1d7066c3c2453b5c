"""The grader's engine: one function every front end calls.

    from testing.engine.checks import grade
    report = grade("/path/to/checkout")                 # SQLite replay
    report = grade(root, server_url="postgresql://...")  # replay on PostgreSQL

`grade(root, backend="sqlite", server_url=None, limits=None, lesson=LESSON, local_database=True) -> Report`
goes one way: evidence.collect reads the checkout (never writes to it, never
imports its app.py) and replays its revisions, isolated, on a throw-away
database with the lesson's rows; judge.judge decides every checkpoint of the
lesson from that evidence alone; render.feedback words each verdict. The
lesson is checkpoints.LESSON unless another declaration is given. With
local_database=False (grading for an instructor: another checkout, a class)
the student's own database file is not read and `local_database` does not
apply, so a submission scores the same however it was handed in.

Report
    .results        {checkpoint id: Result}, in CHECKPOINTS order
    report[id]      the Result of one checkpoint; iterating gives the Results
    .score / .max_score / .full_marks / .failed (list of Results)
    .findings       problems of app.py and env.py (also part of `init`)
    .history        submission.History (revision files, chain, problems)
    .replay         replay.Replay (every step recorded)
    .evidence       evidence.Evidence (all of the above, and the local database;
                    .production: the "Before production" review, when asked for)
    .backend, .root, .seconds
    .confinement    one line: how confined the student's code was ("confined: files, network, processes")

Result
    .id, .title, .points (max), .earned
    .status         PASSED, FAILED or NOT_APPLICABLE ("passed", "failed",
                    "not_applicable"); .passed is True unless FAILED
    .blocked_by     the checkpoint id that must be fixed first, or None
    .reason         why, as a stable code from judge.REASONS ("ok", "blocked",
                    "upgrade_fails", ...)
                    (the optional steps' results are report.further, going_further.py)
    .verdict        judge.Verdict (status, reason, blocked_by and the facts)
    .summary        the first line of the message
    .message        the whole message (feedback.Feedback.render())
    .fix            the text of its "Fix" section (None when it has none)

The messages are render.py's (the lesson's words); tests/golden/ pins every one.
Revisions are named by position in the chain (1-4) and by file path relative
to the repository; never by message or id.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

from ..lesson.checkpoints import LESSON
from ..lesson.feedback import Feedback
from .evidence import collect
from .judge import FAILED, NOT_APPLICABLE, PASSED, judge  # noqa: F401  (the status words, for front ends)
from .render import feedback
from .submission import Layout


@dataclass
class Result:
    checkpoint: object  # definition.Checkpoint
    status: str
    feedback: Feedback
    blocked_by: Optional[str] = None
    reason: str = "ok"  # why, as a stable snake_case code (judge.REASONS)
    verdict: object = None  # judge.Verdict

    @property
    def id(self):
        return self.checkpoint.id

    @property
    def title(self):
        return self.checkpoint.title

    @property
    def points(self):
        """What the checkpoint counts for: nothing when it does not apply, so a
        checkout without a local database can still reach full marks."""
        return 0 if self.status == NOT_APPLICABLE else self.checkpoint.points

    @property
    def passed(self):
        return self.status != FAILED

    @property
    def earned(self):
        return self.points if self.status == PASSED else 0

    @property
    def summary(self):
        return self.feedback.summary

    @property
    def message(self):
        return self.feedback.render()

    @property
    def fix(self):
        return self.feedback.fix


@dataclass
class Report:
    root: Path
    backend: str
    results: Dict[str, Result] = field(default_factory=dict)
    evidence: object = None  # evidence.Evidence
    lesson: object = LESSON
    seconds: float = 0.0
    further: Dict[str, Result] = field(default_factory=dict)  # the optional steps' checkpoints, scored apart

    @property
    def further_score(self):
        return sum(result.earned for result in self.further.values())

    @property
    def further_max(self):
        return sum(result.points for result in self.further.values())

    further_revisions: int = 0  # how many of the optional steps' revisions the chain holds

    @property
    def further_started(self):
        """An optional revision is in the chain, or an optional step's own database is judged."""
        return self.further_revisions > 0 or any(
            result.verdict.kind == "legacy" and result.status != NOT_APPLICABLE for result in self.further.values())

    def __getitem__(self, checkpoint_id):
        """Any checkpoint's result, the optional steps' too (iterating gives the lesson's own only)."""
        return self.results[checkpoint_id] if checkpoint_id in self.results else self.further[checkpoint_id]

    def __iter__(self):
        return iter(self.results.values())

    @property
    def findings(self):
        return self.evidence.findings if self.evidence else []

    @property
    def history(self):
        return self.evidence.history if self.evidence else None

    @property
    def replay(self):
        return self.evidence.replay if self.evidence else None

    @property
    def models(self):
        return self.evidence.models if self.evidence else None

    @property
    def score(self):
        return sum(result.earned for result in self)

    @property
    def max_score(self):
        return sum(result.points for result in self)

    @property
    def confinement(self):
        """One line: how confined the student's code was (confinement.summary)."""
        return self.evidence.confinement if self.evidence else None

    @property
    def failed(self):
        return [result for result in self if not result.passed]

    @property
    def full_marks(self):
        return not self.failed


def _results(evidence, lesson):
    """(the lesson as judged, the core checkpoints' results, the optional steps' results)
    (going_further.py): the core is judged with the optional revisions the chain holds, as
    where the student legitimately is; the lesson as judged then ends after them."""
    from . import going_further

    k = going_further.further_count(evidence, lesson)
    core_lesson, core_evidence = going_further.lesson_with(lesson, k), going_further.evidence_for(evidence, k)
    verdicts = judge(core_evidence, core_lesson)
    results = {
        checkpoint.id: _result(verdicts[checkpoint.id], core_evidence, core_lesson, verdicts)
        for checkpoint in lesson.checkpoints
    }
    if lesson.further is None:
        return lesson, results, {}
    further_verdicts, full = going_further.judge_further(core_evidence, lesson)
    further = {checkpoint: _result(verdict, core_evidence, full, {**verdicts, **further_verdicts})
               for checkpoint, verdict in further_verdicts.items()}
    return core_lesson, results, further


def _result(verdict, evidence, lesson, verdicts):
    return Result(verdict.checkpoint, verdict.status, feedback(verdict, evidence, lesson, verdicts),
                  verdict.blocked_by, verdict.reason, verdict)


def grade(root, backend="sqlite", server_url=None, limits=None, lesson=LESSON, before_production=False,
          local_url=None, local_database=True):
    """Grade the checkout at `root`; see the module docstring. `limits`
    (sandbox.Limits) bounds the time and memory of the student's code.
    before_production: also lint each revision's PostgreSQL SQL (report.evidence.production),
    which no verdict reads. `local_url` names the database the student's app
    uses, judged as the local database (the status and the page pass it;
    pytest reads only server/instance/app.db). local_database=False leaves the
    student's own database out (an instructor's grade)."""
    from ..databases.database import backend_of, normalize_url

    started = time.perf_counter()
    if server_url:
        server_url = normalize_url(server_url)  # postgres:// and postgresql:// use psycopg 3
        backend = backend_of(server_url)
    layout = Layout.of(root)
    evidence = collect(layout, lesson, backend, server_url, limits, before_production=before_production,
                       local_url=local_url, local_database=local_database)
    judged_lesson, results, further = _results(evidence, lesson)
    report = Report(root=layout.root, backend=backend, results=results, evidence=evidence, lesson=judged_lesson,
                    further=further, further_revisions=judged_lesson.count - lesson.count)
    report.seconds = time.perf_counter() - started
    return report
