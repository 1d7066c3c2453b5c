"""Rendering: verdicts into the words a student reads.

`feedback(verdict, evidence, lesson, verdicts) -> Feedback` writes one
checkpoint's message: a summary line, then titled sections (feedback.py),
the "Fix" among them kept as `Feedback.fix` for the status and the page. It
decides nothing: the status, the reason and the facts come from judge.py;
the revisions and files are named from the evidence; every word about the
lesson's own tables and steps comes from the lesson's declaration and its
words (definition.LessonWords); the sentences every lesson shares are
templates in messages.py. One class of words per kind of checkpoint
(WORDS_OF_KIND, by definition.Lesson.kind_of) says why it waits for another
(blocked), that it passed, or what failed and the fix.

Revisions are named by position in the chain (1-4) and by file path relative
to the repository; never by message or id.
"""
import json
import textwrap

from ..lesson.feedback import Feedback, bullet_list, code_block, first_lines, one_line, plural, short, summarised
from .judge import PASSED
from .messages import BLOCKED_WHY, DIFFERENCE_WORDS, MISMATCH_WORDS, REPLAY_SERVER_FIX, finding_line


def capital(text):
    return text[0].upper() + text[1:]


def feedback(verdict, evidence, lesson, verdicts):
    words = WORDS_OF_KIND[verdict.kind](evidence, lesson, verdicts)
    if verdict.block:
        return words.blocked(verdict.block)
    if verdict.status == PASSED:
        return Feedback(words.passed(verdict))
    return words.failed(verdict)


# --- wording shared with the status and the page -----------------------------------------

def fix_functions(revision, batch=False):
    """The lesson's upgrade() and downgrade() of one revision, as code."""
    lines = ["def upgrade():"] + ["    " + line for line in revision.fix_lines("upgrade", batch)]
    lines += ["", "", "def downgrade():"] + ["    " + line for line in revision.fix_lines("downgrade", batch)]
    return code_block(lines)


# Kinds a submission can repeat without end, summarised in one line beyond MANY of them.
SUMMARISED = {"extra_table": "extra tables", "extra_column": "extra columns"}
MANY = 5


def mismatch_lines(mismatches):
    """judge.Mismatch records as the lines a student reads; very long names cut short, and
    more than MANY extra tables (or columns) in one line."""
    lines = []
    for kind, noun in SUMMARISED.items():
        names = [m.table if kind == "extra_table" else f"{m.table}.{m.column}" for m in mismatches if m.kind == kind]
        if len(names) > MANY:
            lines.append(summarised(names, noun))
            mismatches = [m for m in mismatches if m.kind != kind]
    for mismatch in mismatches:
        found = ", ".join(map(short, mismatch.found)) if isinstance(mismatch.found, list) else mismatch.found
        table, column = short(mismatch.table), short(mismatch.column)
        lines.append(MISMATCH_WORDS[mismatch.kind].format(
            table=table, column=column, where=f"`{table}.{column}`",
            found=found, found_or_none=found or "none", expected=mismatch.expected,
            rows=plural(found, "row") if isinstance(found, int) else "",
        ))
    return lines


def loss_lines(step):
    lines = []
    for loss in step.losses:
        if loss.missing_rows:
            kept = loss.rows_before - loss.missing_rows
            if loss.table_before != loss.table_after:
                lines.append(
                    f"the {plural(loss.rows_before, 'row')} of `{loss.table_before}` are lost: after the "
                    f"{step.direction}, `{loss.table_after}` has {kept} of them"
                )
            else:
                lines.append(f"{loss.missing_rows} of the {plural(loss.rows_before, 'row')} of `{loss.table_before}` are lost")
        if loss.changed_values:
            source = f"`{loss.table_before}.{loss.column_before}`"
            target = f"`{loss.table_after}.{loss.column_after}`"
            lines.append(
                f"the values of {source} are lost: after the {step.direction}, {target} no longer holds them "
                f"in {loss.changed_values} of {plural(loss.rows_before, 'row')}"
            )
    return lines


def loss_summary(loss):
    if loss.missing_rows:
        return f"the {plural(loss.missing_rows, 'row')} of `{loss.table_before}`"
    return f"the values of `{loss.table_before}.{loss.column_before}` in {plural(loss.changed_values, 'row')}"


def lost_rows(step):
    return sum(loss.missing_rows or loss.changed_values for loss in step.losses)


def describe_schema_change(step):
    """A short phrase for what an upgrade changed, judged by its effect."""
    if step is None:
        return "not run: an earlier revision failed"
    if not step.ran:
        return "fails: " + one_line(step.error, 120)
    before, after = step.before, step.after
    parts, renamed = _table_changes(step, before, after)
    for table in after:
        if table in before:
            parts += _column_changes(step, table, before[table], after[table])
    if step.losses:
        parts.append("loses rows")
    return ", ".join(parts) or "changes no tables"


def _table_changes(step, before, after):
    created = [t for t in after if t not in before]
    dropped = [t for t in before if t not in after]
    parts, renamed = [], set()
    for old in dropped:
        for new in created:
            if new not in renamed and set(before[old]) == set(after[new]):
                parts.append(f"replaces table `{old}` with a new `{new}`" if step.losses
                             else f"renames table `{old}` to `{new}`")
                renamed.update((old, new))
                break
    parts += [f"creates table `{t}` ({', '.join(after[t])})" for t in created if t not in renamed]
    parts += [f"drops table `{t}`" for t in dropped if t not in renamed]
    return parts, renamed


