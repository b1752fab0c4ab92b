"""The index page's ``_dash-config`` (app/server.py ClassmapDash): its validation layout
is encoded once instead of on every page load, and the config is still what Dash itself
would write (compared against dash.Dash's own method on the same app)."""

from __future__ import annotations

import json
import re

import dash

from classmap.app.server import create_app

CONFIG = re.compile(r'<script id="_dash-config" type="application/json">(.*?)</script>', re.S)


def page_config(client) -> dict:
    page = client.get("/").data.decode()
    return json.loads(CONFIG.search(page).group(1))


def test_the_config_is_dashs_own_and_the_layout_is_encoded_once(app_settings, monkeypatch):
    app = create_app(app_settings)
    client = app.server.test_client()
    first = page_config(client)
    assert "validation_layout" in first
    with app.server.test_request_context("/"):
        reference = json.loads(CONFIG.search(dash.Dash._generate_config_html(app)).group(1))
    ends = first.pop("end_id"), reference.pop("end_id")
    assert first == reference  # the same keys and values as Dash's own
    assert ends[0] != ends[1]  # each page load still gets its own signed id

    encoded = []
    from dash import _utils

    real = _utils.to_json
    counting = lambda value: encoded.append(value) or real(value)  # noqa: E731
    monkeypatch.setattr(_utils, "to_json", counting)
    monkeypatch.setattr(dash.dash, "to_json", counting)  # the name Dash's own method uses
    again = page_config(client)
    assert again.pop("end_id") != ends[0]
    assert again == reference
    assert encoded  # the config itself is still encoded at each page load
    assert all("validation_layout" not in value for value in encoded if isinstance(value, dict))
    assert not any(value is app.validation_layout for value in encoded)
