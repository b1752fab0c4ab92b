"""What every model source returns: the spec asked for, the head, the loaded network.

:class:`ModelSpec` is what the user asked for (``None`` = the default);
:class:`ClassifierHead` is the final layer ``[C, D]`` with its class names and digest;
:class:`LoadedClassifier` is the whole network with its preprocessing. The helpers
here (:func:`head_from_arrays`, :func:`extract_head`, :func:`wrap_timm`) are shared by
the sources in :mod:`classmap.analysis.loading.sources`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from classmap.analysis.cache import digest_arrays
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.classnames import ClassNames, resolve_class_names

DEFAULT_MODEL = "lite0-imagenet"


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked for; every field ``None`` means "the default".

    Attributes
    ----------
    model : embedded name (``lite0-imagenet``, ``lenet-digits``) or a timm model name
    weights : path of a local checkpoint for ``model`` (timm architectures)
    head : path of a bare head matrix ``[C, D]`` (then ``model`` must be unset)
    classes : path of a class-name file (one name per line)
    head_key : with ``head``, the name of the head tensor in a file holding a whole
        network (``_fc.weight``, ``classifier`` …)
    """

    model: str | None = None
    weights: str | None = None
    head: str | None = None
    classes: str | None = None
    head_key: str | None = None

    @property
    def model_name(self) -> str:
        """The model name with the default filled in (``"head"`` for a bare head)."""
        if self.head is not None:
            return "head"
        return self.model or DEFAULT_MODEL

    @property
    def label(self) -> str:
        """A short human label, e.g. ``lite0-imagenet`` or ``resnet18 (my.pth)``."""
        if self.head is not None:
            return f"head ({Path(self.head).name})"
        if self.weights is not None:
            return f"{self.model_name} ({Path(self.weights).name})"
        return self.model_name

    def to_json(self) -> dict[str, str | None]:
        values = {
            "model": self.model_name,
            "weights": self.weights,
            "head": self.head,
            "classes": self.classes,
        }
        if self.head_key is not None:
            values["head_key"] = self.head_key
        return values


@dataclass(frozen=True)
class ClassifierHead:
    """The final layer of a classifier and its class names.

    Attributes
    ----------
    weight : ndarray of shape (C, D), float32 — one row per class
    bias : ndarray of shape (C,), float32, or None
    classes : ClassNames — ids and names of the C classes
    spec : the ModelSpec it came from
    source : human description of where the weights came from
    digest : SHA-256 of weight and bias (the cache key of every analysis of this head)
    """

    weight: np.ndarray
    bias: np.ndarray | None
    classes: ClassNames
    spec: ModelSpec
    source: str
    digest: str

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.weight.shape[1])


