"""Figure builders: what they draw, how compact they ship, and that overlays are separate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from plotly.io.json import to_json_plotly
from scipy.cluster import hierarchy

from classmap.app.pages.classes import figures
from classmap.app.shell import matrix_tiles
from classmap.app.shell.matrix_tiles import ColourScale
from classmap.app.shell.tree_layout import compute_tree_layout

SCALE = ColourScale("diverging", -0.5, 0.5, "cosine")


def test_codes_centre_zero_and_clip_the_ends():
    codes = matrix_tiles.encode_codes(np.array([-2.0, -0.5, 0.0, 0.25, 0.5, 9.0]), SCALE)
    assert codes.dtype == np.uint8
    assert codes.tolist() == [0, 0, 127, 190, 254, 254]


def test_colour_bar_is_labelled_in_scores_with_clipping_marks():
    bar = figures.colour_bar(SCALE)
    assert bar["ticktext"][0].startswith("≤") and bar["ticktext"][-1].startswith("≥")
    assert bar["ticktext"][2] == "0" and abs(bar["tickvals"][2] - 127) < 1


def test_heatmap_ships_a_palette_png_of_the_codes():
    rng = np.random.default_rng(0)
    z = rng.uniform(-0.5, 0.5, size=(1000, 1000)).astype(np.float32)
    z[0, :3] = [-0.5, 0.0, 0.5]
    figure = figures.heatmap_figure(z, SCALE, row_start=0, col_start=0, block=1)
    payload = json.loads(to_json_plotly(figure))
    cells = payload["data"][0]
    assert cells["type"] == "image" and cells["hoverinfo"] == "none"
    assert cells["source"].startswith("data:image/png;base64,")
    # the PNG holds exactly the colour codes, cell (r, c) at pixel (r, c)
    decoded = matrix_tiles.png_codes(cells["source"])
    np.testing.assert_array_equal(decoded, matrix_tiles.encode_codes(z, SCALE))
    # …painted in the scale: ends dark blue / dark red, 0 → RdBu's white centre (#f7f7f7)
    import base64
    import io

    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(cells["source"].split(",", 1)[1]))) as image:
        rgb = np.asarray(image.convert("RGB"))
    assert rgb[0, 1].tolist() == [247, 247, 247]
    assert rgb[0, 0].tolist() == [5, 48, 97] and rgb[0, 2].tolist() == [103, 0, 31]
    # the colour bar rides on an empty scatter, in score units
    key = payload["data"][1]
    assert key["marker"]["showscale"] and key["marker"]["cmax"] == figures.CODE_MAX
    # uniform noise does not compress: ≤ 1 byte per cell (+ base64), as a typed array would
    assert len(to_json_plotly(figure)) < 1.45e6


def test_heatmap_names_its_axes_only_when_few_classes():
    z = np.zeros((5, 5), dtype=np.float32)
    named = figures.heatmap_figure(z, SCALE, row_start=10, col_start=10, block=1,
                                   tick_names=list("abcde"))
    assert list(named.layout.yaxis.ticktext) == list("abcde")
    assert named.layout.xaxis.range == (9.5, 14.5)
    blocks = figures.heatmap_figure(z, SCALE, row_start=0, col_start=0, block=4,
                                    tick_names=list("abcde"))
    assert blocks.layout.yaxis.showticklabels is False
    assert blocks.data[0].dx == 4 and blocks.data[0].x0 == 1.5


def test_heatmap_shapes_outline_selection_focal_and_clusters():
    shapes = figures.heatmap_shapes(clusters=[(0, 0, 4), (1, 5, 9)], selection=(5, 9), focal=3,
                                    marked_runs=[(1, 2)], extent=(0, 9))
    names = [shape["name"] for shape in shapes]
    assert names.count("cluster") == 2 and names.count("lasso") == 2
    selection = shapes[names.index("selection")]
    assert (selection["x0"], selection["x1"]) == (4.5, 9.5)
    row = shapes[names.index("focal-row")]
    assert row["y0"] == row["y1"] == 3
    assert figures.heatmap_shapes() == []


def random_tree(leaves: int):
    """(tree layout, its node numbers, their links' walk xs and ys) of a random Ward tree."""
    rng = np.random.default_rng(1)
    linkage = hierarchy.linkage(rng.normal(size=(leaves, 6)), "ward")
    layout = compute_tree_layout(linkage, hierarchy.leaves_list(linkage))
    nodes = np.arange(layout.num_leaves, layout.root + 1)
    return (layout, nodes, *layout.link_walk(nodes))


def test_dendrogram_is_one_line_trace_whatever_the_size():
    layout, nodes, xs, ys = random_tree(400)
    overlays = figures.dendrogram_overlays(highlight=layout.link_paths(nodes[:3]),
                                           selected_node=(1.0, 2.0), focal=(7.0, "seven"),
                                           clusters=[(0, 0, 100)], cut_y=3.0,
                                           top=float(layout.y[-1]))
    figure = figures.dendrogram_figure(xs, ys, layout.x[nodes], layout.y[nodes], nodes,
                                       layout.last[nodes] - layout.first[nodes] + 1,
                                       x_range=(-0.5, 399.5), top=float(layout.y[-1]),
                                       overlays=overlays)
    assert len(figure.data) == 2  # the tree (one line trace) and one marker per node
    assert figure.data[figures.DENDRO_LINKS].mode == "lines"
    assert len(figure.data[figures.DENDRO_LINKS].x) == len(xs)  # one polyline: no breaks
    assert not np.isnan(np.asarray(figure.data[figures.DENDRO_LINKS].x, dtype=float)).any()
    assert len(figure.data[figures.DENDRO_NODES].x) == len(nodes)
    assert figure.data[figures.DENDRO_NODES].customdata[0][0] == nodes[0]
    # plain JSON (not a typed array), or Dash leaves it out of click events
    import json

    assert json.loads(figure.to_json())["data"][1]["customdata"][0] == [int(nodes[0]), 2]
    kinds = [shape.name for shape in figure.layout.shapes]
    assert kinds == ["cluster", "cut", "selected-subtree", "selected-node", "focal"]
    assert figure.layout.shapes[-1].label.text == "seven"


def test_link_path_draws_each_link_once():
    xs = np.array([0, 0, 1, 1, np.nan, 2, 2, 3, 3, np.nan])
    ys = np.array([0, 1, 1, 0, np.nan, 0, 2, 2, 0, np.nan])
    path = figures.link_path(xs, ys)
    assert path == "M0.00,0V1H1.00V0M2.00,0V2H3.00V0"
    assert figures.link_path(np.zeros(0), np.zeros(0)) is None


def test_neighbours_nearest_on_top_with_ids_for_clicks():
    figure = figures.neighbours_figure(["king crab", "rock crab"], ["n1", "n2"],
                                       np.array([0.39, 0.30]), score_label="cosine")
    bar = figure.data[0]
    assert list(bar.customdata) == ["n1", "n2"]
    assert figure.layout.yaxis.autorange == "reversed"
    assert list(figure.layout.yaxis.ticktext) == ["king crab", "rock crab"]


def test_negative_similarities_keep_longer_bars_closer_and_numbers_right_of_them():
    """A small head's cosines can be negative (LeNet's ten digits: 0.005 … −0.40): the
    bars used to grow leftwards from 0, the least similar class had the longest bar and
    its number was written over the class names. The bars now start at −1."""
    scores = np.array([0.005, -0.001, -0.039, -0.134, -0.401])
    figure = figures.neighbours_figure([f"c{i}" for i in range(5)], [f"n{i}" for i in range(5)],
                                       scores, score_label="cosine similarity")
    bar = figure.data[0]
    assert bar.base == -1.0
    assert np.allclose(bar.base + np.asarray(bar.x), scores, atol=1e-6)  # each bar ends at its score
    assert list(bar.x) == sorted(bar.x, reverse=True) and min(bar.x) > 0  # nearest = longest
    assert figure.layout.xaxis.range[0] == -1.0 and figure.layout.xaxis.range[1] > scores.max()
    numbers = figure.data[1]  # drawn as text points at the bars' ends, not as bar text
    assert bar.textposition == "none" and numbers.mode == "text"
    assert [t.strip() for t in numbers.text] == [f"{v:.3f}" for v in scores] == list(bar.text)
    assert np.allclose(numbers.x, scores, atol=1e-6) and set(numbers.textposition) == {"middle right"}
    # All similarities ≥ 0 (ImageNet's): bars from 0, as before.
    plain = figures.neighbours_figure(["a", "b"], ["n1", "n2"], np.array([0.39, 0.30]),
                                      score_label="cosine similarity").data[0]
    assert plain.base is None and np.allclose(plain.x, [0.39, 0.30])


def test_class_map_marks_selection_and_focal():
    coords = np.random.default_rng(2).normal(size=(50, 2)).astype(np.float32)
    figure = figures.class_map_figure(coords, [f"c{i}" for i in range(50)],
                                      selected=np.array([3, 4]), focal=(0.0, 1.0, "c7"))
    assert figure.layout.dragmode == "lasso"
    rings = figure.data[figures.MAP_SELECTED]
    assert list(rings.x) == pytest.approx(coords[[3, 4], 0].tolist(), abs=1e-4)
    assert figure.data[figures.MAP_FOCAL].text == ("c7",)
    assert figures.class_map_selected(coords, None) == {"x": [], "y": []}
    many = np.zeros((figures.WEBGL_POINTS + 1, 2))
    names = ["x"] * (figures.WEBGL_POINTS + 1)
    assert figures.class_map_figure(many, names, webgl=True).data[0].type == "scattergl"
    # the partial plotly.js has no WebGL traces: SVG whatever the size
    assert figures.class_map_figure(many, names).data[0].type == "scatter"


def test_cluster_colours_are_distinct_for_neighbours_and_grey_above_the_cut():
    colours = figures.cluster_colours(np.array([-1, 0, 1, 2]))
    assert colours[0] == figures.cluster_colour(-1)
    assert len(set(colours[1:])) == 3


def test_a_cut_into_the_most_clusters_offered_gets_as_many_colours():
    from classmap.analysis.methods.hierarchy import cut_clusters
    from classmap.app.shell.selection import MAX_CUT

    assert figures.CLUSTER_COLOURS >= MAX_CUT
    rng = np.random.default_rng(3)
    linkage = hierarchy.linkage(rng.normal(size=(300, 6)), "ward")
    labels = cut_clusters(linkage, MAX_CUT)
    assert len(np.unique(labels)) == MAX_CUT
    colours = set(figures.cluster_colours(labels))
    assert len(colours) == MAX_CUT and figures.cluster_colour(-1) not in colours
    assert len(set(figures.cluster_codes(labels))) == MAX_CUT
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in figures.CLUSTER_PALETTE],
                   dtype=float)
    gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)[np.triu_indices(len(rgb), 1)]
    assert gaps.min() >= 20  # no two colours a viewer could take for one


