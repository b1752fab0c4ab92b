"""WordNet names and agreement of a learned tree (cached), and source-vs-source comparison.

- :func:`wordnet_for_tree`: node names, purity and the agreement measures of
  :mod:`classmap.analysis.methods.wordnet_agreement` for one tree over a class set,
  cached by class ids and tree digest; for class sets without WordNet ids it says so.
- :func:`relation_from_spec` / :func:`compare_specs`: two class-relationship sources
  named ``MODEL[:RELATION[:LINKAGE]]`` (RELATION ``cosine``, ``euclidean`` — of the
  standardised head rows — or ``wordnet``; LINKAGE ``ward``, ``average``, ``complete``,
  ``single``) compared with :func:`classmap.analysis.methods.compare.compare`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from classmap.analysis.cache import ResultCache, digest_arrays, get_or_compute, make_key
from classmap.analysis.errors import ClassmapError, check_choice
from classmap.analysis.methods import compare as compare_methods
from classmap.analysis.methods import wordnet_agreement as agreement_methods
from classmap.analysis.methods.hierarchy import LINKAGES
from classmap.analysis.wordnet.graph import (
    MAX_PAIRWISE_CLASSES,
    ancestor_table,
    load_wordnet,
    wordnet_distances,
)

WORDNET_VERSION = "1"
RELATIONS = ("cosine", "euclidean", "wordnet")
DISTANCE_NOTE = ("WordNet 3.0 hop distance of METHODS.md §5 (height of the lowest common "
                 "hypernym above the deeper class; @ and @i pointers), not ImageNet-H's")


@dataclass(frozen=True)
class WordNetView:
    """What WordNet says about one tree.

    available : whether the class set has WordNet ids
    reason : why not (or why agreement is missing), else ""
    names : NodeNames of the internal nodes, or None
    agreement : Agreement, or None (no WordNet ids, or more than
        MAX_PAIRWISE_CLASSES classes)
    """

    available: bool
    reason: str
    names: agreement_methods.NodeNames | None
    agreement: agreement_methods.Agreement | None

    def to_json(self) -> dict[str, Any]:
        """``wordnet_agreement.json``'s content."""
        out: dict[str, Any] = {"available": self.available, "distance": DISTANCE_NOTE}
        if self.reason:
            out["reason"] = self.reason
        if self.agreement is not None:
            out.update(self.agreement.to_json())
            out["min_fraction_for_names"] = agreement_methods.DEFAULT_MIN_FRACTION
        return out


def no_wordnet_reason(class_ids: tuple[str, ...] | list[str]) -> str:
    """"" when every id is a WordNet noun id, else a sentence saying why there is no score."""
    graph = load_wordnet()
    if graph.covers(class_ids):
        return ""
    bad = [c for c in class_ids if graph.synset_id(c) is None]
    return (f"no WordNet ground truth: {len(bad)} of {len(class_ids)} class ids are not "
            f"WordNet 3.0 noun ids (e.g. {bad[0]!r}); only ImageNet-style ids such as "
            "n01978287 have one")


def wordnet_for_tree(
    class_ids: tuple[str, ...], linkage: np.ndarray, cache: ResultCache | None = None
) -> WordNetView:
    """Node names, purity and agreement of ``linkage`` over ``class_ids`` (cached)."""
    reason = no_wordnet_reason(class_ids)
    if reason:
        return WordNetView(False, reason, None, None)
    key = make_key("wordnet", WORDNET_VERSION, ids=digest_arrays(np.asarray(class_ids)),
                   tree=digest_arrays(np.asarray(linkage, dtype=np.float64)))
    return get_or_compute(cache, key, lambda: _compute(class_ids, linkage),
                          pack=_pack, unpack=_unpack)


def _compute(class_ids: tuple[str, ...], linkage: np.ndarray) -> WordNetView:
    table = ancestor_table(load_wordnet(), class_ids)
    names = agreement_methods.name_nodes(linkage, table)
    if len(class_ids) > MAX_PAIRWISE_CLASSES:
        return WordNetView(True, f"agreement not computed: {len(class_ids)} classes exceed the "
                           f"all-pairs limit of {MAX_PAIRWISE_CLASSES}", names, None)
    score = agreement_methods.agreement(linkage, wordnet_distances(table), names)
    return WordNetView(True, "", names, score)


def _pack(view: WordNetView) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    names = view.names
    assert names is not None
    arrays = {"fraction": names.fraction, "purity": names.purity, "size": names.size}
    meta: dict[str, Any] = {"name": list(names.name), "synset": list(names.synset),
                            "purity_synset": list(names.purity_synset), "reason": view.reason}
    if view.agreement is not None:
        arrays["nn_per_class"] = view.agreement.nn_distance_per_class
        meta["agreement"] = view.agreement.to_json()
    return arrays, meta


