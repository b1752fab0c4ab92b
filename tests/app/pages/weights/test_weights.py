"""The Weight distributions page without a browser: services, figure builders and
callback logic against the embedded Lite0 head, checked against independent
computations (numpy, scipy) rather than against the code's own helpers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import plotly.colors
import pytest
import scipy.integrate
import scipy.stats
from dash.exceptions import PreventUpdate

import classmap.app.pages.weights.callbacks as cw
import classmap.app.pages.weights.figures as wfig
from classmap.app.pages.weights import ids
from classmap.app.shell import ids as shell_ids
from classmap.app.pages.weights.services import (
    ald_analysis,
    ald_density,
    class_distribution,
    histogram_of,
    seed_line_density,
)
from classmap.app.browser_scripts import PLOTLY_TRACES
from classmap.app.shell.selection import parse_query, update_selection
from tests.app.test_layering import imported_modules

ROOT = Path(__file__).resolve().parents[4]
MODEL = "lite0-imagenet"
DUNGENESS = ("n01978287", 118)
ASSET_JS = Path(__file__).resolve().parents[4] / "assets" / "classmap.js"
KING_CRAB = ("n01981276", 121)
READY = {"key": [MODEL, "cosine", "ward"], "state": "ready", "message": ""}
# Trace types of the partial plotly.js bundle the dashboard loads.
BUNDLE_TRACES = set(PLOTLY_TRACES)


def selection(**changes):
    base = {"model": MODEL, "metric": "cosine", "linkage": "ward", "focal": None,
            "split": "chains", "minsize": 20, "snode": None}
    base.update(changes)
    return base


@pytest.fixture(scope="module")
def lite0(services, lite0_view):
    return lite0_view


def test_figures_module_never_imports_dash():
    assert "dash" not in imported_modules(ROOT / "app" / "pages" / "weights" / "figures.py")
    assert "dash" not in imported_modules(ROOT / "app" / "pages" / "weights" / "services.py")


def test_histogram_counts_every_weight(lite0_head):
    row = lite0_head.weight[DUNGENESS[1]]
    hist = histogram_of(row)
    assert hist.counts.sum() == lite0_head.feature_dim == 1280
    expected, _ = np.histogram(row.astype(np.float64), bins=hist.edges)
    np.testing.assert_array_equal(hist.counts, expected)
    assert float((hist.density * np.diff(hist.edges)).sum()) == pytest.approx(1.0, rel=1e-12)


def test_mle_density_is_scipys_and_integrates_to_one():
    x = np.linspace(-3, 4, 2001)
    for kappa, loc, scale in ((0.7, 0.1, 0.05), (1.4, -0.2, 0.3), (1.0, 0.0, 1.0)):
        np.testing.assert_allclose(ald_density(x, kappa, loc, scale),
                                   scipy.stats.laplace_asymmetric.pdf(x, kappa, loc, scale),
                                   rtol=1e-12, atol=1e-300)
        left, _ = scipy.integrate.quad(ald_density, -np.inf, loc, args=(kappa, loc, scale))
        right, _ = scipy.integrate.quad(ald_density, loc, np.inf, args=(kappa, loc, scale))
        assert left + right == pytest.approx(1.0, abs=1e-8)
        assert left == pytest.approx(kappa**2 / (1 + kappa**2), abs=1e-8)


def test_focal_densities_match_independent_fits(services, lite0, lite0_head):
    k = DUNGENESS[1]
    dist = class_distribution(services, lite0, k)
    row = lite0_head.weight[k].astype(np.float64)
    np.testing.assert_array_equal(dist.weights, lite0_head.weight[k])
    assert dist.fit["status"] == "ok"
    # MLE curve: scipy's density with the table's parameters, integrating to ≈ 1 on the grid
    # plus the tails beyond it.
    kappa, loc, scale = dist.fit["kappa_mle"], dist.fit["loc_mle"], dist.fit["scale_mle"]
    np.testing.assert_allclose(dist.mle_density,
                               scipy.stats.laplace_asymmetric.pdf(dist.x, kappa, loc, scale),
                               rtol=1e-10)
    inside = np.trapezoid(dist.mle_density, dist.x)
    cdf = scipy.stats.laplace_asymmetric.cdf([dist.x[0], dist.x[-1]], kappa, loc, scale)
    assert inside == pytest.approx(cdf[1] - cdf[0], abs=2e-3)
    # Seed curve: the density of the line fitted by np.polyfit on each side separately.
    for sign, side in ((1.0, row[row > 0]), (-1.0, -row[row < 0])):
        y = np.sort(side)
        q = np.arange(1, y.size + 1) / y.size
        a, b = np.polyfit(q, np.log(y), 1)
        probe = np.linspace(math.exp(b), math.exp(a + b), 7)[1:-1]
        got = seed_line_density(sign * probe, dist.fit, row.size)
        np.testing.assert_allclose(got, (y.size / row.size) / (a * probe), rtol=1e-6)
        total, _ = scipy.integrate.quad(lambda t: (y.size / row.size) / (a * t),
                                        math.exp(b), math.exp(a + b))
        assert total == pytest.approx(y.size / row.size, rel=1e-9)
    # between the two lines (|w| below both e^b) the seed curve is undefined, not zero
    assert np.isnan(seed_line_density(np.array([0.0]), dist.fit, row.size)).all()


def test_seed_density_absent_when_no_line_is_defined():
    fit = {"slope_pos": float("nan"), "intercept_pos": float("nan"), "n_pos": 0,
           "slope_neg": -1.0, "intercept_neg": -3.0, "n_neg": 5}
    assert seed_line_density(np.linspace(-1, 1, 5), fit, 10) is None


def test_overview_figure_holds_every_class(services, lite0):
    analysis = ald_analysis(services, MODEL)
    columns = analysis.table.columns()
    figure = wfig.overview_figure(columns, analysis.pooled.to_json())
    pos, neg, kappa = figure.data
    assert len(pos.x) == len(neg.x) == len(kappa.x) == 1000
    np.testing.assert_array_equal(np.asarray(kappa.x), columns["kappa_mle"])


def test_scatter_leaves_out_undefined_points_and_says_so(services, lite0):
    columns = dict(ald_analysis(services, MODEL).table.columns())
    columns["ks_mle"] = columns["ks_mle"].copy()
    columns["ks_mle"][[3, 7]] = np.nan
    figure = wfig.classes_scatter_figure(columns, "kappa-ks", lite0.ids, lite0.short_names,
                                         focal=7)
    points = figure.data[wfig.SCATTER_POINTS]
    assert len(points.x) == 998
    assert {row[1] for row in points.customdata}.isdisjoint({3, 7})
    assert all(lite0.ids[i] == cid for cid, i in points.customdata)
    assert "2 classes left out" in figure.layout.title.text
    assert len(figure.data) == 1  # the class points only: the mark is in the layout
    # the focal class has no point, so no mark
    assert not figure.layout.shapes and not figure.layout.annotations


def test_clicking_a_scatter_point_makes_it_the_focal_class_in_the_browser(
        app_settings, services, lite0):
    """The scatter's click sets the focal class in the browser (``focalFromPoint`` in
    classmap.js, from the point's customdata = [class id, index]; the focal mark's trace
    and others are ignored); tests/e2e/test_weights_page.py clicks a point."""
    from classmap.app.server import create_app
    from classmap.app.shell.clientside import browser_config

    columns = ald_analysis(services, MODEL).table.columns()
    figure = wfig.classes_scatter_figure(columns, "r2", lite0.ids, lite0.short_names, None)
    custom = figure.data[wfig.SCATTER_POINTS].customdata[KING_CRAB[1]]  # point i is class i
    assert custom[0] == KING_CRAB[0]
    constants = browser_config(create_app(app_settings, services))["callbacks"]
    key = f"{shell_ids.SELECTION}.data|{ids.WEIGHTS_SCATTER}.clickData"
    assert constants[key] == {"change": "focalFromPoint", "curve": wfig.SCATTER_POINTS}
    assert "focalFromPoint: function" in ASSET_JS.read_text()


def test_focal_panel(services, lite0, lite0_head):
    title, figure, table = cw.focal_logic(services, selection(focal=DUNGENESS[0]), READY)
    assert DUNGENESS[0] in title and "Dungeness crab" in title
    assert figure.layout.title.text == "Weights of Dungeness crab"
    bars = figure.data[0]
    assert int(np.sum(bars.customdata)) == lite0_head.feature_dim
    assert {trace.name for trace in figure.data[1:]} == {
        "asymmetric Laplace (MLE)", "write-up regression (implied density)"}
    text = str(table)
    assert "nan" not in text.lower() and "'ok'" in text
    # not ready / no focal class: a message, never a stale figure
    title, figure, table = cw.focal_logic(services, selection(), READY)
    assert title == "No focal class" and table == []


def test_fit_table_shows_statuses_not_nans():
    nan = float("nan")
    fit = {name: nan for name in ("kappa_mle", "loc_mle", "scale_mle", "loglik_mle", "ks_mle",
                                  "r2_pos", "r2_neg", "slope_pos", "slope_neg", "intercept_pos",
                                  "intercept_neg", "kappa_seed_pos", "kappa_seed_neg")}
    fit.update(n_pos=0, n_neg=0, n_zero=1280, status="MLE: constant row",
               seed_status_pos="undefined: no line", seed_status_neg="ok")
    text = str(cw.fit_table(fit))
    assert "nan" not in text.lower()
    assert "—" in text and "MLE: constant row" in text and "undefined: no line" in text
    assert wfig.format_number(nan) == "—" and wfig.format_number(None) == "—"
    assert wfig.format_number(float("inf")) == "—"


def test_split_node_lists_its_channels(services, lite0, lite0_head):
    k = DUNGENESS[1]
    row = lite0_head.weight[k].astype(np.float64)
    sel = selection(focal=DUNGENESS[0], snode="+")
    title, items = cw.node_logic(services, sel, READY)
    expected = np.flatnonzero(row >= row.mean())  # independent: the root's positive half
    assert title.startswith(f"Node +: {expected.size} channels")
    listed = [int(item.split()[1]) for item in items]
    assert all(item == f"channel {c}  {lite0_head.weight[k][c]:+.4f}"
               for item, c in zip(items, listed))
    assert sorted(listed) == expected.tolist()
    assert [row[c] for c in listed] == sorted(row[expected], reverse=True)



def icicle_bars(figure):
    """{sign path: (left, right, row)} of the icicle's bars, read off the bar geometry."""
    bar = figure.data[0]
    x, width, base = (np.asarray(v, dtype=float) for v in (bar.x, bar.width, bar.base))
    return {path: (x[i] - width[i] / 2, x[i] + width[i] / 2, int(round(-base[i] - 1)))
            for i, path in enumerate(bar.customdata)}


