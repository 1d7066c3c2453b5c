"""Before production: what each revision's SQL would do to a live PostgreSQL database.

A migration can keep every row and still take production down: a rename
breaks the code still running against the old name, a plain CREATE INDEX
blocks writes until it finishes. squawk (PyPI `squawk-cli`) knows these
rules; this module puts them into the lesson's words.

For each revision file, the sandbox's worker writes the PostgreSQL SQL its
upgrade() and downgrade() run, with Alembic's offline mode (as
`flask db upgrade DOWN:REV --sql` does), whatever database the student uses;
the student's code runs only there. squawk lints all of it in one run, as a
subprocess with its JSON reporter. Each finding is tied to its revision, its
README step and its line in the SQL, and explained with the lesson's
declaration (definition.ProductionRules): the rules it leaves out and why,
and the beginner's words for the others. Required findings
(definition.RequiredFinding) are read from the lesson's revisions.

Nothing here changes a grade: a revision whose SQL cannot be written offline,
or squawk missing or failing, gives a "cannot be checked offline" line.

    reviews = review_revisions(sandbox, layout, files, lesson)   # [RevisionReview]
    text_lines(review)                                           # for the terminal
"""
import json
import os
import re
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..isolation import processes
from ..isolation.sandbox import ChildFailure

DIRECTIONS = ("upgrade", "downgrade")
SQUAWK_SECONDS = 30.0
CANNOT = "cannot be checked offline"


@dataclass
class Finding:
    rule: str
    direction: str  # "upgrade" or "downgrade"
    line: int  # in the SQL, from 1
    statement: str  # that line of SQL
    explanation: str  # the lesson's words, or squawk's own when the lesson has none
    link: str  # the rule's documentation


@dataclass
class RequiredResult:
    required: object  # definition.RequiredFinding
    met: Optional[bool]  # None: it could not be checked
    why: str = ""


@dataclass
class RevisionReview:
    revision: object  # submission.RevisionFile
    position: Optional[int] = None  # in the chain, from 1; None outside it
    step: Optional[int] = None  # the README step of the lesson's revision at that position
    sql: Dict[str, str] = field(default_factory=dict)  # direction -> the SQL, as Alembic writes it offline
    findings: List[Finding] = field(default_factory=list)
    left_out: Dict[str, int] = field(default_factory=dict)  # why a finding was left out -> how many
    problems: Dict[str, str] = field(default_factory=dict)  # direction -> why it cannot be checked
    required: List[RequiredResult] = field(default_factory=list)

    def rules(self, direction=None):
        return sorted({f.rule for f in self.findings if direction in (None, f.direction)})

    @property
    def clean(self):
        return not self.findings and not self.problems


# --- the SQL, written by the worker -------------------------------------------------------


def offline_sql(sandbox, layout, revision_file, direction):
    """(SQL, None) of one function of a revision file, or (None, why it cannot be written offline)."""
    downs = revision_file.down_revisions
    if not revision_file.loaded or not revision_file.revision:
        return None, f"{revision_file.name} cannot be loaded"
    if len(downs) > 1:
        return None, "a merge revision: its SQL depends on which branch the database is on"
    try:
        answer = sandbox.request("offline_sql", migrations=str(sandbox.private(layout.migrations)),
                                 revision=revision_file.revision, down_revision=downs[0] if downs else None,
                                 direction=direction)
    except ChildFailure as failure:
        return None, f"{direction}() {failure}"
    if "error" in answer:
        needs = (" (it reads from the database with op.get_bind(), which needs a live connection)"
                 if "get_bind" in revision_file.source else "")
        error = _first_line(answer["error"])
        return None, f"Alembic cannot write {direction}() as SQL without a database{needs}: {error}"
    sql = (answer.get("result") or {}).get("sql")
    return (sql, None) if isinstance(sql, str) else (None, "the worker gave no SQL")


def _scripts_unloadable(sandbox, layout):
    """Why Alembic cannot load the revision files at all, when loading them hangs or ends the
    worker: then every revision would wait out the same time limit again, so none is asked for."""
    try:
        sandbox.request("offline_scripts", migrations=str(sandbox.private(layout.migrations)))
    except ChildFailure as failure:
        return f"loading the revision files {failure}"
    return None  # an error here is each revision's own, said by offline_sql


def _first_line(text):
    return next((line.strip() for line in str(text).splitlines() if line.strip()), str(text))


# --- squawk ------------------------------------------------------------------------------


class SquawkProblem(Exception):
    pass


