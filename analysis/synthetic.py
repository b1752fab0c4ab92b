"""A synthetic classifier head with a planted class tree (the scale fixture, issue #12).

Real ImageNet-21k weights cannot be downloaded everywhere, so tests and benchmarks use
a seeded head of the same shape (21,843 × 768 by default) whose rows are drawn down a
three-level tree:

- ``supergroups`` centres ``~ N(0, 4² I)``;
- each group (the *planted level*) is its supergroup's centre ``+ N(0, 2² I)``;
- each class is its group's centre ``+ N(0, 0.5² I)``.

In D = 768 dimensions the three scales are far apart (distances concentrate), so Ward
on the standardised rows cuts into exactly the planted groups, and every class's
nearest neighbour is a member of its group (a *planted sibling*). Group sizes are
uneven (a seeded Dirichlet split, every group ≥ ``min_group``), like real label trees.

Class names come from timm's bundled ImageNet-21k metadata
(``timm.data.ImageNetInfo("imagenet-21k")``, offline); beyond 21,843 classes the names
repeat with a ``#n`` suffix.

Command line: ``python -m classmap.analysis.synthetic OUT.npy [--classes N] [--seed S]``
writes the head (and ``OUT.classes.txt``, ``OUT.groups.npy``).
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.classifier import ClassifierHead

IMAGENET_21K_CLASSES = 21843
VIT_BASE_FEATURES = 768


@dataclass(frozen=True)
class PlantedHead:
    """A synthetic head and the tree it was drawn from.

    Attributes
    ----------
    weight : ndarray of shape (C, D), float32
    names : C class names
    group : ndarray of shape (C,), int64 — planted group of each class (0 … G − 1)
    supergroup : ndarray of shape (C,), int64 — planted supergroup of each class
    """

    weight: np.ndarray
    names: list[str]
    group: np.ndarray
    supergroup: np.ndarray

    @property
    def num_groups(self) -> int:
        return int(self.group.max()) + 1


@lru_cache(maxsize=1)
def _imagenet_21k_base_names() -> tuple[str, ...]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-21k")
    synsets = [info.index_to_label_name(i) for i in range(info.num_classes())]
    first = [info.label_name_to_description(s).split(",")[0].strip() for s in synsets]
    counts = Counter(first)
    return tuple(name if counts[name] == 1 else f"{name} ({synset})"
                 for name, synset in zip(first, synsets))


def imagenet_21k_names(count: int) -> list[str]:
    """``count`` unique class names from timm's ImageNet-21k metadata: the first synonym of
    each WordNet synset (a name several synsets share gets the synset id: ``queen
    (n10498986)``), repeated with ``#n`` suffixes beyond 21,843."""
    base = _imagenet_21k_base_names()
    return [base[i % len(base)] + (f" #{i // len(base)}" if i >= len(base) else "")
            for i in range(count)]


def group_sizes(rng: np.random.Generator, total: int, groups: int, minimum: int) -> np.ndarray:
    """``groups`` uneven sizes ≥ ``minimum`` summing to ``total`` (seeded Dirichlet split)."""
    if groups * minimum > total:
        raise ClassmapError(
            f"{groups} groups of at least {minimum} do not fit in {total} classes; "
            "choose fewer groups or more classes"
        )
    spare = total - groups * minimum
    shares = rng.dirichlet(np.full(groups, 2.0)) * spare
    sizes = np.floor(shares).astype(np.int64)
    sizes[np.argsort(shares - sizes)[::-1][: spare - sizes.sum()]] += 1
    return sizes + minimum


def planted_head(
    num_classes: int = IMAGENET_21K_CLASSES,
    num_features: int = VIT_BASE_FEATURES,
    *,
    groups: int | None = None,
    supergroups: int | None = None,
    min_group: int = 2,
    seed: int = 0,
    names: bool = True,
) -> PlantedHead:
    """A seeded head ``[num_classes, num_features]`` with a planted three-level tree.

    Parameters
    ----------
    groups : planted groups (default ``max(2, C // 100)``: ~100 classes each)
    supergroups : groups of groups (default ``max(2, groups // 10)``)
    min_group : smallest group (≥ 2, so every class has a planted sibling)
    names : ImageNet-21k names (else ``class_i``)
    """
    groups = groups or max(2, num_classes // 100)
    supergroups = supergroups or max(2, groups // 10)
    if min_group < 2 or supergroups > groups:
        raise ClassmapError(
            f"min_group={min_group}, supergroups={supergroups}, groups={groups}; "
            "need min_group ≥ 2 and supergroups ≤ groups"
        )
    rng = np.random.default_rng(seed)
    sizes = group_sizes(rng, num_classes, groups, min_group)
    group = np.repeat(np.arange(groups), sizes)
    super_of_group = np.sort(np.r_[np.arange(supergroups),
                                   rng.integers(0, supergroups, groups - supergroups)])
    super_centres = rng.normal(0.0, 4.0, (supergroups, num_features)).astype(np.float32)
    group_centres = (super_centres[super_of_group]
                     + rng.normal(0.0, 2.0, (groups, num_features)).astype(np.float32))
    weight = np.empty((num_classes, num_features), dtype=np.float32)
    for start in range(0, num_classes, 4096):  # bounded float64 temporaries
        stop = min(start + 4096, num_classes)
        weight[start:stop] = group_centres[group[start:stop]] + rng.normal(
            0.0, 0.5, (stop - start, num_features)).astype(np.float32)
    # Classes in a random order, as in a real head (not sorted by group).
    shuffle = rng.permutation(num_classes)
    class_names = (imagenet_21k_names(num_classes) if names
                   else [f"class_{i}" for i in range(num_classes)])
    return PlantedHead(weight[shuffle], class_names, group[shuffle].astype(np.int64),
                       super_of_group[group[shuffle]].astype(np.int64))


def as_classifier_head(planted: PlantedHead, seed: int = 0) -> ClassifierHead:
    """``planted`` as a ClassifierHead (no bias, its ImageNet-21k names), ready for
    :func:`~classmap.analysis.pipelines.weights.analyse_weights`."""
    from classmap.analysis.loading.classifier import ModelSpec, head_from_arrays
    from classmap.analysis.loading.classnames import resolve_class_names

    c = planted.weight.shape[0]
    return head_from_arrays(planted.weight, None, resolve_class_names(c, None, planted.names),
                            ModelSpec(head=f"planted-{c}-seed{seed}.npy"), "synthetic planted head")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the head's .npy file")
    parser.add_argument("--classes", type=int, default=IMAGENET_21K_CLASSES)
    parser.add_argument("--features", type=int, default=VIT_BASE_FEATURES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    head = planted_head(args.classes, args.features, seed=args.seed)
    np.save(args.out, head.weight)
    np.save(args.out.with_suffix(".groups.npy"), head.group)
    args.out.with_suffix(".classes.txt").write_text("\n".join(head.names) + "\n")


if __name__ == "__main__":
    main()
