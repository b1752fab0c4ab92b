"""``--head FILE [--head-key KEY] [--classes FILE]``: a bare head matrix ``[C, D]``
(+ optional bias), or the head of a file holding a whole network.

In a whole-network file the head is ``--head-key KEY`` (``KEY`` or ``KEY.weight``, with
``KEY.bias`` when present), or, without it, the one 2-D tensor whose module is named
like a head (:data:`HEAD_MODULE_NAMES`). Only weight-space analyses can use a head:
there is no network to run images through.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from classmap.analysis.cache import ResultCache
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.checkpoints import (
    TensorFile,
    file_key,
    read_tensor_file,
    real_tensors,
)
from classmap.analysis.loading.classifier import (
    ClassifierHead,
    LoadedClassifier,
    ModelSpec,
    head_from_arrays,
)
from classmap.analysis.loading.classnames import checkpoint_class_names, resolve_class_names


def matches(spec: ModelSpec) -> bool:
    return spec.head is not None


# Module names classifier heads go by (timm, torchvision, EfficientNet-PyTorch, Cadene).
HEAD_MODULE_NAMES = ("fc", "_fc", "classifier", "head", "head.fc", "last_linear", "logits")


def validate(spec: ModelSpec) -> None:
    if spec.model is not None or spec.weights is not None:
        raise ClassmapError(
            "--head cannot be combined with --model or --weights; give either a bare head "
            "or a model"
        )


def head_key(spec: ModelSpec) -> dict[str, Any]:
    assert spec.head is not None
    key = file_key(spec.head, "--head")
    return key if spec.head_key is None else {**key, "head_key": spec.head_key}


def load_network(spec: ModelSpec, cache: ResultCache | None) -> LoadedClassifier:
    raise ClassmapError(
        "--head gives only the final layer, and this analysis needs the whole network; "
        "use --model NAME [--weights FILE] instead"
    )


def load_head(spec: ModelSpec, cache: ResultCache | None) -> ClassifierHead:
    assert spec.head is not None
    tensors = real_tensors(read_tensor_file(spec.head, "--head"), "--head")
    weight, bias = _pick_head_tensors(tensors, spec.head_key)
    classes = resolve_class_names(
        weight.shape[0] if weight.ndim >= 1 else 0,
        spec.classes,
        checkpoint_class_names(tensors.metadata),
    )
    return head_from_arrays(weight, bias, classes, spec, f"head file {tensors.path}")


def _pick_head_tensors(
    tensors: TensorFile, head_key: str | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A bare head file holds one tensor, or ``weight`` (+ ``bias``), or ``*.weight``;
    a whole network's file is narrowed by ``head_key`` or by :data:`HEAD_MODULE_NAMES`."""
    found = tensors.tensors
    if head_key is not None:
        return _named_head(tensors, head_key)
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
    heads = [name for name in found if _looks_like_head(name) and found[name].ndim == 2]
    if len(heads) == 1:
        return _named_head(tensors, heads[0])
    named = f" ({len(heads)} named like a head: {', '.join(heads[:4])})" if heads else ""
    raise ClassmapError(
        f"--head file {tensors.path} holds {len(found)} tensors ({', '.join(list(found)[:5])})"
        f"{named}; name the head with --head-key KEY (e.g. --head-key _fc.weight), or save "
        "just the head as 'weight' (and optionally 'bias')"
    )


def _looks_like_head(name: str) -> bool:
    return any(name == f"{module}.weight" or name.endswith(f".{module}.weight")
               for module in HEAD_MODULE_NAMES)


def _named_head(tensors: TensorFile, key: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``key`` itself, or ``key.weight``; the bias is the matching ``….bias`` if present."""
    found = tensors.tensors
    name = key if key in found else f"{key}.weight" if f"{key}.weight" in found else None
    if name is None:
        close = [n for n in found if n.endswith("weight") and found[n].ndim == 2][:5]
        raise ClassmapError(
            f"--head-key {key!r} is not a tensor in {tensors.path.name}; choose one of its "
            f"2-D tensors, e.g. {', '.join(close) or '(none)'}"
        )
    prefix = name[: -len("weight")] if name.endswith("weight") else None
    bias = found.get(prefix + "bias") if prefix is not None else None
    return found[name].float().numpy(), None if bias is None else bias.float().numpy()
