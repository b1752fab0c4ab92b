"""The Classes page's first render at scale (issue #12): no second overview tile, the class
map in a request of its own (after the primary views'), node cohesion before the prefix sums."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import no_update

from classmap.app.pages.classes import callbacks as page
from classmap.app.pages.classes import ids
from classmap.app.shell.selection import default_selection, update_selection

LITE0 = ["lite0-imagenet", "cosine", "ward"]
WIDE = ["wide", "cosine", "ward"]


def ready(key):
    return {"key": key, "state": "ready", "message": ""}


def test_the_overview_axes_end_at_the_last_class_so_no_second_tile_is_asked_for(services):
    """The 2,500-class head's overview has 834 blocks of 3 (2,502 positions); its axes end at
    the last class, as the dendrogram's do, and the relayout the browser sends to line them
    up (the whole extent) costs no second tile; a real zoom still gets one."""
    sel = update_selection(default_selection("wide"), model="wide")
    figure, _, key, _ = page.update_heatmap_logic(services, sel, ready(WIDE), None, None, None)
    tree, _, _ = page.update_dendrogram_logic(services, sel, ready(WIDE), None)
    assert key["block"] == 3 and key["tile"] == [0, 2500, 0, 2500, 3]
    assert list(figure.layout.xaxis.range) == [-0.5, 2499.5] == list(tree.layout.xaxis.range)
    assert list(figure.layout.yaxis.range) == [2499.5, -0.5]
    # What drawRange (assets/classmap.js) sends when the axes differ from the tree's.
    home = {"xaxis.range[0]": -0.5, "xaxis.range[1]": 2499.5,
            "yaxis.range[0]": 2499.5, "yaxis.range[1]": -0.5}
    assert page.update_heatmap_logic(services, sel, ready(WIDE), home, key, ids.HEATMAP) == (
        no_update,) * 4
    reset = {"xaxis.autorange": True, "yaxis.autorange": True}
    assert page.update_heatmap_logic(services, sel, ready(WIDE), reset, key, ids.HEATMAP)[0] \
        is no_update
    zoom = {"xaxis.range[0]": 99.5, "xaxis.range[1]": 499.5,
            "yaxis.range[0]": 499.5, "yaxis.range[1]": 99.5}
    region, _, region_key, _ = page.update_heatmap_logic(services, sel, ready(WIDE), zoom, key,
                                                         ids.HEATMAP)
    assert isinstance(region, go.Figure) and region_key["tile"] == [100, 500, 100, 500, 1]
    assert list(region.layout.xaxis.range) == [99.5, 499.5]


def _points(figure) -> int:
    return sum(0 if trace.x is None else len(trace.x) for trace in figure.data
               if trace.name == "classes")


def test_the_class_map_is_its_own_request_and_ignores_the_trees_key_alone(services, lite0_view):
    """The class map's callback listens to the dendrogram's rendered key only so that
    dash-renderer sends it after the heatmap's and dendrogram's request (the first render
    of a large head: the map is a secondary view); fired by that key alone (a zoom, which
    the map does not show) it changes nothing; with its own fields it draws every class."""
    sel = {name: default_selection("lite0-imagenet")[name] for name in page.CLASS_MAP_FIELDS}
    tree_only = page.class_map_view_logic(services, sel, ready(LITE0), None, None,
                                          [f"{ids.DENDROGRAM_KEY}.data"])
    assert tree_only == (no_update,) * len(page.CLASS_MAP_OUTPUTS)
    for triggered in ([], [f"{ids.DENDROGRAM_KEY}.data", f"{ids.CLASS_MAP_SELECTION}.data"]):
        figure, overlay, key, note, job = page.class_map_view_logic(
            services, sel, ready(LITE0), None, None, triggered)
        assert _points(figure) == 1000 and overlay is no_update and key["shown"] == "pca"
        assert "PCA" in note
    # A click (an overlay) after the map is drawn: the 1,000 points are not sent again.
    clicked = {**sel, "node": 1990}
    figure, overlay, *_ = page.class_map_view_logic(
        services, clicked, ready(LITE0), None, key, [f"{ids.CLASS_MAP_SELECTION}.data"])
    assert figure is no_update and page.figures.MAP_POINTS not in overlay["traces"]


def test_the_first_render_draws_every_view(services, lite0_view):
    out = dict(zip([f"{c}.{p}" for c, p in page.VIEW_OUTPUTS],
                   page.views_logic(services, default_selection("lite0-imagenet"),
                                    ready(LITE0))))
    assert _points(out[f"{ids.CLASS_MAP_FIGURE}.data"]) == 1000
    assert isinstance(out[f"{ids.HEATMAP_FIGURE}.data"], go.Figure)
    assert isinstance(out[f"{ids.DENDROGRAM_FIGURE}.data"], go.Figure)


def test_node_cohesion_before_the_prefix_sums_equals_the_dense_mean(tmp_path, monkeypatch):
    """A freshly opened large view answers a node click from the node's rows while its
    prefix sums are not made; the value is the mean pair cosine of the dense matrix and
    matches the prefix sums' once they are. A background job's Services makes none."""
    import classmap.analysis.pipelines.weights as pipeline
    from classmap.analysis.cache import ResultCache
    from classmap.analysis.methods.similarity import standardise_rows
    from classmap.analysis.synthetic import planted_head
    from classmap.app.config import Settings
    from classmap.app.shell.services import Services

    monkeypatch.setattr(pipeline, "MAX_DENSE_CLASSES", 300)
    head = planted_head(600, 32, seed=4, names=False)
    np.save(tmp_path / "big.npy", head.weight)
    settings = Settings.create(
        cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs", environ={},
        extra_models=json.dumps([{"id": "big", "head": str(tmp_path / "big.npy")}]),
        warm_default=False)
    job = Services(settings, cache=ResultCache(tmp_path / "cache")).for_background_job()
    view = job.view(("big", "cosine", "ward"))
    assert view.ordered is None and view._prefix is None and not view.prefix_ready
    node = int(view.layout.root) - 2
    summary = job.summarise_node(view, node)
    assert view._prefix is None  # answered from the node's rows, nothing waited for
    rows = standardise_rows(head.weight[summary.indices]).double().numpy()
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    dense = unit @ unit.T
    n = len(unit)
    expected = (dense.sum() - np.trace(dense)) / (n * (n - 1))
    assert summary.cohesion == pytest.approx(expected, abs=1e-12)
    view.unit_prefix  # noqa: B018 — now made
    assert view.prefix_ready
    assert job.summarise_node(view, node).cohesion == pytest.approx(summary.cohesion, abs=1e-12)