def _column_changes(step, table, before, after):
    added = [c for c in after if c not in before]
    removed = [c for c in before if c not in after]
    if len(added) == 1 and len(removed) == 1 and not step.losses:
        return [f"renames column `{removed[0]}` of `{table}` to `{added[0]}`"]
    return [f"adds column `{c}` to `{table}`" for c in added] + [f"drops column `{c}` from `{table}`" for c in removed]


def what_it_does(step):
    """Lines saying which operations a step's function runs (recorded by the worker)."""
    if step is None:
        return ""
    lines = list(step.does)
    if step.record_problem:
        lines.append(("then " if lines else "") + step.record_problem)
    if lines:
        return "\n".join(first_lines(lines))
    if step.statements:
        return "\n".join(first_lines(step.statements))
    return "" if step.stopped else "nothing (the function runs no operations)"


def describe_difference(change, database="the database at revision 3"):
    """One line for an entry of reading.differences_of (Alembic's compare_metadata())."""
    return "; ".join(_describe_one_difference(item, database) for item in change)


def _describe_one_difference(item, database):
    template = DIFFERENCE_WORDS.get(item.kind, "{kind}: {detail}")
    return template.format(kind=item.kind.replace("_", " "), table=item.table, column=item.column,
                           new=item.new, existing=item.existing, detail=item.detail, database=database)


def rows_code(lesson, data_sets, schema):
    """`flask shell` lines that add the data sets' rows, with the column each
    keeps its values in within `schema` (as the README's steps add them)."""
    lines = [f"from models import db, {', '.join(data_set.model for data_set in data_sets)}"]
    for data_set in data_sets:
        value_column = data_set.locate(schema)[1]
        lines += [f"db.session.add({data_set.model}(name={json.dumps(name)}, {value_column}={json.dumps(value)}))"
                  for _, name, value in data_set.rows]
    return "\n".join(lines + ["db.session.commit()"])


# --- one checkpoint's message ----------------------------------------------------------------

class _Words:
    """What every checkpoint's words need: the evidence, the lesson and the other verdicts."""

    def __init__(self, evidence, lesson, verdicts):
        self.evidence = evidence
        self.layout = evidence.layout
        self.lesson = lesson
        self.verdicts = verdicts

    @property
    def chain(self):
        return self.evidence.chain

    def rel(self, path):
        return self.layout.rel(path)

    def revision_name(self, position):
        return f"revision {position} ({self.chain[position - 1].rel})"

    def blocked(self, block):
        history = self.evidence.history
        position = block.position
        why = BLOCKED_WHY[block.cause].format(
            position=position, earlier=block.earlier, end=block.end, previous=(position or 1) - 1,
            name=self.revision_name(position) if position and position <= len(self.chain) else None,
            versions=self.rel(self.layout.versions), count=self.lesson.count, count_word=self.lesson.count_word,
            problem=one_line(history.problems[0] if history.problems else "it splits or breaks before it."),
        )
        return Feedback(f"blocked by {block.by}: fix that first").add("Why", why)


class _InitWords(_Words):
    """init: the folders `flask db init` makes, and app.py and env.py."""

    def passed(self, verdict):
        return f"{self.rel(self.layout.migrations)}/ has alembic.ini, env.py, script.py.mako and versions/."

    def failed(self, verdict):
        layout = self.layout
        migrations = self.rel(layout.migrations)
        reason = verdict.reason
        if reason == "no_server_folder":
            return Feedback(f"There is no server/ folder in {layout.root}.").add_fix(
                "Grade the repository root: the folder that contains server/.")
        if reason == "migrations_at_root":
            return self.with_app_findings(Feedback(
                "The migrations folder is at the repository root, not in server/: "
                "`flask db init` ran in the wrong folder."
            ).add("Found", f"{self.rel(layout.root / 'migrations')}/").add("Expected", f"{migrations}/").add_fix(
                "From the repository root, move it (history and all):\n"
                "    git mv migrations server/migrations\n"
                "(or `mv migrations server/` if git does not track it yet), and run every "
                "`flask db` command inside server/."))
        if reason == "no_migrations_folder":
            return self.with_app_findings(Feedback(f"There is no {migrations}/ folder yet.").add(
                "Expected", f"{migrations}/ with alembic.ini, env.py, script.py.mako and versions/").add_fix(
                "Step 1: run `flask db init` inside server/:\n    cd server\n    flask db init"))
        return self.init_incomplete(verdict)

    def init_incomplete(self, verdict):
        layout, findings, missing = self.layout, self.evidence.findings, verdict.facts.missing
        migrations = self.rel(layout.migrations)
        problems = [f"{migrations}/{name} is missing" for name in missing] + [finding_line(f) for f in findings]
        fixes = []
        if "versions/" in missing:
            fixes.append(f"Create the empty folder: mkdir {migrations}/versions")
        if any(name != "versions/" for name in missing) or any(f.file == self.rel(layout.env_py) for f in findings):
            fixes.append(
                "Get fresh copies of Flask-Migrate's files: in server/ run\n"
                "    flask db init --directory fresh-migrations\n"
                "copy the missing or broken files (alembic.ini, env.py, script.py.mako) from "
                f"server/fresh-migrations/ into {migrations}/, then delete server/fresh-migrations/. "
                "Keep your versions/ folder as it is."
            )
        app_rel = self.rel(layout.app_py)
        if any(f.file == app_rel for f in findings):
            fixes.append("Fix server/app.py as described above; `flask db ...` needs it to load.")
        if verdict.reason == "app_py_broken":
            summary = f"{app_rel} cannot run `flask db` commands: {plural(len(problems), 'problem')}."
        else:
            summary = f"{migrations}/ is not set up as `flask db init` makes it: {plural(len(problems), 'problem')}."
        return Feedback(summary).add("Problems", bullet_list(problems)).add_fix("\n".join(fixes))

    def with_app_findings(self, feedback):
        """Add what is wrong in app.py, which `flask db init` needs too."""
        if self.evidence.findings:
            feedback.add("Also", bullet_list(map(finding_line, self.evidence.findings))
                         + "\nFix these too: `flask db ...` loads app.py.")
        return feedback


