"""Each Classes view is redrawn only for the selection fields it reads (issue #14, ≤ 300 ms).

The page projects the selection onto each view's fields in the browser
(``project_selection``) and the view's callback listens to that projection only. These
tests check both halves against the views' own logic, given the *whole* selection: every
field outside a view's list leaves its outputs exactly as they were (so the projection
drops nothing the view shows), every field in it changes them (so no view is redrawn for
nothing), and the page wires each callback to the projection of those fields.
"""

from __future__ import annotations

import json

import numpy as np
import plotly.utils
import pytest

from classmap.app.pages.classes import callbacks as page
from classmap.app.pages.classes import ids
from classmap.app.shell import ids as shell_ids
from classmap.app.shell.selection import FIELDS, default_selection, update_selection

KEY = ["lite0-imagenet", "cosine", "ward"]
READY = {"key": KEY, "state": "ready", "message": ""}
DUNGENESS_ID = "n01978287"
TENCH_ID = "n01440764"

# A selection with something in every field a view may show, and another value per field.
BASE = {"focal": DUNGENESS_ID, "node": 1990, "cut": 6, "k": 10, "embedding": "pca",
        "zoom": None, "range": None}
OTHER = {"focal": TENCH_ID, "node": 1985, "classes": [3, 4, 5], "cut": 10, "k": 20,
         "zoom": 1996, "embedding": "tsne", "range": [10, 50]}


def base_selection() -> dict:
    return update_selection(default_selection("lite0-imagenet"), **BASE)


def changed(field: str) -> dict:
    """The base selection after the user changed ``field`` (with the resets and clears
    that implies, as in the browser)."""
    value = OTHER.get(field, "other")  # fields of other pages: no view here reads them
    return update_selection(base_selection(), **{field: value})


def as_json(outputs) -> str:
    return json.dumps(outputs, cls=plotly.utils.PlotlyJSONEncoder, sort_keys=True)


def matrix(services, sel, rendered):
    return page.matrix_logic(services, sel, READY, None, False, rendered)


def panel(services, sel, rendered):
    return page.selection_panel_logic(services, sel, READY)


def class_map(services, sel, rendered):
    return page.class_map_logic(services, sel, READY, None, rendered)


def neighbours(services, sel, rendered):
    return page.neighbours_logic(services, sel, READY)


VIEWS = {
    "heatmap and dendrogram": (matrix, page.MATRIX_FIELDS),
    "selection panel": (panel, page.PANEL_FIELDS),
    "class map": (class_map, page.CLASS_MAP_FIELDS),
    "nearest classes": (neighbours, page.NEIGHBOURS_FIELDS),
}


def rendered_for(services, view: str):
    """The rendered keys after drawing the base selection (so changes are overlays)."""
    sel = base_selection()
    if view == "heatmap and dendrogram":
        out = matrix(services, sel, {})
        return {"heatmap": out[2], "dendrogram": out[6]}
    if view == "class map":
        return class_map(services, sel, None)[2]
    return None


@pytest.mark.parametrize("view", list(VIEWS))
def test_fields_a_view_does_not_read_leave_its_outputs_unchanged(services, lite0_view, view):
    compute, fields = VIEWS[view]
    rendered = rendered_for(services, view)
    expected = as_json(compute(services, base_selection(), rendered))
    others = [name for name in FIELDS if name not in fields]
    assert "k" in others or view == "nearest classes"
    for field in others:
        got = as_json(compute(services, changed(field), rendered))
        assert got == expected, f"{view}: a change of {field!r} changes what it shows"


@pytest.mark.parametrize("view", list(VIEWS))
def test_every_field_a_view_reads_changes_its_outputs(services, lite0_view, view):
    """The analysis fields (model, metric, linkage) are left out here: they need another
    analysis ready; every view reads them."""
    compute, fields = VIEWS[view]
    rendered = rendered_for(services, view)
    expected = as_json(compute(services, base_selection(), rendered))
    for field in fields:
        if field in ("model", "metric", "linkage"):
            continue
        got = as_json(compute(services, changed(field), rendered))
        assert got != expected, f"{view}: listens to {field!r}, which changes nothing it shows"


def test_top_k_and_the_layout_redraw_only_their_own_view():
    """What the issue measured: top-k redrew the heatmap (one callback for all views)."""
    assert "k" not in page.MATRIX_FIELDS + page.PANEL_FIELDS + page.CLASS_MAP_FIELDS
    assert "embedding" not in page.MATRIX_FIELDS + page.PANEL_FIELDS
    assert "focal" not in page.PANEL_FIELDS


