"""The browser writes the URL, the server reads it: the two must agree on every field.

The real ``assets/classmap.js`` runs in Debian's Chromium with the selection schema the
server serves (``browser_config``); ``encodeQuery`` writes the query of a selection, Dash's
own query-string parser splits it, and ``parse_query`` (the server's decoder) must give
the same selection back — or, for a value the decoder refuses, its default and a problem
naming the field, never a different value. Also: every asset parses in Chromium.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dash._pages import _parse_query_string

import classmap.app.pages.weights.services  # noqa: F401 — registers the page's fields
import classmap.app.shell.images  # noqa: F401 — registers the image pages' fields
from classmap.app.shell.clientside import CONFIG_ELEMENT
from classmap.app.shell.selection import (FIELDS, MAX_QUERY_CLASSES, default_selection,
                                          parse_query, selection_schema)

pytestmark = pytest.mark.e2e

ASSETS = Path(__file__).resolve().parents[2] / "assets"
MODELS = ("lite0-imagenet", "lenet-digits", "my model/ü&x")

# A value other than the default for every registered field (the test fails when a field
# is registered without one here, so a new field cannot skip the check).
SAMPLES = {
    "model": "lenet-digits", "metric": "euclidean", "linkage": "average",
    "focal": "n01978287", "node": 1990, "classes": [3, 4, 5, 6, 7, 12], "zoom": 1500,
    "cut": 8, "embedding": "tsne", "k": 15, "data": "my-photos", "rep": "softmax",
    "image": 42, "split": "full", "minsize": 7, "snode": "+-+", "range": [100, 180],
}
# Texts a free-text field may hold that need escaping in a URL.
AWKWARD_TEXTS = ["a&b=c", "50% off", "ü/é #1", "+plus sign", "comma,separated", "semi;colon",
                 "q?x=1", "tab\tin", "  padded  ".strip(), "日本語", "'quote\""]


@pytest.fixture(scope="module")
def encoder(browser):
    """``encode(selection) -> query string`` run by the real assets/classmap.js."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    config = json.dumps({"selection": selection_schema(), "callbacks": {}}).replace("</", "<\\/")
    page.set_content(f'<script type="application/json" id="{CONFIG_ELEMENT}">{config}</script>')
    page.add_script_tag(path=str(ASSETS / "classmap.js"))
    assert not errors, errors

    def encode(selection: dict) -> str:
        return page.evaluate("sel => window.classmap.encodeQuery(sel)", selection)

    yield encode
    page.close()


def decode(query: str) -> tuple[dict, list[str]]:
    """What the server makes of a query string (Dash Pages' parser, then ours)."""
    assert query.startswith("?")
    return parse_query(_parse_query_string(query), MODELS)


def test_every_field_has_a_sample():
    assert set(SAMPLES) == set(FIELDS)
    for name, value in SAMPLES.items():
        assert value != FIELDS[name].default, name


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_field_round_trips(encoder, name):
    selection = {**default_selection(MODELS[0]), name: SAMPLES[name]}
    if "model" in FIELDS[name].resets_on:  # keep the model the sample belongs with
        selection["model"] = MODELS[0]
    query = encoder(selection)
    decoded, problems = decode(query)
    assert problems == [], query
    assert decoded == selection, query


def test_all_fields_at_once_and_defaults_left_out(encoder):
    selection = {**default_selection(MODELS[0]), **SAMPLES}
    query = encoder(selection)
    assert decode(query) == (selection, [])
    plain = encoder(default_selection(MODELS[0]))
    assert plain == "?model=lite0-imagenet&metric=cosine&linkage=ward"  # always in the URL
    assert decode(plain) == (default_selection(MODELS[0]), [])


@pytest.mark.parametrize("text", AWKWARD_TEXTS)
def test_free_text_survives_escaping(encoder, text):
    selection = {**default_selection(MODELS[0]), "focal": text, "data": text}
    decoded, problems = decode(encoder(selection))
    assert problems == [] and decoded["focal"] == text and decoded["data"] == text


def test_model_ids_with_reserved_characters(encoder):
    selection = {**default_selection(MODELS[0]), "model": MODELS[2]}
    assert decode(encoder(selection)) == (selection, [])


def test_large_lasso_sets_are_left_out_of_the_url(encoder):
    many = list(range(0, 2 * MAX_QUERY_CLASSES + 2, 2))  # one over the limit
    selection = {**default_selection(MODELS[0]), "classes": many}
    query = encoder(selection)
    assert "classes=" not in query
    assert decode(query) == ({**selection, "classes": None}, [])
    compact = {**default_selection(MODELS[0]), "classes": list(range(100, 100 + MAX_QUERY_CLASSES))}  # at the limit
    assert decode(encoder(compact)) == (compact, [])


# Values a browser-side selection may hold that the decoder must refuse (field, value).
MALFORMED = [("cut", 999), ("cut", -1), ("k", 0), ("k", "many"), ("node", -3),
             ("zoom", "x"), ("metric", "manhattan"), ("linkage", "centroid"),
             ("embedding", "mds"), ("rep", "pixels"), ("minsize", 1), ("snode", "+x"),
             ("image", -2), ("focal", "x" * 300), ("classes", [5, -1]),
             ("split", "quarters"), ("model", "not-configured"), ("range", [5]),
             ("range", [1, 2, 3])]


@pytest.mark.parametrize("name, value", MALFORMED, ids=lambda v: str(v)[:20])
def test_malformed_values_fall_back_with_a_problem(encoder, name, value):
    selection = {**default_selection(MODELS[0]), name: value}
    query = encoder(selection)
    decoded, problems = decode(query)
    assert len(problems) == 1, (query, problems)
    assert name in problems[0] or (name == "model" and "not configured" in problems[0])
    expected = default_selection(MODELS[0])
    assert decoded == expected, query


@pytest.mark.parametrize("asset", sorted(ASSETS.glob("*.js")), ids=lambda p: p.name)
def test_every_asset_parses_in_chromium(browser, asset):
    # A syntax check that needs no npm: Chromium compiles the file without running it.
    page = browser.new_page()
    try:
        result = page.evaluate("source => { try { new Function(source); return null; } "
                               "catch (error) { return String(error); } }",
                               asset.read_text(encoding="utf-8"))
    finally:
        page.close()
    assert result is None, f"{asset.name}: {result}"
