"""Services of the Weight distributions page: ALD fits, weight histograms, channel splits.

The page's callbacks make one call here and hand the result to
``classmap.app.pages.weights.figures``. Fits come from :func:`classmap.analysis.pipelines.ald.analyse_ald` (cached on
disk by the head's digest, and here in memory per model); splits are computed per
request (≈ 2 ms per class). The page's own shareable keys are registered in the
shared selection at import (``split``, ``minsize``, ``snode``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from classmap.analysis.pipelines.ald import AldAnalysis, analyse_ald
from classmap.analysis.methods.channel_split import (
    DEFAULT_MIN_SIZE,
    DEFAULT_MODE,
    ROOT_LABEL,
    SPLIT_MODES,
    SplitTree,
    check_min_size,
    check_split_mode,
    split_head_class,
)
from classmap.analysis.methods.channel_cam import ChannelCam, smooth_gradcam_pp_channels
from classmap.analysis.loading.data import DIGITS
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.models import LENET5_ARCH, LENET_DIGITS
from classmap.app.shell.image_render import cam_overlay_uri, image_uri
from classmap.app.shell.services import LruMemo, ModelView, Services
from classmap.app.shell.images import DataSetEntry, ImageServices
from classmap.app.shell.selection import Field, parse_choice, parse_int_range, register_field

MAX_MIN_SIZE = 10_000
HISTOGRAM_BINS = 80
CURVE_POINTS = 600
CAM_IMAGE_OPTIONS = 200  # images the channel-CAM picker offers at most
NO_CAM_DATA = ("No image folder is configured for the channel CAM; start the server with "
               "'classmap serve --data DIR' (one sub-folder per class, named by class)")


def parse_split_node(text: str) -> str:
    """A split-tree node by its sign path: ``all`` (the root) or e.g. ``+-+``."""
    value = text.strip()
    if value != ROOT_LABEL and not re.fullmatch(r"[+-]{1,64}", value):
        raise ValueError("expected 'all' or a path of + and - signs")
    return value


register_field(Field("split", parse_choice(tuple(SPLIT_MODES)), DEFAULT_MODE))
register_field(Field("minsize", parse_int_range(2, MAX_MIN_SIZE), DEFAULT_MIN_SIZE))
register_field(Field("snode", parse_split_node, None, resets_on=("model", "focal")))


@dataclass(frozen=True)
class WeightHistogram:
    """Histogram of one class row.

    edges : ndarray (bins + 1,) float64; counts : ndarray (bins,) int64 (sums to D);
    density : ndarray (bins,) float64 — counts / (D · bin width)
    """

    edges: np.ndarray
    counts: np.ndarray
    density: np.ndarray


@dataclass(frozen=True)
class ClassDistribution:
    """Everything the focal-class panel shows for class ``index`` of a model.

    weights : ndarray (D,) float32 — the class's head row
    histogram : WeightHistogram of ``weights``
    x : ndarray (P,) float64 — where the densities are evaluated
    mle_density : ndarray (P,) — asymmetric Laplace (MLE) density, or None (no fit)
    seed_density : ndarray (P,) — density implied by the seed's fitted lines (NaN
        outside their ranges), or None when neither side's line is defined
    fit : the class's row of the ALD table (Python scalars, NaN where undefined)
    """

    index: int
    class_id: str
    name: str
    weights: np.ndarray
    histogram: WeightHistogram
    x: np.ndarray
    mle_density: np.ndarray | None
    seed_density: np.ndarray | None
    fit: dict[str, Any]


@dataclass(frozen=True)
class ChannelCamView:
    """The channel CAM of one image for the page.

    cam : the :class:`~analysis.channel_cam.ChannelCam` (map ``[h, w]`` on the feature grid)
    image_uri, cam_uri : ``data:image/png`` URIs of the picture and of the overlay
    sample_id : the image's id in its data set; true_class : the class of its folder
    """

    cam: ChannelCam
    image_uri: str
    cam_uri: str
    sample_id: str
    true_class: str


ALD_MODELS = 4  # models whose ALD analysis is kept in memory (least recently used dropped)


def ald_analysis(services: Services, model_id: str) -> AldAnalysis:
    """Both fits for every class of ``model_id`` (memory, then the result cache).

    Kept in a bounded memo owned by ``services`` (not a module-level table).
    """
    memo = services.owned("weights.ald", lambda: LruMemo(ALD_MODELS))
    return memo.get(model_id, lambda: analyse_ald(services.head(model_id), cache=services.cache,
                                                  device=services.settings.device))


def histogram_of(weights: np.ndarray, bins: int = HISTOGRAM_BINS) -> WeightHistogram:
    """Equal-width histogram of a row ``weights`` (D,) over its full range."""
    values = np.asarray(weights, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    density = counts / (values.size * np.diff(edges))
    return WeightHistogram(edges, counts.astype(np.int64), density)


def ald_density(x: np.ndarray, kappa: float, loc: float, scale: float) -> np.ndarray:
    """scipy's ``laplace_asymmetric(kappa, loc, scale).pdf(x)``, shape of ``x``."""
    z = (np.asarray(x, dtype=np.float64) - loc) / scale
    norm = 1.0 / (scale * (kappa + 1.0 / kappa))
    return norm * np.where(z >= 0, np.exp(-kappa * np.maximum(z, 0)),
                           np.exp(np.minimum(z, 0) / kappa))