class _ChainWords(_Words):
    """What the words of the revisions and the history share: the revisions found and the way
    back to one revision per step."""

    def revisions_found(self):
        lines = []
        in_chain = {id(r): n for n, r in enumerate(self.chain, start=1)}
        history = self.evidence.history
        for revision in list(self.chain) + [r for r in history.files if id(r) not in in_chain]:
            position = in_chain.get(id(revision))
            ids = f"revision {revision.revision!r}" if revision.revision else "no revision id"
            if revision.down_revision:
                ids += f", follows {revision.down_revision!r}"
            head = f"{position}. " if position else "-  "
            if revision.load_error:
                work = "cannot be loaded"
            elif revision.revision is None:
                work = "not a revision"
            elif position:
                work = describe_schema_change(self.evidence.replay.upgrade(position))
            else:
                work = "not on the line from the first revision"
            lines.append(f"{head}{revision.rel} ({ids}): {work}")
        return "\n".join(lines)

    def order_fix(self, position):
        """How to get back to one revision per step, in order, from revision `position` on."""
        revision = self.chain[position - 1]
        if position == 1:
            first = self.lesson.revision(1)
            return (
                f"Revision 1 ({revision.rel}) does more than step {first.step}. The lesson makes one revision per "
                "step, each run on a database that already holds the rows of the steps before, so start over:\n"
                f"    delete {revision.rel} (and any later revision file) and server/instance/app.db,\n"
                f"    put models.py back to {self.lesson.words.starter_models},\n"
                f"    and do the steps again from step {first.step} (`{self.lesson.first_migrate}`)."
            )
        later = [r.rel for r in self.chain[position - 1:]]
        step, previous_step = self.lesson.step_of(position), self.lesson.step_of(position - 1)
        return (
            f"The lesson makes one revision per step, in order. Go back to revision {position - 1} and do the "
            f"steps from step {step} again: in server/ run\n"
            f"    flask db downgrade {self.chain[position - 2].revision}\n"
            f"then delete {', '.join(later)}, change models.py back to how step {previous_step} left it, and "
            f"follow the README from step {step}."
        )

    def fix_first(self, position, then):
        """Mend revision `position` into its own step's work, then go on with step `then`."""
        revision_file, revision = self.chain[position - 1], self.lesson.revision(position)
        return (f"Step {revision.step} first: fix revision {position} ({revision_file.rel}), as "
                f"{revision.checkpoint.id} says:\n\n{fix_functions(revision, revision_file.uses_batch)}\n\n"
                f"Then step {then}.")


