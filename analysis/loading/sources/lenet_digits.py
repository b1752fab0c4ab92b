"""The embedded ``lenet-digits``: LeNet-5 trained on scikit-learn's digits on first use,
then served from the cache (keyed by seed, epochs and the torch version)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from classmap.analysis.cache import ResultCache, get_or_compute, make_key
from classmap.analysis.loading.classifier import (
    LoadedClassifier,
    ModelSpec,
    extract_head,
    head_from_arrays,
)
from classmap.analysis.loading.classnames import resolve_class_names
from classmap.analysis.loading.lenet import (
    DIGITS_MEAN,
    DIGITS_SEED,
    DIGITS_STD,
    LeNet5,
    LeNetPreprocess,
    load_digits_split,
    train_lenet,
)

log = logging.getLogger(__name__)

LENET_DIGITS = "lenet-digits"
LENET_DIGITS_VERSION = "1"
LENET_DIGITS_EPOCHS = 30


def matches(spec: ModelSpec) -> bool:
    return spec.head is None and spec.model_name == LENET_DIGITS


def load_network(spec: ModelSpec, cache: ResultCache | None) -> LoadedClassifier:
    key = make_key("lenet-digits", LENET_DIGITS_VERSION, seed=DIGITS_SEED,
                   epochs=LENET_DIGITS_EPOCHS, torch=torch.__version__.split("+")[0])
    trained = get_or_compute(cache, key, _train, pack=_pack, unpack=_unpack)
    weight, bias = extract_head(trained.network)
    classes = resolve_class_names(10, spec.classes, [str(i) for i in range(10)])
    source = (
        f"LeNet-5 trained on scikit-learn digits (seed {DIGITS_SEED}, "
        f"{LENET_DIGITS_EPOCHS} epochs, held-out accuracy {trained.accuracy:.3f})"
    )
    head = head_from_arrays(weight, bias, classes, spec, source)
    preprocess = LeNetPreprocess(1, (DIGITS_MEAN,), (DIGITS_STD,))
    return LoadedClassifier(trained.network.eval(), head, preprocess, preprocess.data_config(),
                            "lenet")


@dataclass(frozen=True)
class _Trained:
    network: LeNet5
    accuracy: float


def _train() -> _Trained:
    log.info("training lenet-digits on scikit-learn's digits (first use; cached after)")
    split = load_digits_split(DIGITS_SEED)
    result = train_lenet(
        split.train_images, split.train_labels, split.test_images, split.test_labels,
        num_classes=10, epochs=LENET_DIGITS_EPOCHS, seed=DIGITS_SEED,
    )
    return _Trained(result.model, result.held_out_accuracy)


def _pack(trained: _Trained) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    return (
        {k: v.detach().cpu().numpy() for k, v in trained.network.state_dict().items()},
        {"held_out_accuracy": trained.accuracy, "seed": DIGITS_SEED,
         "epochs": LENET_DIGITS_EPOCHS},
    )


def _unpack(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> _Trained:
    network = LeNet5(in_channels=1, num_classes=10)
    network.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    return _Trained(network, float(meta["held_out_accuracy"]))
