"""Submissions whose code attacks or wrecks the grader, made from the reference solution.

Each entry changes a copy of the finished reference checkout the way a
hostile or badly broken submission would: forging the exit code, patching
the test runner or the grader, writing to the grader's or the checkout's
files, hanging, exiting, exhausting memory, crashing, flooding the output,
leaving processes behind. `failing` lists exactly the checkpoints that must
fail and `messages` words their messages must contain; `exit_code` is what an
honest grade exits with. Most also carry an ordinary mistake (models.py not
put back), so a forged pass would show.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

from testing.isolation.confinement import available

MARKER = "lesson-hostile-stray-process"
CONFINED = "files" in available()  # the worker cannot reach the grader's or the checkout's files

# Ending the interpreter "successfully" when it exits, as a forged pass.
ATEXIT_EXIT_0 = """
import atexit, os
atexit.register(lambda: os._exit(0))
"""
PATCH_PYTEST = """
try:
    import pytest, _pytest.runner, _pytest.terminal
    pytest.fail = lambda *args, **kwargs: None
    _pytest.terminal.TerminalReporter.summary_failures = lambda self: None
    _pytest.runner.pytest_runtest_makereport = lambda item, call: None
except Exception:
    pass
"""
PATCH_GRADER = """
import sys
try:
    from testing.lesson import checks
    checks.Result.passed = property(lambda self: True)
    checks.Result.earned = property(lambda self: self.checkpoint.points)
    checks.Report.full_marks = property(lambda self: True)
except Exception:
    pass
for name, module in list(sys.modules.items()):
    if name.endswith("conftest") or name.endswith("codegrade_test"):
        for attribute in dir(module):
            if attribute.startswith("test_"):
                setattr(module, attribute, lambda *args, **kwargs: None)
"""
# Finds the grading process's folder the way an attacker would: through /proc.
REWRITE_GRADER = """
import os, pathlib
try:
    grader = pathlib.Path(f"/proc/{os.getppid()}/cwd").resolve()
    for path in grader.rglob("codegrade_test.py"):
        path.write_text("def test_forged():\\n    pass\\n")
    for path in grader.rglob("conftest.py"):
        path.write_text("")
except OSError:
    pass
"""
REWRITE_CHECKOUT = """
import os, pathlib
def ancestors():
    pid = os.getppid()
    while pid > 1:
        yield pid
        pid = int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