def seed_line_density(x: np.ndarray, fit: dict[str, Any], dim: int) -> np.ndarray | None:
    """Density implied by the seed's regression lines, NaN outside their ranges.

    The line ``log|w| = a q + b`` (q ∈ (0, 1]) is a quantile function of the side's
    magnitudes: ``|w| = e^(aq+b)``, i.e. density ``1/(a|w|)`` on ``[e^b, e^(a+b)]``.
    Each side is weighted by its share of the D weights (n_pos/D, n_neg/D), so the
    whole curve integrates to the share of nonzero weights. A side whose line is
    undefined (NaN, or slope ≤ 0) contributes nothing; None when neither does.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    drawn = False
    for side, sign in (("pos", 1.0), ("neg", -1.0)):
        a, b = fit[f"slope_{side}"], fit[f"intercept_{side}"]
        count = fit[f"n_{side}"]
        if not (math.isfinite(a) and math.isfinite(b)) or a <= 0 or count == 0:
            continue
        magnitude = sign * x
        inside = (magnitude >= math.exp(b)) & (magnitude <= math.exp(a + b))
        out[inside] = (count / dim) / (a * magnitude[inside])
        drawn = True
    return out if drawn else None


def class_distribution(services: Services, view: ModelView, index: int) -> ClassDistribution:
    """Histogram, both densities and the fit row of class ``index`` of ``view``'s model."""
    if not 0 <= index < view.num_classes:
        raise ClassmapError(f"class index {index} is out of range; pick one of "
                            f"0 … {view.num_classes - 1}")
    analysis = ald_analysis(services, view.entry.id)
    weights = np.asarray(view.head.weight[index])
    fit = analysis.table.row(index)
    histogram = histogram_of(weights)
    low, high = float(histogram.edges[0]), float(histogram.edges[-1])
    pad = 0.02 * (high - low)
    x = np.linspace(low - pad, high + pad, CURVE_POINTS)
    for side, sign in (("pos", 1.0), ("neg", -1.0)):  # the lines' end points, exactly
        a, b = fit[f"slope_{side}"], fit[f"intercept_{side}"]
        if math.isfinite(a) and math.isfinite(b) and a > 0:
            x = np.union1d(x, [sign * math.exp(b), sign * math.exp(a + b)])
    kappa, loc, scale = fit["kappa_mle"], fit["loc_mle"], fit["scale_mle"]
    mle = (ald_density(x, kappa, loc, scale)
           if all(math.isfinite(v) for v in (kappa, loc, scale)) and kappa > 0 and scale > 0
           else None)
    seed = seed_line_density(x, fit, weights.shape[0])
    return ClassDistribution(index, view.ids[index], view.names[index], weights, histogram, x,
                             mle, seed, fit)


def class_split(view: ModelView, index: int, mode: str, min_size: int) -> SplitTree:
    """The recursive channel split of class ``index`` (``mode``: chains | full)."""
    check_split_mode(mode)
    check_min_size(min_size)
    return split_head_class(view.head.weight, int(index), mode=mode, min_size=int(min_size))


def node_of_label(tree: SplitTree, label: str | None) -> int | None:
    """The node with sign path ``label`` (``all`` = root), or None if the tree lacks it."""
    if not label:
        return None
    for node, name in enumerate(tree.label):
        if name == label:
            return node
    return None