def squawk_command():
    """The squawk binary of this Python's environment (where `squawk-cli` puts it), else on PATH."""
    scripts = sysconfig.get_path("scripts")
    for folder in (scripts, os.path.dirname(sys.executable)):
        found = shutil.which("squawk", path=folder)
        if found:
            return found
    found = shutil.which("squawk")
    if not found:
        raise SquawkProblem("squawk is not installed (it comes with `pipenv install`: the package squawk-cli)")
    return found


def lint(sql_texts, command=None, seconds=SQUAWK_SECONDS):
    """{name: [squawk's violations as dicts]} for {name: SQL}, from one run of squawk."""
    if not sql_texts:
        return {}
    command = command or squawk_command()
    with tempfile.TemporaryDirectory(prefix="lesson-squawk-") as folder:
        names = {}
        for number, (name, text) in enumerate(sql_texts.items(), start=1):
            file_name = f"{number}.sql"
            Path(folder, file_name).write_text(text, encoding="utf-8")
            names[file_name] = name
        try:
            # The folder has no .squawk.toml: only the rules given here count.
            done = processes.run([command, "--reporter", "json", *names], seconds, cwd=folder)
        except OSError as error:
            raise SquawkProblem(f"squawk could not be started ({error})") from None
    if done.timed_out:
        raise SquawkProblem(f"squawk did not finish within {seconds:g} s")
    if done.code not in (0, 1):  # 1: it found something
        said = _first_line(done.stderr or done.stdout)
        raise SquawkProblem(f"squawk failed (exit code {done.code}): {said}")
    try:
        violations = json.loads(done.stdout or "[]")
        found = {name: [] for name in sql_texts}
        for violation in violations:
            found[names[os.path.basename(violation["file"])]].append(violation)
    except (ValueError, KeyError, TypeError) as error:
        raise SquawkProblem(f"squawk's report cannot be read ({type(error).__name__}: {error})") from None
    return found


# --- findings in the lesson's words ------------------------------------------------------


def statements(sql):
    """[(first line, last line, text)] of the statements in Alembic's offline SQL (lines from 0):
    Alembic ends every statement with ';' at the end of a line."""
    spans, start, lines = [], None, sql.splitlines()
    for number, line in enumerate(lines):
        if start is None and line.strip() and not line.lstrip().startswith("--"):
            start = number
        if start is not None and line.rstrip().endswith(";"):
            spans.append((start, number, "\n".join(lines[start:number + 1])))
            start = None
    return spans


def _touches(statement, table):
    return re.search(rf"\b{re.escape(table)}\b", statement) is not None


def judge_violations(review, direction, violations, rules):
    """Add one function's violations to the review: findings, or left out with the lesson's reason."""
    sql = review.sql[direction]
    lines, spans = sql.splitlines(), statements(sql)
    for violation in violations:
        rule, line = str(violation.get("rule_name")), int(violation.get("line") or 0)  # squawk counts lines from 0
        statement = next((text for first, last, text in spans if first <= line <= last), "")
        if rules.bookkeeping_table and _touches(statement, rules.bookkeeping_table):
            reason = rules.bookkeeping_reason
        else:
            reason = rules.left_out.get(rule)
        if reason:
            review.left_out[reason] = review.left_out.get(reason, 0) + 1
            continue
        own_words = " ".join(part for part in (violation.get("message"), violation.get("help")) if part)
        review.findings.append(Finding(
            rule, direction, line + 1, lines[line].strip() if 0 <= line < len(lines) else "",
            rules.explanations.get(rule, own_words), rules.docs.format(rule=rule),
        ))


def judge_required(review, required_findings):
    for required in required_findings:
        if "upgrade" in review.problems or "upgrade" not in review.sql:
            why = review.problems.get("upgrade", CANNOT)
            review.required.append(RequiredResult(required, None, why))
        elif not re.search(required.shows, review.sql["upgrade"], re.IGNORECASE):
            review.required.append(RequiredResult(required, False, f"the upgrade's SQL has no {required.shows_words}"))
        elif required.rule in review.rules("upgrade"):
            lines = ", ".join(str(f.line) for f in _in_order(review.findings)
                              if f.rule == required.rule and f.direction == "upgrade")
            review.required.append(RequiredResult(required, False, f"squawk's {required.rule} flags line {lines}"))
        else:
            review.required.append(RequiredResult(required, True))