class _RevisionWords(_ChainWords):
    """One of the lesson's revisions."""

    def passed(self, verdict):
        position = self.lesson.position_of(verdict.id)
        keeps = " and keeps every row" if self.lesson.revision(position).keeps_rows else ""
        return f"{capital(self.revision_name(position))} {self.lesson.words_of(position).short}{keeps}."

    def failed(self, verdict):
        position = self.lesson.position_of(verdict.id)
        revision, words, reason = self.lesson.revision(position), self.lesson.words_of(position), verdict.reason
        if reason == "work_in_another_revision":
            return self.work_elsewhere(position, verdict.facts.doer)
        if reason == "missing_revision":
            return Feedback(f"No revision {position} yet: nothing {words.short}.").add(
                "Found", f"{plural(len(self.chain), 'revision')} in {self.rel(self.layout.versions)}/."
            ).add("Expected", f"Revision {position} {words.expected}.").add_fix(
                f"Step {revision.step}: {words.how}")
        if reason == "replay_database_unusable":
            return Feedback(self.evidence.replay.error).add_fix(REPLAY_SERVER_FIX)
        step = self.evidence.replay.upgrade(position)
        name = capital(self.revision_name(position))
        if reason in ("upgrade_fails", "upgrade_stopped"):
            feedback = Feedback(f"{name} fails on upgrade.").add("Error", step.error)
            return self.revision_advice(feedback, position, step)
        other_work = verdict.facts.other_work
        if reason == "loses_data":
            summary = f"{name} loses data: {loss_summary(step.losses[0])}."
        elif reason == "does_another_steps_work":
            summary = (f"{name} {self.lesson.words_of(other_work[0]).short} (step {other_work[0]}'s work) "
                       f"instead of step {revision.step}'s: nothing {words.short} before it.")
        else:
            summary = f"{name} does not do what step {revision.step} asks."
        feedback = Feedback(summary).add("Found", bullet_list(mismatch_lines(verdict.facts.schema_wrong)
                                                              + loss_lines(step)))
        return self.revision_advice(feedback, position, step)

    def revision_advice(self, feedback, position, step):
        """Add what the upgrade does, the risk found, what was expected and the fix
        (the lesson's code for the revision)."""
        revision_file = self.chain[position - 1]
        feedback.add("What it does (upgrade)", what_it_does(step))
        if step is not None and step.risks:
            feedback.add("Why", "\n".join(first_lines(risk.message for risk in step.risks)))
        feedback.add("Expected", f"Revision {position} {self.lesson.words_of(position).expected}.")
        fix = (f"In {revision_file.rel}, make the functions read:\n\n"
               f"{fix_functions(self.lesson.revision(position), revision_file.uses_batch)}")
        remark = ""
        if step is not None and lost_rows(step):
            steps, verb = self.lesson.row_steps
            remark = ("If `flask db upgrade` already ran the old version on your own database, the rows are gone "
                      f"there too: after fixing the file, add them again with `flask shell` ({steps} {verb} how).")
        return feedback.add_fix(fix, remark)

    def work_elsewhere(self, position, doer):
        """Step `position`'s work, which revision `doer` does instead of a revision of its own."""
        name = self.revision_name(doer)
        others = sorted(self.lesson.works(self.evidence.replay.upgrade(doer)) - {position})
        together = f", together with step {others[0]}'s work" if others else ""
        revision, words = self.lesson.revision(position), self.lesson.words_of(position)
        feedback = Feedback(f"{capital(name)} {words.short}{together}: step {revision.step} has no revision "
                            "of its own.")
        feedback.add("Revisions found", self.revisions_found())
        feedback.add("Expected", f"Revision {position} {words.expected}.")
        if doer < position and self.verdicts[self.lesson.checkpoint_of(doer)].failed:
            return feedback.add_fix(self.fix_first(doer, position))
        return feedback.add_fix(self.order_fix(min(doer, position)))


class _HistoryWords(_ChainWords):
    """history: one line of the lesson's revisions."""

    def passed(self, verdict):
        fork = self.evidence.history.fork
        if fork is None:
            return f"One linear history of {self.lesson.count_word} revisions: one base, one head, no branches."
        branches = f"revisions {fork + 1} and {fork + 2} branch from revision {fork}"
        if len(self.chain) > fork + 2:
            return (f"One history of {self.lesson.count_word} revisions: one base, one head; {branches} and "
                    f"revision {fork + 3} merges them.")
        return f"One history of {self.lesson.count_word} revisions: one base; {branches}, two heads not merged yet."

    def failed(self, verdict):
        history, lesson = self.evidence.history, self.lesson
        reason = verdict.reason
        if reason == "no_revisions":
            first = lesson.revision(1)
            return Feedback(f"No revisions yet: {self.rel(self.layout.versions)}/ is empty.").add(
                "Expected", f"{capital(lesson.count_word)} revisions in one line (steps "
                            f"{first.step}-{lesson.revision(lesson.count).step}).").add_fix(
                f"Step {first.step}: {lesson.words_of(1).how}")
        if reason == "too_few_revisions":
            return Feedback(f"Found {len(history.files)} of the lesson's {lesson.count_word} revisions.").add(
                "Revisions found", self.revisions_found()).add_fix(self.next_revision(verdict.facts.next))
        problems, fix = list(history.problems), None
        if reason == "extra_revisions":
            problems.append(self.extra_problem())
            fix = self.extra_fix()
        expected = "\n".join(f"{n}. {lesson.words_of(n).expected}" for n in range(1, lesson.count + 1))
        return Feedback(
            f"The history is not one line of the {lesson.count_word} lesson revisions: "
            f"{plural(len(problems), 'problem')}."
        ).add("Problems", bullet_list(problems)).add("Revisions found", self.revisions_found()).add(
            "Expected",
            f"{capital(lesson.count_word)} revision files in one line, each naming the one before it in "
            f"down_revision:\n{expected}\n`flask db heads` shows one head; `flask db history` shows the "
            f"{lesson.count_word} in order.",
        ).add_fix(fix or "Follow the advice under Problems, then check with `flask db heads` and `flask db history`.")

    def extras(self):
        return self.chain[self.lesson.count:]

    def extra_problem(self):
        lesson = self.lesson
        return (f"There are {len(self.evidence.history.files)} revisions; the lesson has exactly "
                f"{lesson.count_word}. Extra: {', '.join(r.rel for r in self.extras())}.")

    def extra_fix(self):
        lesson = self.lesson
        return (
            f"The lesson has {lesson.count_word} revisions: {lesson.words.extra_revision_note}.\n"
            "Remove the extra revisions: if your database already ran them, first go back with\n"
            f"    flask db downgrade {self.chain[lesson.count - 1].revision}\n"
            f"then delete {', '.join(r.rel for r in self.extras())}."
        )

    def next_revision(self, advice):
        kind = advice.kind
        if kind == "apply_local":
            count = advice.count
            return (f"Step {self.lesson.step_of(count)}: {self.evidence.local.label} is at revision "
                    f"{advice.local}; apply the rest first, in server/:\n    flask db upgrade head\n"
                    f"Then step {count + 1}.")
        if kind == "order":
            return self.order_fix(advice.position)
        if kind == "next_step":
            text = f"Step {advice.position}: " + self.lesson.words_of(advice.position).how
            if self.evidence.other_database:  # not read here: it may still wait for an upgrade
                text = (f"First make sure your database has every revision applied: in server/, `flask db current` "
                        f"shows revision {advice.position - 1}'s id, else run `flask db upgrade head` "
                        "(`pipenv run status` reads your database and tells).\n" + text)
            return text
        return self.fix_first(advice.position, advice.then)


