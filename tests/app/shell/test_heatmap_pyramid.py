"""The heatmap of a head too large for a dense matrix: stitched from the cached tile pyramid."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from classmap.analysis.cache import ResultCache
from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.matrix_pyramid import check_tile
from classmap.analysis.methods.similarity import standardise_rows
from classmap.analysis.synthetic import planted_head
from classmap.app.config import Settings
from classmap.app.shell.matrix_tiles import block_means, tile_from_dense, tile_from_pyramid


def _dense_pyramid_fetch(dense: np.ndarray, tile: int):
    """Reference pyramid tiles cut from a dense matrix by numpy block means."""

    def fetch(level: int, row: int, col: int) -> np.ndarray:
        check_tile(dense.shape[0], level, row, col, tile)  # as the cached pyramid does
        width = tile << level
        region = dense[row * width:(row + 1) * width, col * width:(col + 1) * width]
        return block_means(region, 1 << level)

    return fetch


@pytest.mark.parametrize("rows,cols,max_cells", [
    ((0, 300), (0, 300), 40), ((17, 230), (101, 299), 25), ((5, 45), (60, 70), 100),
    ((0, 300), (0, 300), 300), ((0, 300), (0, 300), 32),
])
def test_pyramid_tiles_stitch_into_the_dense_tile(rows, cols, max_cells):
    dense = np.random.default_rng(0).normal(size=(300, 300)).astype(np.float32)
    ours = tile_from_pyramid(_dense_pyramid_fetch(dense, 32), 300, rows, cols, max_cells,
                             tile=32)
    assert ours.block & (ours.block - 1) == 0  # a power of two
    assert max(ours.z.shape) <= max_cells
    # The same region widened to whole blocks, cut from the dense matrix.
    expected = tile_from_dense(dense, (ours.row_start, ours.row_stop),
                               (ours.col_start, ours.col_stop), max_cells=10**9)
    np.testing.assert_allclose(ours.z, block_means(expected.z, ours.block), rtol=1e-5)
    assert ours.row_start <= rows[0] and ours.row_stop >= rows[1]
    assert ours.col_start <= cols[0] and ours.col_stop >= cols[1]


def test_a_dense_limit_below_a_pyramid_tile_is_refused(tmp_path):
    # Smaller limits asked the pyramid for levels above its one-tile top (30,000 classes
    # with a limit of 100: "tile (9, 0, 0) does not exist").
    with pytest.raises(ClassmapError, match="use at least 256"):
        Settings.create(cache_dir=tmp_path / "c", jobs_dir=tmp_path / "j", environ={},
                        warm_default=False, dense_heatmap_limit=100)


@pytest.fixture()
def big_view(tmp_path, monkeypatch):
    """A 1,200-class view with the dense limit lowered to 500 (the 21k case, scaled down)."""
    import classmap.analysis.pipelines.weights as pipeline
    from classmap.app.shell.services import Services

    monkeypatch.setattr(pipeline, "MAX_DENSE_CLASSES", 500)
    head = planted_head(1200, 64, seed=2, names=False)
    np.save(tmp_path / "big.npy", head.weight)
    settings = Settings.create(
        cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs", environ={},
        extra_models=json.dumps([{"id": "big", "head": str(tmp_path / "big.npy")}]),
        warm_default=False)
    services = Services(settings, cache=ResultCache(tmp_path / "cache"))
    view = services.view(("big", "cosine", "ward"))
    assert view.ordered is None
    rows = standardise_rows(head.weight).numpy().astype(np.float64)[view.layout.order]
    return services, view, 1.0 - cdist(rows, rows, "cosine")


def test_a_head_without_a_dense_matrix_gets_overview_and_zoom_tiles(big_view):
    services, view, reference = big_view
    overview = services.heatmap_tile(view)
    assert overview.block == 2 and overview.z.shape == (600, 600)
    np.testing.assert_allclose(overview.z, block_means(reference, 2), atol=1e-5)
    zoom = services.heatmap_tile(view, (100, 400), (700, 1000))
    assert zoom.block == 1
    np.testing.assert_allclose(zoom.z, reference[100:400, 700:1000], atol=1e-5)
    cell = services.cell_summary(view, 3, 1100)
    assert cell["score"] == pytest.approx(reference[3, 1100], abs=1e-5)
    scale = view.colour_scale
    assert scale.kind == "diverging" and 0 < scale.high <= 1.0


def test_cached_pyramid_tiles_come_back_within_half_a_second(big_view):
    services, view, _ = big_view
    services.heatmap_tile(view)
    services.heatmap_tile(view, (0, 800), (0, 800))
    started = time.perf_counter()
    services.heatmap_tile(view)
    services.heatmap_tile(view, (0, 800), (0, 800))
    assert time.perf_counter() - started <= 0.5


def test_node_cohesion_without_a_dense_matrix_is_the_mean_pair_cosine(big_view):
    services, view, reference = big_view
    layout = view.layout
    for node in (layout.root, layout.root - 5, int(layout.children[-1][0])):
        first, last = int(layout.first[node]), int(layout.last[node])
        n = last - first + 1
        if n < 2:
            continue
        block = reference[first:last + 1, first:last + 1]
        expected = (block.sum() - np.trace(block)) / (n * (n - 1))
        assert services.summarise_node(view, node).cohesion == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("level,row,col", [(0, 0, 0), (0, 3, 1), (0, 4, 4), (1, 1, 2), (2, 0, 1),
                                           (3, 0, 0)])
def test_cold_cosine_tiles_from_prefix_sums_equal_the_dense_block_means(level, row, col):
    """A cold tile cut from the unit rows' prefix sums (no rows standardised per tile) is
    the block mean of the dense cosine matrix (scipy), the ragged last blocks included."""
    import torch

    from classmap.analysis.methods.matrix_pyramid import prefix_tile, unit_prefix_sums

    head = planted_head(1100, 48, seed=4, names=False)
    order = np.random.default_rng(1).permutation(1100)
    rows = standardise_rows(head.weight).numpy().astype(np.float64)[order]
    reference = 1.0 - cdist(rows, rows, "cosine")
    prefix = unit_prefix_sums(head.weight, order, chunk=300)  # chunks cross tile edges
    width = 256 << level
    region = reference[row * width:(row + 1) * width, col * width:(col + 1) * width]
    ours = prefix_tile(torch.from_numpy(prefix), level, row, col)
    np.testing.assert_allclose(ours, block_means(region, 1 << level), atol=1e-6)


def test_pipeline_tiles_with_and_without_prefix_sums_agree(big_view):
    """heatmap_tile given the prefix sums returns the per-tile standardised result."""
    from classmap.analysis.pipelines.weights import heatmap_tile

    _, view, _ = big_view
    calls = []

    def prefix():
        calls.append(1)
        return view.unit_prefix

    for level, row, col in [(0, 2, 4), (1, 0, 1), (2, 0, 0)]:
        fast = heatmap_tile(view.analysis, level, row, col, prefix=prefix)
        slow = heatmap_tile(view.analysis, level, row, col)
        np.testing.assert_allclose(fast, slow, atol=1e-6)
    assert len(calls) == 3  # the prefix path was taken for every cold tile


def test_a_reopened_big_view_reads_its_colour_scale_from_the_cache(big_view, monkeypatch):
    """A fresh process (Services) on the same cache opens the view without sampling
    scores again, with the same colour scale; node cohesion still matches."""
    import classmap.app.shell.services as services_module
    from classmap.app.shell.services import Services

    services, view, _ = big_view
    monkeypatch.setattr(services_module, "sampled_scores",
                        lambda *a, **k: pytest.fail("colour limits sampled again"))
    again = Services(services.settings, cache=ResultCache(services.cache.directory))
    reopened = again.view(("big", "cosine", "ward"))
    assert reopened.colour_scale == view.colour_scale
    node = view.layout.root - 2
    assert again.summarise_node(reopened, node).cohesion == pytest.approx(
        services.summarise_node(view, node).cohesion, abs=1e-12)