@dataclass
class LoadedClassifier:
    """A network ready for inference plus its head and input preprocessing.

    Attributes
    ----------
    network : nn.Module in eval mode on ``device``
    head : ClassifierHead of ``network``
    preprocess : PIL image → tensor ``[channels, H, W]`` the network expects
    data_config : timm-style data config (``input_size``, ``mean``, ``std`` …)
    family : ``"timm"`` or ``"lenet"`` — how to find its feature map
    """

    network: nn.Module
    head: ClassifierHead
    preprocess: Callable[[Any], torch.Tensor]
    data_config: dict[str, Any]
    family: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``--device`` as a torch device that exists here (None: :func:`default_device`).

    Checked before anything is loaded or read from the cache, so a bad value is
    refused even when every result is cached.

    Raises
    ------
    ClassmapError
        for a name torch does not know, a device type Classmap does not run on
        (``meta`` has no data), or CUDA/MPS that this machine does not have.
    """
    if device is None:
        return default_device()
    fix = "use cpu, cuda or cuda:N (a GPU), or leave --device out for the default"
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ClassmapError(f"unknown --device {str(device)[:40]!r}; {fix}") from None
    if target.type not in DEVICE_TYPES:
        raise ClassmapError(
            f"--device {str(device)[:40]!r} is a {target.type} device, which Classmap does not "
            f"run on; {fix}"
        )
    if target.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ClassmapError(
                f"--device {device} asks for a CUDA GPU, but torch sees none on this machine; "
                "use --device cpu, or leave it out"
            )
        if target.index is not None and target.index >= count:
            raise ClassmapError(
                f"--device {device} asks for GPU {target.index}, but this machine has {count} "
                f"(cuda:0 … cuda:{count - 1}); choose one of those"
            )
    if target.type == "mps" and not torch.backends.mps.is_available():
        raise ClassmapError(
            f"--device {device} asks for Apple's MPS, which this machine does not have; "
            "use --device cpu, or leave it out"
        )
    return target


def head_from_arrays(
    weight: np.ndarray,
    bias: np.ndarray | None,
    classes: ClassNames,
    spec: ModelSpec,
    source: str,
) -> ClassifierHead:
    """Validate a head matrix and wrap it (rank 2, finite, at least 2 classes)."""
    weight = np.asarray(weight)
    if weight.ndim != 2:
        raise ClassmapError(
            f"head has shape {tuple(weight.shape)} (rank {weight.ndim}); a classifier head is "
            "a matrix [classes, features]: reshape or select the right tensor"
        )
    weight = np.ascontiguousarray(weight, dtype=np.float32)
    if weight.shape[0] < 2:
        raise ClassmapError(
            f"head has {weight.shape[0]} class(es); relationships need at least 2 classes"
        )
    if weight.shape[1] < 2:
        raise ClassmapError(
            f"head has {weight.shape[1]} feature(s) per class; need at least 2 to compare classes"
        )
    if not np.isfinite(weight).all():
        bad = np.flatnonzero(~np.isfinite(weight).all(axis=1))
        raise ClassmapError(
            f"head has NaN or Inf weights in {len(bad)} class row(s) (first: {bad[:5].tolist()}); "
            "the checkpoint is damaged: re-export it from a healthy model"
        )
    if bias is not None:
        bias = np.ascontiguousarray(np.asarray(bias).reshape(-1), dtype=np.float32)
        if bias.shape[0] != weight.shape[0]:
            raise ClassmapError(
                f"head bias has {bias.shape[0]} entries but the weight has {weight.shape[0]} "
                "rows; give the bias that belongs to this weight, or none"
            )
        if not np.isfinite(bias).all():
            raise ClassmapError("head bias has NaN or Inf entries; re-export the head")
    return ClassifierHead(
        weight, bias, classes, spec, source, digest_arrays(weight, bias)
    )


def wrap_timm(
    network: nn.Module, spec: ModelSpec, source: str, checkpoint_names: list[str] | None
) -> LoadedClassifier:
    """Wrap a timm network: its head, class names and timm's own preprocessing."""
    import timm

    weight, bias = extract_head(network)
    classes = resolve_class_names(weight.shape[0], spec.classes, checkpoint_names)
    head = head_from_arrays(weight, bias, classes, spec, source)
    data_config = timm.data.resolve_data_config({}, model=network)
    preprocess = timm.data.create_transform(**data_config)
    return LoadedClassifier(network.eval(), head, preprocess, data_config, "timm")


def extract_head(network: nn.Module) -> tuple[np.ndarray, np.ndarray | None]:
    """Find the classifier head of any network and return ``(weight [C, D], bias [C])``.

    Linear heads and 1×1 convolution heads are accepted. timm's distilled models
    (DeiT) return a tuple ``(head, head_dist)``: the class-token head ``head`` is used,
    because that is the layer trained on the labels. An ``Identity`` head (a model
    created with ``num_classes=0``) is an error.
    """
    module: Any = network.get_classifier() if hasattr(network, "get_classifier") else None
    if isinstance(module, (tuple, list)):
        module = module[0]
    if module is None:
        module = _last_linear_or_conv(network)
    if isinstance(module, nn.Identity):
        raise ClassmapError(
            "the model has no classifier head (it ends in Identity, e.g. num_classes=0); "
            "use a checkpoint with its head, or pass the head itself with --head"
        )
    if isinstance(module, nn.Sequential):
        module = _last_linear_or_conv(module)
    if isinstance(module, nn.Linear):
        weight = module.weight
    elif isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1):
        weight = module.weight.reshape(module.weight.shape[0], -1)
    elif isinstance(module, nn.Conv2d):
        raise ClassmapError(
            f"the classifier head is a {module.kernel_size[0]}×{module.kernel_size[1]} "
            "convolution; only linear and 1×1 convolution heads are class-by-feature matrices"
        )
    else:
        raise ClassmapError(
            f"could not find a linear classifier head (found {type(module).__name__}); "
            "export the head matrix and pass it with --head"
        )
    bias = None if module.bias is None else module.bias.detach().float().cpu().numpy()
    return weight.detach().float().cpu().numpy(), bias


def _last_linear_or_conv(network: nn.Module) -> nn.Module:
    last: nn.Module | None = None
    for module in network.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            last = module
    if last is None:
        raise ClassmapError(
            f"{type(network).__name__} has no Linear or Conv2d layer to use as its head; "
            "pass the head matrix with --head"
        )
    return last


def compare_keys(
    expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    """State-dict keys ``(missing, unexpected)`` of ``given`` against ``expected``."""
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    return missing, unexpected
