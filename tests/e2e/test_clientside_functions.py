"""Clientside callbacks as functions: the real assets/classmap.js in Debian's Chromium,
called with the values dash-renderer would pass (the dashboard's browser tests drive the
same functions through the pages).

- ``failureControls``: a job status store → (watchdog disabled, failure bar hidden, text);
- ``hideOnFailure``: the header's busy note hides on a failed or cancelled analysis;
- ``viewsDrawn``: a page's drawn views hide the note only when they are the selection's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classmap.app.shell.clientside import CONFIG_ELEMENT
from classmap.app.shell.jobs import ERROR, PENDING, job_request, job_status
from classmap.app.shell.selection import selection_schema

pytestmark = pytest.mark.e2e

ASSET = Path(__file__).resolve().parents[2] / "assets" / "classmap.js"
NO_UPDATE = "<no_update>"
KEY = ["lenet-digits", "cosine", "ward"]
SELECTION = {"model": "lenet-digits", "metric": "cosine", "linkage": "ward", "focal": None}


@pytest.fixture(scope="module")
def call(browser):
    """``call(name, *args)``: ``window.dash_clientside.classmap[name](*args)``, with
    Dash's ``no_update`` as :data:`NO_UPDATE`."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    config = json.dumps({"selection": selection_schema(), "callbacks": {}}).replace("</", "<\\/")
    page.set_content(f'<script type="application/json" id="{CONFIG_ELEMENT}">{config}</script>')
    page.add_script_tag(path=str(ASSET))
    page.evaluate(f"() => {{ window.dash_clientside.no_update = {json.dumps(NO_UPDATE)}; }}")
    assert not errors, errors

    def run(name: str, *args):
        return page.evaluate("([name, args]) => window.dash_clientside.classmap[name](...args)",
                             [name, list(args)])

    yield run
    page.close()


def test_a_pending_job_runs_the_watchdog_and_hides_the_bar(call):
    pending = job_status(KEY, PENDING, job=job_request("lenet-digits", key=KEY))
    assert call("failureControls", pending) == [False, True, ""]


def test_an_error_stops_the_watchdog_and_shows_its_message(call):
    assert call("failureControls", job_status(KEY, ERROR, "it died")) == [True, False, "it died"]
    # a message that is not text is not shown (a status only ever comes from the server)
    assert call("failureControls", {"state": "error", "message": {"x": 1}}) == [True, False, ""]


@pytest.mark.parametrize("status", [job_status(KEY, "ready"), job_status(KEY, "cancelled"),
                                    None, "x", [1, 2], {}])
def test_other_statuses_stop_the_watchdog_and_hide_the_bar(call, status):
    assert call("failureControls", status) == [True, True, ""]


@pytest.mark.parametrize("state", ["error", "cancelled"])
def test_a_failed_or_cancelled_analysis_hides_the_busy_note(call, state):
    assert call("hideOnFailure", job_status(KEY, state, "why")) is True


@pytest.mark.parametrize("status", [job_status(KEY, "ready"), job_status(KEY, PENDING), None, "x"])
def test_other_statuses_leave_the_busy_note(call, status):
    assert call("hideOnFailure", status) == NO_UPDATE


def test_drawn_views_of_the_selection_hide_the_note(call):
    assert call("viewsDrawn", {"key": KEY, "zoom": None}, SELECTION) is True


def test_views_of_an_older_analysis_leave_the_note(call):
    assert call("viewsDrawn", {"key": ["lite0-imagenet", "cosine", "ward"]}, SELECTION) == NO_UPDATE
    assert call("viewsDrawn", {"key": ["lenet-digits", "euclidean", "ward"]}, SELECTION) == NO_UPDATE


@pytest.mark.parametrize("drawn,selection", [(None, SELECTION), ("x", SELECTION),
                                             ({"key": []}, None), ({"key": KEY}, "x")])
def test_malformed_inputs_change_nothing(call, drawn, selection):
    assert call("viewsDrawn", drawn, selection) == NO_UPDATE
