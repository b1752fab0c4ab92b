"""The shipped WordNet file, its regeneration, and METHODS.md §5's distance."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest

from classmap.analysis.errors import ClassmapError
from classmap.analysis.wordnet import build
from classmap.analysis.wordnet.graph import (
    SHIPPED,
    WordNetGraph,
    ancestor_table,
    load_wordnet,
    wordnet_distances,
)

DATA_NOUN = build.DEFAULT_WORDNET / "data.noun"


@pytest.mark.skipif(not DATA_NOUN.exists(),
                    reason=f"{DATA_NOUN} is absent (Debian package wordnet-base not installed)")
def test_regenerating_the_file_gives_the_shipped_bytes():
    assert build.render() == SHIPPED.read_bytes()


def test_shipped_file_carries_the_wordnet_licence():
    header = [line for line in gzip.open(SHIPPED, "rt") if line.startswith("#")]
    text = "".join(header)
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in text
    assert "Permission to use, copy, modify and distribute" in text


def test_every_timm_imagenet_class_is_in_the_shipped_graph():
    from timm.data import ImageNetInfo

    graph = load_wordnet()
    for subset in build.IMAGENET_SUBSETS:
        assert graph.covers(ImageNetInfo(subset).label_names()), subset


def test_parse_reads_hypernym_and_instance_pointers_only():
    line = ("00000003 05 n 02 big_cat 0 cat 1 004 @ 00000002 n 0000 @i 00000009 n 0000 "
            "~ 00000004 n 0000 @ 00000001 v 0000 | a gloss with @ 00000005 n in it  ")
    synsets, licence = build.parse_data_noun("  1 licence text  \n" + line)
    assert synsets["00000003"] == build.Synset("00000003", "big cat", ("00000002", "00000009"))
    assert licence == ["licence text"]


def _brute_distance(parents: dict[str, tuple[str, ...]], a: str, b: str) -> int:
    """Every upward path of a and of b enumerated; min over common h of max(hops)."""
    def paths(node):
        if not parents[node]:
            return [[node]]
        return [[node, *rest] for p in parents[node] for rest in paths(p)]

    best = None
    for pa, pb in itertools.product(paths(a), paths(b)):
        for h in set(pa) & set(pb):
            value = max(pa.index(h), pb.index(h))
            best = value if best is None else min(best, value)
    return best


def _graph(edges: dict[str, tuple[str, ...]]) -> WordNetGraph:
    return WordNetGraph({k: f"s{k}" for k in edges}, edges)


# entity(0) ─ a(1) ─ b(2) ─ c(3)            c and e have two parents (multiple paths)
#           └ d(4) ─ e(5) (e also under b) └ f(6) (f also under d)
EDGES = {"00000000": (), "00000001": ("00000000",), "00000002": ("00000001",),
         "00000003": ("00000002",), "00000004": ("00000000",),
         "00000005": ("00000004", "00000002"), "00000006": ("00000003", "00000004")}


def test_distance_matches_path_enumeration_with_several_parents():
    graph = _graph(EDGES)
    ids = [f"n{k}" for k in EDGES]
    distance = wordnet_distances(ancestor_table(graph, ids))
    for i, a in enumerate(EDGES):
        for j, b in enumerate(EDGES):
            assert distance[i, j] == _brute_distance(EDGES, a, b), (a, b)
    assert distance[5, 3] == 1  # e and c are siblings under b though e is also under d


def test_distances_of_imagenet_classes_by_hand():
    from timm.data import ImageNetInfo

    ids = ImageNetInfo("imagenet-1k").label_names()
    distance = wordnet_distances(ancestor_table(load_wordnet(), ids))
    # Dungeness crab (118) and rock crab (119): both directly under "crab".
    assert distance[118, 119] == 1
    assert np.array_equal(distance, distance.T) and (np.diag(distance) == 0).all()
    assert (distance[~np.eye(1000, dtype=bool)] >= 1).all()


def test_non_wordnet_ids_are_refused_by_name():
    with pytest.raises(ClassmapError, match="not WordNet 3.0 noun ids.*'class_0'"):
        ancestor_table(load_wordnet(), ["class_0", "n01978287"])
    assert not load_wordnet().covers(["0", "1"])


def test_build_script_writes_the_file(tmp_path: Path):
    if not DATA_NOUN.exists():
        pytest.skip(f"{DATA_NOUN} is absent (wordnet-base not installed)")
    out = tmp_path / "wn.tsv.gz"
    assert build.main(["--out", str(out)]) == 0
    assert load_wordnet(out).names["02084071"] == "dog"


def test_a_new_graph_never_gets_the_answers_of_a_collected_one():
    # Two graphs over the same offsets with different parents, built and dropped in
    # turn: CPython reuses a collected graph's id, so answers memoised by id leaked.
    chain = {"00000000": (), "00000001": ("00000000",), "00000002": ("00000001",)}
    flat = {"00000000": (), "00000001": ("00000000",), "00000002": ("00000000",)}
    for round_ in range(200):
        edges = chain if round_ % 2 == 0 else flat
        graph = WordNetGraph({k: k for k in edges}, edges)
        assert graph.ancestors("00000002") == (
            {"00000002": 0, "00000001": 1, "00000000": 2} if edges is chain
            else {"00000002": 0, "00000000": 1})
        assert graph.max_depth("00000002") == (2 if edges is chain else 1)
        del graph


def test_wordnet_views_are_keyed_by_the_shipped_file(tmp_path, monkeypatch):
    # A regenerated data file must not be answered from entries made with the old one.
    from scipy.cluster import hierarchy

    from classmap.analysis.cache import ResultCache
    from classmap.analysis.pipelines import compare as pipeline

    ids = ("n01440764", "n01443537", "n01484850", "n01491361")
    linkage = hierarchy.linkage(np.arange(8.0).reshape(4, 2), "average")
    cache = ResultCache(tmp_path)
    pipeline.wordnet_for_tree(ids, linkage, cache)
    before = len(list(tmp_path.rglob("*")))
    pipeline.wordnet_for_tree(ids, linkage, cache)  # the same file: read back, nothing new
    assert len(list(tmp_path.rglob("*"))) == before
    monkeypatch.setattr(pipeline, "shipped_digest", lambda: "another-file")
    pipeline.wordnet_for_tree(ids, linkage, cache)
    assert len(list(tmp_path.rglob("*"))) > before
