"""WordNet names and agreement of a learned tree (cached), and source-vs-source comparison.

- :func:`wordnet_for_tree`: node names, purity and the agreement measures of
  :mod:`classmap.analysis.methods.wordnet_agreement` for one tree over a class set,
  cached by class ids and tree digest; for class sets without WordNet ids it says so.
- :func:`relation_from_spec` / :func:`compare_sources`: two class-relationship sources
  named ``MODEL[:RELATION[:LINKAGE]][@DATA]`` (RELATION ``cosine``, ``euclidean`` — of
  the standardised head rows — or ``wordnet``; or, from the images of DATA, ``confidence``
  (JS divergence of the class-mean softmax), ``features`` or ``gradcam`` (cosine distance
  of the class means of image features / Grad-CAM weights); LINKAGE ``ward``, ``average``,
  ``complete``, ``single``) compared with :func:`classmap.analysis.methods.compare.compare`
  over the classes both cover.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from classmap.analysis.cache import (
    ResultCache,
    digest_arrays,
    get_or_compute,
    make_key,
    read_cached,
)
from classmap.analysis.errors import ClassmapError, check_choice
from classmap.analysis.methods import compare as compare_methods
from classmap.analysis.methods import wordnet_agreement as agreement_methods
from classmap.analysis.methods.hierarchy import LINKAGES
from classmap.analysis.wordnet.graph import (
    MAX_PAIRWISE_CLASSES,
    SHIPPED,
    ancestor_table,
    load_wordnet,
    wordnet_distances,
)

WORDNET_VERSION = "1"  # of how the view is computed; the data file's digest is keyed too
COMPARISON_VERSION = "1"  # of compare_methods.compare and SourceComparison's packing
IMAGE_RELATIONS = ("confidence", "features", "gradcam")
RELATIONS = ("cosine", "euclidean", "wordnet", *IMAGE_RELATIONS)
NON_EUCLIDEAN = ("wordnet", "confidence")
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
    key = make_key("wordnet", WORDNET_VERSION, data=shipped_digest(),
                   ids=digest_arrays(np.asarray(class_ids)),
                   tree=digest_arrays(np.asarray(linkage, dtype=np.float64)))
    return get_or_compute(cache, key, lambda: _compute(class_ids, linkage),
                          pack=_pack, unpack=_unpack)


@lru_cache(maxsize=1)
def shipped_digest() -> str:
    """SHA-256 (hex, first 16) of the shipped WordNet file: a regenerated file keys new
    cache entries instead of serving names and scores of the old one."""
    return hashlib.sha256(SHIPPED.read_bytes()).hexdigest()[:16]


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
    """``MODEL[:RELATION[:LINKAGE]][@DATA]`` parsed; defaults ``cosine`` and ``ward``
    (``average`` for ``wordnet`` and ``confidence``, whose distances are not Euclidean).
    The image relations (:data:`IMAGE_RELATIONS`) need ``@DATA``: ``digits`` or an image
    folder with one sub-folder per class (the CLI), or a configured data-set id (the page).
    """

    model: str | None
    relation: str
    linkage: str
    data: str | None = None

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        spec, at, data = text.partition("@")
        parts = spec.split(":")
        if len(parts) > 3 or not parts[0] or (at and not data):
            raise ClassmapError(
                f"source {text!r} is not MODEL[:RELATION[:LINKAGE]][@DATA]; e.g. lite0-imagenet:"
                "cosine:ward, lite1-imagenet:wordnet or lenet-digits:confidence@digits"
            )
        relation = check_choice(parts[1] if len(parts) > 1 else "cosine", RELATIONS, "relation")
        linkage = check_choice(parts[2] if len(parts) > 2 else default_linkage(relation),
                               LINKAGES, "linkage")
        check_source(relation, linkage, data or None)
        return cls(None if parts[0] == "default" else parts[0], relation, linkage, data or None)

    @property
    def label(self) -> str:
        return source_label(self.model or "lite0-imagenet", self.relation, self.linkage,
                            self.data)


def default_linkage(relation: str) -> str:
    """``average`` for the non-Euclidean WordNet and JS distances, else ``ward``."""
    return "average" if relation in NON_EUCLIDEAN else "ward"


def check_source(relation: str, linkage: str, data: str | None) -> None:
    """Refuse ward on a non-Euclidean relation, an image relation without a data set and
    a data set on a weight relation (one line each)."""
    if relation in NON_EUCLIDEAN and linkage == "ward":
        what = "WordNet distances" if relation == "wordnet" else "the JS divergence"
        raise ClassmapError(f"ward needs Euclidean geometry, which {what} lack; "
                            f"use {relation}:average (or complete, single)")
    if relation in IMAGE_RELATIONS and not data:
        raise ClassmapError(f"the {relation} relation is computed from images; add @DATA, "
                            f"e.g. lenet-digits:{relation}@digits or MODEL:{relation}@/path/"
                            "to/folder")
    if relation not in IMAGE_RELATIONS and data:
        raise ClassmapError(f"the {relation} relation does not use images; drop @{data[:40]} "
                            f"or pick {', '.join(IMAGE_RELATIONS)}")


def source_label(model: str, relation: str, linkage: str, data: str | None = None) -> str:
    """How reports name a source, e.g. ``lenet-digits confidence JS on digits / average``."""
    what = {"wordnet": "WordNet", "confidence": "confidence JS",
            "features": "feature class means", "gradcam": "Grad-CAM weight class means"}.get(
        relation, f"weight {relation}")
    where = f" on {Path(data).name or data}" if data else ""
    return f"{model} {what}{where} / {linkage}"


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
        analyse_weights,
    )

    ids, names = tuple(head.classes.ids), tuple(head.classes.names)
    name = label or f"{head.spec.model_name} {relation} / {linkage}"
    if relation in IMAGE_RELATIONS:
        raise ClassmapError(f"the {relation} relation comes from images, not the head; "
                            "build it with relation_from_images or MODEL:RELATION@DATA")
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
    result = analyse_weights(head, _weight_params(head, relation, linkage), cache=cache,
                             device=device)
    similarity = np.asarray(result.similarity, dtype=np.float64)
    distance = 1.0 - similarity if relation == "cosine" else similarity
    np.fill_diagonal(distance, 0.0)
    return SourceRelation(compare_methods.Relation(name, distance, result.linkage), ids, names)


def relation_from_images(representations: Any, analysis: Any, class_ids: tuple[str, ...],
                         relation: str, linkage: str, label: str) -> SourceRelation:
    """The :class:`SourceRelation` of an image analysis over the P classes with images.

    representations, analysis : :class:`~classmap.analysis.pipelines.images.Representations`
        and :class:`~classmap.analysis.pipelines.images.ImageAnalysis` of one model on one
        data set (cached by :mod:`classmap.analysis.pipelines.images`)
    class_ids : the model's C class ids (the analysis names only the P present classes)
    relation : ``confidence`` — the JS divergence (base 2) of the class-mean softmax
        ``[P, P]``; ``features`` / ``gradcam`` — cosine distance of the class means of the
        image features / Grad-CAM weights (of each image's predicted class)
    """
    from classmap.analysis.methods.confidence import js_linkage

    classes = np.asarray(analysis.classes, dtype=np.int64)
    ids = tuple(class_ids[c] for c in classes)
    names = tuple(analysis.class_names)
    if len(classes) < 3:
        raise ClassmapError(f"{label}: only {len(classes)} classes have images; comparing "
                            "needs at least 3, so add images of more classes")
    if relation == "confidence":
        distance = np.asarray(analysis.js, dtype=np.float64)
        tree = js_linkage(distance, linkage)
        return SourceRelation(compare_methods.Relation(label, distance, tree), ids, names)
    vectors = representations.features if relation == "features" \
        else representations.grad_weights
    built = compare_methods.class_mean_relation(label, vectors, representations.labels,
                                                classes, linkage)
    return SourceRelation(built, ids, names)


def image_relation_from_spec(spec: SourceSpec, cache: ResultCache | None = None,
                             device: str | None = None, progress: Any = None) -> SourceRelation:
    """Open ``spec.data`` for ``spec.model``, extract and analyse the images (both cached,
    the same entries as ``classmap export --data`` and the image pages) and build the
    relation."""
    from classmap.analysis.loading.data import load_dataset
    from classmap.analysis.loading.models import ModelSpec, load_classifier
    from classmap.analysis.pipelines.images import (
        ImageParams,
        analyse_images,
        extract_representations,
    )

    assert spec.data is not None
    classifier = load_classifier(ModelSpec(model=spec.model), cache, device=device)
    dataset = load_dataset(spec.data, classifier.head.classes,
                           channels=int(classifier.data_config["input_size"][0]))
    reps = extract_representations(classifier, dataset, cache=cache, progress=progress,
                                   device=device)
    analysis = analyse_images(reps, ImageParams(), cache=cache, progress=progress)
    return relation_from_images(reps, analysis, tuple(classifier.head.classes.ids),
                                spec.relation, spec.linkage, spec.label)


def relation_from_spec(text: str, cache: ResultCache | None = None,
                       device: str | None = None) -> SourceRelation:
    """Load the model of ``MODEL[:RELATION[:LINKAGE]][@DATA]`` and build its relation."""
    from classmap.analysis.loading.models import ModelSpec, load_head

    spec = SourceSpec.parse(text)
    if spec.relation in IMAGE_RELATIONS:
        return image_relation_from_spec(spec, cache, device)
    head = load_head(ModelSpec(model=spec.model), cache)
    return relation_from_head(head, spec.relation, spec.linkage, cache, device, spec.label)


@dataclass(frozen=True)
class SourceComparison:
    """A comparison with the classes it covers.

    result : the measures (indices refer to ``class_ids``)
    class_ids, class_names : the K classes compared, in source A's order
    coverage : one line saying how many classes were compared and why (JSON and page)
    linkage_a, linkage_b : ``[K − 1, 4]`` the two trees over those classes
    """

    result: compare_methods.Comparison
    class_ids: tuple[str, ...]
    class_names: tuple[str, ...]
    coverage: str
    linkage_a: np.ndarray
    linkage_b: np.ndarray


def shared_classes(a: SourceRelation, b: SourceRelation) -> tuple[SourceRelation, SourceRelation,
                                                                     str]:
    """Both sources over the class ids both cover (in A's order), and the coverage line."""
    if a.class_ids == b.class_ids:
        return a, b, f"all {len(a.class_ids)} classes (both sources cover the same classes)"
    where = {c: i for i, c in enumerate(b.class_ids)}
    keep_a = [i for i, c in enumerate(a.class_ids) if c in where]
    if len(keep_a) < 3:
        raise ClassmapError(
            f"{a.relation.name!r} and {b.relation.name!r} cover different class sets "
            f"({len(a.class_ids)} vs {len(b.class_ids)} classes, {len(keep_a)} shared); "
            "compare sources that share at least 3 class ids"
        )
    keep_b = [where[a.class_ids[i]] for i in keep_a]
    ids = tuple(a.class_ids[i] for i in keep_a)
    names = tuple(a.class_names[i] for i in keep_a)
    coverage = (f"the {len(keep_a)} classes both sources cover (A covers {len(a.class_ids)}, "
                f"B {len(b.class_ids)}; an image source covers the classes with images)")
    return (SourceRelation(compare_methods.restrict(a.relation, keep_a), ids, names),
            SourceRelation(compare_methods.restrict(b.relation, keep_b), ids, names),
            coverage)


def compare_sources(
    a: SourceRelation, b: SourceRelation,
    permutations: int = compare_methods.DEFAULT_PERMUTATIONS,
    top_pairs: int = compare_methods.DEFAULT_TOP_PAIRS,
    *, cache: ResultCache | None = None, key: str | None = None,
) -> SourceComparison:
    """Every comparison measure over the classes both sources cover; with a ``cache`` and
    the sources' :func:`comparison_key`, stored there (and read from there)."""
    def compute() -> SourceComparison:
        shared_a, shared_b, coverage = shared_classes(a, b)
        result = compare_methods.compare(shared_a.relation, shared_b.relation,
                                         permutations=permutations, top_pairs=top_pairs)
        return SourceComparison(result, shared_a.class_ids, shared_a.class_names, coverage,
                                shared_a.relation.linkage, shared_b.relation.linkage)

    if cache is None or key is None:
        return compute()
    return get_or_compute(cache, key, compute, pack=_pack_comparison,
                          unpack=_unpack_comparison)


def head_source_fingerprint(head: Any, relation: str, linkage: str) -> str:
    """What :func:`relation_from_head` computes the relation from, as a key: the weight
    analysis' cache key (head digest, metric, linkage), or — for WordNet — the class ids,
    the shipped WordNet file's digest and the linkage."""
    from classmap.analysis.pipelines.weights import weight_analysis_key

    if relation == "wordnet":
        return make_key("wordnet-relation", WORDNET_VERSION, data=shipped_digest(),
                        ids=digest_arrays(np.asarray(head.classes.ids)), linkage=linkage)
    return weight_analysis_key(head, _weight_params(head, relation, linkage))


def _weight_params(head: Any, relation: str, linkage: str) -> Any:
    """The WeightParams of a head's weight relation: one definition for the relation
    (relation_from_head) and the key of comparisons made from it."""
    from classmap.analysis.pipelines.weights import WeightParams

    return WeightParams(metric=relation, linkage=linkage, top_k=min(5, head.num_classes - 1))


def comparison_key(fingerprints: tuple[str, str], labels: tuple[str, str], permutations: int,
                   top_pairs: int = compare_methods.DEFAULT_TOP_PAIRS) -> str:
    """Cache key of the comparison of two sources (their fingerprints and labels — the
    labels name the relations in the result), with its permutation count and seed 0:
    the measures are deterministic, so a stored comparison is the one computed again."""
    return make_key("comparison", COMPARISON_VERSION, sources=list(fingerprints),
                    labels=list(labels), permutations=int(permutations),
                    top_pairs=int(top_pairs), seed=0)


def cached_comparison(cache: ResultCache | None, key: str) -> SourceComparison | None:
    """The comparison stored under ``key`` (:func:`comparison_key`), or None."""
    return read_cached(cache, key, _unpack_comparison)


_COMPARISON_ARRAYS = ("cut_levels", "fowlkes_mallows", "expected_fowlkes_mallows", "pairs",
                      "pair_ranks", "order_a", "order_b", "neighbour_overlap")
_COMPARISON_SCALARS = ("a", "b", "spearman", "mantel_statistic", "mantel_p_value",
                       "mantel_method", "permutations", "cophenetic_pearson",
                       "cophenetic_spearman", "crossings", "crossings_before", "seconds")


def _pack_comparison(compared: SourceComparison) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    result = compared.result
    arrays = {name: np.asarray(getattr(result, name)) for name in _COMPARISON_ARRAYS}
    arrays["linkage_a"] = np.asarray(compared.linkage_a, dtype=np.float64)
    arrays["linkage_b"] = np.asarray(compared.linkage_b, dtype=np.float64)
    def plain(value: Any) -> Any:  # numpy scalars as JSON numbers
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value.item() if isinstance(value, np.generic) else value

    meta = {name: plain(getattr(result, name)) for name in _COMPARISON_SCALARS}
    meta.update(class_ids=list(compared.class_ids), class_names=list(compared.class_names),
                coverage=compared.coverage)
    return arrays, meta


def _unpack_comparison(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> SourceComparison:
    count = len(meta["class_ids"])
    if len(meta["class_names"]) != count or arrays["order_a"].shape != (count,) \
            or arrays["linkage_a"].shape != (count - 1, 4) \
            or arrays["linkage_b"].shape != (count - 1, 4):
        raise ValueError("a stored comparison's arrays do not match its classes")
    result = compare_methods.Comparison(
        **{name: meta[name] for name in _COMPARISON_SCALARS},
        **{name: arrays[name] for name in _COMPARISON_ARRAYS})
    return SourceComparison(result, tuple(meta["class_ids"]), tuple(meta["class_names"]),
                            meta["coverage"], arrays["linkage_a"], arrays["linkage_b"])

