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
