"""Small pictures of a data set's images, served by one authenticated route (issue 14).

The pages never send an image path to the browser: a thumbnail is named by
(model id, data set id, image index, kind) in the query of :data:`ROUTE`::

    /_classmap/thumbnail?model=lenet-digits&data=digits&index=5&kind=image   (the picture)
    /_classmap/thumbnail?model=lenet-digits&data=digits&index=5&kind=cam     (Grad-CAM over it)

Every part is checked on the server (:func:`parse_request`): the model and the data
set must be configured ones, the index a whole number within the data set, the kind
one of :data:`KINDS`; anything else is a 4xx with a one-line text naming the problem
and the fix, and never a path. The route sits behind the access guard that runs
before every route (app/hosting/access.py), so it needs the same credentials as the
pages. An image folder is never read here: its scan must have been stored by the
image pages' background job (:meth:`ImageServices.stored_dataset`); only the one
image file is opened.

Caching: PNG bytes are kept in a per-process LRU (:class:`Thumbnails`) and the
response carries an ETag (image digest, index, kind, size) and
``Cache-Control: private, max-age``, so the browser asks again at most once an hour
and then gets a 304. The ``*_thumbnail`` renderers are plain functions (Pillow +
numpy, no dash).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlencode

import numpy as np
from PIL import Image

from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.data import DIGITS
from classmap.app.shell.image_render import colour_map, frame_like_input, to_rgb
from classmap.app.shell.services import LruMemo

log = logging.getLogger(__name__)

ROUTE = "/_classmap/thumbnail"
ENDPOINT = "classmap_thumbnail"
THUMB_SIZE = 64  # pixels of the longer side
KINDS = ("image", "cam")
MAX_AGE = 3600  # seconds the browser keeps a thumbnail without asking again
MEMO_SIZE = 4096  # thumbnails kept in memory (≈ 0.5–10 kB each)
VERSION = "1"  # part of the ETag: bump when the rendering changes
CAM_ALPHA = 0.5
_INDEX = re.compile(r"\d{1,9}")


class ThumbnailRefused(Exception):
    """A request the route answers with ``status`` and the one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ThumbnailRequest:
    """A checked request: configured model and data set ids, an index ≥ 0, a kind."""

    model: str
    data: str
    index: int
    kind: str


# -- rendering (no dash) ------------------------------------------------------------------


def thumb_size(grid: tuple[int, int], size: int = THUMB_SIZE) -> tuple[int, int]:
    """(width, height) of a thumbnail of an input grid ``grid`` = (H, W): longer side ``size``."""
    height, width = grid
    factor = size / max(height, width)
    return max(1, round(width * factor)), max(1, round(height * factor))


def image_thumbnail(picture: Image.Image, grid: tuple[int, int], crop_pct: float = 1.0,
                    size: int = THUMB_SIZE) -> Image.Image:
    """The picture framed like the network's input grid (H, W), as an RGB thumbnail.

    Pictures smaller than the thumbnail (the 8 × 8 digits) are enlarged with nearest
    neighbours, so their pixels stay sharp, as on the Samples page's large view.
    """
    out = thumb_size(grid, size)
    rgb = to_rgb(picture)
    if max(picture.size) < size:
        return rgb.resize(out, Image.Resampling.NEAREST)
    return frame_like_input(rgb, grid, crop_pct).resize(out, Image.Resampling.LANCZOS)