def test_cluster_codes_through_the_scale_give_the_cluster_colours():
    labels = np.array([-1, 0, 1, 2, 17, 18, 40])
    codes = figures.cluster_codes(labels)
    marker = figures.cluster_marker(codes, "#000000")
    scale = marker["colorscale"]

    def colour_of(code):  # plotly's lookup: position in [cmin, cmax], then the step
        t = (code - marker["cmin"]) / (marker["cmax"] - marker["cmin"])
        return next(c for (a, c), (b, _) in zip(scale[::2], scale[1::2]) if a <= t <= b)

    assert [colour_of(code) for code in codes] == list(figures.cluster_colours(labels))
    assert codes.dtype == np.uint8
    assert figures.cluster_marker(None, "#123456")["color"] == "#123456"


def test_every_figure_has_a_readable_hover_label():
    from tests.app.contrast import hover_contrasts

    rng = np.random.default_rng(1)
    layout, nodes, xs, ys = random_tree(40)
    built = {
        "dendrogram": figures.dendrogram_figure(
            xs, ys, layout.x[nodes], layout.y[nodes], nodes,
            layout.last[nodes] - layout.first[nodes] + 1, x_range=(-0.5, 39.5),
            top=float(layout.y[-1])),
        "heatmap": figures.heatmap_figure(rng.normal(size=(8, 8)), SCALE, row_start=0,
                                          col_start=0, block=1),
        "neighbours": figures.neighbours_figure(["king crab", "rock crab"], ["n1", "n2"],
                                                np.array([0.39, 0.30]), score_label="cosine"),
        "class map": figures.class_map_figure(rng.normal(size=(20, 2)),
                                              [f"c{i}" for i in range(20)]),
        "message": figures.message_figure("Loading…"),
    }
    for name, figure in built.items():
        assert min(hover_contrasts(figure)) >= 4.5, name


