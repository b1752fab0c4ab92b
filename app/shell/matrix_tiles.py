"""Rectangles of the ordered similarity matrix, at full or block-averaged resolution.

The heatmap never ships more than ``max_cells × max_cells`` values: a region wider
than that is shown as the mean of ``block × block`` squares (an overview); zooming
into it asks for the smaller region again, which comes back at a finer block, down
to every cell. Positions are leaf positions (dendrogram order).

No plotting here: arrays in, arrays out (and the tiles' colour codes as a palette PNG).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image
from plotly.colors import get_colorscale, sample_colorscale


PYRAMID_TILE = 256  # cells per side of a pyramid tile (analysis.methods.matrix_pyramid.TILE)


@dataclass(frozen=True)
class ColourScale:
    """How scores map to colours.

    kind : ``diverging`` (similarities, centred at 0) or ``sequential`` (distances)
    low, high : the values at the two ends of the scale (values beyond are clipped)
    label : the colour bar's title
    """

    kind: str
    low: float
    high: float
    label: str


@dataclass(frozen=True)
class MatrixTile:
    """A (possibly block-averaged) rectangle of the ordered matrix.

    Attributes
    ----------
    z : ndarray of shape (rows, cols), float32 — cell values (block means)
    row_start, col_start : leaf position of the first row / column covered
    row_stop, col_stop : one past the last position covered
    block : positions per cell along each axis (1 = every class)
    """

    z: np.ndarray
    row_start: int
    row_stop: int
    col_start: int
    col_stop: int
    block: int

    @property
    def full_resolution(self) -> bool:
        return self.block == 1

    def cell_span(self, row: int, col: int) -> tuple[range, range]:
        """Leaf positions covered by cell ``(row, col)`` of ``z``."""
        r0 = self.row_start + row * self.block
        c0 = self.col_start + col * self.block
        return (range(r0, min(r0 + self.block, self.row_stop)),
                range(c0, min(c0 + self.block, self.col_stop)))


def block_size(span: int, max_cells: int) -> int:
    """Smallest block so that ``span`` positions fit in ``max_cells`` cells."""
    return max(1, math.ceil(span / max_cells))


def tile_from_dense(
    ordered: np.ndarray,
    rows: tuple[int, int],
    cols: tuple[int, int],
    max_cells: int,
) -> MatrixTile:
    """Cut ``rows × cols`` (half-open leaf-position ranges) out of ``ordered``.

    Parameters
    ----------
    ordered : ndarray of shape (C, C) — the matrix with rows and columns in leaf order
    rows, cols : ``(start, stop)`` leaf positions, clipped to ``[0, C]``
    max_cells : most cells per side; larger regions are averaged in square blocks

    Returns
    -------
    MatrixTile whose ``z`` has at most ``max_cells`` rows and columns.
    """
    c = ordered.shape[0]
    r0, r1 = _clip_range(rows, c)
    c0, c1 = _clip_range(cols, c)
    block = block_size(max(r1 - r0, c1 - c0), max_cells)
    region = ordered[r0:r1, c0:c1]
    if block == 1:
        return MatrixTile(np.ascontiguousarray(region, dtype=np.float32), r0, r1, c0, c1, 1)
    return MatrixTile(block_means(region, block), r0, r1, c0, c1, block)


def tile_from_pyramid(
    fetch: Callable[[int, int, int], np.ndarray],
    num_classes: int,
    rows: tuple[int, int],
    cols: tuple[int, int],
    max_cells: int,
    tile: int = PYRAMID_TILE,
) -> MatrixTile:
    """Like :func:`tile_from_dense`, but stitched from a level-of-detail pyramid (no C × C
    matrix): for heads too large for a dense matrix.

    The block is the smallest power of two ``2^L`` that fits the span in ``max_cells``;
    the region is widened to whole blocks and its cells are cut out of the level-``L``
    pyramid tiles that cover it (``fetch(L, row_tile, col_tile)`` → array of at most
    ``tile × tile`` block means; analysis.pipelines.weights.heatmap_tile, cached).
    """
    r0, r1 = _clip_range(rows, num_classes)
    c0, c1 = _clip_range(cols, num_classes)
    level = max(0, math.ceil(math.log2(block_size(max(r1 - r0, c1 - c0), max_cells))))
    block = 1 << level

    def cells(start: int, stop: int) -> tuple[int, int]:
        return start // block, -(-stop // block)

    (ra, rb), (ca, cb) = cells(r0, r1), cells(c0, c1)
    z = np.empty((rb - ra, cb - ca), dtype=np.float32)
    for tr in range(ra // tile, -(-rb // tile)):
        for tc in range(ca // tile, -(-cb // tile)):
            part = fetch(level, tr, tc)
            # Cells of this pyramid tile that fall inside the region, in both frames.
            top, bottom = max(ra, tr * tile), min(rb, tr * tile + part.shape[0])
            left, right = max(ca, tc * tile), min(cb, tc * tile + part.shape[1])
            z[top - ra:bottom - ra, left - ca:right - ca] = part[
                top - tr * tile:bottom - tr * tile, left - tc * tile:right - tc * tile]
    return MatrixTile(z, ra * block, min(rb * block, num_classes), ca * block,
                      min(cb * block, num_classes), block)


def block_means(region: np.ndarray, block: int) -> np.ndarray:
    """Means of ``block × block`` squares (the last row/column of blocks may be smaller).

    Parameters
    ----------
    region : ndarray of shape (R, K)

    Returns
    -------
    ndarray of shape (ceil(R / block), ceil(K / block)), float32
    """
    rows = np.arange(0, region.shape[0], block)
    cols = np.arange(0, region.shape[1], block)
    sums = np.add.reduceat(np.add.reduceat(region.astype(np.float64), rows, axis=0), cols, axis=1)
    row_counts = np.diff(np.r_[rows, region.shape[0]])
    col_counts = np.diff(np.r_[cols, region.shape[1]])
    return (sums / np.outer(row_counts, col_counts)).astype(np.float32)


def _clip_range(span: tuple[int, int], size: int) -> tuple[int, int]:
    start, stop = int(span[0]), int(span[1])
    start = min(max(start, 0), size - 1)
    stop = min(max(stop, start + 1), size)
    return start, stop


def symmetric_limit(ordered: np.ndarray, quantile: float = 0.999) -> float:
    """A colour limit m for a diverging scale centred at 0: the ``quantile`` of |off-diagonal|.

    The diagonal (self-similarity 1) would otherwise wash out every other colour; values
    beyond ±m are drawn at the end colours (the colour bar says so).
    """
    c = ordered.shape[0]
    if c < 2:
        return 1.0
    # A strided sample keeps this O(C²/step) for large C; the quantile barely moves.
    step = max(1, (c * c) // 2_000_000)
    flat = ordered.reshape(-1)[::step]
    mask = np.ones_like(flat, dtype=bool)
    idx = np.arange(0, c * c, step)
    mask &= (idx // c) != (idx % c)
    values = np.abs(flat[mask])
    limit = float(np.quantile(values, quantile)) if values.size else 1.0
    return limit if limit > 0 else 1.0


def value_range(ordered: np.ndarray, quantile: float = 0.001) -> tuple[float, float]:
    """Robust ``(low, high)`` of the off-diagonal values (for distance metrics)."""
    c = ordered.shape[0]
    step = max(1, (c * c) // 2_000_000)
    idx = np.arange(0, c * c, step)
    flat = ordered.reshape(-1)[::step][(idx // c) != (idx % c)]
    if flat.size == 0:
        return 0.0, 1.0
    low, high = np.quantile(flat, [quantile, 1.0 - quantile])
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


# -- colour codes and their PNG (the heatmap's wire format) ----------------------------

CODE_MAX = 254  # colour codes 0 … 254; the midpoint 127 is the scale's centre
SCALES = {"diverging": "RdBu_r", "sequential": "YlOrRd_r"}


def encode_codes(values: np.ndarray, scale: ColourScale) -> np.ndarray:
    """Scores → colour codes 0…254 (uint8), clipped to ``[scale.low, scale.high]``.

    For a diverging scale ``low = −high``, so 0 maps to code 127, the centre colour.
    """
    span = scale.high - scale.low or 1.0
    scaled = (np.asarray(values, dtype=np.float32) - scale.low) * (CODE_MAX / span)
    return np.clip(np.rint(scaled), 0, CODE_MAX).astype(np.uint8)


@lru_cache(maxsize=None)
def code_palette(kind: str) -> bytes:
    """RGB bytes of the 255 colours of codes 0 … CODE_MAX on scale ``kind``, shape (255·3,)."""
    colours = sample_colorscale(get_colorscale(SCALES[kind]),
                                [code / CODE_MAX for code in range(CODE_MAX + 1)],
                                colortype="tuple")
    return (np.asarray(colours) * 255).round().astype(np.uint8).tobytes()


def codes_png(codes: np.ndarray, kind: str) -> str:
    """A ``data:image/png`` URI of ``codes`` (uint8, shape (rows, cols)) in palette colours.

    Pixel (r, c) holds palette index ``codes[r, c]``; :func:`png_codes` reads it back.
    """
    image = Image.fromarray(np.ascontiguousarray(codes, dtype=np.uint8), mode="P")
    image.putpalette(code_palette(kind))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def png_codes(uri: str) -> np.ndarray:
    """The colour codes in a :func:`codes_png` URI, shape (rows, cols), uint8."""
    data = base64.b64decode(uri.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)
