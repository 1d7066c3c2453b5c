"""The lesson page in a real browser: Debian's chromium, headless, driven by Playwright.

At each step of the reference walkthrough (and after step 3's `flask db
migrate` before the script is fixed) the page is served on 127.0.0.1 and
loaded in chromium: the checklist, the tables and their rows, the current
revision in the graph, the red loss of the unfixed step-3 script, and no
console error. Every view is also checked for accessibility: axe-core (the
engine of Lighthouse's audit) finds no violation of any impact, at a desktop
width and at 375 px, where the page itself must not scroll sideways. One test
goes through the page with the Tab key alone. The cohort report (the sample in
docs/cohort-sample and one written now) gets the same checks. Screenshots, at
both widths, are kept in test-artifacts/page/ (git-ignored).
The README's pictures (docs/*.png) are checked against the page too: the
visible text stored beside each one must be what the page shows now.

Chromium and Playwright are required when LESSON_REQUIRE_BROWSER=1 (.ci/run
sets it); elsewhere a missing browser skips these tests with the reason.
"""
import difflib
import json
import os
from pathlib import Path

import pytest

from testing.instructor import cohort, cohort_report
from testing.student.page_tool import (
    CHROMIUM, SCREENSHOT_COMMAND, SCREENSHOTS, create_app, headless_chromium, serving, text_file_of, visible_text,
)

from .page_states import lesson_copy, unfixed_step_3

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("LESSON_ARTIFACTS") or REPO / "test-artifacts") / "page"
BLUE, RED = "rgb(31, 111, 235)", "rgb(183, 28, 28)"
PHONE = {"width": 375, "height": 812}  # an iPhone's width in CSS pixels, the narrowest common one


def browser_problem():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (it is a dev package for Python 3.10 and newer)"
    try:
        import axe_playwright_python  # noqa: F401
    except ImportError:
        return "axe-playwright-python is not installed (a dev package: pipenv install --dev)"
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} not found (apt-get install -y chromium, or set LESSON_CHROMIUM)"
    return None


def require_browser():
    """Skip without a browser, or fail where one is required (LESSON_REQUIRE_BROWSER=1, as in CI)."""
    problem = browser_problem()
    if problem:
        if os.environ.get("LESSON_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no browser for the page tests: {problem}; it is required when LESSON_REQUIRE_BROWSER=1")
        pytest.skip(f"page not tested in a browser: {problem}")


@pytest.fixture(scope="module")
def browser():
    require_browser()
    with headless_chromium() as context:
        yield context


@pytest.fixture(autouse=True)
def no_database_url(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)


