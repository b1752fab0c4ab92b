"""Pictures and Grad-CAM overlays as PNG data URIs, built on the server (Pillow + numpy).

No plotly and no dash here. A Grad-CAM map ``[H, W]`` lives on the network's input
grid; the picture is brought onto that grid the way preprocessing framed it (scaled
to cover it, then centre-cropped by ``crop_pct`` — for LeNet on the digits this is
a plain resize), then both are enlarged for display, the map coloured with a
perceptual colour map and blended over the grey picture.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

DISPLAY_SIZE = 224  # pixels of the longer side in the page
CAM_ALPHA = 0.5
# Anchors of matplotlib's "inferno" (perceptually uniform, readable in grey print).
_INFERNO = np.array([
    [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
    [245, 125, 21], [250, 193, 39], [252, 255, 164],
], dtype=np.float64)


def colour_map(values: np.ndarray) -> np.ndarray:
    """Values ``[H, W]`` in [0, 1] → RGB ``[H, W, 3]`` uint8 (inferno, linear between anchors)."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, 1.0)
    position = v * (len(_INFERNO) - 1)
    low = np.floor(position).astype(int).clip(0, len(_INFERNO) - 2)
    t = (position - low)[..., None]
    rgb = _INFERNO[low] * (1 - t) + _INFERNO[low + 1] * t
    return np.round(rgb).astype(np.uint8)


def to_rgb(picture: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB (mode ``F`` is taken as grey values in [0, 1])."""
    if picture.mode == "F":
        grey = np.clip(np.asarray(picture, dtype=np.float32), 0.0, 1.0)
        return Image.fromarray(np.round(grey * 255).astype(np.uint8), mode="L").convert("RGB")
    return picture.convert("RGB")


def frame_like_input(picture: Image.Image, size: tuple[int, int],
                     crop_pct: float = 1.0) -> Image.Image:
    """``picture`` as the network saw it on a grid of ``size`` = (H, W): cover, centre-crop."""
    height, width = size
    w, h = picture.size
    scale = max(height / h, width / w) / max(min(crop_pct, 1.0), 1e-3)
    resized = picture.resize((max(width, round(w * scale)), max(height, round(h * scale))),
                             Image.Resampling.BILINEAR)
    left = (resized.size[0] - width) // 2
    top = (resized.size[1] - height) // 2
    return resized.crop((left, top, left + width, top + height))


def display_size(size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) in the page for a grid of ``size`` = (H, W)."""
    height, width = size
    factor = DISPLAY_SIZE / max(height, width)
    return max(1, round(width * factor)), max(1, round(height * factor))


def png_uri(picture: Image.Image) -> str:
    """``data:image/png;base64,…`` of ``picture``."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_uri(picture: Image.Image, size: tuple[int, int], crop_pct: float = 1.0) -> str:
    """The picture framed like the input grid ``size`` (H, W), enlarged for display."""
    framed = frame_like_input(to_rgb(picture), size, crop_pct)
    small = max(picture.size) < 64
    resample = Image.Resampling.NEAREST if small else Image.Resampling.BILINEAR
    return png_uri(to_rgb(picture).resize(display_size(size), resample) if small
                   else framed.resize(display_size(size), resample))


def cam_overlay(picture: Image.Image, cam: np.ndarray, *, crop_pct: float = 1.0,
                alpha: float = CAM_ALPHA) -> Image.Image:
    """The Grad-CAM map ``[H, W]`` (values in [0, 1]) coloured over the grey picture."""
    cam = np.asarray(cam, dtype=np.float32)
    size = (int(cam.shape[0]), int(cam.shape[1]))
    out = display_size(size)
    grey = frame_like_input(to_rgb(picture), size, crop_pct).convert("L").resize(
        out, Image.Resampling.BILINEAR)
    heat = Image.fromarray(np.round(np.clip(cam, 0, 1) * 255).astype(np.uint8), mode="L").resize(
        out, Image.Resampling.BILINEAR)
    coloured = colour_map(np.asarray(heat, dtype=np.float64) / 255.0).astype(np.float64)
    base = np.repeat(np.asarray(grey, dtype=np.float64)[..., None], 3, axis=2)
    blended = (1 - alpha) * base + alpha * coloured
    return Image.fromarray(np.round(blended).clip(0, 255).astype(np.uint8), mode="RGB")


def cam_overlay_uri(picture: Image.Image, cam: np.ndarray, *, crop_pct: float = 1.0) -> str:
    """PNG data URI of :func:`cam_overlay`."""
    return png_uri(cam_overlay(picture, cam, crop_pct=crop_pct))
