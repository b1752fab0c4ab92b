"""Issue 13 on the Classes page: WordNet names on the tree's hover, labels on large
nodes, the side panel's name and purity, and the agreement summary (or why none)."""

from __future__ import annotations

import numpy as np

from classmap.app.pages.classes import callbacks as page
from classmap.app.shell.selection import default_selection, update_selection

KEY = ["lite0-imagenet", "cosine", "ward"]
READY = {"key": KEY, "state": "ready", "message": ""}


def selection(**changes):
    return update_selection(default_selection("lite0-imagenet"), **changes)


def _crab_parent(view) -> int:
    linkage = view.analysis.linkage
    row = next(r for r, (a, b) in enumerate(linkage[:, :2]) if 118 in (a, b))
    return view.num_classes + row


def test_tree_nodes_carry_their_wordnet_name_on_hover(services, lite0_view):
    figure, _, _ = page.update_dendrogram_logic(services, selection(), READY, None)
    nodes = figure.data[1]
    assert "WordNet: %{hovertext}" in nodes.hovertemplate
    crab = list(nodes.customdata[:, 0]).index(_crab_parent(lite0_view))
    assert nodes.hovertext[crab] == "crab (100% of its classes)"


def test_large_nodes_are_labelled_and_small_ones_are_not(services, lite0_view):
    figure, _, _ = page.update_dendrogram_logic(services, selection(), READY, None)
    nodes, labels = figure.data[page.figures.DENDRO_NODES], figure.data[page.figures.DENDRO_LABELS]
    assert nodes.mode == "markers" and labels.mode == "text"
    # each label sits on its node's marker: the node's size from the marker there
    at = {(float(x), float(y)): int(size)
          for x, y, (_n, size) in zip(nodes.x, nodes.y, nodes.customdata)}
    labelled = [(t, at[(float(x), float(y))]) for t, x, y in zip(labels.text, labels.x, labels.y)]
    assert 0 < len(labelled) <= page.figures.NODE_LABELS and all(labelled)
    assert all(size >= 50 for _t, size in labelled)  # 1/20 of the 1,000 classes shown
    assert "dog" in {t for t, _ in labelled}  # the chain of "dog" nodes labelled once
    assert [t for t, _ in labelled].count("dog") == 1


def test_node_label_candidates_name_each_chain_once(services, lite0_view):
    """Every node of ≥ 50 classes whose name differs from its parent's is a candidate;
    a parent and child of the same name are not both."""
    nodes = np.arange(lite0_view.num_classes, 2 * lite0_view.num_classes - 1)
    layout = lite0_view.layout
    sizes = layout.last[nodes] - layout.first[nodes] + 1
    labels = page.wordnet_node_labels(page.wordnet_for(services, lite0_view), lite0_view,
                                      nodes, sizes, lite0_view.num_classes)
    named = {int(n): t for n, t in zip(nodes, labels) if t}
    assert {"dog", "bird"} <= set(named.values())
    for parent, pair in enumerate(layout.children, start=lite0_view.num_classes):
        for child in map(int, pair):
            assert not (child in named and parent in named and named[child] == named[parent])
    assert all(sizes[n - lite0_view.num_classes] >= 50 for n in named)


def test_apart_labels_keep_the_first_of_two_that_would_overlap():
    from classmap.app.pages.classes.figures import NODE_LABEL_CHAR_PX, apart_labels

    frame = dict(x_range=(0.0, 100.0), y_range=(0.0, 100.0), plot_px=(400.0, 200.0))
    # "abcdef" is 6 × 5.6 + 4 ≈ 37.6 px wide: centres 8 px (2 units) apart overlap, 48 px don't
    assert apart_labels(np.array([10, 12]), np.array([50, 50]), ["abcdef"] * 2, **frame) == [0]
    assert apart_labels(np.array([10, 22]), np.array([50, 50]), ["abcdef"] * 2, **frame) == [0, 1]
    # one line (11 px = 5.5 units) higher: no overlap whatever the x
    assert apart_labels(np.array([10, 10]), np.array([50, 56]), ["abcdef"] * 2, **frame) == [0, 1]
    assert apart_labels(np.array([10, 10]), np.array([50, 54]), ["abcdef"] * 2, **frame) == [0]
    # the order is the priority: the later one gives way, and ``most`` caps the count
    assert apart_labels(np.array([12, 10]), np.array([50, 50]), ["abcdef"] * 2, **frame) == [0]
    spread = np.arange(0, 100, 20)
    assert apart_labels(spread, np.full(5, 50), ["ab"] * 5, most=3, **frame) == [0, 1, 2]
    assert NODE_LABEL_CHAR_PX * 6 + 4 < 48