def cam_thumbnail(picture: Image.Image, cam: np.ndarray, crop_pct: float = 1.0,
                  size: int = THUMB_SIZE, alpha: float = CAM_ALPHA) -> Image.Image:
    """The Grad-CAM map ``[H, W]`` (values in [0, 1], on the input grid) coloured (inferno)
    and blended over the grey picture, as a thumbnail the size of :func:`image_thumbnail`'s."""
    cam = np.asarray(cam, dtype=np.float32)
    grid = (int(cam.shape[0]), int(cam.shape[1]))
    out = thumb_size(grid, size)
    grey = frame_like_input(to_rgb(picture), grid, crop_pct).convert("L").resize(
        out, Image.Resampling.BILINEAR)
    heat = Image.fromarray(np.round(np.clip(np.nan_to_num(cam), 0, 1) * 255).astype(np.uint8),
                           mode="L").resize(out, Image.Resampling.BILINEAR)
    coloured = colour_map(np.asarray(heat, dtype=np.float64) / 255.0).astype(np.float64)
    base = np.repeat(np.asarray(grey, dtype=np.float64)[..., None], 3, axis=2)
    blended = (1 - alpha) * base + alpha * coloured
    return Image.fromarray(np.round(blended).clip(0, 255).astype(np.uint8), mode="RGB")


def png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# -- requests ----------------------------------------------------------------------------------


def parse_request(args: Mapping[str, Any], model_ids: tuple[str, ...],
                  data_ids: tuple[str, ...]) -> ThumbnailRequest:
    """The query's (model, data, index, kind), checked against the configured ids; a
    :class:`ThumbnailRefused` (400/404) otherwise. The range of ``index`` is checked
    once the data set is known (:meth:`Thumbnails.render`)."""
    model, data = args.get("model"), args.get("data")
    index, kind = args.get("index"), args.get("kind") or "image"
    if model not in model_ids:
        raise ThumbnailRefused(404, "unknown model; pass model= one of the models in the "
                                    "page's Model menu")
    if data not in data_ids:
        raise ThumbnailRefused(404, "unknown data set; pass data= one of the data sets in "
                                    "the image pages' Data set menu")
    if kind not in KINDS:
        raise ThumbnailRefused(400, f"unknown kind; pass kind= one of {', '.join(KINDS)}")
    if not isinstance(index, str) or not _INDEX.fullmatch(index):
        raise ThumbnailRefused(400, "index must be a whole number from 0; pass index= the "
                                    "image's position in the data set")
    return ThumbnailRequest(str(model), str(data), int(index), str(kind))


def reads_digits(settings: Any, model_id: str) -> bool:
    """Whether ``model_id`` is a digits network (LeNet-5), the only kind the built-in
    ``digits`` data set fits (known from its spec, without loading anything)."""
    from classmap.analysis.loading.models import LENET5_ARCH, LENET_DIGITS

    try:
        entry = settings.model(model_id)
    except Exception:  # an unknown id
        return False
    return entry.spec.head is None and entry.spec.model_name in (LENET_DIGITS, LENET5_ARCH)


