"""Download names (issue 14, defect 2): the view, the model and the selection's fields that
are set and not at their default; the browser applies the same rule (tests/e2e/test_downloads.py
checks the names it gives)."""

from __future__ import annotations

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
