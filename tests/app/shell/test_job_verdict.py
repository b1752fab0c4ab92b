"""The watchdog's shared clock rule (app/shell/job_verdict.py), on hand-picked clocks."""

from __future__ import annotations

import pytest

from classmap.analysis.settings import JobLimits
from classmap.app.shell.job_verdict import NO_HEARTBEAT, TIME_LIMIT, overdue, stopped_sentence

LIMITS = JobLimits(time_limit=60, heartbeat_timeout=5)


@pytest.mark.parametrize("age, silent, beating, expected", [
    (10, 0, True, None),
    (10, 5, True, None),                 # exactly the timeout: still alive
    (10, 5.5, True, NO_HEARTBEAT),
    (10, 50, False, None),               # nothing beats for it (a task no worker took)
    (60, 0, True, None),                 # exactly the limit
    (61, 0, True, TIME_LIMIT),
    (61, 0, False, TIME_LIMIT),          # waiting counts towards the limit
    (61, 50, True, NO_HEARTBEAT),        # a silent process is reported as silent first
])
def test_overdue(age, silent, beating, expected):
    now = 1000.0
    assert overdue(now - age, now - silent, now, LIMITS, beating=beating) == expected


def test_sentences():
    assert stopped_sentence(NO_HEARTBEAT, LIMITS) == \
        "the background job stopped responding (no heartbeat for 5 s)"
    assert stopped_sentence(TIME_LIMIT, LIMITS) == \
        "the background job ran past its limit of 60 s and was stopped"
    assert "waited past its limit of 60 s" in stopped_sentence(TIME_LIMIT, LIMITS, waiting=True)
    with pytest.raises(ValueError, match="unknown reason 'x'"):
        stopped_sentence("x", LIMITS)
