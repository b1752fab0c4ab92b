"""The shared server helper's teardown (tests/e2e/conftest.py ``stop_group``): a server
that ignores SIGTERM, and the children it started, are gone within the grace period."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.e2e.conftest import stop_group

# A "server" that ignores SIGTERM and starts a child that ignores it too (as a gunicorn
# master busy in its graceful stop, and a worker, would); prints the child's pid.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its new parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_server_ignoring_sigterm_and_its_children_are_killed_after_the_grace():
    process = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
    child = int(process.stdout.readline())
    assert alive(child)
    started = time.monotonic()
    stop_group(process, grace=1.0)
    took = time.monotonic() - started
    assert process.returncode is not None
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the server's child was left behind"
    assert 1.0 <= took < 5.0, took


def test_a_server_that_stops_on_sigterm_is_not_waited_for():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                               start_new_session=True)
    time.sleep(0.3)
    started = time.monotonic()
    stop_group(process, grace=5.0)
    assert time.monotonic() - started < 2.0
    assert process.returncode is not None
