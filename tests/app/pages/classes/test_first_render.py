"""The Classes page's first render at scale (issue #12): no second overview tile, the class
map in a request of its own after the primary views, node cohesion before the prefix sums."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate

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


def test_a_large_heads_class_map_follows_in_its_own_request(services, lite0_view, monkeypatch):
    """Above CLASS_MAP_DEFER_CLASSES (lowered to 500 for the 1,000-class head) the first
    response carries a placeholder map; the deferred request then gets the full map with
    every class; a click before that arrives also gets the full map."""
    monkeypatch.setattr(page, "CLASS_MAP_DEFER_CLASSES", 500)
    sel = default_selection("lite0-imagenet")
    out = page.views_logic(services, sel, ready(LITE0), None, False, {})
    names = [f"{c}.{p}" for c, p in page.VIEW_OUTPUTS]
    found = dict(zip(names, out))
    placeholder = found[f"{ids.CLASS_MAP_FIGURE}.data"]
    deferred_key = found[f"{ids.CLASS_MAP_KEY}.data"]
    assert deferred_key["deferred"] is True and _points(placeholder) == 0
    assert len(json.dumps(placeholder.to_plotly_json(), default=str)) < 5_000
    # The heatmap and the dendrogram are drawn in that first response.
    assert isinstance(found[f"{ids.HEATMAP_FIGURE}.data"], go.Figure)
    assert isinstance(found[f"{ids.DENDROGRAM_FIGURE}.data"], go.Figure)

    figure, overlay, key, note, job = page.class_map_deferred_logic(
        services, sel, ready(LITE0), None, deferred_key)
    assert _points(figure) == 1000 and overlay is no_update and "deferred" not in key
    assert key["shown"] == "pca" and "PCA" in note
    with pytest.raises(PreventUpdate):  # a drawn map (or none yet) is left alone
        page.class_map_deferred_logic(services, sel, ready(LITE0), None, key)
    with pytest.raises(PreventUpdate):
        page.class_map_deferred_logic(services, sel, ready(LITE0), None, None)

    # A click (a later views call, no full tree redraw) while the placeholder is shown.
    rendered = {"heatmap": found[f"{ids.HEATMAP_KEY}.data"],
                "dendrogram": found[f"{ids.DENDROGRAM_KEY}.data"], "class_map": deferred_key}
    clicked = update_selection(sel, node=1990)
    again = dict(zip(names, page.views_logic(services, clicked, ready(LITE0), None, False,
                                             rendered)))
    assert _points(again[f"{ids.CLASS_MAP_FIGURE}.data"]) == 1000
    assert again[f"{ids.DENDROGRAM_FIGURE}.data"] is no_update


def test_a_small_heads_class_map_comes_with_the_first_render(services, lite0_view):
    assert page.CLASS_MAP_DEFER_CLASSES >= 1000
    out = dict(zip([f"{c}.{p}" for c, p in page.VIEW_OUTPUTS],
                   page.views_logic(services, default_selection("lite0-imagenet"),
                                    ready(LITE0), None, False, {})))
    assert _points(out[f"{ids.CLASS_MAP_FIGURE}.data"]) == 1000
    assert "deferred" not in out[f"{ids.CLASS_MAP_KEY}.data"]


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
