"""`pipenv run page`: the lesson page without app.py, and the README's screenshots.

    pipenv run page                       # serve this checkout at http://localhost:5555, open a browser
    pipenv run page --root PATH           # another checkout (instructors); never writes to it
    pipenv run page --screenshots docs    # redo the README's pictures of the page

The screenshots come from a real lesson: the walkthrough does the README in a
scratch copy (real `flask db` commands), and Debian's chromium, headless,
photographs the page after step 2, after step 3's `flask db migrate` before
the script is fixed, and after step 5. Beside each picture (NAME.png) the
same run keeps the visible text of the part photographed (NAME.txt), with
revision ids, dates, timings and the checkout's folder as placeholders: the
project's tests render the page in each state again and compare its text with
it, so a picture that no longer shows the page is noticed.
"""
import contextlib
import os
import re
import struct
import sys
import tempfile
import threading
import webbrowser
import zlib
from pathlib import Path

from flask import Flask

from .page import lesson_page

CHROMIUM = os.environ.get("LESSON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT_TAG = "lesson-page-screenshot"  # a PNG text chunk: made by this tool
SCREENSHOT_COMMAND = "pipenv run page --screenshots docs"
SCREENSHOTS = {
    # file name: (lesson state, the part of the page shown)
    "page-after-step-2.png": ("after-step-2", "#database"),
    "page-step-3-unfixed.png": ("step-3-unfixed", "#migrations"),
    "page-step-3-unfixed-replay.png": ("step-3-unfixed", "#upgrade-3"),
    "page-after-step-5.png": ("after-step-5", "#where, #database, #graph"),
}


def create_app(root=None, database_url=None):
    """A Flask app that serves only the lesson page, for `pipenv run page` and tests."""
    app = Flask("lesson_page_tool")
    app.config["LESSON_ROOT"] = str(root) if root else None
    app.config["LESSON_DATABASE_URL"] = database_url
    app.register_blueprint(lesson_page)
    return app


@contextlib.contextmanager
def serving(app, host="127.0.0.1", port=0):
    """Serve the app from a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@contextlib.contextmanager
def headless_chromium():
    """A Playwright browser on Debian's chromium (never a downloaded one), with a fresh profile."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        raise RuntimeError(f"{CHROMIUM} not found: install it with `apt-get install -y chromium`")
    with tempfile.TemporaryDirectory(prefix="lesson-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1100, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def tag_png(data, text):
    """PNG bytes with a tEXt chunk (keyword SCREENSHOT_TAG) added before IEND."""
    payload = SCREENSHOT_TAG.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = struct.pack(">I", len(payload)) + b"tEXt" + payload
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + payload) & 0xFFFFFFFF)
    end = data.rindex(b"IEND") - 4
    return data[:end] + chunk + data[end:]


def png_tag(data):
    """The text of this tool's tEXt chunk, or None."""
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"tEXt" and body.startswith(SCREENSHOT_TAG.encode() + b"\0"):
            return body.split(b"\0", 1)[1].decode("latin-1")
        position += 12 + length
    return None


def photograph(context, url, selector, path, state, checkout):
    """The picture of `selector` (NAME.png) and its visible text (NAME.txt)."""
    page = context.new_page()
    try:
        page.goto(url, wait_until="load")
        image = page.locator(selector).first.screenshot() if "," not in selector else _sections(page, selector)
        Path(path).write_bytes(tag_png(image, f"{state} {selector}"))
        (Path(path).parent / text_file_of(Path(path).name)).write_text(
            visible_text(page, selector, checkout), encoding="utf-8")
    finally:
        page.close()


# An element's text as laid out on screen; an SVG drawing (the revision graph) has
# no layout text, so its labels are taken one per line.
READABLE_TEXT = """element => element instanceof HTMLElement ? element.innerText
    : Array.from(element.querySelectorAll("text"), label => label.textContent.trim()).filter(Boolean).join("\\n")"""


def text_file_of(picture):
    """The name of the file that keeps a picture's visible text."""
    return Path(picture).with_suffix(".txt").name


def visible_text(page, selector, checkout):
    """What a reader sees in the parts of the page `selector` names, as the browser
    lays it out, with what differs between two builds of the same state (revision
    ids, dates, timings, the checkout's folder) written as placeholders."""
    text = "\n".join(page.locator(part.strip()).first.evaluate(READABLE_TEXT) for part in selector.split(","))
    for number, revision in enumerate(_chain(Path(checkout) / "server" / "migrations" / "versions"), start=1):
        text = text.replace(revision, f"<rev{number}>")
    text = text.replace(str(Path(checkout).resolve()), "<root>").replace(str(checkout), "<root>")
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?", "<date>", text)
    text = re.sub(r"\b\d+\.\d+ s\b", "<seconds> s", text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"


def _chain(versions):
    """The revision ids of the lesson's own scripts, from the first down, read from their text."""
    follows = {}
    for path in versions.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = re.search(r"^revision\s*=\s*['\"](\w+)['\"]", source, re.M)
        down = re.search(r"^down_revision\s*=\s*['\"](\w+)['\"]", source, re.M)
        if revision:
            follows[down.group(1) if down else None] = revision.group(1)
    chain, current = [], follows.get(None)
    while current and current not in chain:
        chain.append(current)
        current = follows.get(current)
    return chain


def _sections(page, selector):
    """One picture from the top of the first element to the bottom of the last."""
    boxes = [page.locator(part.strip()).first.bounding_box() for part in selector.split(",")]
    top = min(box["y"] for box in boxes)
    bottom = max(box["y"] + box["height"] for box in boxes)
    left = min(box["x"] for box in boxes)
    width = max(box["x"] + box["width"] for box in boxes) - left
    return page.screenshot(clip={"x": left, "y": top, "width": width, "height": min(bottom - top, 1800)}, full_page=True)


def has_desktop():
    """A graphical browser can open (on Linux without a display, webbrowser
    would start a text browser in this very terminal)."""
    if os.environ.get("CI", "").lower() == "true":
        return False
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(root=None, port=5555, open_browser=True):
    app = create_app(root)
    url = f"http://localhost:{port}/"
    print(f"The lesson page: {url}  (Ctrl+C stops it)")
    if open_browser and has_desktop():
        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    app.run(host="127.0.0.1", port=port)
    return 0