def accessibility_violations(page):
    """axe-core's violations of every impact on the page as it is now, one line per element."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page).response
    return [
        f"{violation['id']} ({violation['impact']}) {' '.join(map(str, node['target']))}: "
        f"{node['failureSummary']} ({node['html'][:120]})"
        for violation in results["violations"] for node in violation["nodes"]
    ]


def sideways_overflow(page):
    """The page's width past the window, and the elements that stick out of it."""
    return page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        if (document.documentElement.scrollWidth <= width) return [];
        const out = [`the page is ${document.documentElement.scrollWidth} px wide in a ${width} px window`];
        const scrolls = element => ["auto", "scroll"].includes(getComputedStyle(element).overflowX);
        const inScrollBox = element => element && (scrolls(element) || inScrollBox(element.parentElement));
        for (const element of document.body.querySelectorAll("*")) {
            const box = element.getBoundingClientRect();
            if (box.right > width + 1 && element.parentElement.getBoundingClientRect().right <= width + 1
                && !inScrollBox(element.parentElement))
                out.push(`${element.tagName.toLowerCase()}.${element.getAttribute("class") || ""} reaches ${Math.round(box.right)} px`);
        }
        return out;
    }""")


class Visit:
    """One page load, with everything the browser said about it."""

    def __init__(self, browser, url, shot):
        self.page = browser.new_page()
        self.console = []
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        self.page.on("requestfailed", lambda request: self.console.append(f"requestfailed: {request.url}"))
        response = self.page.goto(url, wait_until="load")
        assert url.startswith("file:") or response.status == 200, response.status
        self.check_accessible(shot)

    def check_accessible(self, shot):
        """No axe-core violation at the desktop width and at a phone's, and at the
        phone's width no sideways scrolling of the whole page; screenshots of both."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        problems = accessibility_violations(self.page)
        desktop = self.page.viewport_size
        self.page.set_viewport_size(PHONE)
        try:
            self.page.screenshot(path=str(ARTIFACTS / f"{shot}-375px.png"), full_page=True)
            problems += [f"at 375 px: {problem}" for problem in sideways_overflow(self.page) + accessibility_violations(self.page)]
        finally:
            self.page.set_viewport_size(desktop)
        assert problems == [], f"{shot}:\n" + "\n".join(problems)

    def errors(self):
        return [line for line in self.console if not line.startswith(("log:", "info:", "debug:"))]

    def checked_steps(self):
        return [int(s) for s in self.page.locator("li[data-done=yes]").evaluate_all("items => items.map(i => i.dataset.step)")]

    def current_revisions(self):
        return self.page.locator("g.node[data-current=yes]").evaluate_all("nodes => nodes.map(n => n.dataset.revision)")

    def table_rows(self, table):
        return int(self.page.locator(f".db-table[data-table={table}]").get_attribute("data-rows"))

    def graph_as_drawn(self):
        """[(revision, the state written under its box)] of the revision graph, oldest first."""
        assert self.page.locator("svg#graph").get_attribute("aria-hidden") == "true"
        return [tuple(node) for node in self.page.locator("g.node").evaluate_all(
            "nodes => nodes.map(n => [n.dataset.revision, (n.querySelector('.node-status') || {}).textContent || ''])")]

    def graph_in_words(self):
        """[(revision, state)] from the table that tells the graph in words."""
        return [tuple(row) for row in self.page.locator("#graph-table tr[data-revision]").evaluate_all(
            "rows => rows.map(r => [r.dataset.revision, r.querySelector('.graph-state').textContent.trim()])")]

    def tab_through(self):
        """Go through the page with the Tab key alone. Returns (the elements that can take
        the keyboard's focus, in the document's order; those Tab reached, in its order),
        each with where it is and how its focus shows."""
        tabbable = self.page.evaluate("""() => {
            const all = document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]');
            const shown = [...all].filter(e => e.tabIndex >= 0 && !e.disabled && e.getClientRects().length);
            shown.forEach((e, i) => e.dataset.tabOrder = i);
            return shown.map(e => e.outerHTML.slice(0, 80));
        }""")
        reached = []
        for _ in range(len(tabbable) + 2):
            self.page.keyboard.press("Tab")
            focused = self.page.evaluate("""() => {
                const e = document.activeElement, box = e.getBoundingClientRect(), style = getComputedStyle(e);
                return {order: e.dataset ? e.dataset.tabOrder : undefined, html: e.outerHTML.slice(0, 80),
                        top: box.top + window.scrollY, left: box.left,
                        seen: box.bottom > 0 && box.top < window.innerHeight && box.width > 0,
                        outline: style.outlineStyle === "none" ? 0 : parseFloat(style.outlineWidth)};
            }""")
            if focused["order"] is None and reached:
                break  # back out of the page: the address bar's turn
            reached.append(focused)
        return tabbable, reached

    def close(self):
        self.page.close()


EXPECTED = {
    # step: (checked steps, tables and their rows, the revision the database is at)
    1: ([1], {"employees": 2}, 0),
    2: ([1, 2], {"employees": 2, "department": 2}, 1),
    3: ([1, 2, 3], {"employees": 2, "departments": 2}, 2),
    4: ([1, 2, 3, 4], {"employees": 2, "departments": 2}, 3),
    5: ([1, 2, 3, 4, 5], {"employees": 2, "departments": 2}, 2),
}


@pytest.mark.parametrize("step", sorted(EXPECTED))
def test_the_page_at_each_step(request, browser, tmp_path, step):
    copy = lesson_copy(request, "sqlite", tmp_path / "c", step=step)
    checked, tables, current = EXPECTED[step]
    with serving(create_app(copy.checkout)) as url:
        page = Visit(browser, url + "/", f"step-{step}")
        try:
            assert page.checked_steps() == checked
            for table, rows in tables.items():
                assert page.table_rows(table) == rows
            assert page.page.locator(".db-table").count() == len(tables)
            assert page.page.get_by_text("Kai Uri").first.is_visible()
            revision = copy.result.revisions[current]
            assert page.current_revisions() == [revision]
            stroke = page.page.locator(f"g.node[data-revision='{revision}'] rect").get_attribute("stroke")
            assert stroke == "#1f6feb"
            assert page.page.locator("#revision .current-revision").inner_text() == revision
            # The graph is a picture for the eye; its table says the same to everyone.
            assert page.graph_in_words() == page.graph_as_drawn()
            assert page.graph_in_words()[current] == (revision, "your database")
            assert page.page.locator(".replay-step .loss").count() == 0
            # Follow the link to all the rows of employees.
            page.page.locator(".db-table[data-table=employees] a").click()
            page.page.wait_for_url("**/tables/employees")
            assert page.page.locator("table.rows tr").count() == 3
            page.check_accessible(f"step-{step}-table-employees")
            assert page.errors() == []
        finally:
            page.close()


