"""The shipped WordNet 3.0 hypernym graph and what Classmap derives from it.

:func:`load_wordnet` reads ``imagenet_wordnet.tsv.gz`` (made by :mod:`.build`) once
per process. :meth:`WordNetGraph.ancestors` gives each class's ancestors with their
hop counts, from which :func:`wordnet_distances` computes METHODS.md §5's distance:

    d(a, b) = min over common ancestors h of max(hops(a → h), hops(b → h)),

hops along hypernym pointers (``@`` and ``@i``, every parent, so a synset with
several parents has several paths; hops(a → h) is the shortest). It is the height of
the lowest common ancestor above the deeper class: 0 for a class with itself, 1 for
a class and its parent or two siblings.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse

from classmap.analysis.errors import ClassmapError

SHIPPED = Path(__file__).with_name("imagenet_wordnet.tsv.gz")
# All-pairs distances are a dense C × C int8 matrix; beyond this the measures refuse.
MAX_PAIRWISE_CLASSES = 5000


@dataclass(frozen=True)
class WordNetGraph:
    """Synsets by 8-digit offset: first lemma and hypernym offsets."""

    names: dict[str, str]
    parents: dict[str, tuple[str, ...]]
    # Memos of ancestors() and max_depth(), per graph (a process-wide table keyed by
    # id(graph) gave a new graph the answers of a collected one that had the same id).
    _ancestor_memo: dict[str, dict[str, int]] = field(
        default_factory=dict, compare=False, repr=False)
    _depth_memo: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def synset_id(self, class_id: str) -> str | None:
        """``n01978287`` → ``01978287`` when WordNet has it, else None."""
        if len(class_id) == 9 and class_id[0] == "n" and class_id[1:] in self.names:
            return class_id[1:]
        return None

    def covers(self, class_ids: tuple[str, ...] | list[str]) -> bool:
        """Whether every class id is a WordNet noun synset id (``n`` + offset)."""
        return len(class_ids) > 0 and all(self.synset_id(c) is not None for c in class_ids)

    def ancestors(self, offset: str) -> dict[str, int]:
        """``offset`` and every ancestor → shortest hop count (``offset`` itself: 0)."""
        return _ancestors(self, offset)

    def max_depth(self, offset: str) -> int:
        """Hops on the longest hypernym path from ``offset`` up to a root."""
        return _max_depth(self, offset)

    def __hash__(self) -> int:  # one graph per process; identity is enough
        return id(self)


@lru_cache(maxsize=4)
def load_wordnet(path: Path = SHIPPED) -> WordNetGraph:
    """The shipped graph (about 23,500 synsets), read once per process."""
    names: dict[str, str] = {}
    parents: dict[str, tuple[str, ...]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            offset, name, ups = line.rstrip("\n").split("\t")
            names[offset] = name
            parents[offset] = tuple(ups.split(",")) if ups else ()
    return WordNetGraph(names, parents)


def _ancestors(graph: WordNetGraph, offset: str) -> dict[str, int]:
    found = graph._ancestor_memo.get(offset)
    if found is None:
        found = {offset: 0}
        for parent in graph.parents.get(offset, ()):
            for up, hops in _ancestors(graph, parent).items():
                if hops + 1 < found.get(up, 1 << 30):
                    found[up] = hops + 1
        graph._ancestor_memo[offset] = found
    return found


def _max_depth(graph: WordNetGraph, offset: str) -> int:
    found = graph._depth_memo.get(offset)
    if found is None:
        ups = graph.parents.get(offset, ())
        found = 1 + max(_max_depth(graph, p) for p in ups) if ups else 0
        graph._depth_memo[offset] = found
    return found


@dataclass(frozen=True)
class AncestorTable:
    """The classes' ancestors as a sparse matrix.

    hops : csr_matrix [C, H], int16 — hops(class → synset) + 1 where the synset is the
        class or one of its ancestors, else no entry
    synsets : the H column synsets (offsets), sorted
    names : their first lemmas, ``[H]``
    depth : their longest-path depths, int array ``[H]``
    """

    hops: sparse.csr_matrix
    synsets: tuple[str, ...]
    names: tuple[str, ...]
    depth: np.ndarray

    @property
    def members(self) -> sparse.csr_matrix:
        """[C, H] 0/1: class is under (or is) the synset."""
        out = self.hops.copy()
        out.data = np.ones_like(out.data, dtype=np.int32)
        return out.astype(np.int32)


def ancestor_table(graph: WordNetGraph, class_ids: tuple[str, ...] | list[str]) -> AncestorTable:
    """The :class:`AncestorTable` of ``class_ids`` (all must be WordNet ids)."""
    offsets = [graph.synset_id(c) for c in class_ids]
    missing = [c for c, o in zip(class_ids, offsets) if o is None]
    if missing:
        raise ClassmapError(
            f"{len(missing)} class id(s) are not WordNet 3.0 noun ids (e.g. {missing[:3]}); "
            "WordNet measures need ImageNet-style ids such as n01978287"
        )
    per_class = [graph.ancestors(o) for o in offsets]
    synsets = tuple(sorted({h for found in per_class for h in found}))
    column = {h: k for k, h in enumerate(synsets)}
    rows, cols, vals = [], [], []
    for i, found in enumerate(per_class):
        rows.extend([i] * len(found))
        cols.extend(column[h] for h in found)
        vals.extend(hops + 1 for hops in found.values())
    hops = sparse.csr_matrix(
        (np.asarray(vals, dtype=np.int16), (rows, cols)), shape=(len(offsets), len(synsets))
    )
    names = tuple(graph.names[h] for h in synsets)
    depth = np.asarray([graph.max_depth(h) for h in synsets], dtype=np.int32)
    return AncestorTable(hops, synsets, names, depth)


def wordnet_distances(table: AncestorTable) -> np.ndarray:
    """METHODS.md §5's distance of every class pair: int16 ``[C, C]``, 0 on the diagonal.

    Computed level by level: d(a, b) ≤ k exactly when some synset is within k hops of
    both, i.e. when ``(R_k R_kᵀ)[a, b] > 0`` with ``R_k = [hops ≤ k]``. Pairs with no
    common ancestor (none in WordNet's noun graph, whose root is ``entity``) get -1.
    """
    count = table.hops.shape[0]
    if count > MAX_PAIRWISE_CLASSES:
        raise ClassmapError(
            f"{count} classes exceed the all-pairs WordNet limit of {MAX_PAIRWISE_CLASSES}; "
            "use a class set of at most that many classes"
        )
    distance = np.full((count, count), -1, dtype=np.int16)
    hops = table.hops
    top = int(hops.data.max()) if hops.nnz else 1
    for level in range(top):
        reach = hops.copy()
        reach.data = (reach.data <= level + 1).astype(np.float32)
        reach.eliminate_zeros()
        joined = (reach @ reach.T).toarray() > 0
        distance[joined & (distance < 0)] = level
    return distance
