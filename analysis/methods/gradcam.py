"""Per-image features, scores, Grad-CAM weights and maps — one forward and one backward per batch.

For every image x with feature map ``F`` of shape ``[K, H', W']`` (METHODS.md §3):

- ``features``: ``F`` averaged over space, ``[K]``;
- ``logits`` and ``softmax``, ``[C]``;
- ``grad_weights``: ``α_k = mean_ij ∂y_c/∂F_kij`` with ``c`` the predicted (max) class
  and ``y_c`` its logit — the Grad-CAM channel weights, ``[K]``;
- ``cams``: ``ReLU(Σ_k α_k F_k)``, upsampled bilinearly (``align_corners=False``) to the
  input size, then scaled to [0, 1] per image as ``(m − min) / (max − min)`` (a
  constant map, e.g. all zero after the ReLU, becomes all zero).

**One backward pass per batch.** In eval mode the images of a batch do not interact,
so ``∂(Σ_n y_{n,c_n}) / ∂F_n = ∂y_{n,c_n} / ∂F_n``: the gradient of the sum of every
image's max-class logit gives each image its own gradient.

**Only the head is differentiated.** A forward hook on the feature module swaps its
output for a detached copy that requires grad and switches grad mode on from there;
everything before runs under ``no_grad``. The backward therefore runs through the
layers after ``F`` only, and the backbone keeps no activations for it. Grad mode is
thread-local, and the hook lives in a context manager that always removes it and
restores the mode, so a shared network is never left modified.

Where ``F`` is read (:func:`find_feature_site`):

- LeNet-5: the output of ``network.features`` (``[N, 16, 10, 10]`` for 32 × 32 inputs);
- timm CNNs: ``forward_features`` (logits = ``forward_head(F)``, which is how timm's
  own ``forward`` is built); NHWC outputs (Swin …) are permuted to NCHW;
- timm ViTs: the token grid entering the last block's attention (``blocks[-1].norm1``;
  the final norm's patch tokens get no gradient when the head reads the class token),
  with the prefix tokens (class, registers) dropped and the grid shape taken from the
  model (``patch_embed.grid_size``, or ``dynamic_feat_size`` for dynamic sizes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from classmap.analysis.errors import ClassmapError

@dataclass(frozen=True)
class FeatureSite:
    """Where a network's feature map is read and how to bring it to ``[N, K, H', W']``.

    Attributes
    ----------
    name : human name of the site (``"features"``, ``"forward_features"``, ``"blocks.11.norm1"``)
    module : the module whose forward output is the raw feature tensor
    forward : images ``[N, c, H, W]`` → logits ``[N, C]``, running through ``module``
    layout : ``"NCHW"``, ``"NHWC"`` or ``"tokens"`` (``[N, T, K]``)
    num_prefix_tokens : leading non-patch tokens to drop (tokens layout)
    grid : input size ``(H, W)`` → token grid ``(H', W')`` (tokens layout)
    """

    name: str
    module: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    layout: str = "NCHW"
    num_prefix_tokens: int = 0
    grid: Callable[[tuple[int, int]], tuple[int, int]] | None = None

    def to_grid(self, raw: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Raw module output → feature map of shape ``[N, K, H', W']``."""
        if self.layout == "NCHW":
            return raw
        if self.layout == "NHWC":
            return raw.permute(0, 3, 1, 2)
        assert self.grid is not None
        height, width = self.grid(image_size)
        patches = raw[:, self.num_prefix_tokens :]
        if patches.shape[1] != height * width:
            raise ClassmapError(
                f"{self.name} has {patches.shape[1]} patch tokens but the model's grid for "
                f"{image_size[0]}×{image_size[1]} inputs is {height}×{width}; this "
                "architecture's token layout is not supported for image analyses"
            )
        return patches.reshape(raw.shape[0], height, width, raw.shape[-1]).permute(0, 3, 1, 2)


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality
class BatchActivations:
    """Everything extracted from one batch of N images (CPU arrays).

    Attributes
    ----------
    features : ndarray of shape (N, K), float32 — feature map averaged over space
    logits : ndarray of shape (N, C), float32
    softmax : ndarray of shape (N, C), float32
    grad_weights : ndarray of shape (N, K), float32 — Grad-CAM channel weights α
    cams : ndarray of shape (N, H, W), float32 in [0, 1] — Grad-CAM maps at input size
    preds : ndarray of shape (N,), int64 — the max class whose logit was differentiated
    grid_size : (H', W') of the feature map
    """

    features: np.ndarray
    logits: np.ndarray
    softmax: np.ndarray
    grad_weights: np.ndarray
    cams: np.ndarray
    preds: np.ndarray
    grid_size: tuple[int, int]


