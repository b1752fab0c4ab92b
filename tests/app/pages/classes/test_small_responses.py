"""Issue #14, "Measured": the Classes page's cut and metric changes answer with less.

- A cut recolours the nearest-classes chart with an overlay of its bar colours (a restyle
  in the browser), not a new chart: the same colours the chart drawn for that cut has.
- The figures are built as plain dicts (no plotly.py validation, most of a full view's
  server time): each is still what plotly.py's validation accepts and gives unchanged.
- Reading a cached WordNet view (every Classes page's tree) does not import scipy.stats.
"""

from __future__ import annotations

import json
import subprocess
import sys

import plotly.graph_objects as go
import pytest
from plotly.io.json import to_json_plotly

from classmap.app.pages.classes import callbacks as page
from classmap.app.pages.classes import ids
from classmap.app.shell.selection import default_selection, update_selection

KEY = ["lite0-imagenet", "cosine", "ward"]
READY = {"key": KEY, "state": "ready", "message": ""}
EUCLID = {"key": ["lite0-imagenet", "euclidean", "ward"], "state": "ready", "message": ""}
DUNGENESS_ID = "n01978287"
TENCH_ID = "n01440764"


def selection(**changes) -> dict:
    return update_selection(default_selection("lite0-imagenet"),
                            **{"focal": DUNGENESS_ID, "k": 20, **changes})


def neighbours_outputs(services, sel, rendered, status=READY) -> dict:
    return dict(zip(page.NEIGHBOURS_OUTPUTS,
                    page.neighbours_view_logic(services, sel, status, rendered)))


def bar_colours(figure) -> list[str]:
    return [str(c) for c in figure.to_plotly_json()["data"][0]["marker"]["color"]]


FIGURE = (ids.NEIGHBOURS, "figure")
ROWS = (ids.NEIGHBOURS_ROWS, "data")
OVERLAY = (ids.NEIGHBOURS_OVERLAY, "data")
RENDERED = (ids.NEIGHBOURS_RENDERED, "data")


def test_a_cut_recolours_the_nearest_classes_with_an_overlay_not_a_new_chart(services,
                                                                               lite0_view):
    first = neighbours_outputs(services, selection(), None)
    assert first[OVERLAY] is page.no_update and not first[RENDERED]["cut"]  # no cut
    out = neighbours_outputs(services, selection(cut=10), first[RENDERED])
    assert out[FIGURE] is page.no_update and out[ROWS] is page.no_update
    colours = out[OVERLAY]["traces"][0]["marker.color"]
    # The reference: the whole chart drawn for the same cut (a fresh page).
    drawn = neighbours_outputs(services, selection(cut=10), None)[FIGURE]
    assert colours == bar_colours(drawn)
    assert len(set(colours)) > 1  # the 20 nearest crabs and others span several clusters
    assert out[RENDERED] == {**first[RENDERED], "cut": 10}
    # The response is a small fraction of the chart it replaces.
    assert len(json.dumps(out[OVERLAY])) * 5 < len(to_json_plotly(drawn))


def test_a_linkage_switch_recolours_the_bars_of_a_cut_and_leaves_them_without_one(
        services, lite0_view):
    """The nearest classes' scores depend on the model and the metric, not the linkage:
    a new tree sends no new chart — the bars of a cut get the new tree's cluster colours
    (an overlay, as a fresh page draws them), plain bars nothing."""
    average = {"key": ["lite0-imagenet", "cosine", "average"], "state": "ready", "message": ""}
    plain = neighbours_outputs(services, selection(), None)
    out = neighbours_outputs(services, selection(linkage="average"), plain[RENDERED], average)
    assert all(value is page.no_update for value in out.values())
    cut = neighbours_outputs(services, selection(cut=10), None)
    out = neighbours_outputs(services, selection(cut=10, linkage="average"), cut[RENDERED],
                             average)
    assert out[FIGURE] is page.no_update and out[ROWS] is page.no_update
    fresh = neighbours_outputs(services, selection(cut=10, linkage="average"), None, average)
    assert out[OVERLAY]["traces"][0]["marker.color"] == bar_colours(fresh[FIGURE])
    assert out[OVERLAY]["traces"][0]["marker.color"] != bar_colours(cut[FIGURE])  # new tree
    assert out[RENDERED] == fresh[RENDERED]
    # the metric still redraws the chart (new scores)
    euclid = neighbours_outputs(services, selection(cut=10, metric="euclidean"), cut[RENDERED],
                                EUCLID)
    assert euclid[FIGURE] is not page.no_update


def test_a_cut_turned_off_restores_the_plain_bars(services, lite0_view):
    cut = neighbours_outputs(services, selection(cut=10), None)
    out = neighbours_outputs(services, selection(cut=0), cut[RENDERED])
    plain = neighbours_outputs(services, selection(cut=0), None)[FIGURE]
    assert out[FIGURE] is page.no_update
    assert out[OVERLAY]["traces"][0]["marker.color"] == bar_colours(plain)


@pytest.mark.parametrize("change", [{"focal": TENCH_ID}, {"k": 10}, {"metric": "euclidean"}])
def test_what_the_bars_show_still_redraws_the_chart(services, lite0_view, change):
    rendered = neighbours_outputs(services, selection(cut=10), None)[RENDERED]
    status = EUCLID if change.get("metric") == "euclidean" else READY
    out = neighbours_outputs(services, selection(cut=6, **change), rendered, status)
    assert out[FIGURE] is not page.no_update and out[ROWS] is not page.no_update
    assert out[OVERLAY] is page.no_update
    reference = page.neighbours_logic(services, selection(cut=6, **change), status)
    assert to_json_plotly(out[FIGURE]) == to_json_plotly(reference[0])