class Thumbnails:
    """Thumbnails of one server process, rendered once and kept (LRU).

    Parameters
    ----------
    images : the app's ImageServices (data sets, networks, cached image analyses)
    size : pixels of a thumbnail's longer side
    """

    def __init__(self, images: Any, size: int = THUMB_SIZE, memo_size: int = MEMO_SIZE) -> None:
        self.images = images
        self.size = int(size)
        self._memo: LruMemo[tuple[bytes, str]] = LruMemo(memo_size)

    def render(self, request: ThumbnailRequest) -> tuple[bytes, str]:
        """(PNG bytes, ETag) of ``request``; :class:`ThumbnailRefused` when it cannot be
        served (out of range, data set not read yet, Grad-CAM not computed yet)."""
        images = self.images
        if request.data == DIGITS and not reads_digits(images.services.settings, request.model):
            raise ThumbnailRefused(404, f"model {request.model} has no images in data set "
                                        "digits (it is not a digits model); pick a data set "
                                        "of the model's classes")
        try:
            dataset = images.stored_dataset(request.model, request.data)
        except ClassmapError as error:
            log.info("thumbnail of %s on %s refused: %s", request.model, request.data, error)
            raise ThumbnailRefused(404, f"model {request.model} has no images in data set "
                                        f"{request.data} (its classes do not match); pick a "
                                        "data set of the model's classes") from None
        if dataset is None:
            raise ThumbnailRefused(409, f"the images of data set {request.data} are not read "
                                        "yet; open the Samples page once to read them")
        count = len(dataset)
        if request.index >= count:
            raise ThumbnailRefused(404, f"image index {request.index} is out of range; data "
                                        f"set {request.data} has {count} images "
                                        f"(0 … {count - 1})")
        reps = None
        if request.kind == "cam":
            if not images.ready(request.model, request.data):
                raise ThumbnailRefused(409, "the Grad-CAM maps of this data set are not "
                                            "computed yet; open the Samples page to compute "
                                            "them")
            reps = images.result(request.model, request.data).representations
        key = (request.model, request.data, request.index, request.kind, dataset.digest,
               reps.key if reps is not None else "")
        return self._memo.get(key, lambda: self._draw(request, dataset, reps))

    def _draw(self, request: ThumbnailRequest, dataset: Any, reps: Any) -> tuple[bytes, str]:
        classifier = self.images.classifier(request.model)
        config = classifier.data_config
        crop = float(config.get("crop_pct") or 1.0)
        try:
            picture = dataset.load_image(request.index)
        except ClassmapError as error:  # the file changed since the scan
            log.warning("thumbnail %s of %s: %s", request.index, request.data, error)
            raise ThumbnailRefused(410, "this image changed since the data set was read; "
                                        "open the Samples page to read it again") from None
        if reps is not None:
            cam = np.asarray(reps.cams[request.index], dtype=np.float32)
            picture = cam_thumbnail(picture, cam, crop, self.size)
        else:
            grid = tuple(int(v) for v in config["input_size"][1:3])
            picture = image_thumbnail(picture, grid, crop, self.size)  # type: ignore[arg-type]
        data = png_bytes(picture)
        tag = hashlib.sha256("\0".join([
            VERSION, str(self.size), request.kind, dataset.digest, str(request.index),
            reps.key if reps is not None else ""]).encode()).hexdigest()[:32]
        return data, tag


# -- the route -------------------------------------------------------------------------------


def thumbnail_url(app: Any, model: str, data: str, kind: str = "image") -> str:
    """The browser's URL of ``kind`` thumbnails of (model, data) without the index: the
    page appends the index (``url + str(index)``). Under the app's URL prefix."""
    query = urlencode({"model": model, "data": data, "kind": kind})
    return f"{app.get_relative_path(ROUTE)}?{query}&index="


def register_thumbnail_route(app: Any, services: Any) -> Thumbnails:
    """Add the thumbnail route to ``app``'s Flask server (once; later calls return the
    same :class:`Thumbnails`). The access guard installed by ``create_app`` runs before
    it like before every route."""
    import flask

    from classmap.app.shell.images import image_services_for

    images = image_services_for(services)  # first: owned() is not re-entrant
    thumbnails = services.owned("thumbnails", lambda: Thumbnails(images))
    server = app.server
    if ENDPOINT in server.view_functions:
        return thumbnails
    prefix = (getattr(app.config, "routes_pathname_prefix", None) or "/").rstrip("/")

    def thumbnail() -> Any:
        images = thumbnails.images
        try:
            request = parse_request(flask.request.args, tuple(services.settings.model_ids),
                                    tuple(images.data_ids))
            data, tag = thumbnails.render(request)
        except ThumbnailRefused as refused:
            response = flask.make_response(refused.message + "\n", refused.status)
            response.mimetype = "text/plain"
            response.headers["Cache-Control"] = "no-store"
            return response
        response = flask.make_response(data)
        response.mimetype = "image/png"
        response.set_etag(tag)
        response.headers["Cache-Control"] = f"private, max-age={MAX_AGE}"
        return response.make_conditional(flask.request)

    server.add_url_rule(prefix + ROUTE, ENDPOINT, thumbnail, methods=["GET"])
    return thumbnails


__all__ = ["KINDS", "ROUTE", "THUMB_SIZE", "ThumbnailRefused", "ThumbnailRequest", "Thumbnails",
           "cam_thumbnail", "image_thumbnail", "parse_request", "register_thumbnail_route",
           "thumb_size", "thumbnail_url"]