def parent_path(path):
    return "all" if len(path) == 1 else path[:-1]


@pytest.mark.parametrize("mode,minsize", [("full", 400), ("chains", 20)])
def test_icicle_tiles_each_node_inside_its_parent(services, lite0, lite0_head, mode, minsize):
    row = lite0_head.weight[DUNGENESS[1]].astype(np.float64)
    figure = cw.icicle_logic(services, selection(focal=DUNGENESS[0], split=mode,
                                                 minsize=minsize), READY, None)
    bar = figure.data[0]
    assert bar.type == "bar" and bar.text[0].startswith("Dungeness crab<br>1,280 ch.")
    bars = icicle_bars(figure)
    assert bars["all"] == (0.0, 1280.0, 0)  # the root row, on top, holds every channel
    plus = int((row >= row.mean()).sum())  # independent: the root's positive half
    assert bars["+"] == (0.0, plus, 1) and bars["-"] == (plus, 1280.0, 1)
    children = {}
    for path, (left, right, depth) in bars.items():
        if path == "all":
            continue
        p_left, p_right, p_depth = bars[parent_path(path)]
        assert depth == p_depth + 1 and p_left <= left < right <= p_right
        children.setdefault(parent_path(path), []).append((left, right))
    for path, spans in children.items():  # children side by side, never overlapping
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
        used = sum(right - left for left, right in spans)
        p_left, p_right, _ = bars[path]
        assert used == p_right - p_left if mode == "full" else used <= p_right - p_left
    # colour = mean weight on RdBu_r centred at 0, with a colour bar
    scale = figure.data[1].marker  # the colour bar's trace: no visible point
    assert figure.data[1].x == (None,) and scale.showscale and scale.cmin == -scale.cmax
    colour = dict(zip(bar.customdata, bar.marker.color))
    for path, mean in (("all", row.mean()), ("+", row[row >= row.mean()].mean())):
        position = (mean / scale.cmax + 1) / 2  # independent: plotly's own sampling
        expected = plotly.colors.sample_colorscale(plotly.colors.get_colorscale("RdBu_r"),
                                                   [position])[0]
        assert colour[path] == expected, (path, colour[path], expected)
    assert "mean" in bar.hovertext[0] and "1,280 channels" in bar.hovertext[0]
    assert figure.layout.xaxis.fixedrange and figure.layout.yaxis.fixedrange
    assert figure.layout.xaxis.visible is False and figure.layout.yaxis.visible is False
    assert not figure.layout.shapes  # nothing selected, nothing outlined