def test_nothing_changed_sends_nothing_and_no_focal_draws_the_message(services, lite0_view):
    rendered = neighbours_outputs(services, selection(cut=10), None)[RENDERED]
    again = neighbours_outputs(services, selection(cut=10), rendered)
    assert all(value is page.no_update for value in again.values())
    none = neighbours_outputs(services, selection(focal=None, cut=6), rendered)
    assert none[ROWS] is None and none[RENDERED] is None
    assert "Pick a focal class" in to_json_plotly(none[FIGURE])


def test_the_page_applies_the_neighbours_overlay_in_the_browser(app_settings, services):
    from classmap.app.server import create_app
    from classmap.app.shell.clientside import browser_config

    app = create_app(app_settings, services)
    constants = browser_config(app)["callbacks"]
    key = f"{ids.NEIGHBOURS_OVERLAY}.modified_timestamp|{ids.NEIGHBOURS_OVERLAY}.data"
    assert constants[key] == {"graph": ids.NEIGHBOURS, "deferred": False}
    outputs = [key for key in app.callback_map if f"..{ids.NEIGHBOURS}.figure." in key]
    assert len(outputs) == 1 and f"{ids.NEIGHBOURS_OVERLAY}.data" in outputs[0]
    from classmap.app.pages.classes.layout import layout

    page_tree = str(layout())
    assert f"'{ids.NEIGHBOURS_OVERLAY}'" in page_tree and f"'{ids.NEIGHBOURS_RENDERED}'" in page_tree


def _figures(services):
    """Every figure the page builds, for a few selections (both metrics, a cut, a zoom
    with class-name ticks, a lasso, a focal class)."""
    view = services.view(tuple(KEY))
    small = next(n for n in range(view.num_classes, 2 * view.num_classes - 1)
                 if 30 <= view.layout.last[n] - view.layout.first[n] + 1 <= 80)
    for status in (READY, EUCLID):
        metric = status["key"][1]
        for changes in ({"cut": 10, "node": small}, {"zoom": small, "cut": 5, "classes": [1, 2]},
                        {"focal": None}):
            sel = selection(metric=metric, **changes)
            yield page.update_heatmap_logic(services, sel, status, None, None, None)[0]
            yield page.update_dendrogram_logic(services, sel, status, None)[0]
            yield page.neighbours_logic(services, sel, status)[0]
            yield page.class_map_logic(services, sel, status, None, None)[0]


def _without_empty(value):
    """``value`` without empty dicts (``"title": {}`` — plotly.js reads it as absent; plotly.py's
    validation keeps or drops it depending on how it was set)."""
    if isinstance(value, dict):
        kept = {k: _without_empty(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v != {}}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


def test_figures_built_as_dicts_are_what_plotly_validation_gives(services, lite0_view):
    count = 0
    for figure in _figures(services):
        if figure.layout.annotations:  # the shared message figure (validated once)
            continue
        assert figure._validate is False  # built without plotly.py's validation
        ours = _without_empty(json.loads(to_json_plotly(figure)))
        # plotly.py's validation raises on an invalid property and expands names (colour
        # scales), so the validated copy equals ours only if ours was valid and complete.
        validated = _without_empty(json.loads(to_json_plotly(go.Figure(figure.to_plotly_json()))))
        assert ours == validated
        count += 1
    assert count >= 20


def test_reading_a_wordnet_view_does_not_import_scipy_stats():
    """scipy.stats costs a fresh server 0.5–5 s; the Classes page's tree reads a cached
    WordNet view through analysis.pipelines.compare, which needs it only to compute."""
    code = ("import sys\n"
            "from classmap.analysis.pipelines import compare\n"
            "from classmap.analysis.methods import wordnet_agreement\n"
            "assert compare.wordnet_for_tree and wordnet_agreement.NodeNames\n"
            "print('scipy.stats' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=True)
    assert result.stdout.strip() == "False"


def test_a_metric_switch_keeps_the_class_pickers_options(services, lite0_view):
    """The picker's options are the model's classes: a metric or linkage switch (a new
    status for the same model) sends none of them again; a new model sends its own."""
    from classmap.app.shell import ids as shell_ids

    options, every, model = page.focal_options_view_logic(
        services, None, None, selection(), READY, shell_ids.STATUS, None)
    assert model == "lite0-imagenet" and len(every) == lite0_view.num_classes
    assert options == [every[lite0_view.find_class(DUNGENESS_ID)]]
    switched = page.focal_options_view_logic(
        services, None, None, selection(metric="euclidean"), EUCLID, shell_ids.STATUS, model)
    assert all(value is page.no_update for value in switched)
    # A new model: its own classes (the "small" test head: 60 classes), named as its key.
    small = {"key": ["small", "cosine", "ward"], "state": "ready", "message": ""}
    sel = update_selection(default_selection("small"), model="small")
    _options, every, model = page.focal_options_view_logic(
        services, None, None, sel, small, shell_ids.STATUS, "lite0-imagenet")
    assert model == "small" and len(every) == 60
    # A model still being prepared: the options stay, and so does the model they are of.
    pending = {"key": ["small", "euclidean", "ward"], "state": "pending", "message": ""}
    assert page.focal_options_view_logic(services, None, None, sel, pending,
                                         shell_ids.STATUS, "small")[2] is page.no_update


def test_the_pickers_callback_knows_which_models_options_it_sent(app_settings, services):
    from classmap.app.server import create_app

    app = create_app(app_settings, services)
    found = [spec for key, spec in app.callback_map.items() if f"..{ids.FOCAL}.options." in key]
    assert len(found) == 1
    assert f"{ids.FOCAL_ALL_MODEL}.data" in [str(output) for output in found[0]["output"]]
    assert {"id": ids.FOCAL_ALL_MODEL, "property": "data"} in found[0]["state"]
