"""`pipenv run page --screenshots DIR`: the README's pictures of the lesson page, redone
from the reference walkthrough (the three states the README shows, built for real)."""
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..student.page_tool import SCREENSHOTS, create_app, headless_chromium, photograph, serving
from .walkthrough import copy_starter, flask_environment, run_walkthrough


def lesson_states(folder, report=print):
    """Yield (state name, checkout) for the README's three pictures, built for real."""
    main = copy_starter(Path(folder) / "lesson")
    result = run_walkthrough(main, stop_after=2, report=report)
    yield "after-step-2", main
    unfixed = Path(folder) / "step-3-unfixed"
    shutil.copytree(main, unfixed)
    models = unfixed / "server" / "models.py"
    models.write_text(models.read_text(encoding="utf-8").replace(
        '__tablename__ = "department"', '__tablename__ = "departments"'), encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "flask", "db", "migrate", "-m", "rename department"],
        cwd=unfixed / "server", env=flask_environment(), check=True, capture_output=True, timeout=180,
    )
    yield "step-3-unfixed", unfixed
    run_walkthrough(main, resume=result, report=report)
    yield "after-step-5", main


def take_screenshots(dest):
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    with tempfile.TemporaryDirectory(prefix="lesson-screenshots-") as folder, headless_chromium() as browser:
        for state, checkout in lesson_states(folder):
            with serving(create_app(checkout)) as url:
                for name, (wanted, selector) in SCREENSHOTS.items():
                    if wanted == state:
                        photograph(browser, url + "/", selector, dest / name, state, checkout)
                        print(f"{dest / name}: {(dest / name).stat().st_size // 1024} KB")
    return 0