def test_icicle_outlines_the_selected_node_and_follows_clicks(services, lite0):
    tree_key = selection(focal=DUNGENESS[0], split="full", minsize=400)
    key = dict(tree_key, snode="+")
    figure = cw.icicle_update_logic(services, tree_key, key, READY, set())
    left, right, depth = icicle_bars(figure)["+"]
    (shape,) = figure.layout.shapes
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (left, right, -depth - 1, -depth)
    # a click changes only snode: a Patch of layout.shapes around the new node
    key = dict(tree_key, snode="+-")
    patch = cw.icicle_update_logic(services, tree_key, key, READY, {ids.WEIGHTS_KEY})
    (operation,) = patch.to_plotly_json()["operations"]
    assert operation["location"] == ["layout", "shapes"]
    (outline,) = operation["params"]["value"]
    left, right, depth = icicle_bars(figure)["+-"]
    assert (outline["x0"], outline["x1"], outline["y0"]) == (left, right, -depth - 1)
    # a key that still describes another tree outlines nothing (its snode is stale)
    stale = dict(selection(focal=KING_CRAB[0]), snode="+")
    assert not cw.icicle_update_logic(services, tree_key, stale, READY,
                                      {ids.WEIGHTS_TREE_KEY}).layout.shapes
    with pytest.raises(PreventUpdate):  # no focal class: no icicle to patch
        cw.icicle_update_logic(services, selection(), selection(snode="+"), READY,
                               {ids.WEIGHTS_KEY})


