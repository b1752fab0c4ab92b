"""Smooth Grad-CAM++ restricted to a set of the head's input channels (seed 001).

Built on the one Grad-CAM extractor (:func:`classmap.analysis.methods.gradcam.feature_gradients`):
this module supplies only the Grad-CAM++ channel weights and the channel restriction.

The seed shows, for a node of a class's channel split (``classmap.analysis.methods.channel_split``),
where in an image those channels respond. For a timm network the head's D input
features are the D channels of the last feature map ``A = forward_features(x)``
(shape [D, h, w]), pooled and fed to the classifier. Smooth Grad-CAM++ (Omeiza et
al. 2019) averages the Grad-CAM++ derivative terms over ``samples`` noisy copies of
the image:

- ``g_s = ∂S_c/∂A`` for the noisy copy ``x + ε_s``, ``ε_s ~ N(0, σ²)`` with
  ``σ = noise · (max x − min x)`` (SmoothGrad's relative noise level);
- ``D1, D2, D3`` = the means over samples of ``g_s``, ``g_s²``, ``g_s³``;
- ``α_kij = D2 / (2 D2 + Σ_ab A_kab · D3 + eps)`` (0 where ``D1 = 0``), with ``A`` the
  clean image's feature map; the exponential-score closed form of Grad-CAM++;
- channel weights ``w_k = Σ_ij α_kij · relu(D1_kij)``;
- the map ``relu(Σ_{k ∈ channels} w_k A_k)`` — the restriction is the sum over the
  node's channels only.

**At this layer the smoothing is void.** Behind a global average pool and a linear
head, ``∂S_c/∂A_kij = W_ck / (h·w)`` for every input, so ``D1, D2, D3`` do not depend
on the noise and Smooth Grad-CAM++ equals Grad-CAM++ (the clean map ``A`` is what
changes from image to image). ``samples``/``noise`` are kept so the method is the
seed's as named, and for networks whose head is not a pooled linear layer; a test
pins the equality for Lite0.

``eps`` (1e-6) is the stabiliser the grad-cam package uses, so with ``samples=1`` and
``noise=0`` the full-channel map equals its ``GradCAMPlusPlus`` (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.classifier import LoadedClassifier
from classmap.analysis.methods.gradcam import feature_gradients, find_feature_site

DEFAULT_SAMPLES = 8
DEFAULT_NOISE = 0.15
EPS = 1e-6


@dataclass(frozen=True)
class ChannelCam:
    """A Smooth Grad-CAM++ map of one class restricted to some channels.

    cam : ndarray [h, w] float32 — relu of the restricted weighted sum (not normalised)
    weights : ndarray [D] float32 — Grad-CAM++ weight of every channel
    activations : ndarray [D, h, w] float32 — the clean image's feature map
    channels : ndarray [n] int64 — the channels summed
    """

    class_index: int
    cam: np.ndarray
    weights: np.ndarray
    activations: np.ndarray
    channels: np.ndarray

    def upsampled(self, size: tuple[int, int]) -> np.ndarray:
        """The map min–max normalised to [0, 1] and resized (bilinear) to ``size`` = (H, W)."""
        cam = torch.from_numpy(self.cam)[None, None]
        out = torch.nn.functional.interpolate(cam, size=size, mode="bilinear",
                                              align_corners=False)[0, 0].numpy()
        low, high = float(out.min()), float(out.max())
        return (out - low) / (high - low) if high > low else np.zeros_like(out)


def check_channels(channels: np.ndarray, dim: int) -> np.ndarray:
    """Channels as a sorted unique int64 array within ``[0, dim)``, else raise."""
    values = np.unique(np.asarray(channels, dtype=np.int64).ravel())
    if values.size == 0 or values[0] < 0 or values[-1] >= dim:
        raise ClassmapError(f"channels must be a non-empty set of indices in 0 … {dim - 1}; "
                            "pass a node of the class's channel split")
    return values


def smooth_gradcam_pp_channels(
    classifier: LoadedClassifier,
    image: torch.Tensor,
    class_index: int,
    channels: np.ndarray,
    *,
    samples: int = DEFAULT_SAMPLES,
    noise: float = DEFAULT_NOISE,
    seed: int = 0,
    eps: float = EPS,
) -> ChannelCam:
    """Smooth Grad-CAM++ of ``class_index`` on ``image`` ([3, H, W], preprocessed),
    restricted to ``channels`` of the head's input features. ``samples`` noisy copies
    with noise σ = ``noise`` × the image's value range, drawn from ``seed``."""
    if classifier.family != "timm":
        raise ClassmapError(f"channel CAMs need a timm network, got a {classifier.family} "
                            "model; use an embedded timm model such as lite0-imagenet")
    if samples < 1 or not 0 <= noise < 10:
        raise ClassmapError(f"samples={samples}, noise={noise} are invalid; give samples ≥ 1 "
                            "and 0 ≤ noise < 10")
    network = classifier.network
    device = classifier.device
    dim = classifier.head.feature_dim
    picked = check_channels(channels, dim)
    if not 0 <= class_index < classifier.head.num_classes:
        raise ClassmapError(f"class index {class_index} is out of range; choose 0 … "
                            f"{classifier.head.num_classes - 1}")
    x = image.to(device=device, dtype=torch.float32)[None]
    site = find_feature_site(network, classifier.family)

    def class_score(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, class_index].sum()

    clean = feature_gradients(site, x, class_score).feature_map[0]
    if clean.shape[0] != dim:
        raise ClassmapError(f"the feature map has {clean.shape[0]} channels but the head "
                            f"reads {dim}; this network's head is not a pooled linear layer")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    sigma = noise * float(x.max() - x.min())
    d1 = torch.zeros_like(clean, dtype=torch.float64)
    d2 = torch.zeros_like(d1)
    d3 = torch.zeros_like(d1)
    for _ in range(samples):
        noisy = x + sigma * torch.randn(x.shape, generator=generator).to(device)
        g = feature_gradients(site, noisy, class_score).gradient[0].double()
        d1 += g
        d2 += g**2
        d3 += g**3
    d1, d2, d3 = d1 / samples, d2 / samples, d3 / samples
    total = clean.double().sum(dim=(1, 2), keepdim=True)
    alpha = d2 / (2 * d2 + total * d3 + eps)
    alpha = torch.where(d1 != 0, alpha, torch.zeros_like(alpha))
    weights = (alpha * d1.clamp(min=0)).sum(dim=(1, 2))
    index = torch.from_numpy(picked).to(device)
    cam = torch.relu((weights[index, None, None] * clean.double()[index]).sum(dim=0))
    return ChannelCam(int(class_index), cam.float().cpu().numpy(),
                      weights.float().cpu().numpy(), clean.cpu().numpy(), picked)
