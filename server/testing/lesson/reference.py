"""The reference solution as the README gives it: models.py and the revisions'
messages at the start of any step, read from the README's marked code blocks
(readme.py), and the editing of Python source by top-level definitions that
the README's `models.py class NAME` blocks need. The walkthrough performs the
README with it; `flask lesson reset` puts a checkout back with it."""
import ast
from pathlib import Path

from . import readme

REPO_ROOT = Path(__file__).resolve().parents[3]


class WalkthroughError(Exception):
    """A step of the README could not be performed as written."""


def published_models_of(text):
    """The starter's models.py in the README's text (its step 1 listing)."""
    for block in readme.parse_readme(text):
        if block.step == 1 and block.kind == "expect models.py":
            return block.text.rstrip("\n") + "\n"
    raise WalkthroughError("README.md shows no starter models.py (an `expect models.py` block in step 1)")


def models_after(source, block):
    """models.py after one of the README's `models.py` or `models.py class NAME` blocks."""
    tree = parse_python(block.text, block.where())
    if block.kind == "models.py":
        return block.text
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    if [node.name for node in classes] != [block.argument]:
        raise WalkthroughError(f"{block.where()}: the block must define exactly class {block.argument}")
    return replace_definitions(source, block.text, "models.py")


def reference_at_start(step, readme_text):
    """(models.py, [revision message]) as the README has them when `step` begins:
    the starter's models.py with every earlier step's edits, and the messages of
    the revisions the earlier steps generate, in order."""
    models, messages = None, []
    for block in readme.parse_readme(readme_text):
        if block.step >= step:
            break
        if block.kind == "expect models.py" and models is None:
            models = block.text.rstrip("\n") + "\n"
        elif block.kind in ("models.py", "models.py class"):
            models = models_after(models, block)
        elif block.kind == "generated":
            messages.append(block.argument)
    if models is None:
        models = published_models_of(readme_text)
    return models, messages


def parse_python(text, where):
    try:
        return ast.parse(text)
    except SyntaxError as error:
        raise WalkthroughError(f"{where}: not valid Python ({error.msg}, line {error.lineno})")


def definition_name(node):
    """Name of a top-level def/class, or of `revision`/`down_revision` assignments."""
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        if node.targets[0].id in ("revision", "down_revision"):
            return node.targets[0].id
    return None


def _spans(tree, line_count):
    """{name: (first line, end line)} of top-level defs, 0-based, end exclusive.

    A definition runs until the next top-level statement, so the comments
    after its last statement (Alembic's `# ### end Alembic commands ###`)
    belong to it; trailing blank lines do not.
    """
    body = tree.body
    spans = {}
    for index, node in enumerate(body):
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue
        start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list]) - 1
        following = body[index + 1] if index + 1 < len(body) else None
        end = line_count if following is None else min(
            [following.lineno] + [d.lineno for d in getattr(following, "decorator_list", [])]) - 1
        spans[node.name] = (start, end)
    return spans


def replace_definitions(source, replacement, filename):
    """Source with each top-level def/class of replacement put in place of the
    one of the same name (or appended when source has none)."""
    lines = source.splitlines()
    new_lines = replacement.splitlines()
    new_spans = _spans(ast.parse(replacement), len(new_lines))
    old_spans = _spans(parse_python(source, filename), len(lines))
    # Replace bottom-up, so the line numbers of earlier definitions stay valid.
    for name, (old_start, old_end) in sorted(old_spans.items(), key=lambda item: -item[1][0]):
        if name in new_spans:
            start, end = new_spans[name]
            blank_after = len(lines[old_start:old_end]) - len(without_blank_end(lines[old_start:old_end]))
            lines[old_start:old_end] = without_blank_end(new_lines[start:end]) + [""] * blank_after
    for name, (start, end) in sorted(new_spans.items(), key=lambda item: item[1][0]):
        if name not in old_spans:
            lines = without_blank_end(lines) + ["", ""] + without_blank_end(new_lines[start:end])
    return "\n".join(lines) + "\n"


def without_blank_end(lines):
    lines = list(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines
