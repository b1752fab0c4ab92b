"""Fixtures of the job-manager tests: a job store and a live process to name in records."""

from __future__ import annotations

import subprocess

import diskcache
import pytest


@pytest.fixture
def store(tmp_path):
    """An empty job store (the diskcache the job manager keeps its records in)."""
    with diskcache.Cache(str(tmp_path / "jobs")) as cache:
        yield cache


@pytest.fixture
def sleeper():
    """A live ``sleep 60`` process (a running job's pid), killed afterwards."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()