def test_an_unfixed_step_3_shows_the_lost_rows_in_red(request, browser, backend, tmp_path):
    copy, new_revision = unfixed_step_3(request, backend, tmp_path / "c")
    with serving(create_app(copy.checkout)) as url:
        page = Visit(browser, url + "/", f"step-3-unfixed-{backend}")
        try:
            assert page.checked_steps() == [1, 2]
            assert page.current_revisions() == [copy.result.revisions[1]]
            assert "not applied" in page.page.locator(f"g.node[data-revision='{new_revision}'] .node-status").text_content()
            loss = page.page.locator("#upgrade-3 .loss").first
            assert "the 2 rows of `department` are lost" in loss.inner_text()
            assert loss.evaluate("element => getComputedStyle(element).color") == RED
            fix = page.page.locator("#upgrade-3 .next pre").first.inner_text()
            assert "op.rename_table('department', 'departments')" in fix
            risk = page.page.locator(f"[id='rev-{new_revision}_rename_department.py'] .risk")
            assert "Table rename written as drop + create" in risk.inner_text()
            assert page.errors() == []
        finally:
            page.close()


def test_the_replay_view_and_table_paging(request, browser, tmp_path):
    copy = lesson_copy(request, "sqlite", tmp_path / "c", step=5)
    with serving(create_app(copy.checkout)) as url:
        page = Visit(browser, url + "/replay", "replay-step-5")
        try:
            steps = page.page.locator(".replay-step")
            assert steps.count() == 8  # four upgrades, four downgrades
            assert page.page.locator("#upgrade-3").get_by_text("keeps every row").is_visible()
            assert page.errors() == []
        finally:
            page.close()


def test_the_keyboard_alone_reaches_every_link_in_reading_order(request, browser, tmp_path):
    copy, _ = unfixed_step_3(request, "sqlite", tmp_path / "c")
    with serving(create_app(copy.checkout)) as url:
        page = Visit(browser, url + "/", "keyboard-step-3-unfixed")
        try:
            tabbable, reached = page.tab_through()
            assert len(tabbable) >= 8, tabbable  # the views, the tables, the graph's revisions
            assert [int(f["order"]) for f in reached] == list(range(len(tabbable))), reached
            for before, after in zip(reached, reached[1:]):  # top to bottom, left to right on a line
                assert after["top"] > before["top"] - 4 or after["left"] > before["left"], (before, after)
            for focused in reached:
                assert focused["seen"], f"focused but out of sight: {focused}"
                assert focused["outline"] >= 2, f"no visible focus: {focused}"
            assert page.errors() == []
        finally:
            page.close()


SAMPLE = REPO / "docs" / "cohort-sample"


@pytest.mark.parametrize("which", ["sample", "written-now"])
def test_the_cohort_report_is_accessible_and_tells_its_charts_in_tables(browser, tmp_path, which):
    book = json.loads((SAMPLE / "gradebook.json").read_text(encoding="utf-8"))
    report = SAMPLE / "report.html"
    if which == "written-now":  # by the code as it is now
        cohort.write_gradebook(book, tmp_path / "out")
        report = tmp_path / "out" / "report.html"
    page = Visit(browser, report.as_uri(), f"cohort-report-{which}")
    try:
        assert page.page.locator("svg[aria-hidden=true]").count() == 2
        bands = page.page.locator("#score-table tr").evaluate_all(
            "rows => rows.map(r => [...r.children].slice(1).map(c => c.textContent))")
        assert list(zip(*bands)) == [(band, str(count)) for band, count in cohort_report.score_bands(book)]
        rates = page.page.locator("#pass-rate-table tr").evaluate_all(
            "rows => rows.slice(1).map(r => [r.children[0].textContent, r.children[2].textContent])")
        expected = cohort_report.pass_rates(book)
        assert [rate[0] for rate in rates] == [checkpoint["id"] for checkpoint, _, _ in expected]
        for (_, shown), (_, passed, applicable) in zip(rates, expected):
            assert shown.startswith(f"{passed}/{applicable} (") if applicable else shown == "not applicable"
        assert page.errors() == []
    finally:
        page.close()


