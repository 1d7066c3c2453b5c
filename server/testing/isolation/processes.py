"""Child processes with a time limit and a clean kill: the one way the grader runs them.

    finished = run(command, timeout=60, cwd=folder, env=environment)
    finished.timed_out, finished.code, finished.stdout, finished.stderr   # output bounded

    child = Child(process)      # a subprocess.Popen or multiprocessing.Process in its own group
    child.ended(timeout)        # has it exited? (it is not reaped yet)
    child.kill()                # SIGKILL to it, all below it and its group; then reaped
    stop_all(children, grace)   # SIGTERM to each, SIGKILL to what is left after `grace` seconds

Every child runs in its own process group (`in_own_group()` for a command, `os.setpgrp()`
in a forked one), so killing the group ends what it started. On Linux a kill also ends
every process below the child, found in /proc, so a double-forked daemon goes too when
the child is its subreaper. A child is killed before it is reaped: until then its process
id cannot be given to another process, so no signal reaches a stranger.
"""
import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for_sentinels
from typing import Optional

REAP_SECONDS = 5  # for a killed process to be reaped
MAX_OUTPUT = 1024 * 1024  # characters kept of each output stream: the last ones, where the error is


def in_own_group():
    """subprocess.Popen's arguments for a command in a process group of its own."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


class Child:
    """A subprocess.Popen or multiprocessing.Process that leads its own process group."""

    def __init__(self, process):
        self.process = process
        self._popen = isinstance(process, subprocess.Popen)

    @property
    def pid(self):
        return self.process.pid

    def _reaped(self):
        return (self.process.returncode if self._popen else self.process.exitcode) is not None

    def ended(self, timeout=None):
        """Whether the process has exited, waiting up to timeout seconds; it stays unreaped where
        the system allows (a Process's sentinel, a Linux pidfd) so that kill() is still safe."""
        if self._reaped():
            return True
        if not self._popen:
            return bool(wait_for_sentinels([self.process.sentinel], timeout))
        if hasattr(os, "pidfd_open"):
            try:
                descriptor = os.pidfd_open(self.pid)
            except OSError:  # already reaped elsewhere, or a kernel without pidfds
                return self.process.poll() is not None
            try:
                return bool(select.select([descriptor], [], [], timeout)[0])
            finally:
                os.close(descriptor)
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def exit_code(self, timeout=None):
        """The exit code (negative: the signal that ended it) once it has ended, else None."""
        if not self.ended(timeout):
            return None
        if not self._reaped() and hasattr(os, "waitid"):
            # Read it without reaping. A Process's sentinel can be ready a moment before the
            # process may be waited for (its files close first), so look again for a while.
            deadline = time.monotonic() + REAP_SECONDS
            while True:
                try:
                    status = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:  # reaped already
                    break
                if status is not None:
                    return status.si_status if status.si_code == os.CLD_EXITED else -status.si_status
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
        self._reap(REAP_SECONDS)
        return self.process.returncode if self._popen else self.process.exitcode

    def terminate(self):
        """Ask it to stop (SIGTERM to the process alone: its own handler ends what it started)."""
        if not self._reaped():
            with contextlib.suppress(OSError):
                self.process.terminate()

    def kill(self):
        """End it, everything below it and its process group at once, then reap it. The group
        is killed even after the process has ended: what it started may still be running."""
        if not self._reaped():
            end_process_tree(self.pid)
        for end in (lambda: os.killpg(self.pid, signal.SIGKILL), self.process.kill):
            with contextlib.suppress(OSError, AttributeError, ValueError):  # gone already; no killpg on Windows
                end()
        self._reap(REAP_SECONDS)

    def _reap(self, timeout):
        if self._popen:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        else:
            self.process.join(timeout)


def stop_all(children, grace):
    """Stop children together: each is asked with SIGTERM (to clean up what it made), and
    whatever has not ended after `grace` seconds is killed. None outlives this call."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        child.ended(max(0.0, deadline - time.monotonic()))
        child.kill()


@dataclass
class Finished:
    code: Optional[int]  # None when it overran its time limit and was killed
    stdout: str  # the last MAX_OUTPUT characters of each
    stderr: str
    timed_out: bool = False


def run(command, timeout, cwd=None, env=None, max_output=MAX_OUTPUT):
    """Run a command in its own process group with no input; kill it whole once it has
    run `timeout` seconds, and whatever it left in its group when it ends by itself.
    Raises OSError when it cannot be started."""
    popen = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, **in_own_group())
    child = Child(popen)
    tails = [_Tail(popen.stdout, max_output), _Tail(popen.stderr, max_output)]
    try:
        timed_out = not child.ended(timeout)
        code = None if timed_out else child.exit_code()
    finally:  # Ctrl-C or SIGTERM while waiting: the child goes too
        child.kill()
    stdout, stderr = (tail.text() for tail in tails)
    return Finished(code, stdout, stderr, timed_out)


class _Tail:
    """Reads a stream to its end in a thread, keeping its last `limit` characters."""

    def __init__(self, stream, limit):
        self.limit, self.kept = limit, ""
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        with stream:
            for block in iter(lambda: stream.read(1 << 16), b""):
                self.kept = (self.kept + block.decode("utf-8", "replace"))[-self.limit:]

    def text(self):
        self.thread.join(REAP_SECONDS)  # a pipe held open by nothing of ours no more: read to its end
        return self.kept


# --- the processes below a process (Linux) ------------------------------------------------

def end_process_tree(pid):
    """End a process and every process below it (Linux). Each is stopped first, so that none
    can start another while they are being listed; a subreaper's orphans are below it too.
    Elsewhere this does nothing: the process group is killed instead."""
    if not sys.platform.startswith("linux"):
        return
    stopped = []
    for _ in range(1000):  # until a listing finds nothing new
        found = [p for p in [pid] + _descendants(pid) if p not in stopped]
        if not found:
            break
        for process in found:
            with contextlib.suppress(OSError):
                os.kill(process, signal.SIGSTOP)
            stopped.append(process)
    for process in stopped:
        with contextlib.suppress(OSError):
            os.kill(process, signal.SIGKILL)


def children_of(pid):
    """The process ids of a process's children (Linux), [] where they cannot be listed."""
    children = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as listing:
                children += [int(child) for child in listing.read().split()]
    except (OSError, ValueError):
        pass
    return children


def parent_of(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat_file:
            return int(stat_file.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _descendants(pid):
    found, waiting = [], [pid]
    while waiting:
        for child in children_of(waiting.pop()):
            if child not in found:
                found.append(child)
                waiting.append(child)
    return found
