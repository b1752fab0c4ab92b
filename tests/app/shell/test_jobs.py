"""The one background-job status protocol (shell/jobs.py) and the shared bounded memo."""

from __future__ import annotations

import threading

import pytest
from dash.exceptions import PreventUpdate

from classmap.app.shell.jobs import (READY, cancelled_status, is_for, is_ready_for, job_status,
                                     progress_reporter)
from classmap.app.shell.services import KeyedLocks, LruMemo


def test_status_names_its_key_and_state():
    status = job_status(("m", "digits"), READY)
    assert status == {"key": ["m", "digits"], "state": "ready", "message": ""}
    assert is_for(status, ["m", "digits"]) and is_ready_for(status, ("m", "digits"))
    assert not is_for(status, ["m", "other"]) and not is_for(None, ["m", "digits"])


def test_cancel_only_turns_a_pending_job_into_cancelled():
    pending = job_status(["k"], "pending")
    assert cancelled_status(1, pending, "stopped") == job_status(["k"], "cancelled", "stopped")
    for clicks, status in ((0, pending), (1, job_status(["k"], READY)), (1, None)):
        with pytest.raises(PreventUpdate):
            cancelled_status(clicks, status, "stopped")


def test_progress_reaches_the_bar_as_percent_and_label():
    reports = []
    progress = progress_reporter(reports.append, "lenet")
    with progress.step("extracting", total=4) as advance:
        advance(2)
        advance(2)
    assert reports[-1] == (100, "lenet: extracting…")
    assert all(0 <= percent <= 100 for percent, _ in reports)


def test_memo_is_bounded_and_makes_each_value_once():
    made = []
    memo = LruMemo(2)
    for key in ("a", "b", "a", "c", "a"):
        memo.get(key, lambda key=key: made.append(key) or key.upper())
    assert made == ["a", "b", "c"]  # "b" was dropped when "c" came ("a" was used last)
    assert memo.get("b", lambda: "again") == "again"
    locks = KeyedLocks()
    with locks("x"), locks("y"):  # different keys do not wait for each other
        assert len(locks) == 2
    assert len(locks) == 0  # a key is forgotten when its last user leaves
    results = []
    threads = [threading.Thread(target=lambda: results.append(memo.get("z", lambda: object())))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(value) for value in results}) == 1
