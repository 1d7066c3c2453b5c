"""The engine's sentences, as data: str.format templates that render.py fills
in with the facts of facts.py. Every lesson shares them; a lesson's own words
are declared with it (words.py for this lesson). Each table's placeholders are
checked here on import, so a misspelt one fails at once, not while a student's
message is written.
"""
from ..lesson.feedback import check_templates
from .facts import BLOCK_CAUSES, FINDING_KINDS, MISMATCH_KINDS


# --- app.py and env.py, read without running them (facts.Finding) ---------------------------
FINDING_WORDS = {
    "missing_file": "{file} does not exist.",
    "unreadable": "{file} cannot be read: {detail}",
    "syntax_error": "{file}, {detail}",
    "no_module": "{file}, line {line}: `{detail}` fails: there is no module named '{name}'.",
    "no_model_name": "{file}, line {line}: imports `{name}` from models, but {detail} defines no `{name}`.",
    "no_migrate": "{file} never creates `Migrate(app, db)`, so `flask db` has no commands. "
                  "Add `migrate = Migrate(app, db)` after creating the app.",
    "creates_tables": "{file}, line {line}: `{detail}` runs every time the app loads and changes tables behind "
                      "Alembic's back. Remove it: in this lesson only migrations create tables (`flask db upgrade`).",
    "no_run_migrations": "{file} never calls `context.run_migrations()`, so `flask db upgrade` does nothing. "
                         "Restore the file Flask-Migrate wrote (see the fix below).",
}
check_templates(FINDING_WORDS, FINDING_KINDS, {"file", "detail", "line", "name"}, "the findings")


def finding_line(finding):
    return FINDING_WORDS[finding.kind].format(
        file=finding.file, detail=finding.detail, line=finding.line, name=finding.name)


# --- why a checkpoint waits for another (facts.Block) ---------------------------------------
BLOCKED_WHY = {
    "no_versions": "There is no {versions}/ folder.",
    "no_versions_to_read": "There is no {versions}/ folder to read revisions from.",
    "history_breaks": "The history cannot be followed to revision {position}: {problem}",
    "earlier_fails": "Revision {earlier} fails on upgrade, so revision {position} cannot run.",
    "not_run": "{name} was not run.",
    "previous_leaves_other_tables": "Revision {previous} does not leave the tables revision {position} works on.",
    "needs_all": "The downgrades are checked once all {count_word} revisions run, from revision {count} down.",
    "upgrade_fails_first": "Revision {earlier} fails on upgrade, so nothing can be downgraded.",
    "later_downgrade_fails": "The downgrade of revision {earlier} does not undo its upgrade, so revision "
                             "{position}'s runs on other tables and is judged once that one is fixed.",
    "no_end_revision": "There is no revision {end} yet.",
    "end_fails": "Revision {end} fails on upgrade, so there is no database at revision {end} to compare with.",
    "wrong_before_end": "Revision {earlier} leaves other tables or columns than the lesson's, so the schema at "
                        "revision {end} is not the one models.py should match.",
    "branch_first": "Revision {position} merges the two branches, and revision {earlier}, one of them, is not "
                    "as its step makes it yet.",
    "stamped_schema_unknown": "Revision {earlier} fails on upgrade, so there is no schema at revision {position} "
                              "to compare your stamped database with.",
}


def block_fields(cause):
    """What the words of a Block can name: its own facts, and the revision it stops by position and name."""
    own = set(BLOCK_CAUSES[cause])
    return own | {"versions", "count", "count_word", "problem"} | ({"previous", "name"} if "position" in own else set())


check_templates(BLOCKED_WHY, BLOCK_CAUSES, block_fields, "the causes of a block")

# --- when the database server given to the grader cannot be used ---------------------------
REPLAY_SERVER_FIX = "Check the database server given to the grader (--lesson-database / LESSON_GRADE_DATABASE_URL)."

# --- how a schema differs from the lesson's (facts.Mismatch) ---------------------------------
MISMATCH_WORDS = {
    "no_table": "there is no table `{table}`",
    "extra_table": "there is an extra table `{table}` ({found})",
    "no_column": "`{table}` has no column `{column}` (it has {found_or_none})",
    "extra_column": "`{table}` has an extra column `{column}`",
    "kind": "{where} holds {found} values; expected {expected}",
    "not_primary_key": "{where} is not the primary key",
    "in_primary_key": "{where} is part of the primary key; it should not be",
    "allows_null": "{where} allows empty values (NULL); it should be NOT NULL (nullable=False)",
    "not_null": "{where} is NOT NULL; it should allow empty values (nullable=True)",
    "no_rows": "`{table}` has no rows: the rows you added in step {expected} are gone",
    "empty_values": "{where} is empty (NULL) in {rows}: the values were lost on the way (a column dropped and "
                    "added instead of renamed)",
}
check_templates(MISMATCH_WORDS, MISMATCH_KINDS,
                {"table", "column", "where", "found", "found_or_none", "expected", "rows"}, "the mismatches")

# --- how models.py differs from a database (reading.differences_of: Alembic's compare_metadata)
DIFFERENCE_WORDS = {
    "add_table": "models.py defines table `{table}`, which {database} does not have",
    "remove_table": "{database} has table `{table}`, which models.py does not define",
    "add_column": "models.py gives `{table}` a column `{column}`, which {database} does not have",
    "remove_column": "{database} has column `{table}.{column}`, which models.py does not define",
    "modify_nullable": "`{table}.{column}`: models.py says nullable={new}, {database} says nullable={existing}",
    "modify_type": "`{table}.{column}`: models.py says {new}, {database} has {existing}",
    "modify_default": "`{table}.{column}`: the server default differs",
}
check_templates(DIFFERENCE_WORDS, DIFFERENCE_WORDS,
                {"kind", "table", "column", "new", "existing", "detail", "database"}, "the differences")
