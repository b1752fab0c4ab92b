"""Heatmap tiles: exact slices at full resolution, block means above the limit."""

from __future__ import annotations

import numpy as np

from classmap.app.shell.matrix_tiles import block_means, symmetric_limit, tile_from_dense, value_range


def brute_block_means(region: np.ndarray, block: int) -> np.ndarray:
    rows = range(0, region.shape[0], block)
    cols = range(0, region.shape[1], block)
    return np.array([[region[r:r + block, c:c + block].mean() for c in cols] for r in rows])


def test_block_means_equal_a_brute_force_mean():
    rng = np.random.default_rng(0)
    for shape, block in [((10, 10), 3), ((37, 23), 4), ((8, 8), 8), ((5, 9), 1)]:
        region = rng.normal(size=shape).astype(np.float32)
        np.testing.assert_allclose(block_means(region, block), brute_block_means(region, block),
                                   rtol=1e-5, atol=1e-6)


def test_small_regions_come_back_cell_by_cell():
    matrix = np.arange(100, dtype=np.float32).reshape(10, 10)
    tile = tile_from_dense(matrix, (2, 6), (3, 9), max_cells=10)
    assert tile.block == 1 and tile.full_resolution
    np.testing.assert_array_equal(tile.z, matrix[2:6, 3:9])
    assert tile.cell_span(1, 2) == (range(3, 4), range(5, 6))


def test_wide_regions_are_averaged_within_the_cell_budget():
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(2500, 2500)).astype(np.float32)
    tile = tile_from_dense(matrix, (0, 2500), (0, 2500), max_cells=1000)
    assert tile.block == 3 and tile.z.shape == (834, 834)
    np.testing.assert_allclose(tile.z[5, 7], matrix[15:18, 21:24].mean(), rtol=1e-5)
    zoomed = tile_from_dense(matrix, (100, 600), (1000, 1400), max_cells=1000)
    assert zoomed.block == 1 and zoomed.z.shape == (500, 400)
    clipped = tile_from_dense(matrix, (-5, 10), (2490, 3000), max_cells=1000)
    assert (clipped.row_start, clipped.row_stop, clipped.col_start, clipped.col_stop) == (0, 10, 2490, 2500)


def test_colour_limits_ignore_the_diagonal():
    rng = np.random.default_rng(2)
    values = rng.uniform(-0.3, 0.3, size=(300, 300)).astype(np.float32)
    values = (values + values.T) / 2
    np.fill_diagonal(values, 1.0)
    limit = symmetric_limit(values, quantile=1.0)
    assert 0.25 < limit <= 0.3
    low, high = value_range(values, quantile=0.0)
    assert low >= -0.3 and high <= 0.3