def test_a_metric_change_recolours_the_class_map_without_redrawing_it(services, lite0_view):
    """The map's points depend on the model and the layout only: a new metric is an
    overlay of the selection the metric reset. With Ward (the default) both metrics give
    the same tree, so the tree is not redrawn and the map keeps its cluster colours; with
    a linkage that reads the metric (average), the tree is redrawn and the map's new
    cluster colours come with it (the heatmap's and dendrogram's callback reads the cut
    and the analysis)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    sel = base_selection()
    figure, _, key, _, _ = page.class_map_logic(services, sel, READY, None, None)
    euclid = update_selection(sel, metric="euclidean")
    status = {"key": ["lite0-imagenet", "euclidean", "ward"], "state": "ready", "message": ""}
    again, overlay, _, _, _ = page.class_map_logic(services, euclid, status, None, key)
    assert again is page.no_update
    assert overlay["traces"][page.figures.MAP_SELECTED] == {"x": [], "y": []}  # node reset
    assert page.figures.MAP_POINTS not in overlay["traces"]
    # Ward: the heatmap is redrawn (new scores); the tree and the map's colours are not.
    matrix_key = rendered_for(services, "heatmap and dendrogram")
    out = dict(zip(page.MATRIX_OUTPUTS, page.matrix_logic(services, euclid, status, None,
                                                          False, matrix_key)))
    assert out[(ids.HEATMAP_FIGURE, "data")] is not page.no_update
    assert out[(ids.DENDROGRAM_FIGURE, "data")] is page.no_update
    assert out[(ids.DENDROGRAM_KEY, "data")] is page.no_update
    assert out[(ids.CLASS_MAP_COLOURS, "data")] is page.no_update
    view = services.view(tuple(status["key"]))
    assert (view.clusters(6) == lite0_view.clusters(6)).all()  # the same tree: scipy's Ward
    # Average linkage reads the metric: a new tree, and the map's colours with it.
    average = update_selection(base_selection(), linkage="average")
    cosine_average = {"key": ["lite0-imagenet", "cosine", "average"], "state": "ready",
                      "message": ""}
    first = page.matrix_logic(services, average, cosine_average, None, False, {})
    rendered = {"heatmap": first[2], "dendrogram": first[6]}
    switched = update_selection(average, metric="euclidean")
    euclid_average = {**cosine_average, "key": ["lite0-imagenet", "euclidean", "average"]}
    out = dict(zip(page.MATRIX_OUTPUTS, page.matrix_logic(services, switched, euclid_average,
                                                          None, False, rendered)))
    assert out[(ids.DENDROGRAM_FIGURE, "data")] is not page.no_update
    view = services.view(tuple(euclid_average["key"]))
    colours = out[(ids.CLASS_MAP_COLOURS, "data")]["traces"][page.figures.MAP_POINTS]
    assert colours["marker.color"] == page.figures.cluster_codes(view.clusters(6)).tolist()
    # … and they are the clusters of scipy's average-linkage tree on Euclidean distances
    rows = np.asarray(view.head.weight, dtype=np.float64)
    rows = (rows - rows.mean(1, keepdims=True)) / rows.std(1, ddof=1, keepdims=True)
    reference = fcluster(linkage(rows, "average", metric="euclidean"), 6, "maxclust")
    pairs = {(a, b) for a, b in zip(reference, view.clusters(6))}
    assert len(pairs) == 6  # the same partition, whatever the cluster numbers


def test_a_cut_recolours_the_class_map_with_the_tree(services, lite0_view):
    """A new cut: the class map's colours in the heatmap's and dendrogram's response (one
    round trip, drawn at once: a restyle of a few ms); the class map's own callback does
    not listen to the cut, and a focal change sends no colours."""
    assert "cut" not in page.CLASS_MAP_FIELDS
    matrix_key = rendered_for(services, "heatmap and dendrogram")
    out = dict(zip(page.MATRIX_OUTPUTS, matrix(
        services, update_selection(base_selection(), cut=10), matrix_key)))
    colours = out[(ids.CLASS_MAP_COLOURS, "data")]["traces"][page.figures.MAP_POINTS]
    assert colours["marker.color"] == page.figures.cluster_codes(lite0_view.clusters(10)).tolist()
    out = dict(zip(page.MATRIX_OUTPUTS, matrix(
        services, update_selection(base_selection(), focal=TENCH_ID), matrix_key)))
    assert out[(ids.CLASS_MAP_COLOURS, "data")] is page.no_update
    # Without a cut the points go back to one colour.
    out = dict(zip(page.MATRIX_OUTPUTS, matrix(
        services, update_selection(base_selection(), cut=0), matrix_key)))
    points = out[(ids.CLASS_MAP_COLOURS, "data")]["traces"][page.figures.MAP_POINTS]
    assert points["marker.color"] == page.figures.MAP_COLOUR


def test_each_view_callback_listens_to_the_projection_of_its_fields(app_settings, services):
    from classmap.app.server import create_app
    from classmap.app.shell.clientside import browser_config

    app = create_app(app_settings, services)
    constants = browser_config(app)["callbacks"]
    inputs = {key: [f"{i['id']}.{i['property']}" for i in spec["inputs"]]
              for key, spec in app.callback_map.items()}

    def callback_of(output: str) -> list[str]:
        found = [names for key, names in inputs.items()
                 if key.startswith(f"..{output}.") and "@" not in key.split("...")[0]]
        assert len(found) == 1, output
        return found[0]

    for store, fields, output in (
            (ids.MATRIX_SELECTION, page.MATRIX_FIELDS, ids.HEATMAP_FIGURE),
            (ids.PANEL_SELECTION, page.PANEL_FIELDS, ids.SUBTREE_TITLE),
            (ids.CLASS_MAP_SELECTION, page.CLASS_MAP_FIELDS, ids.CLASS_MAP_FIGURE)):
        # projected from the shell's selection: in the same round as the page's copies
        projection = constants[f"{store}.data|{shell_ids.SELECTION}.data"]
        assert projection["fields"] == list(fields)
        listened = callback_of(output)
        assert f"{store}.data" in listened
        assert f"{ids.CLASSES_SELECTION}.data" not in listened
    # The class map waits for the heatmap's and dendrogram's request (the first render).
    assert f"{ids.DENDROGRAM_KEY}.data" in callback_of(ids.CLASS_MAP_FIGURE)


def test_views_wait_for_the_status_of_a_switched_analysis(services):
    """Between a metric switch and the server's status for it, the views keep what they
    show (no "Preparing the analysis…" drawn and then everything anew)."""
    switched = update_selection(base_selection(), metric="euclidean")
    assert page.status_behind(services, switched, READY)
    assert not page.status_behind(services, base_selection(), READY)
    pending = {"key": ["lite0-imagenet", "euclidean", "ward"], "state": "pending"}
    assert not page.status_behind(services, switched, pending)  # its own message is drawn
    assert not page.status_behind(services, switched, None)  # the first render: a message
