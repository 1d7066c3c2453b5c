"""Command line for the lesson tools, usable without the Flask app.

    pipenv run status        # same as `flask lesson status` in server/
    pipenv run review        # same as `flask lesson review` in server/
    pipenv run walkthrough   # the reference solution, step by step (maintainers)

Unlike `flask lesson ...`, this works even when app.py is broken.
"""
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the student's folders
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # server/

from testing.student.python_support import python_problem  # noqa: E402  (standard library only)


def main():
    problem = python_problem(sys.version_info)
    if problem:
        fatal, message = problem
        print(message, file=sys.stderr)
        if fatal:
            sys.exit(1)
    from testing.commands import tool_commands
    from testing.databases.leftovers import stop_on_signals

    stop_on_signals()  # SIGTERM and SIGHUP clean up like Ctrl-C: no database or folder left behind
    tool_commands(prog_name="pipenv run")


def command():
    """`lesson-tools` (server/testing/pyproject.toml): the tools of the checkout it is run in,
    the nearest folder up with a Pipfile, even when the virtualenv was installed from another."""
    here = Path.cwd()
    root = next((folder for folder in (here, *here.parents) if (folder / "Pipfile").is_file()), None)
    tools = root / "server" / "testing" / "tools.py" if root else None
    if tools and tools.is_file() and not tools.samefile(__file__):
        sys.exit(subprocess.call([sys.executable, str(tools), *sys.argv[1:]]))
    main()


if __name__ == "__main__":
    main()