def find_feature_site(network: nn.Module, family: str = "timm") -> FeatureSite:
    """The feature site of a LeNet-5 (``family="lenet"``), timm CNN or timm ViT.

    Raises
    ------
    ClassmapError
        for an architecture whose feature map cannot be located.
    """
    if family == "lenet":
        return FeatureSite("features", network.features, network)
    blocks = getattr(network, "blocks", None)
    patch_embed = getattr(network, "patch_embed", None)
    if patch_embed is not None and isinstance(blocks, nn.Sequential) and len(blocks) and hasattr(
        blocks[-1], "norm1"
    ):
        return FeatureSite(
            name=f"blocks.{len(blocks) - 1}.norm1",
            module=blocks[-1].norm1,
            forward=network,
            layout="tokens",
            num_prefix_tokens=int(getattr(network, "num_prefix_tokens", 0)),
            grid=_vit_grid(network),
        )
    if hasattr(network, "forward_features") and hasattr(network, "forward_head"):
        tap = nn.Identity()

        def forward(images: torch.Tensor) -> torch.Tensor:
            return network.forward_head(tap(network.forward_features(images)))

        layout = "NHWC" if str(getattr(network, "output_fmt", "NCHW")) == "NHWC" else "NCHW"
        return FeatureSite("forward_features", tap, forward, layout)
    raise ClassmapError(
        f"cannot locate the last feature map of {type(network).__name__}; image analyses "
        "support LeNet-5 and timm CNNs and ViTs"
    )


def _vit_grid(network: nn.Module) -> Callable[[tuple[int, int]], tuple[int, int]]:
    patch_embed = network.patch_embed

    def grid(image_size: tuple[int, int]) -> tuple[int, int]:
        if getattr(network, "dynamic_img_size", False) and hasattr(patch_embed, "dynamic_feat_size"):
            height, width = patch_embed.dynamic_feat_size(image_size)
        else:
            height, width = patch_embed.grid_size
        return int(height), int(width)

    return grid


class FeatureCapture:
    """Holds the feature tensor captured during one forward pass (a leaf requiring grad)."""

    def __init__(self, site: FeatureSite) -> None:
        self.site = site
        self.output: torch.Tensor | None = None

    def _hook(self, _module: nn.Module, _inputs: object, output: object) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise ClassmapError(
                f"{self.site.name} returns {type(output).__name__}, not a tensor; "
                "this architecture is not supported for image analyses"
            )
        if self.output is not None:
            raise ClassmapError(
                f"{self.site.name} ran twice in one forward pass; its feature map is "
                "ambiguous, so this architecture is not supported for image analyses"
            )
        leaf = output.detach().requires_grad_(True)
        self.output = leaf
        # Record the graph from the feature map on; the backbone ran without one.
        torch.set_grad_enabled(True)
        return leaf


@contextlib.contextmanager
def capture_features(site: FeatureSite) -> Iterator[FeatureCapture]:
    """Hook ``site.module`` for one forward pass; the hook is removed on exit, always.

    Inside the block, run ``site.forward(images)``: layers before the site run under
    ``no_grad``, the site's output becomes ``capture.output`` (a leaf that requires
    grad), and the layers after it record a graph. Grad mode is restored on exit.
    """
    capture = FeatureCapture(site)
    previous = torch.is_grad_enabled()
    handle = site.module.register_forward_hook(capture._hook)
    try:
        with torch.inference_mode(False):
            torch.set_grad_enabled(False)
            yield capture
    finally:
        handle.remove()
        torch.set_grad_enabled(previous)


@dataclass(frozen=True, eq=False)  # holds tensors: identity equality
class FeatureGradients:
    """A batch's feature map and the gradient of a score with respect to it.

    Attributes
    ----------
    feature_map : tensor of shape (N, K, H', W'), float32, detached
    gradient : tensor of shape (N, K, H', W'), float32 — ∂score/∂feature_map
    logits : tensor of shape (N, C), float32, detached
    """

    feature_map: torch.Tensor
    gradient: torch.Tensor
    logits: torch.Tensor


def feature_gradients(
    site: FeatureSite,
    images: torch.Tensor,
    score: Callable[[torch.Tensor], torch.Tensor],
    *,
    device: str | torch.device | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> FeatureGradients:
    """The one Grad-CAM extractor: one forward pass, one backward pass through the head.

    Parameters
    ----------
    site : from :func:`find_feature_site`; its network must be in eval mode on ``device``
    images : tensor of shape (N, c, H, W), preprocessed for the network
    score : logits ``[N, C]`` → the scalar to differentiate (e.g. the sum of each
        image's max-class logit, or of one class's logits)
    device : where to compute (default: the device of ``images``)
    memory_format : layout of the input batch

    Hooks live in :func:`capture_features` (always removed); only the layers after the
    site record a graph.
    """
    if images.ndim != 4 or images.shape[0] == 0:
        raise ClassmapError(
            f"images have shape {tuple(images.shape)}; pass a batch of shape (N, channels, H, W)"
        )
    target = torch.device(device) if device is not None else images.device
    image_size = (int(images.shape[-2]), int(images.shape[-1]))
    with capture_features(site) as capture:
        logits = site.forward(images.to(target).contiguous(memory_format=memory_format))
        if capture.output is None:
            raise ClassmapError(
                f"{site.name} did not run in the forward pass; cannot read its feature map"
            )
        raw = capture.output
        if not logits.requires_grad:
            raise ClassmapError(
                f"the logits do not depend on {site.name}; its gradients are undefined"
            )
        (raw_grad,) = torch.autograd.grad(score(logits), raw)
    with torch.inference_mode():
        return FeatureGradients(
            feature_map=site.to_grid(raw.detach(), image_size).float(),
            gradient=site.to_grid(raw_grad, image_size).float(),
            logits=logits.detach().float(),
        )


def extract_batch(
    site: FeatureSite,
    images: torch.Tensor,
    *,
    device: str | torch.device | None = None,
    memory_format: torch.memory_format = torch.channels_last,
) -> BatchActivations:
    """Features, scores, Grad-CAM weights and maps of a batch, with one backward pass.

    Parameters
    ----------
    site : from :func:`find_feature_site`; its network must be in eval mode on ``device``
    images : tensor of shape (N, c, H, W), preprocessed for the network
    device : where to compute (default: the device of ``images``)
    memory_format : layout of the input batch. ``channels_last`` by default: oneDNN's
        convolutions run EfficientNet-Lite0 ~1.3× faster on a 2-core CPU that way, and
        the results equal the contiguous ones to float rounding (~1e-6 on the logits).

    Returns
    -------
    BatchActivations (CPU, float32)
    """
    image_size = (int(images.shape[-2]), int(images.shape[-1]))
    grads = feature_gradients(site, images, _sum_of_max_logits, device=device,
                              memory_format=memory_format)
    with torch.inference_mode():
        feature_map, logits = grads.feature_map, grads.logits
        preds = logits.argmax(dim=1)
        weights = grads.gradient.mean(dim=(2, 3))
        pooled = feature_map.mean(dim=(2, 3))
        cams = grad_cam_maps(feature_map, weights, image_size)
        return BatchActivations(
            features=pooled.cpu().numpy(),
            logits=logits.cpu().numpy(),
            softmax=logits.softmax(dim=1).cpu().numpy(),
            grad_weights=weights.cpu().numpy(),
            cams=cams.cpu().numpy(),
            preds=preds.cpu().numpy().astype(np.int64),
            grid_size=(int(feature_map.shape[-2]), int(feature_map.shape[-1])),
        )


def _sum_of_max_logits(logits: torch.Tensor) -> torch.Tensor:
    """``Σ_n y_{n, c_n}`` with ``c_n`` image n's max class: in eval mode each image gets
    its own gradient from one backward pass."""
    preds = logits.detach().argmax(dim=1)
    return logits.gather(1, preds[:, None]).sum()


def grad_cam_maps(
    feature_map: torch.Tensor, weights: torch.Tensor, image_size: tuple[int, int]
) -> torch.Tensor:
    """Grad-CAM maps ``[N, H, W]`` in [0, 1] from ``F [N, K, H', W']`` and ``α [N, K]``.

    ``ReLU(Σ_k α_k F_k)`` → bilinear upsampling to ``image_size`` (``align_corners=False``,
    the convention of OpenCV's ``resize`` that the ``grad-cam`` package uses) → per
    image ``(m − min) / (max − min)``, 0 for a constant map. Bilinear upsampling is
    affine-equivariant (its weights sum to 1), so this equals the package's
    normalise → upsample → normalise, whose ε of 1e-7 is relative to a spread of ~1.
    """
    cam = torch.relu(torch.einsum("nk,nkhw->nhw", weights, feature_map))
    if tuple(cam.shape[-2:]) != tuple(image_size):
        cam = nn.functional.interpolate(
            cam[:, None], size=image_size, mode="bilinear", align_corners=False
        )[:, 0]
    shifted = cam - cam.amin(dim=(1, 2), keepdim=True)
    spread = shifted.amax(dim=(1, 2), keepdim=True)
    # Divide by the spread itself, not spread + ε: an ε would bias maps whose raw values
    # are small (an untrained net's α ~ 1e-4). A constant map has spread 0 and stays 0.
    return shifted / spread.clamp_min(torch.finfo(shifted.dtype).tiny)
