"""The header's busy note on a model switch (app/shell/model_busy.py), as plain functions:
shown only for a ready analysis on a page that says when its views are drawn, hidden
while a job shows its own progress, and hidden once the page drew the selection's
analysis (not an older one: classmap.js ``viewsDrawn``, in
tests/e2e/test_clientside_functions.py)."""

from __future__ import annotations

import pytest
from dash import no_update

from classmap.app.shell.model_busy import busy_logic

READY = {"key": ["lenet-digits", "cosine", "ward"], "state": "ready", "message": ""}
PENDING = {**READY, "state": "pending"}
CLASSES = [{"type": "page-query", "page": "classes"}]
WATCHED = frozenset({"classes"})


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
