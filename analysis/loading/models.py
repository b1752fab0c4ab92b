"""Model specs → classifier heads and networks: the two public entry points.

Every command (``export``, ``serve``, ``train``'s outputs) builds one
:class:`ModelSpec` from the same flags and asks for:

- :func:`load_head` — only the final layer ``[C, D]`` (+ bias), its class names and a
  digest; cached keyed by the source file's digest, so a repeated export never
  builds a network;
- :func:`load_classifier` — the whole network in eval mode plus its preprocessing.

Which source serves a spec is decided once, by the registry in
:mod:`classmap.analysis.loading.sources` (embedded Lite0, lenet-digits, timm
pretrained, timm or LeNet-5 checkpoints, a bare head).
"""

from __future__ import annotations

import numpy as np
import torch

from classmap.analysis.cache import (
    ResultCache,
    digest_arrays,
    digest_file,
    file_digests_in,
    get_or_compute,
    make_key,
)
from classmap.analysis.loading.checkpoints import check_readable_file
from classmap.analysis.loading.classifier import (
    DEFAULT_MODEL,
    ClassifierHead,
    LoadedClassifier,
    ModelSpec,
    default_device,
    extract_head,
    resolve_device,
    head_from_arrays,
)
from classmap.analysis.loading.classnames import ClassNames
from classmap.analysis.loading.sources import (
    EMBEDDED_MODELS,
    LENET5_ARCH,
    LENET_DIGITS,
    LOCAL_ARCHITECTURES,
    find_source,
)

__all__ = [
    "DEFAULT_MODEL", "EMBEDDED_MODELS", "LENET5_ARCH", "LENET_DIGITS", "LOCAL_ARCHITECTURES",
    "ClassifierHead", "LoadedClassifier", "ModelSpec", "default_device", "extract_head",
    "head_from_arrays", "load_classifier", "load_head",
]

HEAD_CACHE_VERSION = "2"  # 2: the entry keeps the head's digest (not hashed again on reading)


def load_head(spec: ModelSpec, cache: ResultCache | None = None) -> ClassifierHead:
    """Load the classifier head ``spec`` names, validated and cached.

    Raises
    ------
    ClassmapError
        for any bad input (see :mod:`classmap.analysis.loading.sources`), with a
        one-line fix.
    """
    source = find_source(spec)
    # The files' digests are remembered in the cache (by path and stat): a fresh process
    # re-opening an unchanged 67 MB head reads the cached head once (its checksum), and
    # does not hash the file first nor the arrays again (_unpack_head).
    with file_digests_in(cache):
        classes_digest = (
            digest_file(check_readable_file(spec.classes, "--classes")) if spec.classes else None
        )
        parts = source.head_key(spec)
    # Sources without a file digest (lenet-digits, hub models) cache their own way.
    key = make_key("head", HEAD_CACHE_VERSION, **parts, classes=classes_digest) if parts else ""
    load = source.load_head or (lambda spec, cache: source.load_network(spec, cache).head)
    return get_or_compute(
        cache if parts else None, key, lambda: load(spec, cache),
        pack=_pack_head, unpack=lambda arrays, meta: _unpack_head(spec, arrays, meta),
    )


def load_classifier(
    spec: ModelSpec, cache: ResultCache | None = None, device: str | torch.device | None = None
) -> LoadedClassifier:
    """Load the whole network ``spec`` names, in eval mode on ``device`` (CUDA if present)."""
    source = find_source(spec)
    target = resolve_device(device)
    loaded = source.load_network(spec, cache)
    loaded.network.to(target).eval()
    loaded.device = target
    return loaded


def _pack_head(head: ClassifierHead) -> tuple[dict[str, np.ndarray], dict]:
    arrays = {"weight": head.weight}
    if head.bias is not None:
        arrays["bias"] = head.bias
    return arrays, {
        "ids": list(head.classes.ids),
        "names": list(head.classes.names),
        "class_source": head.classes.source,
        "source": head.source,
        "digest": head.digest,
    }


def _unpack_head(spec: ModelSpec, arrays: dict[str, np.ndarray], meta: dict) -> ClassifierHead:
    weight = arrays["weight"]
    bias = arrays.get("bias")
    classes = ClassNames(tuple(meta["ids"]), tuple(meta["names"]), meta["class_source"])
    # The digest stored with the entry is that of these very arrays (the cache checked
    # their checksums on reading); entries from before it was stored are hashed here.
    digest = meta.get("digest")
    if not (isinstance(digest, str) and len(digest) == 64):
        digest = digest_arrays(weight, bias)
    return ClassifierHead(weight, bias, classes, spec, meta["source"], digest)

