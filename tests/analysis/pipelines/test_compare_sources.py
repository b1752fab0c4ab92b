"""Sources over different class sets and image-based sources (issue 13 item 5):
compared over the shared classes, checked against scipy on the same sub-matrices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist, squareform

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.compare import Relation
from classmap.analysis.pipelines.compare import (
    SourceRelation,
    SourceSpec,
    compare_sources,
)


def _source(points: np.ndarray, ids: list[str], name: str) -> SourceRelation:
    condensed = pdist(points)
    relation = Relation(name, squareform(condensed), hierarchy.linkage(condensed, "average"))
    return SourceRelation(relation, tuple(ids), tuple(f"name {i}" for i in ids))


def test_sources_over_different_classes_are_compared_over_the_shared_ones():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(12, 4))
    ids = [f"c{i}" for i in range(12)]
    # B covers 8 of A's classes, in another order, plus 2 of its own.
    b_ids = ["c7", "c1", "c9", "x", "c3", "c0", "c11", "y", "c4", "c5"]
    b_points = np.stack([points[int(c[1:])] if c.startswith("c") else rng.normal(size=4)
                         for c in b_ids]) + rng.normal(scale=0.3, size=(10, 4))
    a, b = _source(points, ids, "a"), _source(b_points, b_ids, "b")
    compared = compare_sources(a, b, permutations=0)
    shared = [c for c in ids if c in b_ids]
    assert compared.class_ids == tuple(shared)
    assert compared.coverage.startswith("the 8 classes both sources cover (A covers 12, B 10")
    ia = [ids.index(c) for c in shared]
    ib = [b_ids.index(c) for c in shared]
    expected = stats.spearmanr(squareform(a.relation.distance[np.ix_(ia, ia)]),
                               squareform(b.relation.distance[np.ix_(ib, ib)])).statistic
    assert compared.result.spearman == pytest.approx(expected)
    assert compared.result.summary()["classes"] == 8


def test_disjoint_class_sets_are_refused():
    rng = np.random.default_rng(1)
    a = _source(rng.normal(size=(5, 3)), list("abcde"), "a")
    b = _source(rng.normal(size=(5, 3)), list("defgh"), "b")
    with pytest.raises(ClassmapError, match="different class sets .*2 shared"):
        compare_sources(a, b, permutations=0)


@pytest.mark.parametrize("text, expected", [
    ("lenet-digits:confidence@digits", SourceSpec("lenet-digits", "confidence", "average",
                                                  "digits")),
    ("m:features@/data/pets", SourceSpec("m", "features", "ward", "/data/pets")),
    ("m:gradcam:complete@digits", SourceSpec("m", "gradcam", "complete", "digits")),
])
def test_image_sources_parse(text, expected):
    assert SourceSpec.parse(text) == expected


@pytest.mark.parametrize("text, message", [
    ("m:confidence", "add @DATA"),
    ("m:cosine@digits", "does not use images"),
    ("m:confidence:ward@digits", "ward needs Euclidean geometry"),
    ("m:features@", "is not MODEL"),
])
def test_bad_image_sources_are_refused_in_one_line(text, message):
    with pytest.raises(ClassmapError, match=message) as error:
        SourceSpec.parse(text)
    assert "\n" not in str(error.value)


def _comparable(compared) -> dict:
    """Every field of a SourceComparison as plain values (arrays as lists)."""
    import dataclasses

    fields = {f"result.{k}": v for k, v in dataclasses.asdict(compared.result).items()}
    fields.update(class_ids=compared.class_ids, class_names=compared.class_names,
                  coverage=compared.coverage, linkage_a=compared.linkage_a,
                  linkage_b=compared.linkage_b)
    return {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
            for k, v in fields.items() if k != "result.seconds"}


def test_a_stored_comparison_reads_back_as_computed(tmp_path):
    from classmap.analysis.cache import ResultCache
    from classmap.analysis.pipelines.compare import cached_comparison, comparison_key

    rng = np.random.default_rng(3)
    points = rng.normal(size=(15, 5))
    ids = [f"c{i}" for i in range(15)]
    a = _source(points, ids, "a")
    b = _source(points + rng.normal(scale=0.5, size=points.shape), ids[::-1][:12], "b")
    cache = ResultCache(tmp_path / "cache")
    key = comparison_key(("fa", "fb"), ("a", "b"), 19)
    assert cached_comparison(cache, key) is None
    computed = compare_sources(a, b, permutations=19, cache=cache, key=key)
    stored = cached_comparison(cache, key)
    assert stored is not None
    assert _comparable(stored) == _comparable(computed)
    # the same call again is answered from the cache: nothing is computed
    again = compare_sources(_source(points * 0, ids, "x"), b, permutations=19, cache=cache,
                            key=key)
    assert _comparable(again) == _comparable(computed)


def test_comparison_keys_name_what_changes_the_result():
    from classmap.analysis.pipelines.compare import comparison_key

    base = comparison_key(("fa", "fb"), ("a", "b"), 99)
    assert base == comparison_key(("fa", "fb"), ("a", "b"), 99)
    others = {comparison_key(("fa", "fc"), ("a", "b"), 99),
              comparison_key(("fb", "fa"), ("a", "b"), 99),
              comparison_key(("fa", "fb"), ("a", "c"), 99),
              comparison_key(("fa", "fb"), ("a", "b"), 999),
              comparison_key(("fa", "fb"), ("a", "b"), 99, top_pairs=5)}
    assert base not in others and len(others) == 5


def test_a_damaged_stored_comparison_is_a_miss(tmp_path):
    from classmap.analysis.cache import ResultCache
    from classmap.analysis.pipelines.compare import (
        _pack_comparison,
        cached_comparison,
        comparison_key,
    )

    rng = np.random.default_rng(4)
    points = rng.normal(size=(10, 3))
    ids = [f"c{i}" for i in range(10)]
    compared = compare_sources(_source(points, ids, "a"), _source(points[::-1], ids, "b"),
                               permutations=0)
    arrays, meta = _pack_comparison(compared)
    arrays["linkage_b"] = arrays["linkage_b"][:-1]  # a tree one merge short
    cache = ResultCache(tmp_path / "cache")
    key = comparison_key(("fa", "fb"), ("a", "b"), 0)
    cache.store(key, arrays, meta)
    assert cached_comparison(cache, key) is None
