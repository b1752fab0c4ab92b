"""benchmarks/bench_browser.py's split of a step into server and browser time:
hand-computed request intervals (epoch ms)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_browser import in_flight_ms  # noqa: E402


def request(start: float, end: float) -> dict:
    return {"start": start, "first_byte": end, "end": end, "output": "x"}


@pytest.mark.parametrize("spans, window, expected", [
    ([], (0, 100), 0.0),
    ([(10, 30)], (0, 100), 20.0),
    ([(10, 30), (20, 50)], (0, 100), 40.0),  # overlapping: counted once
    ([(10, 30), (40, 50)], (0, 100), 30.0),  # apart: both
    ([(10, 60), (20, 30)], (0, 100), 50.0),  # one inside another
    ([(-20, 10), (90, 150)], (0, 100), 20.0),  # clipped to the step
])
def test_in_flight_time_is_the_union_of_the_requests_within_the_step(spans, window, expected):
    requests = [request(lo, hi) for lo, hi in spans]
    assert in_flight_ms(requests, *window) == pytest.approx(expected)
