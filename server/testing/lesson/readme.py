"""Reads the code blocks of README.md that the reference walkthrough performs.

A block takes part when an HTML comment (invisible on GitHub) stands just
before its opening fence, inside a `## Step N` section:

    <!-- walkthrough: run -->                  console: `$ flask ...` commands, each
                                               followed by (part of) its real output
    <!-- walkthrough: refused -->              the same, for commands that must fail
                                               (a non-zero exit) with that output
    <!-- walkthrough: shell -->                `$ flask shell` then `>>>` statements
                                               and the exact output they print
    <!-- walkthrough: shell -->                `$ flask shell` (or `$ flask --env-file FILE
                                               shell`) then `>>>` statements and the
                                               exact output they print
    <!-- walkthrough: env FILE -->             server/FILE, one `DATABASE_URL=...` line
                                               (what `flask --env-file FILE` reads)
    <!-- walkthrough: models.py -->            the whole of server/models.py
    <!-- walkthrough: models.py class NAME --> one class: replaces the class of that
                                               name in models.py, or is appended
    <!-- walkthrough: expect models.py -->     models.py must now read exactly so
    <!-- walkthrough: generated "MESSAGE" -->  what `flask db migrate -m "MESSAGE"`
                                               wrote (upgrade/downgrade, ids)
    <!-- walkthrough: migration "MESSAGE" -->  the edited functions that replace the
                                               generated ones in that revision

commands() reads every other command the README shows (code spans in the
prose, `$ ` lines of unmarked blocks), for the test that proves each one.
"""
import re
import shlex
from dataclasses import dataclass
from typing import List, Optional, Tuple

MARKER = re.compile(r"^\s*<!--\s*walkthrough:\s*(.*?)\s*-->\s*$")
STEP_HEADING = re.compile(r"^##\s+Step\s+(\d+)\b")
SECTION_HEADING = re.compile(r"^##\s")
FENCE = re.compile(r"^(`{3,}|~{3,})")

# The block kinds and how many arguments each takes after its name.
KINDS = {
    "run": 0,
    "refused": 0,
    "shell": 0,
    "models.py": 0,
    "models.py class": 1,
    "expect models.py": 0,
    "generated": 1,
    "migration": 1,
    "env": 1,
}


class ReadmeError(Exception):
    """README.md does not follow the walkthrough's block convention."""


@dataclass(frozen=True)
class Block:
    step: int
    kind: str  # one of KINDS
    argument: Optional[str]  # class name or revision message, else None
    text: str  # the block's content, without the fences
    line: int  # README line number of the marker (1-based)

    def where(self):
        return f"README.md line {self.line} (step {self.step}, `{self.kind}` block)"


def _kind_of(marker, line_number):
    try:
        words = shlex.split(marker)
    except ValueError as error:
        raise ReadmeError(f"README.md line {line_number}: cannot read marker {marker!r}: {error}")
    for kind, arguments in sorted(KINDS.items(), key=lambda item: -len(item[0])):
        name = kind.split()
        if words[: len(name)] == name and len(words) == len(name) + arguments:
            return kind, (words[-1] if arguments else None)
    raise ReadmeError(
        f"README.md line {line_number}: unknown walkthrough marker {marker!r}; expected one of: "
        + ", ".join(kind + (" ARG" if arguments else "") for kind, arguments in KINDS.items())
    )


def parse_readme(text) -> List[Block]:
    """All walkthrough blocks of the README, in order."""
    lines = text.splitlines()
    blocks = []
    step = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if FENCE.match(line):  # skip fenced code so its contents are never headings
            index = _closing_fence(lines, index) + 1
            continue
        if SECTION_HEADING.match(line):
            heading = STEP_HEADING.match(line)
            step = int(heading.group(1)) if heading else None
        marker = MARKER.match(line)
        if marker:
            kind, argument = _kind_of(marker.group(1), index + 1)
            if step is None:
                raise ReadmeError(f"README.md line {index + 1}: walkthrough marker outside a `## Step N` section")
            start = index + 1
            while start < len(lines) and not lines[start].strip():
                start += 1
            if start >= len(lines) or not FENCE.match(lines[start]):
                raise ReadmeError(f"README.md line {index + 1}: walkthrough marker not followed by a code block")
            end = _closing_fence(lines, start)
            content = "\n".join(lines[start + 1 : end]) + "\n"
            blocks.append(Block(step, kind, argument, content, index + 1))
            index = end + 1
            continue
        index += 1
    return blocks


def _closing_fence(lines, opening):
    fence = FENCE.match(lines[opening]).group(1)
    for index in range(opening + 1, len(lines)):
        if lines[index].strip() == fence:
            return index
    raise ReadmeError(f"README.md line {opening + 1}: code block is never closed")


def step_titles(text):
    """{step number: heading text} of the README's `## Step N: ...` headings."""
    titles = {}
    for line in text.splitlines():
        heading = STEP_HEADING.match(line)
        if heading:
            titles[int(heading.group(1))] = line.lstrip("#").strip().split(":", 1)[-1].strip()
    return titles


def console_commands(block) -> List[Tuple[str, List[str]]]:
    """[(command, shown output lines)] of a `run` or `refused` block; `...` lines are elisions."""
    commands = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:].strip(), []))
        elif not commands:
            if line.strip():
                raise ReadmeError(f"{block.where()}: output before the first `$ ` command: {line!r}")
        elif line.strip() and line.strip() != "...":
            commands[-1][1].append(line.rstrip())
    if not commands:
        raise ReadmeError(f"{block.where()}: no `$ ` command in the block")
    return commands


