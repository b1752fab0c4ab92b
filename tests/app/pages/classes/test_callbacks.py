"""Callbacks as plain functions: inputs in, figures / Patches / components out."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate

from classmap.analysis.cache import ResultCache
from classmap.analysis.methods.hierarchy import subtree_leaves
from classmap.app.pages.classes import ids
from classmap.app.shell import ids as shell_ids
from classmap.app.pages.classes import callbacks as page
from classmap.app.shell import callbacks as shared
from classmap.app.shell.selection import default_selection, update_selection
from classmap.app.shell.services import Services

KEY = ["lite0-imagenet", "cosine", "ward"]
READY = {"key": KEY, "state": "ready", "message": ""}
DUNGENESS_ID = "n01978287"



def cells(figure):
    """The colour codes a heatmap figure draws (its image trace's PNG), shape (rows, cols)."""
    from classmap.app.shell.matrix_tiles import png_codes

    return png_codes(figure.data[0].source)

def selection(**changes):
    return update_selection(default_selection("lite0-imagenet"), **changes)


def test_page_query_resolves_against_the_model(services, lite0_view):
    resolved = shared.resolve_page_query(services, selection(focal="Dungeness crab", node=1990), [])
    sel = resolved["selection"]
    assert sel["focal"] == DUNGENESS_ID and sel["node"] == 1990
    status = dict(resolved["status"])
    assert KEY in status.pop("ready")  # the analyses held in memory (the browser's shortcut)
    assert status == READY and resolved["job"] is None
    assert resolved["notice"] == ["", shared.NOTICE_HIDDEN]
    json.dumps(resolved)  # it travels in a dcc.Store


def test_bad_page_query_shows_a_notice(services, lite0_view):
    resolved = shared.resolve_page_query(services, selection(focal="no such class", node=5),
                                         ["ignored unknown URL key 'x'"])
    sel, (text, css) = resolved["selection"], resolved["notice"]
    assert sel["focal"] is None and sel["node"] is None
    assert "no such class" in text and "unknown URL key" in text and "tree node 5" in text
    assert css == shared.NOTICE_WARNING


def test_a_model_not_in_memory_becomes_a_background_job(services):
    query = update_selection(default_selection("x"), model="broken")
    resolved = shared.resolve_page_query(services, query, [])
    status, job = resolved["status"], resolved["job"]
    assert status["state"] == "pending" and job["key"] == ["broken", "cosine", "ward"]
    reports = []
    result = shared.prepare_analysis_logic(services, reports.append, job)
    assert result["state"] == "error" and "rank 1" in result["message"]
    sel, view, message = page.ready_view(services, query, result)
    assert view is None and "broken could not be loaded" in message
    reports.clear()
    ok = shared.prepare_analysis_logic(services, reports.append, {"key": ["small", "cosine", "ward"]})
    assert ok["state"] == "ready"
    assert reports[0][1].startswith("small: loading the model") and reports[-1][0] == 100


def test_request_and_settle(services, lite0_view):
    with pytest.raises(PreventUpdate):
        shared.request_analysis_logic(services, KEY, READY)
    status, job = shared.request_analysis_logic(services, KEY, None)
    held = status.pop("ready")  # every analysis this process holds, for the browser
    assert KEY in held and held == [list(key) for key in services.views_in_memory()
                                    if key[0] == KEY[0]]  # the same model's analyses
    assert status == READY and job is no_update
    stale = selection(focal="n99999999")
    sel, text, css = shared.settle_selection_logic(services, READY, stale)
    assert sel["focal"] is None and "n99999999" in text
    with pytest.raises(PreventUpdate):
        shared.settle_selection_logic(services, READY, selection(focal=DUNGENESS_ID))
    assert shared.cancel_analysis_logic(1, {"key": KEY, "state": "pending"})["state"] == "cancelled"


def test_heatmap_full_then_overlay_patch(services, lite0_view):
    sel = selection()
    figure, nothing, key, note = page.update_heatmap_logic(services, sel, READY, None, None, None)
    assert isinstance(figure, go.Figure) and cells(figure).shape == (1000, 1000)
    assert nothing is no_update and key["block"] == 1 and "every cell" in note
    focal = update_selection(sel, focal=DUNGENESS_ID, node=1990)
    full, overlay, again, _ = page.update_heatmap_logic(services, focal, READY, None, key,
                                                        ids.HEATMAP)
    assert full is no_update and again is no_update
    shapes = overlay["layout"]["shapes"]
    names = {shape["name"] for shape in shapes}
    assert {"selection", "focal-row", "focal-column"} <= names
    box = next(s for s in shapes if s["name"] == "selection")
    layout = lite0_view.layout
    assert box["x0"] == layout.first[1990] - 0.5 and box["x1"] == layout.last[1990] + 0.5
    assert len(json.dumps(overlay)) < 5000


def test_zoom_redraws_the_subtree_only(services, lite0_view):
    zoomed = selection(node=1990, zoom=1990)
    figure, _, key, _ = page.update_heatmap_logic(services, zoomed, READY, None,
                                                  {"key": KEY, "zoom": None, "block": 1}, None)
    size = lite0_view.layout.size(1990)
    assert isinstance(figure, go.Figure) and cells(figure).shape == (size, size)
    tree, _, _ = page.update_dendrogram_logic(services, zoomed, READY, None)
    assert len(tree.data[1].x) == size - 1  # one marker per internal node of the subtree


def test_wide_heatmap_overview_and_zoomed_region(services):
    status = {"key": ["wide", "cosine", "ward"], "state": "ready"}
    sel = update_selection(default_selection("wide"), model="wide")
    figure, _, key, note = page.update_heatmap_logic(services, sel, status, None, None, None)
    assert key["block"] == 3 and "block means" in note and cells(figure).shape == (834, 834)
    relayout = {"xaxis.range[0]": 99.5, "xaxis.range[1]": 499.5,
                "yaxis.range[0]": 799.5, "yaxis.range[1]": 399.5}
    region, _, region_key, note = page.update_heatmap_logic(services, sel, status, relayout, key,
                                                            ids.HEATMAP)
    trace = region.data[0]
    assert (trace.x0, trace.dx, trace.y0) == (100, 1, 400) and cells(region).shape == (400, 400)
    assert region_key["block"] == 1 and region.layout.uirevision == figure.layout.uirevision
    back, _, overview_key, _ = page.update_heatmap_logic(
        services, sel, status, {"xaxis.autorange": True, "yaxis.autorange": True},
        region_key, ids.HEATMAP)
    assert overview_key["block"] == 3 and cells(back).shape == (834, 834)


def test_dendrogram_patch_carries_the_highlight(services, lite0_view):
    figure, _, key = page.update_dendrogram_logic(services, selection(), READY, None)
    # links, one marker per internal node and the named nodes' labels (WordNet ids)
    assert len(figure.data) == 3 and len(figure.data[1].x) == 999
    full, overlay, again = page.update_dendrogram_logic(services, selection(node=1990, cut=6),
                                                        READY, key)
    assert full is no_update
    shapes = overlay["layout"]["shapes"]
    path = next(s for s in shapes if s["name"] == "selected-subtree")["path"]
    assert path.count("M") == lite0_view.layout.size(1990) - 1  # one ⊓ per internal node
    assert len(overlay["traces"][1]["marker.color"]) == 999 and again["cut"] == 6
    assert [s["name"] for s in shapes].count("cluster") == 6
    assert 0 not in overlay["traces"]  # the big line trace is left alone
    json.dumps(overlay)  # plain JSON for the browser


def test_selection_panel_lists_the_subtree(services, lite0_view):
    title, stats, items, more, zoom_off, whole_off, clear_off = page.selection_panel_logic(
        services, selection(node=1990), READY)
    leaves = subtree_leaves(lite0_view.analysis.linkage, 1990)
    assert title == "Subtree of node 1990" and len(items) == len(leaves) and more == ""
    assert set(items) == {lite0_view.names[i] for i in leaves}
    # in dendrogram order, as the heatmap's rows
    order = list(lite0_view.layout.order)
    assert [order.index(lite0_view.names.index(name)) for name in items] == sorted(
        order.index(lite0_view.names.index(name)) for name in items)
    assert not zoom_off and whole_off and not clear_off
    empty = page.selection_panel_logic(services, selection(), READY)
    assert empty[2] == [] and empty[3] == "" and empty[4]
    json.dumps(items)  # plain JSON for the browser, which renders it as text


def test_a_long_selection_is_cut_short_with_a_note(services, lite0_view):
    limit, page.SUBTREE_LIST_LIMIT = page.SUBTREE_LIST_LIMIT, 50
    try:
        _, _, items, more, *_ = page.selection_panel_logic(
            services, selection(node=lite0_view.layout.root), READY)
    finally:
        page.SUBTREE_LIST_LIMIT = limit
    assert len(items) == 50 and more == "… and 950 more: download the CSV"


def test_buttons_need_a_click(services):
    with pytest.raises(PreventUpdate):
        page.zoom_logic(ids.ZOOM_BUTTON, 0, selection(node=1990))
    assert page.zoom_logic(ids.ZOOM_BUTTON, 1, selection(node=1990))["zoom"] == 1990
    cleared = page.zoom_logic(ids.CLEAR_SELECTION, 2, selection(node=1990))
    assert cleared["node"] is None


def test_neighbours_and_class_picker(services, lite0_view):
    figure, table = page.neighbours_logic(services, selection(focal=DUNGENESS_ID), READY)
    assert figure.data[0].customdata[0] == "n01981276"
    assert figure.layout.yaxis.ticktext[0] == "king crab"
    assert table["header"][:3] == ["#", "class", "id"] and len(table["rows"]) == 10
    assert table["rows"][0][:3] == ["1", lite0_view.names[lite0_view.find_class("n01981276")],
                                    "n01981276"]
    assert float(table["rows"][0][3]) == pytest.approx(float(figure.data[0].x[0]), abs=1e-4)
    json.dumps(table)
    assert page.neighbours_logic(services, selection(), READY)[1] is None
    now, every = page.focal_options_logic(services, None, None, selection(), READY, shell_ids.STATUS)
    assert now == [] and len(every) == 1000 and every[118]["value"] == DUNGENESS_ID
    assert "Dungeness crab" in every[118]["label"] and "n01978287" in every[118]["label"]
    # the picker gets the current class's option at once, every option when idle
    now, every = page.focal_options_logic(services, None, None, selection(focal=DUNGENESS_ID),
                                          READY, shell_ids.STATUS)
    assert now == [every[118]] and len(every) == 1000
    with pytest.raises(PreventUpdate):  # the browser filters 1,000 options itself
        page.focal_options_logic(services, "crab", None, selection(), READY, ids.FOCAL)
    wide = update_selection(default_selection("wide"), model="wide")
    status = {"key": ["wide", "cosine", "ward"], "state": "ready"}
    page.FOCAL_ALL_OPTIONS, limit = 100, page.FOCAL_ALL_OPTIONS
    try:
        found, later = page.focal_options_logic(services, "class_7", "class_3", wide, status,
                                                ids.FOCAL)
    finally:
        page.FOCAL_ALL_OPTIONS = limit
    assert found[0]["value"] == "class_3" and found[1]["value"] == "class_7"
    assert later is no_update  # above the limit the server searches; nothing to add later


def test_clicks_and_lasso_update_the_selection(services, lite0_view):
    row = int(lite0_view.layout.position[118])
    clicked = page.heatmap_click_logic(services, {"points": [{"x": 3, "y": row}]}, selection(),
                                       READY, {"block": 1})
    assert clicked["focal"] == DUNGENESS_ID
    lasso = page.lasso_logic(services, {"points": [{"curveNumber": 0, "pointIndex": 7},
                                                   {"curveNumber": 0, "pointIndex": 3},
                                                   {"curveNumber": 1, "pointIndex": 9}]},
                             selection(node=1990))
    assert lasso["classes"] == [3, 7] and lasso["node"] is None
    with pytest.raises(PreventUpdate):
        page.lasso_logic(services, None, selection())
    hover = page.heatmap_hover_logic(services, {"points": [{"x": 10, "y": row, "bbox": {}}]},
                                     selection(), READY, {"block": 1})
    shown, _, children = hover
    assert shown and children[0].children == lite0_view.names[118]
    score = float(children[2].children[1].children)
    order = lite0_view.layout.order
    assert score == pytest.approx(float(lite0_view.analysis.similarity[118, order[10]]), abs=1e-4)


def test_class_map_patch_and_background_request(services, lite0_view, tmp_path):
    figure, _, key, note, job = page.class_map_logic(services, selection(), READY, None, None)
    assert isinstance(figure, go.Figure) and "PCA" in note and job is no_update
    _, overlay, _, _, _ = page.class_map_logic(services, selection(node=1990), READY, None, key)
    rings = overlay["traces"][1]
    assert len(rings["x"]) == services.summarise_node(lite0_view, 1990).count
    assert 0 not in overlay["traces"]  # the 1,000 points are left alone
    # The background path always runs: a cache of its own has no t-SNE map yet.
    fresh = Services(services.settings, cache=ResultCache(tmp_path / "cache"))
    assert not fresh.embedding_ready("small", "tsne")
    small = update_selection(default_selection("small"), model="small", embedding="tsne")
    status = {"key": ["small", "cosine", "ward"], "state": "ready"}
    _, _, key, note, job = page.class_map_logic(fresh, small, status, None, None)
    assert {k: job[k] for k in ("model", "method")} == {"model": "small", "method": "tsne"}
    assert job["id"] and "meanwhile" in note  # every request carries a fresh id (restart after Cancel)
    labels = []
    done = page.compute_embedding_logic(fresh, labels.append, job)
    assert done["state"] == "ready" and fresh.embedding_ready("small", "tsne")
    figure, _, _, note, job = page.class_map_logic(fresh, small, status,
                                                   {"model": "small", "method": "tsne"}, None)
    assert job is no_update and "t-SNE" in note and figure.layout.xaxis.title.text == "t-SNE 1"


def test_exports_and_summary(services, lite0_view):
    sent = page.export_logic(services, ids.EXPORT_NEIGHBOURS, selection(focal=DUNGENESS_ID), READY)
    assert sent["filename"].endswith("neighbours_n01978287.csv") and "king crab" in sent["content"]
    tree = page.export_logic(services, ids.EXPORT_NEWICK, selection(), READY)
    assert tree["filename"].endswith(".nwk") and tree["content"].endswith(";\n")
    with pytest.raises(Exception, match="no classes are selected"):
        page.export_logic(services, ids.EXPORT_SUBTREE, selection(), READY)
    summary = page.model_summary_logic(services, READY, selection())
    text = json.dumps(summary, default=lambda c: c.to_plotly_json())
    assert "1,000" in text and "1,280" in text


def test_every_view_is_drawn_and_a_failing_view_spares_the_others(
        services, lite0_view, monkeypatch):
    sel = selection(node=1990, cut=8)
    out = page.views_logic(services, sel, READY)
    assert len(out) == len(page.VIEW_OUTPUTS)
    named = dict(zip(page.VIEW_OUTPUTS, out))
    assert isinstance(named[(ids.HEATMAP_FIGURE, "data")], go.Figure)
    assert isinstance(named[(ids.DENDROGRAM_FIGURE, "data")], go.Figure)
    assert isinstance(named[(ids.CLASS_MAP_FIGURE, "data")], go.Figure)
    assert named[(ids.SUBTREE_TITLE, "children")] == "Subtree of node 1990"
    # a zoom of the heatmap redraws only the heatmap
    zoomed = page.matrix_logic(services, sel, READY, None, True,
                               {"heatmap": named[(ids.HEATMAP_KEY, "data")]})
    assert all(value is no_update for value in zoomed[len(page.HEATMAP_OUTPUTS):])

    def broken(*args, **kwargs):
        raise RuntimeError("tree exploded")

    monkeypatch.setattr(page, "update_dendrogram_logic", broken)
    reported = []
    out = page.matrix_logic(services, sel, READY, None, False, {}, reported.append)
    assert [str(error) for error in reported] == ["tree exploded"]
    named = dict(zip(page.MATRIX_OUTPUTS, out))
    assert named[(ids.DENDROGRAM_FIGURE, "data")] is no_update
    assert isinstance(named[(ids.HEATMAP_FIGURE, "data")], go.Figure)
    with pytest.raises(RuntimeError, match="tree exploded"):
        page.matrix_logic(services, sel, READY, None, False, {})


def test_the_picker_starts_with_the_focal_class_option(services, lite0_view):
    """Dash 4's dropdown clears a value it has no option for (and with it the shared
    link's focal class), so the layout gives the picker the focal class's option."""
    resolved = shared.resolve_page_query(services, selection(focal="Dungeness crab"), [])
    options = page.picker_options(services, resolved)
    assert [option["value"] for option in options] == [DUNGENESS_ID]
    assert options[0]["label"].startswith("Dungeness crab")
    assert page.picker_options(services, shared.resolve_page_query(services, selection(), [])) == []
    pending = {"selection": {"focal": "n0123"}, "status": {"state": "pending"}}
    assert page.picker_options(services, pending) == [{"label": "n0123", "value": "n0123"}]


def test_the_cut_slider_offers_at_most_one_cluster_fewer_than_classes(services, lite0_view):
    from classmap.app.pages.classes.layout import cut_limit, cut_marks

    assert cut_limit(10) == 9 and max(cut_marks(9)) == 9  # a 10-class model
    assert cut_marks(9) == {0: "off", 5: "5", 9: "9"}
    assert cut_limit(2) == 1 and cut_limit(None) == cut_limit(5000) == 60
    assert cut_marks(60) == {0: "off", 5: "5", 10: "10", 20: "20", 40: "40", 60: "60"}
    limit, marks = page.cut_range_logic(services, READY, selection())
    assert limit == 60 and max(marks) == 60  # 1,000 classes
    with pytest.raises(PreventUpdate):
        page.cut_range_logic(services, {"key": KEY, "state": "running", "message": ""},
                             selection())


def test_focal_picker_keeps_its_option_while_the_analysis_is_prepared(services):
    """A shared link's focal class survives a cold analysis: while the status is pending the
    picker's (provisional) options stay, since Dash's dropdown clears a value it has no
    option for — and the shared selection's focal class with it."""
    pending = {"key": ["lite0-imagenet", "euclidean", "single"], "state": "pending",
               "message": ""}
    now, every = page.focal_options_logic(services, None, "n01981276",
                                          selection(focal="n01981276", metric="euclidean",
                                                    linkage="single"), pending,
                                          shell_ids.STATUS)
    assert now is no_update and every is no_update
