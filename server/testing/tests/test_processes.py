"""processes.py: a child with a time limit ends whole, leaves no zombie, and its output is bounded."""
import multiprocessing
import os
import signal
import sys
import time

import pytest

from testing.isolation import processes

pytestmark = pytest.mark.skipif(os.name != "posix", reason="process groups and /proc")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def ends_soon(pid):
    """A SIGKILLed process takes a moment to die, longer on a busy machine."""
    deadline = time.monotonic() + processes.REAP_SECONDS
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not alive(pid)


def python(code):
    return [sys.executable, "-c", code]


def test_a_command_gives_its_exit_code_and_output():
    finished = processes.run(python("import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"), 30)
    assert (finished.code, finished.stdout, finished.stderr, finished.timed_out) == (3, "out\n", "err\n", False)


def test_a_command_that_overruns_is_killed_with_what_it_started(tmp_path):
    pid_file = tmp_path / "grandchild"
    code = ("import subprocess, sys, time; "
            f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(600)")
    started = time.monotonic()
    finished = processes.run(python(code), 3)
    assert finished.timed_out and finished.code is None
    assert time.monotonic() - started < 3 + processes.REAP_SECONDS
    assert ends_soon(int(pid_file.read_text()))


def test_what_a_command_leaves_in_its_group_is_ended_with_it(tmp_path):
    pid_file = tmp_path / "left"
    code = ("import subprocess, sys; "
            f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid))")
    finished = processes.run(python(code), 30)
    assert finished.code == 0 and not finished.timed_out
    assert ends_soon(int(pid_file.read_text()))


def test_output_is_kept_to_its_last_characters():
    finished = processes.run(python("import sys; sys.stdout.write('a' * 3_000_000 + 'the end')"), 30, max_output=100)
    assert finished.code == 0 and len(finished.stdout) == 100 and finished.stdout.endswith("the end")


def sleep_in_own_group(ready):
    os.setpgrp()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the test run's own handler
    ready.set()
    time.sleep(600)


def test_stop_all_ends_forked_children_and_reaps_them():
    context = multiprocessing.get_context("fork")
    children = []
    for _ in range(2):
        ready = context.Event()
        process = context.Process(target=sleep_in_own_group, args=(ready,))
        process.start()
        assert ready.wait(30)  # its own handler is in place before it is asked to stop
        children.append(processes.Child(process))
    started = time.monotonic()
    processes.stop_all(children, grace=2)
    assert time.monotonic() - started < 2 + processes.REAP_SECONDS
    assert [child.process.exitcode for child in children] == [-15, -15]  # SIGTERM was enough
    assert not any(alive(child.pid) for child in children)