def test_weights_figures_use_only_the_bundles_traces(services, lite0):
    import ast

    import plotly.graph_objects as go
    from plotly.basedatatypes import BaseTraceType

    sel = selection(focal=DUNGENESS[0], snode="+")
    figures = [*cw.overview_logic(services, sel, READY, "kappa-ks")[:2],
               cw.overview_logic(services, sel, READY, "r2")[1],
               cw.focal_logic(services, sel, READY)[1],
               cw.icicle_logic(services, sel, READY, "+"),
               cw.icicle_logic(services, dict(sel, split="full", minsize=2), READY, "+")]
    types = {trace.type for figure in figures for trace in figure.data}
    assert {"bar", "histogram", "scatter"} <= types <= BUNDLE_TRACES
    # and every trace class the weights figure module names at all
    tree = ast.parse((ROOT / "app" / "pages" / "weights" / "figures.py").read_text())
    named = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
             and isinstance(node.value, ast.Name) and node.value.id == "go"}
    traces = {getattr(go, name)().type for name in named
              if isinstance(getattr(go, name), type)
              and issubclass(getattr(go, name), BaseTraceType)}
    assert traces and traces <= BUNDLE_TRACES, traces - BUNDLE_TRACES


def test_icicle_click_and_split_controls_are_shareable():
    sel = selection(focal=DUNGENESS[0])
    clicked = cw.icicle_click_logic({"points": [{"curveNumber": 0, "customdata": "+-"}]}, sel)
    assert clicked["snode"] == "+-"
    with pytest.raises(PreventUpdate):
        cw.icicle_click_logic({"points": []}, sel)
    with pytest.raises(PreventUpdate):  # a click on the node already selected
        cw.icicle_click_logic({"points": [{"customdata": "+-"}]}, clicked)
    parsed, problems = parse_query({"model": MODEL, "split": "full", "minsize": "35",
                                    "snode": "+-+"}, [MODEL])
    assert (parsed["split"], parsed["minsize"], parsed["snode"], problems) == (
        "full", 35, "+-+", [])
    parsed, problems = parse_query({"split": "both", "minsize": "1", "snode": "x"}, [MODEL])
    assert (parsed["split"], parsed["minsize"], parsed["snode"]) == ("chains", 20, None)
    assert len(problems) == 3
    assert update_selection(clicked, focal=KING_CRAB[0])["snode"] is None


