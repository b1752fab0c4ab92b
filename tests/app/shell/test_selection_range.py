"""The heatmap/dendrogram zoom range in the URL (issue 14, defect 5): defined once in the
selection's field registry, parsed, written back, reset by the analysis and the subtree
zoom, and clamped to the model's leaf positions."""

from __future__ import annotations

import pytest

from classmap.app.shell.selection import (FIELDS, check_against_model, parse_query,
                                          selection_schema, update_selection)


class Lookup:
    num_classes = 1000

    def find_class(self, key):
        return None

    def class_id(self, index):
        return f"c{index}"


def test_range_round_trips_through_the_url():
    spec = FIELDS["range"]
    assert spec.parse("120,250") == [120, 250]
    assert spec.parse("250,120") == [120, 250]
    assert spec.parse("10,20,30,40") == [10, 20, 30, 40]
    assert spec.parse("10,20,10,20") == [10, 20]  # rows = columns: written once
    for value in ([120, 250], [10, 20, 30, 40]):
        assert spec.parse(spec.encode(value)) == value
        assert spec.encode(value) == ",".join(map(str, value))  # the browser's String(list)
    for bad in ("1", "1,2,3", "a,b", "-1,4", "1;2"):
        with pytest.raises(ValueError):
            spec.parse(bad)
    assert "range" in selection_schema()["order"]


def test_a_bad_range_falls_back_or_is_clamped_with_a_notice():
    selection, problems = parse_query({"range": "x"}, ["lite0-imagenet"])
    assert selection["range"] is None and "range" in problems[0]
    checked, problems = check_against_model({**selection, "range": [900, 5000]}, Lookup())
    assert checked["range"] == [900, 999] and "clamped" in problems[0]
    checked, problems = check_against_model({**selection, "range": [4000, 5000]}, Lookup())
    assert checked["range"] is None and problems
    checked, problems = check_against_model({**selection, "range": [3, 9]}, Lookup())
    assert checked["range"] == [3, 9] and not problems


def test_range_is_forgotten_with_another_analysis_or_subtree_zoom():
    selection, _ = parse_query({"range": "3,9"}, ["lite0-imagenet"])
    assert update_selection(selection, node=1500)["range"] == [3, 9]
    for change in ({"metric": "euclidean"}, {"linkage": "average"}, {"zoom": 1990}):
        assert update_selection(selection, **change)["range"] is None