SHELL_COMMAND = re.compile(r"^\$ (flask (?:--env-file \S+ )?shell)$")


def shell_session(block) -> Tuple[str, List[str], List[str]]:
    """(the command, statements to type, output lines shown) of a `shell` block."""
    lines = block.text.splitlines()
    command = SHELL_COMMAND.match(lines[0].strip()) if lines else None
    if command is None:
        raise ReadmeError(f"{block.where()}: a shell block starts with `$ flask shell` "
                          "(or `$ flask --env-file FILE shell`)")
    statements, shown = [], []
    for line in lines[1:]:
        if line.startswith(">>> ") or line.rstrip() == ">>>":
            statements.append(line[4:])
        elif line.startswith("... ") or line.rstrip() == "...":
            statements.append(line[4:])  # a bare `...` ends an indented statement
        elif line.strip():
            shown.append(line.rstrip())
    return command.group(1), statements, shown


# --- every command the README shows ------------------------------------------

# A code span or console line is a command when its first word runs a program
# (after any `NAME=value` assignments): `flask db current`, `LESSON_ROOT=PATH
# pytest`, `[Environment]::SetEnvironmentVariable(...)` (a PowerShell call).
PROGRAMS = {
    "flask", "pipenv", "pytest", "python", "python3", "py", "pip", "pipx", "brew", "sudo", "apt-get",
    "git", "createdb", "export", ".ci/run", ".ci/check-pythons", ".ci/lock", "bash",
}
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")
POWERSHELL_CALL = re.compile(r"^\[[A-Za-z.]+\]::\w+\(")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


@dataclass(frozen=True)
class Command:
    text: str  # as a student would type it (a code span's line breaks as spaces)
    line: int  # README line number (1-based)
    section: str  # the heading it stands under
    shell: str  # "powershell" or "cmd" where the README says so, else "bash"
    context: str  # the paragraph or list item around it (for a code block: the block)

    def where(self):
        return f"README.md line {self.line} ({self.section})"


# A program that needs a subcommand, named alone (or with `...` for any
# subcommand), is a name in the prose, not a command: "`flask` finds no app".
NAMES = {"flask", "pipenv", "pipenv run", "flask db"}


def is_command(text):
    if POWERSHELL_CALL.match(text):
        return True
    if text in NAMES or (text.endswith(" ...") and text[:-4] in NAMES):
        return False
    words = text.split()
    while words and ASSIGNMENT.match(words[0]):
        words = words[1:]
    return bool(words) and words[0] in PROGRAMS


def shell_of(text, before):
    """The shell a command is written for: the README says "PowerShell" or
    "cmd" in the sentence or clause just before it."""
    if POWERSHELL_CALL.match(text):
        return "powershell"
    clause = re.split(r"[.;]\s", " ".join(before.split()))[-1]
    if re.search(r"\bPowerShell\b", clause):
        return "powershell"
    if re.search(r"\bcmd\b", clause):
        return "cmd"
    return "bash"


def commands(text) -> List[Command]:
    """Every command README.md shows outside the walkthrough's marked blocks:
    code spans in the prose whose first word runs a program, and the `$ `
    lines of code blocks (of a block with no `$ ` line, its lines that are
    commands, as in the quick start). Marked blocks are the walkthrough's."""
    lines = text.splitlines()
    found = []
    section = "top"
    paragraph = []  # (line number, text) of the current paragraph or list item
    marked = False

    def end_paragraph():
        if not paragraph:
            return
        joined = "\n".join(line for _, line in paragraph)
        joined = HTML_COMMENT.sub(lambda match: " " * len(match.group(0)), joined)
        for match in CODE_SPAN.finditer(joined):
            span = " ".join(match.group(2).split())  # line breaks inside a span are spaces
            if is_command(span):
                first = paragraph[0][0] + joined.count("\n", 0, match.start())
                context = " ".join(joined.split())
                found.append(Command(span, first, section, shell_of(span, joined[: match.start()]), context))
        paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line.strip())
        if fence:
            end_paragraph()
            end = _closing_fence([line.strip() for line in lines], index)
            if not marked:
                found.extend(_block_commands(lines[index + 1 : end], index + 2, section, "\n".join(lines[index:end + 1])))
            marked = False
            index = end + 1
            continue
        if line.startswith("#"):
            end_paragraph()
            section = line.lstrip("#").strip()
        elif MARKER.match(line):
            end_paragraph()
            marked = True
        elif not line.strip() or re.match(r"^\s*(?:[-*]|\d+\.)\s", line):
            end_paragraph()  # a blank line or a new list item ends a paragraph
            if line.strip():
                paragraph.append((index + 1, line))
        else:
            paragraph.append((index + 1, line))
        index += 1
    end_paragraph()
    return found


def _block_commands(block_lines, first_line, section, block):
    block_lines = [line.strip() for line in block_lines]  # a block inside a list item is indented
    prompted = [(number, line[2:].strip()) for number, line in enumerate(block_lines, first_line) if line.startswith("$ ")]
    if not prompted:
        prompted = [(number, line.strip()) for number, line in enumerate(block_lines, first_line)
                    if is_command(line.strip())]
    # A comment after a command (`# one sub-folder per student`) is not part of it.
    return [Command(re.sub(r"\s+#\s.*$", "", line), number, section, "bash", block) for number, line in prompted]


if __name__ == "__main__":
    # `python server/testing/lesson/readme.py SHELL`: the README's commands for
    # that shell, one a line, for the workflows to run them there.
    import sys
    from pathlib import Path

    readme_text = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    for command in commands(readme_text):
        if command.shell == sys.argv[1]:
            print(command.text)