def test_split_params_fall_back_on_bad_values():
    from classmap.app.shell.selection import Selection

    for minsize, expected in ((None, 20), (1, 20), (2.5, 20), (35, 35)):
        sel = Selection.from_store(selection(minsize=minsize), MODEL)
        assert cw.split_params(sel) == ("chains", expected)


def test_weights_figures_have_readable_hover_labels():
    from tests.app.contrast import hover_contrasts

    rng = np.random.default_rng(0)
    columns = {key: rng.uniform(0.1, 1, 30) for key in
               ("r2_pos", "r2_neg", "kappa_mle", "ks", "ks_p", "js_bits", "kappa_seed")}
    edges = np.linspace(-1, 1, 11)
    figures = [wfig.overview_figure(columns),
               wfig.weight_histogram_figure("crab", edges, np.arange(10), np.ones(10),
                                            np.linspace(-1, 1, 5), np.ones(5), None)]
    for axes in wfig.SCATTER_AXES:
        needed = [key for key, _ in wfig.SCATTER_AXES[axes]]
        cols = {**columns, **{key: rng.uniform(0.1, 1, 30) for key in needed}}
        figures.append(wfig.classes_scatter_figure(cols, axes, [f"n{i}" for i in range(30)],
                                                   [f"c{i}" for i in range(30)], focal=2))
    for figure in figures:
        assert min(hover_contrasts(figure)) >= 4.5


def test_overview_and_histogram_text_does_not_overlap():
    rng = np.random.default_rng(0)
    columns = {key: rng.uniform(0.1, 1, 30) for key in ("r2_pos", "r2_neg", "kappa_mle")}
    overview = wfig.overview_figure(columns, height=300)
    # The legend sits below the R² axis title (which plotly places ~ 35 px under the axis),
    # not on it: its top is at least 45 px below the plot area.
    plot_height = 300 - overview.layout.margin.t - overview.layout.margin.b
    assert overview.layout.legend.yanchor == "top"
    assert -overview.layout.legend.y * plot_height >= 45
    assert overview.layout.margin.b >= 45 + 25  # and the page has room for it
    edges = np.linspace(-1, 1, 11)
    histogram = wfig.weight_histogram_figure("crab", edges, np.arange(10), np.ones(10),
                                             np.linspace(-1, 1, 5), np.ones(5), np.ones(5))
    # The legend and the title do not share a line: the legend is outside the top strip
    # the title occupies (below the plot, or right of it).
    legend = histogram.layout.legend
    assert legend.y is not None and legend.y < 0 or (legend.x is not None and legend.x > 1)


