"""A class's mistakes, each counted once: root causes before ranking.

One slip often fails several checkpoints. Steps 3 and 4 merged into one
revision fail revision 3 (it does step 4's work too), revision 4 (its work
is done elsewhere) and the history (one revision short); a table rename kept
as create+drop fails revision 3 and, through its downgrade, `downgrades`.
Checkpoints that are only blocked are already set aside by the judge
(blocked_by); this module reads the facts of the verdicts that did fail and
says which of them follow from another:

- `consequence_of(verdict, verdicts, lesson)`: the checkpoint whose failure
  this one follows from, or None when it is a root cause of its own.
- `ranked(rows, lesson)`: [(mistake, [rows])], most students first, ties in
  the lesson's step order (then checkpoint order), never alphabetical.

A mistake is "<checkpoint>:<reason>", the engine's stable reason codes
(checks.py); `mistake_name` words it for people.
"""

UPGRADE_STOPPED = "the code hung, ended the process or ran out of memory"


def consequence_of(verdict, verdicts, lesson):
    """The failed checkpoint that `verdict` (failed, not blocked) follows from, or None."""
    facts, checkpoint = verdict.facts, verdict.id

    def failed_at(position):
        """The failed checkpoint that answers for revision `position` (its own, or what blocks it)."""
        if position is None:
            return None
        found = lesson.checkpoint_of(position) if position <= lesson.count else "history"
        found = verdicts[found].blocked_by or found
        return found if found != checkpoint and verdicts[found].failed else None

    if verdict.reason == "work_in_another_revision":  # the step's work is in revision `doer`
        return failed_at(facts.doer)
    if verdict.reason == "too_few_revisions":
        # A step merged into another or skipped: the revision the judge says to fix first.
        return failed_at(facts.next.position)
    if verdict.reason == "downgrade_not_reversed":
        # Every downgrade that fails belongs to a revision that already failed (a create+drop
        # kept, an extra revision): the downgrade follows from it.
        causes = [failed_at(failing.position) for failing in facts.failing]
        return causes[0] if causes and all(causes) else None
    if verdict.reason == "local_database_wrong_revision" and facts.broken:
        return facts.broken[0]
    return None


def ranked(rows, lesson, mistakes_of=lambda row: row["mistakes"]):
    """[(mistake, [rows that made it])] over the rows' root causes (row["mistakes"], or what
    `mistakes_of` reads: the optional steps'), most students first; ties in the order of the
    lesson's steps and checkpoints, the optional ones after."""
    by_mistake = {}
    for row in rows:
        for mistake in mistakes_of(row):
            by_mistake.setdefault(mistake, []).append(row)
    checkpoints = lesson.checkpoints + (lesson.further.checkpoints if lesson.further else ())
    order = {checkpoint.id: (checkpoint.step, number) for number, checkpoint in enumerate(checkpoints)}

    def key(item):
        mistake, who = item
        return (-len(who), *order.get(mistake.split(":", 1)[0], (99, 99)), mistake)

    return sorted(by_mistake.items(), key=key)


def mistake_name(mistake, lesson):
    if mistake.endswith(":upgrade_stopped"):
        return f"{mistake.split(':')[0]}: {UPGRADE_STOPPED}"
    names = {**lesson.words.mistake_names, **(lesson.further.words.mistake_names if lesson.further else {})}
    return names.get(mistake, mistake.replace("_", " ").replace(":", ": ", 1))
