"""Fixtures of the job-manager tests: a job store and a live process to name in records."""

from __future__ import annotations


import diskcache
import pytest


@pytest.fixture
def store(tmp_path):
    """An empty job store (the diskcache the job manager keeps its records in)."""
    with diskcache.Cache(str(tmp_path / "jobs")) as cache:
        yield cache

