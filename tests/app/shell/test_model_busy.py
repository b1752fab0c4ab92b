"""The header's busy note on a model switch (app/shell/model_busy.py), as plain functions:
shown only for a ready analysis on a page that says when its views are drawn, hidden
while a job shows its own progress, and hidden once the page drew the selection's
analysis (not an older one)."""

from __future__ import annotations

import pytest
from dash import no_update
from dash.exceptions import PreventUpdate

from classmap.app.shell.model_busy import busy_logic, views_drawn_logic

READY = {"key": ["lenet-digits", "cosine", "ward"], "state": "ready", "message": ""}
PENDING = {**READY, "state": "pending"}
CLASSES = [{"type": "page-query", "page": "classes"}]
WATCHED = frozenset({"classes"})
SELECTION = {"model": "lenet-digits", "metric": "cosine", "linkage": "ward", "focal": None}


def test_ready_analysis_on_a_watched_page_shows_what_is_drawn():
    hidden, text = busy_logic(READY, no_update, CLASSES, WATCHED)
    assert hidden is False
    assert text == "Drawing the views of lenet-digits (cosine, ward)…"


@pytest.mark.parametrize("status,job,pages", [
    (PENDING, {"id": "j"}, CLASSES),  # a job: its progress bar says what is computed
    ({**READY, "state": "error"}, None, CLASSES),
    ({**READY, "state": "cancelled"}, None, CLASSES),
    (READY, None, [{"type": "page-query", "page": "weights"}]),  # no "drawn" store there
    (READY, None, []),
    (None, None, CLASSES),
])
def test_note_stays_hidden_otherwise(status, job, pages):
    assert busy_logic(status, job, pages, WATCHED)[0] is True


def test_drawn_views_of_the_selection_hide_the_note():
    assert views_drawn_logic({"key": ["lenet-digits", "cosine", "ward"], "zoom": None},
                             SELECTION) is True


def test_views_of_an_older_analysis_leave_the_note():
    drawn = {"key": ["lite0-imagenet", "cosine", "ward"], "zoom": None}
    assert views_drawn_logic(drawn, SELECTION) is no_update
    assert views_drawn_logic({"key": ["lenet-digits", "euclidean", "ward"]},
                             SELECTION) is no_update


@pytest.mark.parametrize("drawn,selection", [(None, SELECTION), ("x", SELECTION),
                                             ({"key": []}, None)])
def test_malformed_inputs_change_nothing(drawn, selection):
    with pytest.raises(PreventUpdate):
        views_drawn_logic(drawn, selection)