class _DowngradesWords(_Words):
    """downgrades: each downgrade undoes its upgrade."""

    def passed(self, verdict):
        return "Every downgrade reverses its upgrade and keeps the rows, down to an empty database."

    def failed(self, verdict):
        if verdict.reason == "replay_database_unusable":
            return Feedback(self.evidence.replay.error).add_fix(REPLAY_SERVER_FIX)
        if verdict.reason == "downgrades_not_run":
            return Feedback("The downgrades could not all be run.")
        failing = verdict.facts.failing
        names = [self.revision_name(entry.position) for entry in failing]
        feedback = Feedback(
            f"{plural(len(names), 'downgrade')} do not reverse their upgrade: {', '.join(names)}."
            if len(names) > 1 else f"The downgrade of {names[0]} does not reverse its upgrade."
        )
        for entry, name in zip(failing, names):
            feedback.add(f"{capital(name)}, downgrade", self.downgrade_section(entry))
        return feedback.add(
            "Expected", f"Each downgrade() undoes its upgrade(): from revision {self.lesson.count} down to an empty "
                        "database (only alembic_version left), every table and column comes back with its rows.")

    def downgrade_section(self, entry):
        position = entry.position
        step = next(s for s in self.evidence.replay.downgrades if s.position == position)
        problems = ["it fails: " + step.error] if not step.ran else mismatch_lines(entry.schema_wrong) + loss_lines(step)
        text = bullet_list(problems)
        does = what_it_does(step)
        if does:
            text += "\n\nWhat it does (downgrade):\n" + code_block(does.splitlines(), 1)
        if step.risks:
            text += "\n\nWhy:\n" + code_block(first_lines(risk.message for risk in step.risks), 1)
        revision = self.lesson.revision(position)
        if revision is not None:
            lines = ["def downgrade():"] + ["    " + line for line in
                                             revision.fix_lines("downgrade", self.chain[position - 1].uses_batch)]
            text += f"\n\nFix: in {self.chain[position - 1].rel}, make downgrade() read:\n" + code_block(lines, 1)
        if (not step.ran or entry.schema_wrong) and position > 1:
            text += (f"\n\nThe downgrades of revisions {position - 1} to 1 are checked once this one "
                     "leaves the tables as they were before its upgrade.")
        return text


class _ModelsMatchWords(_Words):
    """models_match: models.py describes the schema at the end revision."""

    def passed(self, verdict):
        return (f"{self.rel(self.layout.models_py)} matches the schema at revision {self.lesson.end.revision} "
                "(`flask db migrate` would find nothing to do).")

    def failed(self, verdict):
        models_rel = self.rel(self.layout.models_py)
        replay, end = self.evidence.replay, self.lesson.end
        model = code_block(end.model_code)
        if verdict.reason == "models_py_broken":
            return Feedback(f"{models_rel} cannot be loaded, so it cannot be compared with your migrations.").add(
                "Error", self.evidence.models.error).add_fix(f"Fix the line shown in {models_rel}.")
        if verdict.reason == "replay_database_unusable":
            return Feedback(replay.error)
        if verdict.reason == "models_not_comparable":
            return Feedback(f"{models_rel} cannot be compared with the database at revision {end.revision}.").add(
                "Error", replay.models_error).add_fix(model)
        database = f"the database at revision {end.revision}"
        lines = [describe_difference(item, database) for item in verdict.facts.diff]
        feedback = Feedback(
            f"{models_rel} does not match the schema at revision {end.revision}: {plural(len(lines), 'difference')}."
        ).add(f"Differences (models.py vs. {database})", bullet_list(lines))
        feedback.add("What `flask db migrate` would generate", textwrap.dedent(replay.models_code))
        feedback.add("Expected", self.lesson.words.model_expected)
        revision = self.chain[end.revision - 1].revision
        words = self.lesson.words
        return feedback.add_fix(words.model_fix.format(revision=revision, models=models_rel, model=model,
                                                       intro=words.model_intro))


