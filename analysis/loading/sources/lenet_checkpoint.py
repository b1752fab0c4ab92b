"""``--model lenet5 --weights FILE``: a LeNet-5 checkpoint written by ``classmap train``."""

from __future__ import annotations

from typing import Any

import numpy as np

from classmap.analysis.cache import ResultCache
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.checkpoints import file_key, read_tensor_file
from classmap.analysis.loading.classifier import (
    LoadedClassifier,
    ModelSpec,
    compare_keys,
    extract_head,
    head_from_arrays,
)
from classmap.analysis.loading.classnames import checkpoint_class_names, resolve_class_names
from classmap.analysis.loading.lenet import DIGITS_MEAN, DIGITS_STD, LeNet5, LeNetPreprocess

LENET5_ARCH = "lenet5"


def matches(spec: ModelSpec) -> bool:
    return spec.head is None and spec.model == LENET5_ARCH


def validate(spec: ModelSpec) -> None:
    if spec.weights is None:
        raise ClassmapError(
            f"--model {spec.model} needs --weights FILE (a checkpoint written by 'classmap "
            f"train --arch {spec.model}'); or use the embedded --model lenet-digits"
        )


def head_key(spec: ModelSpec) -> dict[str, Any]:
    assert spec.weights is not None
    return {"model": spec.model_name, **file_key(spec.weights, "--weights")}


def load_network(spec: ModelSpec, cache: ResultCache | None) -> LoadedClassifier:
    """A LeNet-5 ``--weights`` file: channels and classes from the tensors' shapes, class
    names and input normalisation (``input_mean``/``input_std``) from its metadata."""
    assert spec.weights is not None
    state = read_tensor_file(spec.weights, "--weights")
    first, last = state.tensors.get("features.0.weight"), state.tensors.get("head.weight")
    if first is None or last is None or first.ndim != 4 or last.ndim != 2:
        raise ClassmapError(
            f"--weights {state.path.name} is not a LeNet-5 checkpoint (no features.0.weight "
            "and head.weight); write one with 'classmap train --arch lenet5', or name the "
            "checkpoint's timm architecture in --model"
        )
    channels = int(first.shape[1])
    network = LeNet5(in_channels=channels, num_classes=int(last.shape[0]))
    missing, unexpected = compare_keys(network.state_dict(), state.tensors)
    if missing or unexpected:
        raise ClassmapError(
            f"--weights {state.path.name} does not match LeNet-5: {len(missing)} missing keys "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]}); "
            "write it with 'classmap train --arch lenet5'"
        )
    try:
        network.load_state_dict({k: v.float() for k, v in state.tensors.items()}, strict=True)
    except RuntimeError as error:
        raise ClassmapError(
            f"--weights {state.path.name} does not fit LeNet-5 "
            f"({str(error).splitlines()[-1].strip()[:160]}); write it with 'classmap train'"
        ) from None
    default = ((DIGITS_MEAN,) * channels, (DIGITS_STD,) * channels)
    mean, std = (
        _channel_values(state.metadata.get(key), channels, fallback, key, state.path.name)
        for key, fallback in (("input_mean", default[0]), ("input_std", default[1]))
    )
    if min(std) <= 0:
        raise ClassmapError(
            f"--weights {state.path.name} has input_std {list(std)}; every entry must be > 0: "
            "re-write the checkpoint with 'classmap train'"
        )
    weight, bias = extract_head(network)
    classes = resolve_class_names(
        weight.shape[0], spec.classes, checkpoint_class_names(state.metadata)
    )
    head = head_from_arrays(weight, bias, classes, spec, f"LeNet-5 checkpoint {state.path}")
    preprocess = LeNetPreprocess(channels, mean, std)
    return LoadedClassifier(network.eval(), head, preprocess, preprocess.data_config(), "lenet")


def _channel_values(
    value: Any, channels: int, fallback: tuple[float, ...], key: str, name: str
) -> tuple[float, ...]:
    if value is None:
        return fallback
    if (
        not isinstance(value, list)
        or len(value) != channels
        or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in value)
    ):
        raise ClassmapError(
            f"--weights {name} has {key} {value!r}; it must list {channels} finite number(s), "
            "one per input channel: re-write the checkpoint with 'classmap train'"
        )
    return tuple(float(v) for v in value)