def review_revisions(sandbox, layout, files, lesson, position_of=lambda revision_id: None):
    """[RevisionReview] of `files` (submission.RevisionFile), in their order; empty when the
    lesson declares no production rules. position_of: a revision id's place in the chain
    (History.position_of). Never raises: whatever goes wrong is a "cannot be checked" line."""
    if lesson.production is None:
        return []
    try:
        return _review(sandbox, layout, files, lesson, position_of)
    except Exception as error:  # a note beside the grade must never stop a grade, a review or the page
        why = f"the review itself failed ({type(error).__name__}: {error})"
        return [RevisionReview(revision_file, problems={direction: why for direction in DIRECTIONS})
                for revision_file in files]


def _review(sandbox, layout, files, lesson, position_of):
    reviews, texts = [], {}
    unloadable = _scripts_unloadable(sandbox, layout) if files else None
    for revision_file in files:
        position = position_of(revision_file.revision)
        review = RevisionReview(revision_file, position, lesson.step_of(position) if position else None)
        for direction in DIRECTIONS:
            sql, why = (None, unloadable) if unloadable else offline_sql(sandbox, layout, revision_file, direction)
            if why:
                review.problems[direction] = why
            else:
                review.sql[direction] = texts[(len(reviews), direction)] = sql
        reviews.append(review)
    try:
        found = lint(texts)
    except SquawkProblem as problem:
        for review in reviews:
            for direction in review.sql:
                review.problems[direction] = str(problem)
        found = {}
    for (index, direction), violations in found.items():
        judge_violations(reviews[index], direction, violations, lesson.production)
    for review in reviews:
        lesson_revision = lesson.revision(review.position) if review.position else None
        judge_required(review, lesson_revision.requires if lesson_revision else ())
    return reviews


# --- as text -----------------------------------------------------------------------------


def _where(review):
    """"revision 3, step 3", "revision 5" (beyond the lesson), or "" outside the chain."""
    parts = [f"revision {review.position}" if review.position else "", f"step {review.step}" if review.step else ""]
    return ", ".join(part for part in parts if part)


def heading(review):
    where = _where(review)
    return f"Before production{f' ({where})' if where else ''}: squawk on its PostgreSQL SQL (not graded)"


def text_lines(review, width=72):
    """The review of one revision as plain lines (no heading), for the terminal."""
    import textwrap

    lines = []
    for direction, why in review.problems.items():
        lines.append(f"{direction}(): {CANNOT}: {why}")
    by_rule = {}
    for finding in _in_order(review.findings):
        by_rule.setdefault(finding.rule, []).append(finding)
    for rule, findings in by_rule.items():
        lines.append(rule)
        lines += [f"  {f.direction}() SQL line {f.line}: {f.statement}" for f in findings]
        lines += ["  " + line for line in textwrap.wrap(findings[0].explanation, width - 2)]
        lines.append(f"  {findings[0].link}")
    for result in review.required:
        mark = {True: "ok", False: "not yet", None: CANNOT}[result.met]
        lines.append(f"required: {result.required.says}: {mark}" + (f" ({result.why})" if result.why else ""))
    if not by_rule and not review.problems:
        lines.append("nothing to flag in its upgrade() and downgrade() SQL")
    return lines


def short_note(reviews):
    """One line per revision with something to say, for pytest's output."""
    notes = []
    for review in reviews:
        said = []
        for rule in review.rules():
            places = dict.fromkeys(f"{f.direction} line {f.line}" for f in _in_order(review.findings) if f.rule == rule)
            said.append(f"{rule} ({', '.join(places)})")
        said += [f"{direction}() {CANNOT}" for direction in review.problems]
        said += [f"required \"{r.required.says}\": {'not yet' if r.met is False else CANNOT}"
                 for r in review.required if not r.met]
        if said:
            where = _where(review)
            label = f"{where} ({review.revision.rel})" if where else review.revision.rel
            notes.append(f"{label}: " + "; ".join(said))
    return notes


def _in_order(findings):
    """upgrade() first, then downgrade(), each by line."""
    return sorted(findings, key=lambda f: (DIRECTIONS.index(f.direction), f.line))


def to_data(review, direction):
    """What the review says of one function of the revision, as plain data (the lesson page)."""
    return {
        "position": review.position, "step": review.step, "sql": review.sql.get(direction),
        "problem": review.problems.get(direction),
        "findings": [vars(finding).copy() for finding in _in_order(review.findings) if finding.direction == direction],
        "required": [{"says": r.required.says, "met": r.met, "why": r.why}
                     for r in review.required] if direction == "upgrade" else [],
    }
