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
    if not np.issubdtype(array.dtype, np.number):
        raise ClassmapError(
            f"{what} file {path} has dtype {array.dtype}, not numbers; save a float array"
        )
    return TensorFile(path, {"": torch.as_tensor(np.asarray(array, dtype=np.float32))})


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
