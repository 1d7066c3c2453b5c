"""The engine's sentences, as data: str.format templates that render.py fills
in with the facts of facts.py. Every lesson shares them; a lesson's own words
are declared with it (words.py for this lesson). Each table's placeholders are
checked here on import, so a misspelt one fails at once, not while a student's
message is written.
"""
import string

from .facts import FINDING_KINDS


def placeholders(template):
    """The names a str.format template fills in."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


def check_templates(table, keys, allowed, what):
    """Refuse a table of templates that lacks a key, has one too many, or uses a placeholder not in `allowed`
    (a set, or a function of the key)."""
    problems = [f"no words for {key!r}" for key in keys if key not in table]
    problems += [f"{key!r} is not one of {what}" for key in table if key not in keys]
    for key, template in table.items():
        unknown = placeholders(template) - (allowed(key) if callable(allowed) else allowed)
        problems += [f"{key!r} uses {{{name}}}, which is not given" for name in sorted(unknown)]
    if problems:
        raise ValueError(f"the words for {what} are not right: " + "; ".join(problems))


# --- app.py and env.py, read without running them (facts.Finding) --------------------------
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
