"""Shared fixtures of the project's own test suite.

Tests that take the `backend` fixture run once on SQLite and once on
PostgreSQL. PostgreSQL is required when CI=true or LESSON_REQUIRE_POSTGRES=1
(a missing server then fails the run); elsewhere its tests are skipped with a
clear reason and the summary says PostgreSQL was not tested.
LESSON_SKIP_POSTGRES=1 says on purpose that there is no server (CI runners
without a PostgreSQL service): those tests are skipped, saying why.

The suite runs on every core with pytest-xdist (`pipenv run selftest`); the
"per backend" summary counts the reports the workers send to the main process.
"""
import os
from collections import Counter

import pytest

from testing.databases.database import postgres_server_url, postgres_unreachable_reason

from .lesson_builds import drop_shared_databases, last_worker_out, prebuild_further, prebuild_reference

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config):
    # SIGTERM and SIGHUP end the run as Ctrl-C does, so the fixtures remove their
    # throw-away databases and folders (what a SIGKILL leaves, the next run sweeps).
    from testing.databases.leftovers import stop_on_signals

    stop_on_signals()


def postgres_required():
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("LESSON_REQUIRE_POSTGRES") == "1"


def postgres_left_out():
    return os.environ.get("LESSON_SKIP_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres_problem():
    """None when PostgreSQL can be used, else why not."""
    return postgres_unreachable_reason()


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param == "postgresql" and postgres_left_out():
        pytest.skip("PostgreSQL not tested: LESSON_SKIP_POSTGRES=1 (no PostgreSQL server on this machine)")
    postgres_problem = request.getfixturevalue("postgres_problem") if request.param == "postgresql" else None
    if postgres_problem:
        message = f"PostgreSQL at {postgres_server_url()} cannot be reached ({postgres_problem})"
        if postgres_required():
            pytest.fail(message + "; it is required when CI=true or LESSON_REQUIRE_POSTGRES=1")
        pytest.skip("PostgreSQL not tested: " + message)
    return request.param


_outcomes = Counter()  # (backend, outcome) -> number of tests


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    report.lesson_backend = getattr(item, "callspec", None) and item.callspec.params.get("backend")


def pytest_runtest_logreport(report):
    backend = getattr(report, "lesson_backend", None)
    # One count per test: its call, or the setup when that failed or skipped.
    if backend and (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
        _outcomes[(backend, report.outcome)] += 1


def pytest_terminal_summary(terminalreporter):
    if not _outcomes:
        return
    terminalreporter.section("per backend")
    for backend in BACKENDS:
        counts = {outcome: _outcomes[(backend, outcome)] for outcome in ("passed", "failed", "skipped")}
        terminalreporter.write_line(
            f"{backend}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        )
    if _outcomes[("postgresql", "passed")] == 0 and _outcomes[("postgresql", "failed")] == 0:
        terminalreporter.write_line("PostgreSQL was NOT tested: only SQLite results above.", yellow=True, bold=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    """Under xdist, the first two workers each build one backend's reference (and its
    optional steps, when collected) before their first test, side by side, instead of
    one waiting while the other builds both."""
    # workerinput: a real xdist worker (a subprocess of a test inherits PYTEST_XDIST_WORKER, not this).
    worker = getattr(session.config, "workerinput", None)
    if worker and worker["workercount"] >= 2 and worker["workerid"] in ("gw0", "gw1") \
            and not session.config.option.collectonly:
        backend = BACKENDS[int(worker["workerid"][2:])]
        if backend in _backends_of_tests(session.items, ("reference_solution", "make_submission", "copy_reference")) \
                and _usable(backend):
            prebuild_reference(session.config, backend)
        if backend in _backends_of_tests(session.items, ("further_reference", "legacy_reference")) and _usable(backend):
            prebuild_further(session.config, backend)
    return (yield)


def _backends_of_tests(items, uses):
    """The backends of the collected tests whose module uses one of the builds named."""
    return {item.callspec.params.get("backend") for item in items
            if getattr(item, "callspec", None) and any(name in vars(item.module) for name in uses)}


def _usable(backend):
    return backend == "sqlite" or not (postgres_left_out() or postgres_unreachable_reason())


def pytest_unconfigure(config):
    worker = getattr(config, "workerinput", None)
    if worker is None or last_worker_out(config, worker["workercount"]):  # after every test of the run
        drop_shared_databases(config)