# -- issue 14: each view listens to the fields it shows; a focal change patches the mark --


def test_focal_change_sends_only_the_scatter_focal_mark(services, lite0):
    key = {field: selection(focal=KING_CRAB[0])[field] for field in cw.FOCAL_FIELDS}
    full = cw.scatter_update_logic(services, key, READY, "r2", set())
    overlay = cw.scatter_update_logic(services, key, READY, "r2", {ids.WEIGHTS_FOCAL_KEY})
    # only the mark's layout shapes (a ring labelled with the class), never the class
    # points' trace, nor an annotation (plotly recalculates the plot for one)
    assert overlay == {"layout": {"shapes": overlay["layout"]["shapes"]}}
    (ring,) = overlay["layout"]["shapes"]
    # the mark sits on the class's own point in the full figure (by its id in customdata)
    points = full.data[wfig.SCATTER_POINTS]
    row = [custom[0] for custom in points.customdata].index(KING_CRAB[0])
    assert ring["xanchor"] == pytest.approx(points.x[row])
    assert ring["yanchor"] == pytest.approx(points.y[row])
    assert ring["xref"] == "x" and ring["yref"] == "y"
    assert ring["label"]["text"] == points.text[row]
    # and equals the full figure's own mark for that class
    assert [shape.to_plotly_json() for shape in full.layout.shapes] == [ring]
    assert not full.layout.annotations
    # the mark cannot move the axes: their ranges are fixed, around every point
    for axis, coords in ((full.layout.xaxis, points.x), (full.layout.yaxis, points.y)):
        assert axis.range[0] < min(coords) and max(coords) < axis.range[1]
    # the points are lists, not base64 arrays (which plotly.js decodes afresh, so that a
    # redrawn figure always recalculates)
    assert isinstance(full.to_plotly_json()["data"][0]["x"], list)
    # no focal class: the mark is emptied
    none = cw.scatter_update_logic(services, dict(key, focal=None), READY, "r2",
                                   {ids.WEIGHTS_FOCAL_KEY})
    assert none == {"layout": {"shapes": []}}
    # the axes (or the status) redraw the whole scatter
    assert cw.scatter_update_logic(services, key, READY, "kappa-ks",
                                   {ids.WEIGHTS_SCATTER_AXES}).data[0].x is not None


def test_distributions_do_not_depend_on_the_focal_class_or_node(services, lite0):
    plain = cw.distributions_logic(services, selection(), READY)
    picked = cw.distributions_logic(services, selection(focal=DUNGENESS[0], snode="+-",
                                                        split="full"), READY)
    assert plain[0].to_plotly_json() == picked[0].to_plotly_json()
    assert cw.MODEL_FIELDS == ("model", "metric", "linkage")


def test_weights_views_listen_to_the_fields_they_show(app_settings):
    from classmap.app.server import create_app

    callbacks = create_app(app_settings).callback_map

    def inputs_of(output: str) -> set[str]:
        # keys: "id.prop" or "..id.prop...id.prop.." (several outputs)
        (spec,) = [spec for key, spec in callbacks.items() if f"..{output}." in f"..{key}."]
        return {f"{item['id']}.{item['property']}" for item in spec["inputs"]}

    # a node click (snode) or a split change reaches none of the overview, scatter, histogram
    for output, key in ((f"{ids.WEIGHTS_OVERVIEW}.figure", ids.WEIGHTS_MODEL_KEY),
                        (f"{ids.WEIGHTS_SCATTER}.figure", ids.WEIGHTS_FOCAL_KEY),
                        (f"{ids.WEIGHTS_HISTOGRAM}.figure", ids.WEIGHTS_FOCAL_KEY)):
        found = inputs_of(output)
        assert f"{key}.data" in found, (output, found)
        assert not {f"{ids.WEIGHTS_KEY}.data", f"{ids.WEIGHTS_TREE_KEY}.data"} & found
    assert not {"focal", "snode", "split", "minsize"} & set(cw.MODEL_FIELDS)
    assert not {"snode", "split", "minsize"} & set(cw.FOCAL_FIELDS)