class _LocalDatabaseWords(_Words):
    """local_database: the student's own database at the end of the lesson."""

    def passed(self, verdict):
        local = self.evidence.local
        counts = ", ".join(f"{local.counts.get(table)} {table}" for table, _ in self.lesson.end.tables)
        return f"{local.label} is at revision {self.lesson.end.revision} with your rows ({counts})."

    def failed(self, verdict):
        rel = self.evidence.local.label if self.evidence.local else self.rel(self.layout.local_database)
        local, reason = self.evidence.local, verdict.reason
        if reason == "other_database":
            return Feedback(
                f"not applicable: your app uses another database (DATABASE_URL={self.evidence.other_database}); "
                f"only {rel} is checked here. Your migrations were checked on a scratch database.")
        if reason == "instructor_grade":
            return Feedback(
                f"not applicable: graded for an instructor, who grades the migrations on a scratch database; "
                f"{rel} on the student's own machine counts only when they grade their own checkout.")
        if reason == "no_local_database":
            return Feedback(
                f"not applicable: there is no {rel} in this checkout (databases are not committed, so "
                "this is normal on CodeGrade and GitHub); your migrations were checked on a scratch database.")
        if reason == "local_database_unreadable":
            return Feedback(f"{rel} cannot be read: {local.error_detail}").add_fix(
                "Make sure it is a SQLite database made by `flask db upgrade` and that no program is "
                "writing to it, then grade again.")
        if reason == "local_database_not_migrated":
            return Feedback(f"{rel} has no alembic_version table: its tables were not made by `flask db upgrade`.").add(
                "Found", f"tables: {', '.join(local.schema) or 'none'}").add_fix(
                "If models.py or app.py calls db.create_all(), remove that. Then move this database aside "
                f"(mv {rel} {rel}.old) and rebuild it in server/ with `flask db upgrade`, adding your rows "
                "again with `flask shell`.")
        if reason == "local_database_several_heads":
            end_file = self.end_file()
            return Feedback(
                f"{rel} records {len(local.versions)} current revisions ({', '.join(local.versions) or 'none'}); "
                f"it should be at revision {self.lesson.end.revision}."
            ).add_fix(f"In server/: flask db stamp "
                      f"{end_file.revision if end_file else f'<revision {self.lesson.end.revision} id>'} --purge")
        if reason == "local_database_wrong_revision":
            return self.local_wrong_revision(verdict, rel)
        if reason == "local_database_unmigrated":
            return self.unmigrated(verdict, rel)
        return Feedback(f"{rel} is at revision {self.lesson.end.revision} but its tables or rows are not right.").add(
            "Found", bullet_list(mismatch_lines(verdict.facts.problems))).add_fix(
            self.add_rows_again(verdict.facts.problems))

    def end_file(self):
        end = self.lesson.end.revision
        return self.chain[end - 1] if len(self.chain) >= end else None

    def local_wrong_revision(self, verdict, rel):
        end, end_file = self.lesson.end, self.end_file()
        position, current = verdict.facts.position, self.evidence.local.versions[0]
        if position is None:
            where = f"at revision {current!r}, which no file in {self.rel(self.layout.versions)}/ has"
        else:
            where = f"at revision {position} ({self.chain[position - 1].rel})"
        fix_upgrade = f"flask db upgrade {end_file.revision}" if end_file else \
            f"finish steps 1-{self.lesson.revision(self.lesson.count).step} first"
        if position and position > end.revision and end_file:
            fix = f"Step {end.step}: in server/ run\n    flask db downgrade {end_file.revision}"
        else:
            fix = f"In server/ run\n    {fix_upgrade}"
            broken = verdict.facts.broken
            if broken and end_file:
                fix = (f"First fix what {', '.join(broken)} reports: `flask db upgrade` runs those revisions on "
                       f"your own rows. Then, in server/ run\n    {fix_upgrade}")
        return Feedback(f"{rel} is {where}; at the end of the lesson it is at revision {end.revision}.").add_fix(fix)

    def unmigrated(self, verdict, rel):
        """Tables or columns no revision makes: db.create_all() made them, behind Alembic's back."""
        drops = [f"DROP TABLE {problem.table}" if problem.kind == "extra_table"
                 else f"ALTER TABLE {problem.table} DROP COLUMN {problem.column}" for problem in verdict.facts.problems]
        statements = [">>> from models import db"] + [f">>> db.session.execute(db.text({drop!r}))" for drop in drops]
        return Feedback(
            f"{rel} has what no revision makes: `db.create_all()` (or a CREATE by hand) added it, and Alembic "
            "knows nothing about it.").add("Found", bullet_list(mismatch_lines(verdict.facts.problems))).add_fix(
            "Only migrations change the lesson's database. Drop what they did not make, with `flask shell` in "
            "server/:\n" + code_block(statements + [">>> db.session.commit()"], 1) +
            "\nA table or column models.py needs comes from a revision: `flask db migrate`, then `flask db upgrade`.")

    def add_rows_again(self, problems):
        """The lesson's rows of the tables found empty (or whose values were lost), exactly."""
        schema = self.evidence.local.schema
        tables = [p.table for p in problems if p.kind == "no_rows"] or [p.table for p in problems]
        data_sets = [data_set for data_set in self.lesson.data_sets
                     if set(data_set.tables) & set(tables) and data_set.locate(schema)]
        return "Add the missing rows again with `flask shell` in server/:\n" + code_block(
            rows_code(self.lesson, data_sets, schema).splitlines(), 1)


