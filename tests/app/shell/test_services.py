"""Services: the numbers the views show, checked against independent references."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.hierarchy import subtree_leaves

DUNGENESS = 118
KING_CRAB = 121


def test_nearest_classes_of_dungeness_crab(services, lite0_view, lite0_pearson):
    rows = services.neighbours(lite0_view, DUNGENESS, 5)
    assert rows.indices[0] == KING_CRAB and "king crab" in lite0_view.names[KING_CRAB]
    assert rows.scores[0] == pytest.approx(0.39, abs=0.01)
    reference = np.argsort(-np.where(np.arange(1000) == DUNGENESS, -np.inf,
                                     lite0_pearson[DUNGENESS]), kind="stable")[:5]
    assert rows.indices.tolist() == reference.tolist()
    np.testing.assert_allclose(rows.scores, lite0_pearson[DUNGENESS, reference], atol=1e-5)


def test_heatmap_tile_is_the_matrix_in_leaf_order(services, lite0_view, lite0_pearson):
    tile = services.heatmap_tile(lite0_view)
    assert tile.block == 1 and tile.z.shape == (1000, 1000)
    order = lite0_view.layout.order
    np.testing.assert_allclose(tile.z[:40, 100:140], lite0_pearson[np.ix_(order[:40], order[100:140])],
                               atol=1e-5)
    cell = services.cell_summary(lite0_view, 10, 500)
    assert cell["score"] == pytest.approx(lite0_pearson[order[10], order[500]], abs=1e-5)
    assert cell["row"] == lite0_view.names[order[10]]


def test_heatmap_image_is_the_tiles_png_made_once(services, lite0_view):
    from classmap.app.shell.matrix_tiles import encode_codes, png_codes

    tile, image = services.heatmap_image(lite0_view)
    again_tile, again = services.heatmap_image(lite0_view)
    assert again is image  # kept, not encoded again
    np.testing.assert_array_equal(png_codes(image), encode_codes(tile.z, lite0_view.colour_scale))
    _, zoomed = services.heatmap_image(lite0_view, (10, 60), (10, 60))
    assert png_codes(zoomed).shape == (50, 50) and zoomed is not image


def test_subtree_summary_and_cohesion(services, lite0_view, lite0_pearson):
    linkage = lite0_view.analysis.linkage
    node = next(n for n in range(1000, 1999) if 30 <= len(subtree_leaves(linkage, n)) <= 60)
    summary = services.summarise_node(lite0_view, node)
    leaves = subtree_leaves(linkage, node)
    assert sorted(summary.indices.tolist()) == leaves.tolist() and summary.contiguous
    block = lite0_pearson[np.ix_(leaves, leaves)]
    n = len(leaves)
    assert summary.cohesion == pytest.approx((block.sum() - n) / (n * (n - 1)), abs=1e-5)
    # Positions of the summary follow the dendrogram.
    positions = lite0_view.layout.position[summary.indices]
    assert np.all(np.diff(positions) == 1)


def test_lasso_summary_of_scattered_classes(services, lite0_view):
    summary = services.summarise_classes(lite0_view, [5, 900, 118])
    assert summary.count == 3 and not summary.contiguous and summary.node is None
    assert services.summarise_classes(lite0_view, [118]).cohesion is None
    with pytest.raises(ClassmapError):
        services.summarise_classes(lite0_view, [1000])


def test_finding_classes_by_id_name_synonym_and_index(lite0_view):
    assert lite0_view.find_class("n01978287") == DUNGENESS
    assert lite0_view.find_class("Dungeness crab") == DUNGENESS
    assert lite0_view.find_class("cancer magister") == DUNGENESS
    assert lite0_view.find_class("#118") == DUNGENESS
    assert lite0_view.find_class("crane") is None  # two ImageNet classes are "crane"
    assert lite0_view.search_classes("Dungeness crab")[0] == DUNGENESS
    assert DUNGENESS in lite0_view.search_classes("crab")


def test_cut_clusters_are_cached_and_contiguous(lite0_view):
    labels = lite0_view.clusters(8)
    assert labels is lite0_view.clusters(8) and len(np.unique(labels)) == 8
    by_position = labels[lite0_view.layout.order]
    assert np.all(np.diff(by_position) >= 0)
    assert lite0_view.clusters(0) is None


def test_exports(services, lite0_view):
    rows = list(csv.reader(io.StringIO(services.neighbours_csv(lite0_view, DUNGENESS))))
    assert rows[0][-1] == "cosine_similarity" and rows[1][5] == "n01981276"  # king crab
    assert len(rows) == 1 + 25
    summary = services.summarise_node(lite0_view, 1990)
    table = list(csv.DictReader(io.StringIO(services.selection_csv(lite0_view, summary, 8))))
    assert len(table) == summary.count
    assert [int(r["position"]) for r in table] == sorted(int(r["position"]) for r in table)
    newick = services.newick(lite0_view)
    assert newick.endswith(";\n") and newick.count("'Dungeness crab, Cancer magister'") == 1


def test_planted_head_clusters_come_back(services):
    view = services.view(("small", "cosine", "ward"))
    labels = view.clusters(6)
    truth = np.repeat(np.arange(6), 10)
    assert all(len(set(labels[truth == g])) == 1 for g in range(6))


def test_wide_heads_get_block_tiles(services):
    view = services.view(("wide", "cosine", "ward"))
    tile = services.heatmap_tile(view)
    assert tile.block == 3 and tile.z.shape == (834, 834)
    zoom = services.heatmap_tile(view, (0, 300), (0, 300))
    assert zoom.block == 1
    np.testing.assert_allclose(zoom.z, view.ordered[:300, :300])


def test_a_broken_model_fails_clearly_and_alone(services):
    with pytest.raises(ClassmapError, match="rank 1"):
        services.view(("broken", "cosine", "ward"))
    assert services.view(("small", "cosine", "ward")).num_classes == 60


def test_embedding_is_cached_in_memory(services):
    first = services.embedding("small", "pca")
    assert first.coords.shape == (60, 2) and services.embedding("small", "pca") is first
    assert services.embedding_ready("small", "pca")