def problem_classes(analysis: AldAnalysis) -> np.ndarray:
    """Indices of classes whose fits carry a status other than ``ok``, shape (n,)."""
    return np.flatnonzero(np.asarray(analysis.table.status, dtype=object) != "ok")


def icicle_columns(tree: SplitTree, class_name: str) -> dict[str, list[Any]]:
    """``tree.to_icicle(class_name)`` plus ``paths``: each node's sign path (``all`` = root)."""
    columns = tree.to_icicle(class_name)
    columns["paths"] = list(tree.label)
    return columns


# -- channel CAM (Smooth Grad-CAM++ restricted to a split node) ------------------------------


def cam_data_sets(images: ImageServices) -> tuple[DataSetEntry, ...]:
    """The configured image folders the channel CAM may read (``digits`` is left out: it is
    LeNet's data set, and LeNet's head does not read conv channels)."""
    return tuple(entry for entry in images.data_sets if entry.source != DIGITS)


def cam_unavailable(images: ImageServices, model_id: str) -> str | None:
    """Why the channel CAM cannot be drawn for ``model_id`` (one line), or None."""
    entry = images.services.model_entry(model_id)
    if entry.spec.head is not None:
        return (f"{model_id} is a bare head without a network, so there is no feature map "
                "for a channel CAM; pick a timm model such as lite0-imagenet")
    lenet_message = (f"The channel CAM needs a head that reads the last conv stage's channels "
                     f"(a timm CNN with global pooling); {model_id}'s head reads fully "
                     "connected units — pick a model such as lite0-imagenet")
    if entry.spec.model_name in (LENET_DIGITS, LENET5_ARCH):
        return lenet_message
    # Cheap checks first: loading a network only to say "no data" would slow the page.
    if not cam_data_sets(images):
        return NO_CAM_DATA
    if images.classifier(model_id).family != "timm":
        return lenet_message
    return None


def prepared_dataset(images: ImageServices, model_id: str, data_id: str):
    """The data set as a background job read it — never read here, in a request thread
    (a folder may be large or slow); ClassmapError while no job has read it yet."""
    dataset = images.stored_dataset(model_id, data_id)
    if dataset is None:
        raise ClassmapError(f"the images of data set '{data_id}' have not been read yet; open "
                            "the Samples page with this data set (a background job reads the "
                            "folder), then pick an image here")
    return dataset


def cam_image_choices(images: ImageServices, model_id: str, data_id: str,
                      class_index: int | None) -> list[tuple[int, str]]:
    """(image index, label) of the images the picker offers: those of ``class_index`` in
    the data set, else (the class has none) its first images; at most CAM_IMAGE_OPTIONS."""
    dataset = prepared_dataset(images, model_id, data_id)
    labels = np.asarray(dataset.labels)
    chosen = np.flatnonzero(labels == class_index) if class_index is not None else np.empty(0)
    if chosen.size == 0:
        chosen = np.arange(len(dataset))
    return [(int(i), f"{dataset.sample_ids[i]} ({dataset.class_names[labels[i]]})")
            for i in chosen[:CAM_IMAGE_OPTIONS]]


def channel_cam_view(images: ImageServices, model_id: str, data_id: str, image_index: int,
                     class_index: int, channels: np.ndarray) -> ChannelCamView:
    """Smooth Grad-CAM++ of ``class_index`` on image ``image_index`` of ``data_id``,
    restricted to ``channels`` (n,) of the head's inputs, with both pictures as PNG URIs."""
    dataset = prepared_dataset(images, model_id, data_id)
    if not 0 <= int(image_index) < len(dataset):
        raise ClassmapError(f"image {image_index} does not exist; {data_id} has {len(dataset)} "
                            f"images (0 … {len(dataset) - 1})")
    classifier = images.classifier(model_id)
    picture = dataset.load_image(int(image_index))
    cam = smooth_gradcam_pp_channels(classifier, classifier.preprocess(picture),
                                     int(class_index), channels)
    size = tuple(int(v) for v in classifier.data_config["input_size"][1:])
    crop = float(classifier.data_config.get("crop_pct") or 1.0)
    label = int(dataset.labels[int(image_index)])
    return ChannelCamView(cam=cam, image_uri=image_uri(picture, size, crop_pct=crop),
                          cam_uri=cam_overlay_uri(picture, cam.upsampled(size), crop_pct=crop),
                          sample_id=dataset.sample_ids[int(image_index)],
                          true_class=dataset.class_names[label])