def test_side_panel_names_the_selected_subtree(services, lite0_view):
    node = _crab_parent(lite0_view)
    _title, stats, *_ = page.selection_panel_logic(services, selection(node=node), READY)
    text = str(stats)
    assert "crab (100% of its classes)" in text and "WordNet name" in text
    assert "purity" in text


def test_summary_gives_the_agreement_with_an_explanation(services, lite0_view):
    summary = page.model_summary_logic(services, READY, selection())
    text = str(summary)
    assert "agreement with WordNet (ρ)" in text and "Spearman" in text
    agreement = page.wordnet_for(services, lite0_view).agreement
    assert f"{agreement.spearman:.2f}" in text


def test_class_sets_without_wordnet_say_so(services):
    status = {"key": ["small", "cosine", "ward"], "state": "ready", "message": ""}
    sel = update_selection(default_selection("small"), model="small")
    view = services.view(("small", "cosine", "ward"))
    figure, _, _ = page.update_dendrogram_logic(services, sel, status, None)
    assert "WordNet" not in figure.data[1].hovertemplate
    text = str(page.model_summary_logic(services, status, sel))
    assert "no WordNet ground truth" in text
    assert page.wordnet_node_stats(services, view, view.layout.root) == []


# -- class names where they fit (issue 13 #2) ----------------------------------------------


def test_thinned_labels_keep_every_kth_and_the_selected():
    from classmap.app.pages.classes.figures import LEAF_LABELS, thinned_labels

    names = [f"c{k}" for k in range(LEAF_LABELS)]
    assert thinned_labels(names) == names
    assert sum(bool(t) for t in thinned_labels(names + ["x"])) == (LEAF_LABELS + 2) // 2
    many = [f"c{k}" for k in range(1000)]
    labels = thinned_labels(many, keep=[501], most=60)
    shown = [k for k, t in enumerate(labels) if t]
    assert len(shown) <= 61 and shown[:2] == [0, 17] and 501 in shown
    assert all(labels[k] == many[k] for k in shown)


def test_whole_tree_names_every_kth_leaf_and_the_focal_class(services, lite0_view):
    figure, _, _ = page.update_dendrogram_logic(services, selection(focal="n01978287"),
                                                READY, None)
    axis = figure.layout.xaxis
    assert axis.showticklabels and 10 <= len(axis.ticktext) <= 51
    assert "Dungeness crab" in axis.ticktext
    position = int(lite0_view.layout.position[118])
    assert axis.tickvals[list(axis.ticktext).index("Dungeness crab")] == position


def test_a_zoomed_subtree_of_up_to_100_classes_names_every_row_and_column(services,
                                                                         lite0_view):
    layout = lite0_view.layout
    node = next(n for n in range(layout.root, lite0_view.num_classes, -1)
                if 60 < layout.size(n) <= 100)
    sel = selection(zoom=node)
    figure, _, _ = page.update_dendrogram_logic(services, sel, READY, None)
    size = layout.size(node)
    assert len(figure.layout.xaxis.ticktext) == (size + 1) // 2  # leaves: every 2nd
    heatmap, *_ = page.update_heatmap_logic(services, sel, READY, None, None, None)
    names = [lite0_view.short_names[i] for i in layout.order[layout.first[node]:
                                                             layout.last[node] + 1]]
    assert len(heatmap.layout.yaxis.ticktext) == len(heatmap.layout.xaxis.ticktext) == size
    assert heatmap.layout.yaxis.ticktext[0] == names[0][:24] or \
        heatmap.layout.yaxis.ticktext[0].startswith(names[0][:20])
