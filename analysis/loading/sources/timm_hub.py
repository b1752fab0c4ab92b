"""``--model <timm name>``: timm's pretrained weights from the Hugging Face hub.

Offline detection: when the weights are not in the local Hugging Face cache, a 1.5 s
TCP probe decides whether the hub is reachable (``HF_HUB_OFFLINE=1``, read through
:mod:`classmap.analysis.settings`, short-circuits it). Without it an offline download
hangs for tens of seconds before failing.
"""

from __future__ import annotations

import difflib
import socket
from pathlib import Path
from typing import Any

from classmap.analysis import settings
from classmap.analysis.cache import ResultCache
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.classifier import LoadedClassifier, ModelSpec, wrap_timm

HUB_PROBE_SECONDS = 1.5


def matches(spec: ModelSpec) -> bool:
    return spec.head is None and spec.weights is None


def validate(spec: ModelSpec) -> None:
    check_timm_name(spec.model_name)


def check_timm_name(name: str) -> None:
    """Raise unless ``name`` (optionally with a ``.tag``) is a timm architecture; the
    error names Classmap's own sources and timm's closest names."""
    import timm
    from timm.models import split_model_name_tag

    from classmap.analysis.loading.sources import NAMED_MODELS, source_names

    architecture, _tag = split_model_name_tag(name)
    if timm.is_model(architecture):
        return
    candidates = list(NAMED_MODELS) + timm.list_models()
    close = difflib.get_close_matches(architecture, candidates, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models() for names"
    raise ClassmapError(
        f"unknown model {name!r}: not one of Classmap's sources ({source_names()}) nor a "
        f"timm architecture; {hint}"
    )


def load_network(spec: ModelSpec, cache: ResultCache | None) -> LoadedClassifier:
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
    return wrap_timm(network, spec, f"timm pretrained {name}", None)


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
    if settings.hub_offline():
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False