def _wcag_luminance(colour: str) -> float:
    if colour in ("white", "black"):
        rgb = (255, 255, 255) if colour == "white" else (0, 0, 0)
    elif colour.startswith("#"):
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    else:
        rgb = tuple(int(v) for v in colour[colour.index("(") + 1:-1].split(","))
    c = np.asarray(rgb) / 255.0
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def test_icicle_labels_are_readable_and_only_where_they_can_fit(services, lite0):
    # "full" at min size 20: ~200 nodes, most too narrow for a label
    figure = cw.icicle_logic(services, selection(focal=DUNGENESS[0], split="full",
                                                 minsize=20), READY, None)
    bar = figure.data[0]
    widths, total = np.asarray(bar.width), float(bar.width[0])
    labelled = np.array([bool(text) for text in bar.text])
    assert labelled.sum() < len(widths) / 2  # plotly measures only these
    # a label needs ≈ 28 px at 10 px text: a bar under 1/60 of the tree never has room;
    # nor does one narrower (on the widest plot) than a lower estimate of its label's
    # width (tests/e2e/test_weights_page.py checks the estimate against Chromium's)
    wide = widths >= total / 60
    assert not (labelled & ~wide).any()
    bar_px = widths / total * wfig.ICICLE_WIDEST_PX
    for keep, px, text in zip(labelled, bar_px, bar.text):
        if keep:
            assert px >= wfig.label_min_px(text) + 6
    assert labelled.sum() < wide.sum()  # some wide bars' labels cannot fit: left out
    # every label has a contrast ≥ 4.5:1 (WCAG AA) with its bar's colour
    for text_colour, fill in zip(bar.insidetextfont.color, bar.marker.color):
        lighter, darker = sorted((_wcag_luminance(text_colour), _wcag_luminance(fill)),
                                 reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 4.5, (text_colour, fill)
    # colours are strings (numbers make plotly.js warn once per bar on every draw)
    assert all(isinstance(c, str) for c in bar.marker.color)


@pytest.mark.parametrize("kappas,anchor", [
    ([0.63, 0.8, 0.97], "right"),  # ImageNet's κs, below 1: the label left of the line
    ([0.2, 0.36, 2.6, 4.0, 11.0], "left"),  # LeNet's, mostly above: right of it
])
def test_the_kappa_line_label_sits_on_the_side_with_room(kappas, anchor):
    """On LeNet's ten classes the "κ = 1 (symmetric)" label ran left over the κ axis's
    tick labels: it now goes on the side of the line with more of the axis."""
    columns = {"r2_pos": np.array([0.8, 0.9]), "r2_neg": np.array([0.7, 0.8]),
               "kappa_mle": np.array(kappas)}
    label = next(a for a in wfig.overview_figure(columns).layout.annotations
                 if "symmetric" in a.text)
    assert label.x == 1.0 and label.xanchor == anchor


def test_the_focal_label_stays_inside_the_scatter():
    """plotly clips a shape's label to the plot: the focal class's name goes below its ring
    at the top of the y range and turns inwards near the left and right edges."""
    rng = np.random.default_rng(2)
    columns = {"kappa_mle": rng.uniform(0.5, 1.0, 50), "ks_mle": rng.uniform(0.02, 0.08, 50)}
    columns["kappa_mle"][:3] = [0.75, 1.0, 0.5]  # middle, right edge, left edge
    columns["ks_mle"][:3] = [0.05, 0.08, 0.02]  # middle, top, bottom
    names = [f"c{i}" for i in range(50)]
    positions = [wfig.scatter_focal_mark(columns, "kappa-ks", names, i)["shapes"][0]["label"]
                 for i in range(3)]
    assert [p["textposition"] for p in positions] == ["top center", "bottom right", "top left"]
    assert [p["yanchor"] for p in positions] == ["bottom", "top", "bottom"]
    assert [p["xanchor"] for p in positions] == ["center", "right", "left"]
