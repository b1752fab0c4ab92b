"""Download names (issue 14, defect 2): the view, the model and the selection's fields that
are set and not at their default; the browser applies the same rule (tests/e2e/test_downloads.py
checks the names it gives)."""

from __future__ import annotations

import re

from classmap.app.shell.selection import default_selection, update_selection
from classmap.app.shell.widgets import download_name, graph_view


def test_download_name_shows_the_model_view_and_the_set_fields():
    selection = update_selection(default_selection("lite0-imagenet"), node=1234, cut=0,
                                 metric="cosine")
    assert graph_view("similarity-heatmap") == "heatmap"
    assert graph_view("class-map-graph") == "class-map"
    assert (download_name("heatmap", selection, ("metric", "zoom", "node"))
            == "classmap-lite0-imagenet-heatmap-node-1234")
    lasso = update_selection(selection, classes=[3, 4, 5], metric="euclidean")
    assert (download_name("class-map", lasso, ("metric", "cut", "node", "classes"))
            == "classmap-lite0-imagenet-class-map-metric-euclidean-classes-3")
    odd = update_selection(selection, focal="a b/c")
    assert download_name("neighbours", odd, ("focal",)) == "classmap-lite0-imagenet-neighbours-focal-a_b_c"
    assert download_name("samples") == "classmap-samples"


def test_download_name_spells_split_node_sign_paths_with_letters():
    import classmap.app.pages.weights.services  # noqa: F401 — registers split/snode

    fields = ("focal", "snode")
    names = {path: download_name("weights-icicle",
                                 update_selection(default_selection("m"), focal="c7", snode=path),
                                 fields)
             for path in ("+", "-", "+-", "-+", "++", "--", "+-+-")}
    assert names["+"] == "classmap-m-weights-icicle-focal-c7-snode-p"
    assert names["-"] == "classmap-m-weights-icicle-focal-c7-snode-m"
    assert names["+-"] == "classmap-m-weights-icicle-focal-c7-snode-pm"
    assert names["+-+-"] == "classmap-m-weights-icicle-focal-c7-snode-pmpm"
    assert len(set(names.values())) == len(names)  # one name per node
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", name) for name in names.values())
    # The root ("all") and text with signs in it keep the usual rule.
    root = update_selection(default_selection("m"), focal="c7", snode="all")
    assert download_name("weights-icicle", root, fields).endswith("-snode-all")
    assert download_name("x", {"model": "m", "focal": "a+b"}, ("focal",)) == "classmap-m-x-focal-a_b"
