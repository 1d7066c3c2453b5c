"""Messages a beginner can act on, in the shape of pytest-alembic's errors.

Every message is a one-line summary followed by titled sections:

    Revision 3 loses the 2 rows of `department`.

    Revision file:
        server/migrations/versions/da467de46bf9_rename_department.py

    What it does (upgrade):
        op.create_table('departments', ...)
        op.drop_table('department')

    Expected:
        ...

    Fix:
        ...

`Feedback.render()` produces that text; the grader's tests, the status
command and the project's own tests all use it, so the wording lives here and
in checks.py only.
"""
import linecache
import re
import string
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

INDENT = "    "


@dataclass
class Feedback:
    """A one-line summary and titled sections, each a block of text."""

    summary: str
    sections: List[Tuple[str, str]] = field(default_factory=list)
    fix: Optional[str] = None  # the "Fix" section's text: the one thing to do
    core_fix: Optional[str] = None  # the fix without its remarks (the code to write, the command to run)

    def add(self, title, text):
        if text:
            self.sections.append((title, text.rstrip("\n")))
        return self

    def add_fix(self, text, remark=""):
        """The "Fix" section: `text`, then `remark` (what else to know) after a blank line."""
        if text:
            self.fix = (text + (f"\n\n{remark}" if remark else "")).rstrip("\n")
            self.core_fix = text.rstrip("\n")
        return self.add("Fix", self.fix)

    def render(self):
        lines = [self.summary]
        for title, text in self.sections:
            lines.extend(["", f"{title}:", textwrap.indent(text, INDENT)])
        return "\n".join(lines)

    def __str__(self):
        return self.render()


def bullet_list(items):
    return "\n".join(f"- {item}" for item in items)


def code_block(lines, indent=0):
    """Lines of code as one block, indented by `indent` levels."""
    return textwrap.indent("\n".join(lines), INDENT * indent)


def relative(path, root):
    """A path as the student sees it: relative to the repository, with slashes."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def describe_exception(error, root, files=(), known_file=None, memory_mb=None):
    """What went wrong in the student's code, without a traceback.

    Names the student's file and line (the innermost frame inside `root`, or
    the file of a SyntaxError) and shows that line of code. The file name is
    left out when it is `known_file` (the message already names it).
    """
    kind = type(error).__name__
    message = str(error).strip() or "(no message)"
    if isinstance(error, SystemExit):
        message = f"it ends the process with sys.exit({error.code!r}); a migration must return normally"
    elif isinstance(error, KeyboardInterrupt):
        message = "it raises KeyboardInterrupt itself; a migration must return normally"
    elif isinstance(error, MemoryError):
        limit = f" (the limit is {memory_mb} MB)" if memory_mb else ""
        message = f"it runs out of memory{limit}"
    if getattr(error, "orig", None) is not None and hasattr(error, "statement"):
        # A database error: the driver's message and the SQL, not SQLAlchemy's wrapping.
        kind = type(error.orig).__name__
        message = str(error.orig).strip()
        if error.statement:
            message += "\n" + INDENT + "while running: " + " ".join(str(error.statement).split())
    if isinstance(error, SyntaxError) and error.filename:
        location = _where(error.filename, error.lineno, root, known_file)
        code = (error.text or "").rstrip("\n")
        text = f"{location}: {kind}: {error.msg}"
        if code.strip():
            caret = ""
            if error.offset and error.offset > 0:
                stripped = len(code) - len(code.lstrip())
                caret = "\n" + " " * (max(error.offset - 1 - stripped, 0) + len(INDENT)) + "^"
            text += "\n" + INDENT + code.strip() + caret
        return text
    frame = _innermost_student_frame(error, root, files)
    if frame is None:
        return f"{kind}: {message}"
    code = frame.line or linecache.getline(frame.filename, frame.lineno).strip()
    text = f"{_where(frame.filename, frame.lineno, root, known_file)}, in {frame.name}: {kind}: {message}"
    if code:
        text += "\n" + INDENT + code
    return text


def _where(filename, lineno, root, known_file):
    if known_file is not None and Path(filename).resolve() == Path(known_file).resolve():
        return f"line {lineno}"
    return f"{relative(filename, root)}, line {lineno}"


def _innermost_student_frame(error, root, files):
    root = Path(root).resolve()
    wanted = {str(Path(f).resolve()) for f in files}
    found = None
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        try:
            resolved = path.resolve()
        except OSError:
            continue
        if str(resolved) in wanted or _inside(resolved, root):
            found = frame
    return found


def _inside(path, root):
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return "testing" not in path.relative_to(root).parts[:2]  # the grader itself


def one_line(text, limit=200):
    """The first line of a message, shortened for a summary."""
    first = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."


def error_line(error, kind=False):
    """The first line of an exception's message (its type's name when it has none),
    after that name and a colon when `kind` is true."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    name = type(error).__name__
    if kind:
        return f"{name}: {first}" if first else name
    return first or name


def plural(count, word, many=None):
    return f"{count} {word if count == 1 else (many or word + 's')}"


NAME_CHARACTERS = 60  # of a table or column name in a message: a name can be thousands long
LISTED = 3  # names shown in a summarised list


LINES_SHOWN = 10  # of a list of operations, statements or risks
LINE_CHARACTERS = 240


def short(name):
    """A name as a message shows it: a very long one cut in its middle."""
    if name is None:
        return None
    name = str(name)
    if len(name) <= NAME_CHARACTERS:
        return name
    half = NAME_CHARACTERS // 2 - 1
    return f"{name[:half]}\u2026{name[-half:]} ({len(name):,} characters)"


def summarised(names, noun):
    """'5,000 extra tables: `t0`, `t1`, `t2`, \u2026 and 4,997 more': a long list kept short."""
    names = sorted(names, key=lambda name: [int(part) if part.isdigit() else part
                                            for part in re.split(r"(\d+)", str(name))])  # t2 before t10
    shown = ", ".join(f"`{short(name)}`" for name in names[:LISTED])
    rest = len(names) - LISTED
    return f"{len(names):,} {noun}: {shown}" + (f", \u2026 and {rest:,} more" if rest > 0 else "")


def first_lines(lines):
    """At most LINES_SHOWN lines of at most LINE_CHARACTERS each, then how many more there are."""
    lines = list(lines)
    kept = [line if len(line) <= LINE_CHARACTERS else line[:LINE_CHARACTERS - 1] + "\u2026" for line in lines[:LINES_SHOWN]]
    if len(lines) > LINES_SHOWN:
        kept.append(f"\u2026 and {len(lines) - LINES_SHOWN:,} more")
    return kept


def optional(value: Optional[str], default=""):
    return value if value else default


# --- templates of words, checked where they are declared ----------------------------------

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