def test_neighbours_by_distance_show_closeness_bars_on_a_forward_axis():
    """Issue 14 #4: with Euclidean distances a longer bar is a closer class, the axis runs
    left to right from 0, and each number is written right of its bar (never over the
    names): bars = sqrt(2 (D − 1)) − distance, checked on standardised rows with scipy."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(4)
    d = 64
    raw = rng.normal(size=(5, d))
    raw[1] = raw[0] + 0.3 * rng.normal(size=d)  # a near neighbour of row 0
    rows = (raw - raw.mean(axis=1, keepdims=True)) / raw.std(axis=1, ddof=1, keepdims=True)
    distances = cdist(rows[:1], rows[1:])[0]
    order = np.argsort(distances)
    figure = figures.neighbours_figure([f"c{i}" for i in order + 1], [f"n{i}" for i in order + 1],
                                       distances[order], score_label="Euclidean distance",
                                       higher_is_closer=False, num_features=d)
    bar = figure.data[0]
    assert np.allclose(bar.x, np.sqrt(2 * (d - 1)) - distances[order], atol=1e-4)
    assert list(bar.x) == sorted(bar.x, reverse=True)  # nearest on top, longest bar
    assert bar.x[0] > 3 * abs(bar.x[-1])  # the planted neighbour stands out; unrelated ≈ 0
    assert figure.layout.xaxis.autorange is not True and figure.layout.xaxis.autorange != "reversed"
    assert figure.layout.xaxis.range[0] <= min(0.0, min(bar.x)) < figure.layout.xaxis.range[1]
    numbers = figure.data[1]
    assert [t.strip() for t in numbers.text] == [f"{v:.3f}" for v in distances[order]]
    assert np.allclose(numbers.x, bar.x, atol=1e-4)  # each number at its bar's end …
    assert list(numbers.textposition) == ["middle right" if x >= 0 else "middle left"
                                          for x in bar.x]  # … and outside it
    assert "nearer than an unrelated class" in figure.layout.xaxis.title.text