class _FurtherWords(_RevisionWords):
    """An optional revision that ran but left wrong values, no index, a blocking index, or a downgrade
    that does not undo it (going_further.py judges it)."""

    def failed(self, verdict):
        position, facts = self.lesson.position_of(verdict.id), verdict.facts
        if verdict.reason in MERGE_REASONS:
            return getattr(self, verdict.reason)(verdict, position)
        name = capital(self.revision_name(position))
        if verdict.reason == "downgrade_not_reversed":
            section = _DowngradesWords(self.evidence, self.lesson, self.verdicts).downgrade_section(facts.failing)
            return Feedback(f"The downgrade of {self.revision_name(position)} does not reverse its upgrade.").add(
                "Downgrade", section).add(
                "Expected", "downgrade() brings back the tables and columns as they were before the upgrade, "
                            "with every row and value.")
        leave, rules = facts.leave, self.lesson.production
        if verdict.reason == "not_filled":
            expected = dict(leave.values) if leave.values else {}
            lines = [f"row {i}: {value!r}" + (f" (expected {expected[i]!r})" if i in expected else "")
                     for i, value in facts.found] or [f"no rows in `{leave.table}`"]
            feedback = Feedback(f"{name} does not fill `{leave.table}.{leave.column}` as step "
                                f"{verdict.checkpoint.step} asks: {leave.says}.").add("Found", bullet_list(lines))
        elif verdict.reason == "no_index":
            indexes = [", ".join(columns) for columns in facts.indexes] or ["none"]
            feedback = Feedback(f"{name} leaves no index on `{leave.table}.{leave.column}`.").add(
                "Found", f"indexes of `{leave.table}` on: " + "; ".join(indexes))
        elif facts.missing == "autocommit_block":
            feedback = Feedback(f"{name} asks for CONCURRENTLY inside the migration's transaction: on PostgreSQL "
                                "the upgrade fails (CREATE INDEX CONCURRENTLY cannot run inside a transaction "
                                "block).")
            if rules:
                feedback.add("Why", rules.explanations["ban-concurrent-index-creation-in-transaction"])
        else:
            feedback = Feedback(f"{name} creates its index without CONCURRENTLY, which on PostgreSQL blocks "
                                f"every write to `{leave.table}` until the index is built.")
            if rules:
                feedback.add("Why", rules.explanations["require-concurrent-index-creation"])
        return self.revision_advice(feedback, position, self.evidence.replay.upgrade(position))


    # --- the declared merge's revisions (definition.Merge)

    def merge_fix(self):
        return f"In server/ run\n    flask db merge heads -m \"{self.lesson.further.merge.message}\"\n    flask db upgrade"

    def branch_deleted(self, verdict, position):
        words, change = self.lesson.words_of(position), self.lesson.revision(position).change
        return Feedback(f"No revision {position}: nothing {words.short}, yet models.py has "
                        f"`{change.table}.{change.column}`.").add(
            "Found", f"{plural(len(self.chain), 'revision')} in {self.rel(self.layout.versions)}/.").add(
            "Why", "Deleting a teammate's revision to get back to one head does not undo it: the databases that "
                   "ran it keep its column, and there `flask db upgrade` stops with \"Can't locate revision\", "
                   "since their alembic_version names a revision no file has any more.").add(
            "Expected", f"Revision {position} {words.expected}.").add_fix(
            f"Bring the teammate's file back with `git checkout`, or make it again as step "
            f"{self.lesson.revision(position).step} does: {words.how} Then, with the two heads, join them:"
            f"\n\n{self.merge_fix()}")

    def rewritten_parent(self, verdict, position):
        merge, chain = self.lesson.further.merge, self.chain
        revision_file, fork_file = chain[position - 1], chain[merge.fork - 1]
        follows = verdict.facts.follows
        return Feedback(f"{capital(self.revision_name(position))} follows revision {follows}, but it was made from "
                        f"revision {merge.fork}: its down_revision was changed.").add(
            "Found", f"down_revision = {revision_file.down_revision!r}; revision {merge.fork} is "
                     f"{fork_file.revision!r}").add(
            "Why", f"A revision that others already ran must not change. A database that ran it from revision "
                   f"{merge.fork} is, for Alembic, past revision {follows} too: `flask db upgrade` there never runs "
                   f"revision {follows}. Two branches are joined by a new revision that names both, which changes no "
                   "file that exists.").add(
            "Expected", f"Revision {position} {self.lesson.words_of(position).expected}.").add_fix(
            f"In {revision_file.rel}, put back down_revision = {fork_file.revision!r}. Then, with its two heads, "
            f"join them:\n\n{self.merge_fix()}",
            "If your own database ran the two revisions one after the other, it already has both columns: after "
            "the merge, record that with `flask db stamp heads` instead of `flask db upgrade`.")

    def not_merged(self, verdict, position):
        branches = self.lesson.further.merge.branches
        heads = ", ".join(self.revision_name(branch) for branch in branches)
        return Feedback(f"No revision {position} merges revisions {branches[0]} and {branches[1]}: the history "
                        "has two heads, and `flask db upgrade` refuses (\"Multiple head revisions are present for "
                        "given argument 'head'\").").add("Heads", heads).add(
            "Expected", f"Revision {position} {self.lesson.words_of(position).expected}.").add_fix(self.merge_fix())

    def not_a_merge(self, verdict, position):
        branches = self.lesson.further.merge.branches
        revision_file = self.chain[position - 1]
        return Feedback(f"{capital(self.revision_name(position))} does not merge revisions {branches[0]} and "
                        f"{branches[1]}.").add("Found", f"down_revision = {revision_file.down_revision!r}").add(
            "Expected", f"Revision {position} {self.lesson.words_of(position).expected}.").add_fix(
            f"Delete {revision_file.rel} (`flask db downgrade` first if it ran), then:\n\n{self.merge_fix()}")


