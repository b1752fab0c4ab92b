"""``--model <timm name> --weights FILE``: a local checkpoint on a timm architecture
(safetensors, or torch ``weights_only``); the head's size follows the checkpoint.

A checkpoint in EfficientNet-PyTorch's key layout (``_conv_stem…``, ``_fc.weight``) is
mapped by name onto timm's EfficientNet / EfficientNet-Lite architectures, every
shape checked (:func:`~classmap.analysis.loading.checkpoints.efficientnet_pytorch_to_timm`)."""

from __future__ import annotations

from typing import Any

from torch import nn

from classmap.analysis.cache import ResultCache
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.checkpoints import (
    file_key,
    is_efficientnet_pytorch_layout,
    read_tensor_file,
    timm_efficientnet_from_pytorch_layout,
)
from classmap.analysis.loading.classifier import (
    LoadedClassifier,
    ModelSpec,
    compare_keys,
    wrap_timm,
)
from classmap.analysis.loading.classnames import checkpoint_class_names
from classmap.analysis.loading.sources.timm_hub import check_timm_name


def matches(spec: ModelSpec) -> bool:
    return spec.head is None and spec.weights is not None


def validate(spec: ModelSpec) -> None:
    check_timm_name(spec.model_name)


def head_key(spec: ModelSpec) -> dict[str, Any]:
    assert spec.weights is not None
    return {"model": spec.model_name, **file_key(spec.weights, "--weights")}


def load_network(spec: ModelSpec, cache: ResultCache | None) -> LoadedClassifier:
    import timm

    assert spec.weights is not None and spec.model is not None
    state = read_tensor_file(spec.weights, "--weights")
    tensors = state.tensors
    if is_efficientnet_pytorch_layout(tensors):
        network = timm_efficientnet_from_pytorch_layout(
            spec.model, tensors, f"--weights {state.path.name} on timm's {spec.model}"
        )
        source = f"checkpoint {state.path} (EfficientNet-PyTorch layout) on timm's {spec.model}"
        return wrap_timm(network, spec, source, checkpoint_class_names(state.metadata))
    network = timm.create_model(spec.model, pretrained=False)
    head_name = _head_module_name(network)
    head_weight = tensors.get(f"{head_name}.weight") if head_name else None
    if head_weight is not None and head_weight.shape[0] != network.state_dict()[
        f"{head_name}.weight"
    ].shape[0]:
        network = timm.create_model(spec.model, pretrained=False, num_classes=head_weight.shape[0])
    missing, unexpected = compare_keys(network.state_dict(), tensors)
    if missing or unexpected:
        raise ClassmapError(
            f"--weights {state.path.name} does not match timm's {spec.model}: "
            f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:2]}); check --model names the checkpoint's architecture"
        )
    try:
        network.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()
        detail = next((line.strip() for line in first if "size mismatch" in line), first[0])
        raise ClassmapError(
            f"--weights {state.path.name} does not fit timm's {spec.model} ({detail[:160]}); "
            "check --model names the checkpoint's architecture"
        ) from None
    source = f"checkpoint {state.path} on timm's {spec.model}"
    return wrap_timm(network, spec, source, checkpoint_class_names(state.metadata))


def _head_module_name(network: nn.Module) -> str | None:
    classifier = network.get_classifier() if hasattr(network, "get_classifier") else None
    if isinstance(classifier, (tuple, list)):
        classifier = classifier[0]
    for name, module in network.named_modules():
        if module is classifier:
            return name
    return None
