"""A pool of long-lived worker processes for the cohort: each grades one submission
after another, forked from a parent that has already imported the grader.

    for number, outcome, detail, seconds in run_pool(items, function, jobs, timeout, work):
        ...

A worker that dies or overruns the deadline is one outcome, and is replaced;
every worker leads its own process group and is stopped whole (processes.py).
"""
import importlib
import multiprocessing
import os
import signal
import sys
import time
from multiprocessing.connection import wait
from pathlib import Path

from ..databases import leftovers
from ..isolation.processes import Child, stop_all

RECYCLE_AFTER = 200  # tasks; a fresh worker bounds whatever memory a long run accumulates
STOP_SECONDS = 10  # for a stopped worker to remove its grade's databases and folders


class _Worker:
    """A long-lived process that runs function(item) for each item it is sent."""

    def __init__(self, context, function, log_path):
        self.connection, child_end = context.Pipe()
        self.log_path = log_path
        # Not a daemon: each grade starts worker processes of its own (sandbox.py), which
        # multiprocessing allows only outside daemons. stop() ends it either way.
        self.process = context.Process(target=_worker_loop, args=(child_end, function, str(log_path)))
        self.process.start()
        self.child = Child(self.process)
        child_end.close()
        self.number, self.started, self.done = None, 0.0, 0

    def send(self, number, item):
        self.number, self.started = number, time.monotonic()
        self.connection.send(item)

    def stop(self, kill=False):
        """Ask it to finish (it ends after its item), or kill it with all it started."""
        if not kill:
            try:
                self.connection.send(None)
                self.child.ended(STOP_SECONDS)
            except OSError:
                pass
        self.child.kill()
        self.connection.close()

    def last_output(self):
        lines = Path(self.log_path).read_text(encoding="utf-8", errors="replace").strip().splitlines() \
            if Path(self.log_path).is_file() else []
        return f"; its last output: {lines[-1].strip()[:200]}" if lines else ""


def _worker_loop(connection, function, log_path):
    os.setpgrp()  # its own process group: stopping it also stops any process a grade started
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    leftovers.stop_on_signals()  # ... and its SIGTERM (stop_all) ends a grade that cleans up first
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)  # a submission's prints and warnings go to the log, not over the progress bar
    os.dup2(log, 2)
    while True:
        try:
            item = connection.recv()
        except EOFError:  # the coordinator is gone
            return
        if item is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        os.ftruncate(log, 0)  # the log holds the current item's output only
        os.lseek(log, 0, os.SEEK_SET)
        try:
            outcome = ("ok", function(item))
        except Exception as error:
            outcome = ("error", f"{type(error).__name__}: {error}")
        connection.send(outcome)


def run_pool(items, function, jobs, timeout, work, preload=()):
    """Yield (number, outcome, detail, seconds) for each item as `jobs` worker processes finish them.

    outcome is "ok" (detail: function's result), "error" (it raised), "crashed"
    (its worker died) or "timed_out" (it overran `timeout` seconds and its worker
    was killed). A lost worker is replaced; the run goes on. The modules named in
    preload are imported once, here, so that every worker starts with them.
    """
    if not items:
        return
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError:  # a module moved in another version: only slower, never wrong
            pass
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pending = list(reversed(range(len(items))))
    workers, started = [], 0
    try:
        while pending or any(worker.number is not None for worker in workers):
            for worker in workers:
                if worker.number is None and pending:
                    number = pending.pop()
                    worker.send(number, items[number])
            while pending and len(workers) < jobs:
                started += 1
                workers.append(_Worker(context, function, Path(work) / f"worker-{started}.log"))
                number = pending.pop()
                workers[-1].send(number, items[number])
            busy = [worker for worker in workers if worker.number is not None]
            deadline = min(worker.started for worker in busy) + timeout
            wait([worker.connection for worker in busy] + [worker.process.sentinel for worker in busy],
                 timeout=max(0.0, deadline - time.monotonic()))
            for worker in busy:
                finished = _collect(worker, timeout)
                if finished is None:
                    continue
                number, worker.number = worker.number, None
                yield (number,) + finished
                worker.done += 1
                if finished[0] in ("crashed", "timed_out") or worker.done >= RECYCLE_AFTER:
                    worker.stop(kill=finished[0] in ("crashed", "timed_out"))
                    workers.remove(worker)
    finally:  # interrupted or done: no worker outlives the run; a grade under way removes what it made
        stop_all([worker.child for worker in workers], STOP_SECONDS)
        for worker in workers:
            worker.connection.close()


def _collect(worker, timeout):
    """(outcome, detail, seconds) when the worker's current item is over, else None."""
    seconds = round(time.monotonic() - worker.started, 2)
    if worker.connection.poll():
        try:
            outcome, detail = worker.connection.recv()
            return outcome, detail, seconds
        except (EOFError, OSError):
            pass
    elif not worker.child.ended(0):
        if seconds <= timeout:
            return None
        worker.child.kill()
        return "timed_out", f"grading took longer than {timeout} s and was stopped", seconds
    code = worker.child.exit_code()
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    return "crashed", f"the grading process died ({how}){worker.last_output()}", seconds