def _unpack(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> WordNetView:
    names = agreement_methods.NodeNames(
        tuple(meta["name"]), tuple(meta["synset"]), arrays["fraction"], arrays["purity"],
        tuple(meta["purity_synset"]), arrays["size"],
    )
    score = None
    if "agreement" in meta:
        values = meta["agreement"]
        score = agreement_methods.Agreement(
            values["spearman"], values["nn_wordnet_distance"],
            values["baseline_wordnet_distance"], arrays["nn_per_class"],
            values["mean_purity"], values["pairs"],
        )
    return WordNetView(True, meta["reason"], names, score)


@dataclass(frozen=True)
class SourceSpec:
    """``MODEL[:RELATION[:LINKAGE]]`` parsed; defaults ``cosine`` and ``ward`` (``average``
    for ``wordnet``, whose distances are not Euclidean)."""

    model: str | None
    relation: str
    linkage: str

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        parts = text.split(":")
        if len(parts) > 3 or not parts[0]:
            raise ClassmapError(
                f"source {text!r} is not MODEL[:RELATION[:LINKAGE]]; e.g. lite0-imagenet:cosine:"
                "ward or lite1-imagenet:wordnet"
            )
        relation = check_choice(parts[1] if len(parts) > 1 else "cosine", RELATIONS, "relation")
        default = "average" if relation == "wordnet" else "ward"
        linkage = check_choice(parts[2] if len(parts) > 2 else default, LINKAGES, "linkage")
        if relation == "wordnet" and linkage == "ward":
            raise ClassmapError("ward needs Euclidean geometry, which WordNet distances lack; "
                                "use wordnet:average (or complete, single)")
        return cls(None if parts[0] == "default" else parts[0], relation, linkage)

    @property
    def label(self) -> str:
        model = self.model or "lite0-imagenet"
        what = "WordNet" if self.relation == "wordnet" else f"weight {self.relation}"
        return f"{model} {what} / {self.linkage}"


@dataclass(frozen=True)
class SourceRelation:
    """A relation with the class ids and names it covers."""

    relation: compare_methods.Relation
    class_ids: tuple[str, ...]
    class_names: tuple[str, ...]


def relation_from_head(head: Any, relation: str, linkage: str,
                       cache: ResultCache | None = None, device: str | None = None,
                       label: str | None = None) -> SourceRelation:
    """The :class:`SourceRelation` of a loaded head (``ClassifierHead``)."""
    from classmap.analysis.pipelines.weights import (
        MAX_DENSE_CLASSES,
        WeightParams,
        analyse_weights,
    )

    ids, names = tuple(head.classes.ids), tuple(head.classes.names)
    name = label or f"{head.spec.model_name} {relation} / {linkage}"
    if head.num_classes > min(MAX_DENSE_CLASSES, MAX_PAIRWISE_CLASSES):
        raise ClassmapError(
            f"{head.num_classes} classes are too many to compare all pairs (at most "
            f"{min(MAX_DENSE_CLASSES, MAX_PAIRWISE_CLASSES)}); use a smaller class set"
        )
    if relation == "wordnet":
        reason = no_wordnet_reason(ids)
        if reason:
            raise ClassmapError(f"{reason}; compare weight relations instead")
        distance = wordnet_distances(ancestor_table(load_wordnet(), ids)).astype(np.float64)
        tree = hierarchy.linkage(squareform(distance, checks=False), method=linkage)
        return SourceRelation(compare_methods.Relation(name, distance, tree), ids, names)
    params = WeightParams(metric=relation, linkage=linkage,
                          top_k=min(5, head.num_classes - 1))
    result = analyse_weights(head, params, cache=cache, device=device)
    similarity = np.asarray(result.similarity, dtype=np.float64)
    distance = 1.0 - similarity if relation == "cosine" else similarity
    np.fill_diagonal(distance, 0.0)
    return SourceRelation(compare_methods.Relation(name, distance, result.linkage), ids, names)


def relation_from_spec(text: str, cache: ResultCache | None = None,
                       device: str | None = None) -> SourceRelation:
    """Load the model of ``MODEL[:RELATION[:LINKAGE]]`` and build its relation."""
    from classmap.analysis.loading.models import ModelSpec, load_head

    spec = SourceSpec.parse(text)
    head = load_head(ModelSpec(model=spec.model), cache)
    return relation_from_head(head, spec.relation, spec.linkage, cache, device, spec.label)


def compare_relations(
    a: SourceRelation, b: SourceRelation,
    permutations: int = compare_methods.DEFAULT_PERMUTATIONS,
    top_pairs: int = compare_methods.DEFAULT_TOP_PAIRS,
) -> compare_methods.Comparison:
    """Every comparison measure between two sources over the same class ids."""
    if a.class_ids != b.class_ids:
        differ = sum(x != y for x, y in zip(a.class_ids, b.class_ids))
        raise ClassmapError(
            f"{a.relation.name!r} and {b.relation.name!r} cover different class sets "
            f"({len(a.class_ids)} vs {len(b.class_ids)} classes, {differ} ids differ in "
            "order); compare sources over the same classes in the same order"
        )
    return compare_methods.compare(a.relation, b.relation, permutations=permutations,
                                   top_pairs=top_pairs)