def test_a_students_feedback_page_is_accessible(browser):
    page = Visit(browser, (SAMPLE / "feedback" / "student-011.html").as_uri(), "cohort-feedback-student-011")
    try:
        assert page.page.locator("main h1").count() == 1
        assert page.errors() == []
    finally:
        page.close()


def test_the_optional_steps_on_the_page_and_in_the_cohort_report(request, browser, tmp_path):
    """Steps 6-9 done with one mistake: the page's Going further block opens the message and fix
    of the one not right yet; the cohort report's section tells the same in its tables; both accessible."""
    from testing.engine.checks import grade
    from testing.instructor.cohort_gradebook import record_of
    from testing.lesson.checkpoints import LESSON

    from .test_going_further import _empty_default, checkout_of

    root = checkout_of(request, "sqlite", tmp_path / "c")
    _empty_default(root)
    with serving(create_app(root)) as url:
        page = Visit(browser, url + "/", "going-further")
        try:
            block = page.page.locator("#going-further")
            assert block.locator(".optional-checkpoint").count() == len(LESSON.further.checkpoints)
            failed = block.locator(".optional-checkpoint[data-status=failed]")
            assert failed.count() == 1 and not failed.locator("pre").is_visible()
            failed.locator("summary").click()
            assert "WHERE email IS NULL" in failed.locator("pre").inner_text()  # its fix, now shown
            page.check_accessible("going-further-open")
            assert page.errors() == []
        finally:
            page.close()

    # The sample class, two more of whom also did the optional steps as graded here.
    book = json.loads((SAMPLE / "gradebook.json").read_text(encoding="utf-8"))
    further = record_of(grade(root, local_database=False))["further"]
    for row in book["rows"][:2]:
        row["further"] = further
    cohort.write_gradebook(book, tmp_path / "out")
    page = Visit(browser, (tmp_path / "out" / "report.html").as_uri(), "cohort-report-going-further")
    try:
        rates = page.page.locator("#further-pass-rate-table tr").evaluate_all(
            "rows => rows.slice(1).map(r => [r.children[0].textContent, r.children[2].textContent])")
        assert rates == [[checkpoint["id"], f"{passed}/{began}"]
                         for checkpoint, passed, began in cohort_report.further_pass_rates(book)]
        assert page.page.locator("#further-students tr").count() == 1 + len(cohort_report.further_rows(book))
        assert page.errors() == []
    finally:
        page.close()


# --- the README's pictures, kept true -----------------------------------------------------------

DOCS = REPO / "docs"
PICTURE_STATES = {
    "after-step-2": lambda request, dest: lesson_copy(request, "sqlite", dest, step=2).checkout,
    "step-3-unfixed": lambda request, dest: unfixed_step_3(request, "sqlite", dest)[0].checkout,
    "after-step-5": lambda request, dest: lesson_copy(request, "sqlite", dest, step=5).checkout,
}


@pytest.mark.parametrize("state", sorted(PICTURE_STATES))
def test_the_readme_pictures_show_the_page_as_it_reads_now(request, browser, tmp_path, state):
    """Each picture's visible text, kept beside it by the tool that took it, is what
    the page shows in that state now: else the picture is stale."""
    checkout = PICTURE_STATES[state](request, tmp_path / "c")
    pictures = {name: selector for name, (wanted, selector) in SCREENSHOTS.items() if wanted == state}
    assert pictures
    with serving(create_app(checkout)) as url:
        for name, selector in pictures.items():
            page = browser.new_page()
            try:
                page.goto(url + "/", wait_until="load")
                now = visible_text(page, selector, checkout)
            finally:
                page.close()
            stored_path = DOCS / text_file_of(name)
            stored = stored_path.read_text(encoding="utf-8") if stored_path.is_file() else ""
            difference = "".join(difflib.unified_diff(
                stored.splitlines(True), now.splitlines(True), f"docs/{stored_path.name}", "the page now", n=1))
            assert now == stored, (f"docs/{name} is stale: the page reads differently now. Redo the pictures "
                                   f"with `{SCREENSHOT_COMMAND}` and commit them.\n{difference}")
