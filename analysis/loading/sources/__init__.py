"""The model-source registry: every way Classmap can be given a classifier.

============================  ===========================================================
spec                          source (module)
============================  ===========================================================
``--head F [--classes F]``    a bare head matrix ``[C, D]`` (+ optional bias) (``bare_head``)
(nothing) / ``lite0-imagenet``  the embedded ImageNet-1k EfficientNet-Lite0 (``lite0``)
``lite1-imagenet``,           ImageNet-1k EfficientNet-Lite1 / Lite2 from the optional
``lite2-imagenet``            extra ``classmap[models]`` (``lite_pypi``)
``lenet-digits``              LeNet-5 trained on scikit-learn's digits, cached (``lenet_digits``)
``lenet5 --weights F``        a LeNet-5 checkpoint written by ``classmap train``
                              (``lenet_checkpoint``)
``<timm name> --weights F``   a local checkpoint on a timm architecture (``timm_checkpoint``)
``<timm name>``               timm's pretrained weights from the hub (``timm_hub``)
============================  ===========================================================

A source is a module with ``matches(spec)``, ``load_network(spec, cache)`` and
optionally ``validate(spec)``, ``load_head(spec, cache)`` (a head without building the
network) and ``head_key(spec)`` (what the head depends on, for the head cache). A new
source is one such module plus one :class:`ModelSource` line in :data:`SOURCES`;
the first entry whose ``matches`` accepts a spec serves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.classifier import DEFAULT_MODEL, ModelSpec
from classmap.analysis.loading.sources import (
    bare_head,
    lenet_checkpoint,
    lenet_digits,
    lite0,
    lite_pypi,
    timm_checkpoint,
    timm_hub,
)
from classmap.analysis.loading.sources.lenet_checkpoint import LENET5_ARCH
from classmap.analysis.loading.sources.lenet_digits import LENET_DIGITS
from classmap.analysis.loading.sources.lite_pypi import LITE_MODELS


@dataclass(frozen=True)
class ModelSource:
    """One registry entry.

    name : how the user asks for it, as errors show it (e.g. ``lenet5 --weights FILE``)
    module : the module implementing it (``matches``, ``load_network``, optional
        ``validate``, ``load_head``, ``head_key``)
    embedded : whether ``name`` is a model Classmap ships (no file needed)
    """

    name: str
    module: ModuleType
    embedded: bool = False

    def matches(self, spec: ModelSpec) -> bool:
        return bool(self.module.matches(spec))

    def validate(self, spec: ModelSpec) -> None:
        check = getattr(self.module, "validate", None)
        if check is not None:
            check(spec)

    def head_key(self, spec: ModelSpec) -> dict[str, Any] | None:
        """What the head depends on (file digests …), or None when not cached by file."""
        key = getattr(self.module, "head_key", None)
        return key(spec) if key is not None else None

    @property
    def load_network(self) -> Callable:
        return self.module.load_network

    @property
    def load_head(self) -> Callable | None:
        return getattr(self.module, "load_head", None)


SOURCES: tuple[ModelSource, ...] = (
    ModelSource("--head FILE", bare_head),
    ModelSource(DEFAULT_MODEL, lite0, embedded=True),
    ModelSource(LENET_DIGITS, lenet_digits, embedded=True),
    ModelSource(" / ".join(LITE_MODELS), lite_pypi),
    ModelSource(f"{LENET5_ARCH} --weights FILE", lenet_checkpoint),
    ModelSource("<timm name> --weights FILE", timm_checkpoint),
    ModelSource("<timm name>", timm_hub),
)

EMBEDDED_MODELS: tuple[str, ...] = tuple(s.name for s in SOURCES if s.embedded)
# Architectures Classmap defines itself (not timm's); they load only with --weights.
LOCAL_ARCHITECTURES: tuple[str, ...] = (LENET5_ARCH,)
# Model names Classmap knows without timm (suggested for typos).
NAMED_MODELS: tuple[str, ...] = EMBEDDED_MODELS + LITE_MODELS + LOCAL_ARCHITECTURES


def source_names() -> str:
    """The registry's sources as the user asks for them, comma-separated."""
    return ", ".join(source.name for source in SOURCES)


def find_source(spec: ModelSpec) -> ModelSource:
    """The validated source that serves ``spec``.

    Raises
    ------
    ClassmapError
        for a contradictory spec or an unknown name (the message lists the sources).
    """
    if spec.head is None and spec.weights is not None and spec.model in (
        EMBEDDED_MODELS + LITE_MODELS
    ):
        raise ClassmapError(
            f"--weights needs an architecture name in --model (a timm name or lenet5), not "
            f"the named model {spec.model!r}; e.g. --model resnet18 --weights FILE"
        )
    if spec.head_key is not None and spec.head is None:
        raise ClassmapError("--head-key needs --head FILE; give the file that holds the head")
    if spec.weights is not None and spec.model is None and spec.head is None:
        raise ClassmapError(
            "--weights needs --model naming the timm architecture the checkpoint belongs to; "
            "e.g. --model resnet18 --weights FILE"
        )
    for source in SOURCES:
        if source.matches(spec):
            source.validate(spec)
            return source
    raise ClassmapError(  # pragma: no cover - timm_hub accepts every remaining spec
        f"no model source accepts {spec.label}; choose one of {source_names()}"
    )
