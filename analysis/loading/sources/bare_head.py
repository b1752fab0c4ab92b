"""``--head FILE [--classes FILE]``: a bare head matrix ``[C, D]`` (+ optional bias).

Only weight-space analyses can use it: there is no network to run images through.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from classmap.analysis.cache import ResultCache
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.checkpoints import file_key, TensorFile, read_tensor_file
from classmap.analysis.loading.classifier import (
    ClassifierHead,
    LoadedClassifier,
    ModelSpec,
    head_from_arrays,
)
from classmap.analysis.loading.classnames import checkpoint_class_names, resolve_class_names


def matches(spec: ModelSpec) -> bool:
    return spec.head is not None


def validate(spec: ModelSpec) -> None:
    if spec.model is not None or spec.weights is not None:
        raise ClassmapError(
            "--head cannot be combined with --model or --weights; give either a bare head "
            "or a model"
        )


def head_key(spec: ModelSpec) -> dict[str, Any]:
    assert spec.head is not None
    return file_key(spec.head, "--head")


def load_network(spec: ModelSpec, cache: ResultCache | None) -> LoadedClassifier:
    raise ClassmapError(
        "--head gives only the final layer, and this analysis needs the whole network; "
        "use --model NAME [--weights FILE] instead"
    )


def load_head(spec: ModelSpec, cache: ResultCache | None) -> ClassifierHead:
    assert spec.head is not None
    tensors = read_tensor_file(spec.head, "--head")
    weight, bias = _pick_head_tensors(tensors)
    classes = resolve_class_names(
        weight.shape[0] if weight.ndim >= 1 else 0,
        spec.classes,
        checkpoint_class_names(tensors.metadata),
    )
    return head_from_arrays(weight, bias, classes, spec, f"head file {tensors.path}")


def _pick_head_tensors(tensors: TensorFile) -> tuple[np.ndarray, np.ndarray | None]:
    """A bare head file holds one tensor, or ``weight`` (+ ``bias``), or ``*.weight``."""
    found = tensors.tensors
    if "" in found:
        return found[""].float().numpy(), None
    if "weight" in found:
        bias = found.get("bias")
        return found["weight"].float().numpy(), None if bias is None else bias.float().numpy()
    weights = [name for name in found if name.endswith("weight")]
    if len(found) == 1:
        return next(iter(found.values())).float().numpy(), None
    if len(weights) == 1:
        prefix = weights[0][: -len("weight")]
        bias = found.get(prefix + "bias")
        return found[weights[0]].float().numpy(), None if bias is None else bias.float().numpy()
    raise ClassmapError(
        f"--head file {tensors.path} holds {len(found)} tensors ({', '.join(list(found)[:5])}); "
        "save just the head as 'weight' (and optionally 'bias')"
    )
