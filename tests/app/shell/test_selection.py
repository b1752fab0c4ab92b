"""The shared selection: URL parsing, update rules, model checks, the browser schema."""

from __future__ import annotations

import json
import random

import pytest

from classmap.app.shell.selection import (
    FIELDS,
    Field,
    Selection,
    check_against_model,
    default_selection,
    encode_index_set,
    parse_index_set,
    parse_query,
    register_field,
    selection_schema,
    update_selection,
)

MODELS = ("lite0-imagenet", "lenet-digits")


def test_empty_query_gives_defaults_without_problems():
    selection, problems = parse_query({}, MODELS)
    assert selection == default_selection("lite0-imagenet")
    assert problems == []


def test_valid_query_is_parsed_without_problems():
    # The URL is written by the browser (assets/classmap.js); that the two agree on every
    # field is tests/e2e/test_selection_url.py's job, in Chromium.
    query = {"model": "lenet-digits", "metric": "euclidean", "linkage": "average", "focal": "3",
             "node": "15", "cut": "4", "zoom": "17", "embedding": "tsne", "k": "5"}
    selection, problems = parse_query(query, MODELS)
    assert problems == []
    assert selection == {**default_selection("lite0-imagenet"), "model": "lenet-digits",
                         "metric": "euclidean", "linkage": "average", "focal": "3", "node": 15,
                         "cut": 4, "zoom": 17, "embedding": "tsne", "k": 5}


@pytest.mark.parametrize("query, fragment", [
    ({"cut": "many"}, "cut"),
    ({"cut": "999"}, "cut"),
    ({"metric": "manhattan"}, "metric"),
    ({"node": "-3"}, "node"),
    ({"classes": "1-x"}, "classes"),
    ({"bogus": "1"}, "bogus"),
    ({"model": "/etc/passwd"}, "not configured"),
    ({"focal": ["a", "b"]}, "appears 2 times"),
])
def test_malformed_query_falls_back_with_a_problem(query, fragment):
    selection, problems = parse_query(query, MODELS)
    assert len(problems) == 1 and fragment in problems[0]
    for name in query:
        if name in FIELDS and name not in ("focal", "model"):
            assert selection[name] == FIELDS[name].default
    assert selection["model"] in MODELS


def test_unknown_model_resets_model_bound_fields():
    selection, problems = parse_query({"model": "nope", "focal": "n01", "cut": "5"}, MODELS)
    assert selection["model"] == "lite0-imagenet"
    assert selection["focal"] is None and selection["cut"] == 0
    assert any("nope" in p for p in problems)


def test_index_sets_compact_and_parse_back():
    rng = random.Random(0)
    for _ in range(200):
        values = sorted(set(rng.sample(range(60), rng.randint(0, 30))))
        text = encode_index_set(values)
        assert parse_index_set(text) == values
    assert encode_index_set([3, 4, 5, 6, 7, 12]) == "3-7,12"
    assert parse_index_set("7-9, 2") == [2, 7, 8, 9]


def test_update_resets_dependent_fields_and_clears_exclusive_ones():
    base = update_selection(default_selection("lite0-imagenet"), focal="n01", node=1500, cut=6,
                            zoom=1800)
    other_model = update_selection(base, model="lenet-digits")
    assert other_model["focal"] is None and other_model["node"] is None
    assert other_model["cut"] == 0 and other_model["zoom"] is None
    other_linkage = update_selection(base, linkage="average")
    assert other_linkage["focal"] == "n01" and other_linkage["cut"] == 6
    assert other_linkage["node"] is None and other_linkage["zoom"] is None
    lasso = update_selection(base, classes=[1, 2])
    assert lasso["node"] is None and lasso["classes"] == [1, 2]
    subtree = update_selection(lasso, node=1200)
    assert subtree["classes"] is None
    same_model = update_selection(base, model="lite0-imagenet")
    assert same_model == base  # nothing changed, nothing reset


class FakeModel:
    num_classes = 10
    ids = [f"c{i}" for i in range(10)]

    def find_class(self, key):
        if key in self.ids:
            return self.ids.index(key)
        return 4 if key.lower() == "four" else None

    def class_id(self, index):
        return self.ids[index]


def test_check_against_model_drops_what_the_model_lacks():
    selection = update_selection(default_selection("m"), focal="zzz", node=25, zoom=12,
                                 cut=30)
    selection["classes"] = [1, 2, 99]
    checked, problems = check_against_model(selection, FakeModel())
    assert checked["focal"] is None and checked["node"] is None and checked["zoom"] == 12
    assert checked["classes"] == [1, 2] and checked["cut"] == 0
    assert len(problems) == 4
    named, none = check_against_model(update_selection(default_selection("m"), focal="Four"),
                                      FakeModel())
    assert named["focal"] == "c4" and none == []


def test_typed_view_of_the_store():
    selection = Selection.from_store({"model": "m", "classes": [3, 1], "cut": "2"}, "x")
    assert selection.model == "m" and selection.classes == (3, 1) and selection.cut == 2
    assert selection.analysis_key == ("m", "cosine", "ward")
    assert Selection.from_store(None, "x").model == "x"


def test_schema_for_the_browser_matches_the_registry():
    rules = json.loads(json.dumps(selection_schema()))
    assert rules["order"] == list(FIELDS)
    assert rules["fields"]["node"]["clears"] == ["classes"]
    assert "model" in rules["fields"]["focal"]["resets_on"]
    assert rules["fields"]["classes"]["set"] is True


def test_pages_can_register_their_own_field():
    spec = Field("sample", lambda text: int(text), None, resets_on=("model",))
    register_field(spec)
    try:
        selection, problems = parse_query({"sample": "7"}, MODELS)
        assert problems == [] and selection["sample"] == 7
        assert update_selection(selection, model="lenet-digits")["sample"] is None
        with pytest.raises(ValueError):
            register_field(Field("sample", str, "other"))
    finally:
        FIELDS.pop("sample")