MERGE_REASONS = ("branch_deleted", "rewritten_parent", "not_merged", "not_a_merge")  # _FurtherWords' methods


class _LegacyWords(_Words):
    """An optional step's database made with db.create_all() and brought under Alembic with
    `flask db stamp` (going_further.judge_legacy judges it)."""

    def passed(self, verdict):
        reading = self.evidence.legacy
        counts = ", ".join(f"{reading.counts.get(table)} {table}" for table in sorted(reading.schema))
        return (f"{reading.label} is stamped at revision {verdict.facts.head}, the head, and has its tables "
                f"and your rows ({counts}).")

    def failed(self, verdict):
        reading, reason, facts = self.evidence.legacy, verdict.reason, verdict.facts
        env_file = self.lesson.further.legacy.env_file
        if reason == "instructor_grade":
            return Feedback(f"not applicable: graded for an instructor; the database of step "
                            f"{verdict.checkpoint.step} is on the student's own machine and counts only when they "
                            "grade their own checkout.")
        if reason == "no_legacy_database":
            return Feedback(f"not applicable: there is no database named in server/{env_file} on this machine "
                            "(databases are not committed, so this is normal on CodeGrade and GitHub).")
        if reason == "replay_database_unusable":
            return Feedback(self.evidence.replay.error).add_fix(REPLAY_SERVER_FIX)
        label = reading.label
        if reason == "legacy_unreadable":
            return Feedback(f"{label} cannot be read: {reading.error_detail}").add_fix(
                f"Make sure server/{env_file} names the database of step {verdict.checkpoint.step} and that no "
                "program is writing to it, then grade again.")
        found = f"tables: {', '.join(sorted(reading.schema)) or 'none'}"
        if reason == "legacy_not_stamped":
            return Feedback(f"{label} records no revision: Alembic knows nothing about it, and `flask db upgrade` "
                            "would fail on its first table (it already exists).").add("Found", found).add(
                "Expected", self.lesson.further.words.legacy.expected).add_fix(self.stamp_fix(facts))
        if reason == "legacy_unknown_revision":
            versions = ", ".join(reading.versions)
            return Feedback(f"{label} is stamped with {versions}, which is not one revision of "
                            f"{self.rel(self.layout.versions)}/.").add("Found", found).add_fix(
                self.stamp_fix(facts, purge=True))
        stamped = self.revision_name(facts.position)
        if reason == "legacy_wrong_revision":
            return Feedback(f"{label} is stamped at {stamped}, but its tables are not that revision's: "
                            "Alembic now believes something false about it.").add(
                "Differences (your database vs. the stamped revision)",
                bullet_list(mismatch_lines(facts.problems))).add_fix(self.stamp_fix(facts))
        if reason == "legacy_behind":
            return Feedback(f"{label} is stamped at {stamped} and has its tables, but the head is revision "
                            f"{facts.head}.").add_fix(
                f"Run the revisions after it on that database, in server/:\n    flask --env-file {env_file} db upgrade")
        empty = ", ".join(f"`{problem.table}`" for problem in facts.problems)
        return Feedback(f"{label} is at the head, but {empty} {'has' if len(facts.problems) == 1 else 'have'} "
                        "no rows: stamping keeps every row, so this database was made again or emptied.").add_fix(
            f"Add a few rows again in `flask --env-file {env_file} shell`, as step {verdict.checkpoint.step} shows.")

    def stamp_fix(self, facts, purge=False):
        """Record the revision the tables are at without running anything, then upgrade to the head."""
        env_file = self.lesson.further.legacy.env_file
        flask = f"flask --env-file {env_file} db"
        option = " --purge" if purge else ""  # alembic_version names a revision the chain lacks: replace it
        if facts.matches is None:
            return (f"Its tables are those of no revision of your chain, so no stamp would be true. Move it aside "
                    f"and make it again: {self.lesson.further.words.legacy.how}")
        if facts.matches == facts.head:
            return f"Its tables are those of the head. Record that without running anything, in server/:\n" \
                   f"    {flask} stamp{option} head"
        revision = self.chain[facts.matches - 1].revision
        return (f"Its tables are those of {self.revision_name(facts.matches)}. Record that without running "
                f"anything, then run the revisions after it, in server/:\n"
                f"    {flask} stamp{option} {revision}\n    {flask} upgrade")


# A checkpoint's kind (definition.Lesson.kind_of) -> the words for it.
WORDS_OF_KIND = {
    "init": _InitWords,
    "revision": _RevisionWords,
    "history": _HistoryWords,
    "downgrades": _DowngradesWords,
    "models_match": _ModelsMatchWords,
    "local_database": _LocalDatabaseWords,
    "further": _FurtherWords,
    "legacy": _LegacyWords,
}