try:
    arguments = [a for pid in ancestors() for a in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\\0")]
    for argument in arguments:
        if argument.startswith(b"--lesson-root="):
            models = pathlib.Path(argument.split(b"=", 1)[1].decode()) / "server" / "models.py"
            models.write_text(models.read_text().replace("location", "address"))
            (models.parent / "planted.py").write_text("planted = True\\n")
except OSError:
    pass
"""
ENDLESS = "while True:\n    pass"
SLEEP = "import time\ntime.sleep(10 ** 6)"
HOARD = "hoard = []\nwhile True:\n    hoard.append(bytearray(64 * 1024 * 1024))"
DIVE = "import sys\nsys.setrecursionlimit(10 ** 8)\n\ndef dive(depth):\n    return dive(depth + 1) + 1\n\ndive(0)"
FLOOD = "import sys\nfor _ in range(200):\n    print('x' * 100_000)\n    sys.stderr.write('y' * 100_000 + '\\n')"
JUNK_ON_EVERY_PIPE = """
import os
for fd in range(3, 64):
    try:
        os.write(fd, b"{'passed': true}\\n" * 10)
    except OSError:
        pass
"""
STRAY_PROCESS = """
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", {marker!r}])
"""


def marker_of(checkout_root):
    """The stray process's mark for one test's checkout (tests run side by side)."""
    return f"{MARKER}-{checkout_root.parent.name}"


@dataclass(frozen=True)
class Hostile:
    name: str
    change: Callable  # change(catalogue.Checkout)
    failing: Tuple[str, ...] = ()
    messages: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    exit_code: int = 1
    keep_local_database: bool = False
    needs_proc: bool = False  # finds the grader through Linux's /proc


def at_import(position, code):
    """Put `code` right after a revision's imports: it runs when the file is loaded."""
    def change(c):
        path = c.revision_file(position)
        source = path.read_text(encoding="utf-8")
        path.write_text(source.replace("import sqlalchemy as sa\n", "import sqlalchemy as sa\n" + code + "\n", 1),
                        encoding="utf-8")
    return change


def in_function(position, function, code):
    """Put `code` at the start of upgrade() or downgrade(), before its own lines."""
    def change(c):
        path = c.revision_file(position)
        source = path.read_text(encoding="utf-8")
        body = "\n".join("    " + line if line.strip() else "" for line in code.splitlines())
        path.write_text(source.replace(f"def {function}():\n", f"def {function}():\n{body}\n", 1), encoding="utf-8")
    return change


def leaves_a_process(c):
    in_function(1, "upgrade", STRAY_PROCESS.format(marker=marker_of(c.root)))(c)


def at_end_of_models(code):
    def change(c):
        path = c.server / "models.py"
        path.write_text(path.read_text(encoding="utf-8") + "\n" + code + "\n", encoding="utf-8")
    return change


def models_not_reverted(c):
    c.models(place="location")


def both(*changes):
    def change(c):
        for each in changes:
            each(c)
    return change


LATER_THAN_2 = ("rename_table", "rename_column", "downgrades", "models_match")

HOSTILE = (
    Hostile("os_exit_at_import", at_import(2, "import os\nos._exit(0)"),
            ("history", "create_department") + LATER_THAN_2,
            {"history": ("ended the process", "os._exit")}),
    Hostile("atexit_exit_0", both(at_import(1, ATEXIT_EXIT_0), models_not_reverted), ("models_match",),
            {"models_match": ("location",)}),
    Hostile("patches_pytest", both(at_import(1, PATCH_PYTEST), models_not_reverted), ("models_match",),
            {"models_match": ("location",)}),
    Hostile("patches_the_grader", both(at_import(3, PATCH_GRADER), models_not_reverted), ("models_match",),
            {"models_match": ("location",)}),
    # Where the worker is confined (tests/escapes.py), /proc shows it nothing of the grading
    # process: finding the grader fails in silence (the grade is the work's own), and reading
    # the ancestors' command lines is an attempt the grade names.
    Hostile("rewrites_the_grader", at_import(1, REWRITE_GRADER),
            ("history", "create_employees", "create_department") + LATER_THAN_2,
            {"history": ("changed files outside", "codegrade_test.py")}, needs_proc=True)
    if not CONFINED else Hostile("rewrites_the_grader", at_import(1, REWRITE_GRADER), exit_code=0, needs_proc=True),
    Hostile("rewrites_the_checkout", both(at_import(4, REWRITE_CHECKOUT), models_not_reverted),
            ("history", "rename_column", "downgrades", "models_match"),
            {"history": ("tried to read", "/proc/") if CONFINED else ("changed files outside", "models.py")},
            needs_proc=True),
    Hostile("endless_upgrade", in_function(3, "upgrade", ENDLESS),
            ("rename_table", "rename_column", "downgrades", "models_match"),
            {"rename_table": ("did not finish within the time limit",)}),
    Hostile("sleeping_downgrade", in_function(2, "downgrade", SLEEP), ("downgrades",),
            {"downgrades": ("downgrade()", "did not finish within the time limit")}),
    Hostile("endless_import", at_import(4, ENDLESS), ("history", "rename_column", "downgrades"),
            {"history": ("importing it did not finish",)}),
    Hostile("endless_models", at_end_of_models(ENDLESS), ("models_match",),
            {"models_match": ("models.py", "did not finish within the time limit")}),
    Hostile("sys_exit_in_upgrade", in_function(3, "upgrade", "import sys\nsys.exit(0)"),
            ("rename_table", "rename_column", "downgrades", "models_match"),
            {"rename_table": ("sys.exit(0)",)}),
    Hostile("keyboard_interrupt_in_upgrade", in_function(4, "upgrade", "raise KeyboardInterrupt"),
            ("rename_column", "downgrades"), {"rename_column": ("KeyboardInterrupt",)}),
    Hostile("exhausts_memory", in_function(2, "upgrade", HOARD), ("create_department",) + LATER_THAN_2,
            {"create_department": ("memory",)}),
    Hostile("deep_recursion", in_function(1, "upgrade", DIVE),
            ("create_employees", "create_department") + LATER_THAN_2,
            {"create_employees": ("Revision 1",)}),
    Hostile("floods_the_output", in_function(1, "upgrade", FLOOD), exit_code=0),
    Hostile("junk_on_every_pipe", both(at_import(2, JUNK_ON_EVERY_PIPE), models_not_reverted),
            ("history", "create_department") + LATER_THAN_2,
            {"history": ("cannot be loaded",)}),
    Hostile("leaves_a_process_behind", leaves_a_process, exit_code=0),
)
