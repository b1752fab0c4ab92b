"""Per-process handles the callbacks call: loaded models, analyses, caches, exports.

A callback reads its inputs, makes one call here, hands the result to
its page's ``figures`` module and returns. Everything that computes lives here or below
(``analysis``), so callbacks stay thin and every number on screen can be checked
without a browser.

:class:`Services` keeps a few :class:`ModelView` objects in memory (least recently
used dropped first); each wraps one weight analysis (model × metric × linkage) with
the derived arrays the views need: the tree layout, the matrix in leaf order and
colour limits. Results persist in the :class:`~analysis.cache.ResultCache`, so a
background job (another process) that computed an analysis leaves it where the
server process then finds it in milliseconds.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Generic, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from classmap.analysis.cache import ResultCache, get_or_compute, make_key
from classmap.analysis.methods.embedding import EmbeddingParams, check_embedding_method
from classmap.analysis.pipelines.embedding import ClassEmbedding, embed_classes, embedding_cached
from classmap.analysis.errors import ClassmapError, check_choice
from classmap.analysis.methods.hierarchy import LINKAGES
from classmap.analysis.methods.similarity import METRICS
from classmap.analysis.methods.hierarchy import to_newick
from classmap.analysis.loading.models import ClassifierHead, load_head
from classmap.analysis.pipelines.weights import (
    WeightAnalysis,
    WeightParams,
    analyse_weights,
    weight_analysis_key,
)
from classmap.analysis.methods.similarity import METRIC_KIND, pairwise_scores, standardise_rows
from classmap.analysis.methods.matrix_pyramid import sampled_scores, unit_prefix_sums
from classmap.analysis.pipelines.weights import heatmap_tile as pyramid_tile
from classmap.app.config import ModelEntry, Settings
from classmap.app.shell.matrix_tiles import (
    ColourScale,
    MatrixTile,
    symmetric_limit,
    tile_from_dense,
    tile_from_pyramid,
    value_range,
)
from classmap.app.shell.selection import MAX_TOP_K
from classmap.app.shell.tree_layout import TreeLayout, compute_tree_layout, cut_labels

HEATMAP_IMAGES = 8  # heatmap PNGs kept per analysis (the whole matrix and zoomed regions)
CLUSTER_CUTS = 16  # cluster labellings kept per analysis (each is C integers)
VIEW_MEMOS = 16  # derived values kept per analysis (ModelView.memo: WordNet, zooms' links)

log = logging.getLogger(__name__)
T = TypeVar("T")

AnalysisKey = tuple[str, str, str]  # (model id, metric, linkage)
MAX_VIEWS = 4
HEATMAP_TILE_CELLS = 1000  # cells per side of an aggregated heatmap tile
METRIC_LABELS = {
    "cosine": "cosine similarity of standardised rows (= Pearson correlation)",
    "euclidean": "Euclidean distance of standardised rows",
}


def short_name(name: str) -> str:
    """The first synonym of a class name (``"Dungeness crab, Cancer magister"`` → first)."""
    return name.split(",")[0].strip() or name


@dataclass
class ModelView:
    """One analysis of one model, with what the views derive from it.

    Attributes
    ----------
    key : (model id, metric, linkage)
    entry : the configured model
    analysis : the WeightAnalysis (head, neighbours, linkage, leaf order, similarity)
    layout : TreeLayout of the dendrogram (leaf positions, node intervals)
    """

    key: AnalysisKey
    entry: ModelEntry
    analysis: WeightAnalysis
    layout: TreeLayout
    _clusters: "OrderedDict[int, np.ndarray]" = field(default_factory=OrderedDict, repr=False)
    _images: "OrderedDict[tuple, str]" = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _prefix: "Future[np.ndarray] | None" = field(default=None, repr=False)
    _memo: "LruMemo[Any]" = field(default_factory=lambda: LruMemo(VIEW_MEMOS), repr=False)

    @property
    def head(self) -> ClassifierHead:
        return self.analysis.head

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def metric(self) -> str:
        return self.key[1]

    @property
    def names(self) -> tuple[str, ...]:
        return self.head.classes.names

    @property
    def ids(self) -> tuple[str, ...]:
        return self.head.classes.ids

    @cached_property
    def short_names(self) -> tuple[str, ...]:
        return tuple(short_name(n) for n in self.names)

    @cached_property
    def ordered(self) -> np.ndarray | None:
        """Scores with rows and columns in leaf order, shape (C, C), or None if not dense."""
        similarity = self.analysis.similarity
        if similarity is None:
            return None
        order = self.layout.order
        return np.ascontiguousarray(similarity[np.ix_(order, order)])

    @property
    def unit_prefix(self) -> np.ndarray:
        """Prefix sums of the unit standardised rows in leaf order, shape (C + 1, D), float64:
        the cosine cohesion of a tree node (a contiguous run) without an n × n matrix, and
        cold cosine heatmap tiles. Made once: by the background task
        :meth:`Services.view` starts for a large head (waited for here), else on first use."""
        with self._lock:
            if self._prefix is None:
                self._prefix = Future()
                self._prefix.set_running_or_notify_cancel()
                owner = True
            else:
                owner = False
        if owner:
            try:
                self._prefix.set_result(unit_prefix_sums(self.head.weight, self.layout.order))
            except BaseException as error:
                self._prefix.set_exception(error)
        return self._prefix.result()

    @property
    def prefix_ready(self) -> bool:
        """Whether :attr:`unit_prefix` answers without waiting (made and not failed)."""
        found = self._prefix
        return found is not None and found.done() and found.exception() is None

    @cached_property
    def colour_scale(self) -> ColourScale:
        label = "cosine (std. rows)" if self.metric == "cosine" else "Euclidean distance"
        ordered = self.ordered if self.ordered is not None else sampled_scores(
            self.head.weight, self.metric)
        if METRIC_KIND[self.metric] == "similarity":
            limit = symmetric_limit(ordered) if ordered is not None else 1.0
            return ColourScale("diverging", -limit, limit, label)
        low, high = value_range(ordered) if ordered is not None else (0.0, 1.0)
        return ColourScale("sequential", low, high, label)

    @cached_property
    def _id_index(self) -> dict[str, int]:
        return {class_id: i for i, class_id in enumerate(self.ids)}

    @cached_property
    def _name_index(self) -> dict[str, int | None]:
        """Lower-cased full names and synonyms → index (None when ambiguous)."""
        index: dict[str, int | None] = {}
        for i, name in enumerate(self.names):
            keys = {name.lower().strip()} | {part.lower().strip() for part in name.split(",")}
            for key in keys:
                if key:
                    index[key] = None if key in index and index[key] != i else i
        return index

    def class_id(self, index: int) -> str:
        return self.ids[index]

    def find_class(self, key: str) -> int | None:
        """Class index for an id, a unique (case-insensitive) name or synonym, or ``#index``."""
        key = key.strip()
        if key in self._id_index:
            return self._id_index[key]
        if key.startswith("#") and key[1:].isdigit() and int(key[1:]) < self.num_classes:
            return int(key[1:])
        return self._name_index.get(key.lower())

    def search_classes(self, text: str, limit: int = 50) -> list[int]:
        """Classes whose id or name contains ``text`` (case-insensitive), best first.

        Exact id/name matches first, then names starting with ``text``, then the rest,
        each group in class-index order.
        """
        needle = text.strip().lower()
        if not needle:
            return list(range(min(limit, self.num_classes)))
        exact, prefix, inside = [], [], []
        for i, (class_id, name) in enumerate(zip(self.ids, self.names)):
            low = name.lower()
            cid = class_id.lower()
            if needle == cid or needle == low or needle == short_name(low):
                exact.append(i)
            elif low.startswith(needle) or cid.startswith(needle):
                prefix.append(i)
            elif needle in low or needle in cid or needle == f"#{i}":
                inside.append(i)
            if len(exact) >= limit:
                break
        return (exact + prefix + inside)[:limit]

    def memo(self, key: tuple, create: Callable[[], T]) -> T:
        """``create()`` once per ``key`` for this view (the last VIEW_MEMOS kept): what
        every redraw derives the same way from the analysis — its WordNet names (a cache
        read), the dendrogram's walk of a zoom's links. Values are shared: never change
        them (zooms come from the client, hence the bound)."""
        return self._memo.get(key, create)

    def clusters(self, num_clusters: int) -> np.ndarray | None:
        """Cluster label of each class for a cut into ``num_clusters``, shape (C,); None if off."""
        if num_clusters <= 1:
            return None
        num_clusters = min(num_clusters, self.num_classes)
        with self._lock:
            labels = self._clusters.get(num_clusters)
            if labels is None:
                labels = cut_labels(self.layout, num_clusters)
                self._clusters[num_clusters] = labels
                while len(self._clusters) > CLUSTER_CUTS:  # cuts come from the client
                    self._clusters.popitem(last=False)
            else:
                self._clusters.move_to_end(num_clusters)
        return labels


@dataclass(frozen=True)
class SelectionSummary:
    """The classes of a selection (a subtree or a lasso set), in leaf order.

    indices : ndarray of shape (n,), int64 — class indices, dendrogram order
    cohesion : mean score over the n(n−1) ordered pairs of distinct classes, or None
    node : the tree node when the selection is a subtree, else None
    contiguous : whether the classes form one run of leaf positions (heatmap block)
    """

    indices: np.ndarray
    cohesion: float | None
    node: int | None
    contiguous: bool

    @property
    def count(self) -> int:
        return int(self.indices.shape[0])


@dataclass(frozen=True)
class NeighbourRows:
    """The top-k nearest classes of one focal class, nearest first.

    indices : ndarray of shape (k,), int64; scores : ndarray of shape (k,), float32
    """

    focal: int
    indices: np.ndarray
    scores: np.ndarray
    metric: str


class KeyedLocks:
    """One lock per key while someone holds or waits for it: two requests for the same
    model load it once while different models load in parallel. ``with locks(key):``
    holds the key's lock; the table forgets a key when its last user leaves, so keys a
    client names cannot grow it (``len(locks)`` is the keys in use)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Any, list] = {}  # key → [lock, holders and waiters]

    @contextmanager
    def __call__(self, key: Any) -> Iterator[None]:
        with self._guard:
            entry = self._locks.get(key)
            if entry is None:
                entry = self._locks[key] = [threading.Lock(), 0]
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


class LruMemo(Generic[T]):
    """At most ``size`` values by key, least recently used dropped first; each made once
    (per key lock) by the ``create`` passed to :meth:`get`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[Any, T] = OrderedDict()
        self._lock = threading.Lock()
        self._key_lock = KeyedLocks()

    def get(self, key: Any, create: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        with self._key_lock(key):
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = create()
            with self._lock:
                self._values[key] = value
                while len(self._values) > self.size:
                    self._values.popitem(last=False)
        return value


class Services:
    """Models, analyses and caches of one server process.

    Parameters
    ----------
    settings : the server's Settings
    cache : a ResultCache (default: one at ``settings.cache_dir``)
    serving : whether this Services answers page requests (the server's). A background
        job's (``serving=False``) only fills the result cache: it does not make the
        in-memory extras a page would use next (the prefix sums of a large head, ≈ 1 s
        of CPU that the job's process would spend before it could exit).
    """

    def __init__(self, settings: Settings, cache: ResultCache | None = None,
                 serving: bool = True) -> None:
        self.serving = serving
        self.settings = settings
        self.cache = cache if cache is not None else ResultCache(settings.cache_dir)
        self._views: OrderedDict[AnalysisKey, ModelView] = OrderedDict()
        self._heads: dict[str, ClassifierHead] = {}
        self._embeddings: OrderedDict[tuple[str, str], ClassEmbedding] = OrderedDict()
        self._lock = threading.Lock()
        self._key_lock = KeyedLocks()
        self._owned: dict[str, Any] = {}
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classmap-view")

    def owned(self, name: str, create: Callable[[], T]) -> T:
        """The one object ``name`` of this Services (a page's state, e.g. its loaded
        networks), made by ``create()`` on first use. Page state lives here, with the
        Services it belongs to, not in module-level tables."""
        with self._lock:
            found = self._owned.get(name)
            if found is None:
                found = self._owned[name] = create()
            return found

    def for_background_job(self) -> "Services":
        """A fresh Services for a background job's (forked) process.

        A forked child inherits every lock in whatever state some server thread held
        it at the fork, and a diskcache connection that must not be shared; a job
        that reused them could wait forever. A fresh instance (same settings, a new
        cache handle on the same folder) shares only the disk cache, which is where
        the job's results must land anyway.
        """
        return Services(self.settings, cache=ResultCache(self.cache.directory), serving=False)

    # -- models and analyses ------------------------------------------------------------
    def model_entry(self, model_id: str) -> ModelEntry:
        return self.settings.model(model_id)

    def view_ready(self, key: AnalysisKey) -> bool:
        """Whether :meth:`view` answers from memory (no loading, no computing)."""
        with self._lock:
            return key in self._views

    def views_in_memory(self) -> list[AnalysisKey]:
        """The analyses :meth:`view` answers from memory now (at most MAX_VIEWS)."""
        with self._lock:
            return list(self._views)

    def check_key(self, key: Any) -> AnalysisKey:
        """``key`` as (model id, metric, linkage) if the server offers each, else raises
        ClassmapError — before anything is loaded, allocated or keyed by it."""
        if (not isinstance(key, (tuple, list)) or len(key) != 3
                or not all(isinstance(part, str) for part in key)):
            raise ClassmapError("an analysis is named by [model, metric, linkage]; reload the "
                                "page")
        model_id, metric, linkage = key
        self.model_entry(model_id)
        check_choice(metric, METRICS, "metric")
        check_choice(linkage, LINKAGES, "linkage")
        return (model_id, metric, linkage)

    def head(self, model_id: str) -> ClassifierHead:
        """The model's classifier head (loaded once per process).

        Raises ClassmapError when it has more classes than the config's ``max_classes``.
        """
        entry = self.model_entry(model_id)
        with self._key_lock(("head", model_id)):
            head = self._heads.get(model_id)
            if head is None:
                head = load_head(entry.spec, self.cache)
                limit = self.settings.hosting.limits.max_classes
                if limit is not None and head.num_classes > limit:
                    raise ClassmapError(f"model {model_id} has {head.num_classes:,} classes, "
                                        f"more than this server's limit of {limit:,}; ask its "
                                        "operator to raise max_classes")
                self._heads[model_id] = head
        return head

    def view(self, key: AnalysisKey, progress: Any = None) -> ModelView:
        """The analysis ``key`` with its derived arrays; loads and computes on a miss.

        Raises ClassmapError when the model cannot be loaded or analysed.
        """
        key = self.check_key(key)
        with self._lock:
            found = self._views.get(key)
            if found is not None:
                self._views.move_to_end(key)
                return found
        model_id, metric, linkage = key
        with self._key_lock(key):
            with self._lock:
                found = self._views.get(key)
            if found is not None:
                return found
            head = self.head(model_id)
            top_k = min(MAX_TOP_K, head.num_classes - 1)
            params = WeightParams(metric=metric, linkage=linkage, top_k=top_k)
            analysis = analyse_weights(head, params, cache=self.cache, progress=progress,
                                       device=self.settings.device)
            layout = compute_tree_layout(analysis.linkage, analysis.leaf_order)
            view = ModelView(key, self.model_entry(model_id), analysis, layout)
            if view.ordered is None:  # sampled scores: kept in the result cache
                view.colour_scale = self._sampled_colour_scale(view)
            view.colour_scale  # noqa: B018 — computed once here, not in a callback
            if view.ordered is None and metric == "cosine" and self.serving:
                # Node cohesion and cold tiles without a dense matrix: ~1 s at 21k classes,
                # made in the background so the page opens without waiting for it.
                self._background.submit(lambda: view.unit_prefix)
            with self._lock:
                self._views[key] = view
                while len(self._views) > MAX_VIEWS:
                    self._views.popitem(last=False)
        return view

    def _sampled_colour_scale(self, view: ModelView) -> ColourScale:
        """``view.colour_scale`` of a head without a dense matrix (from 1,000 sampled
        classes), read from the result cache when an earlier process computed it."""
        key = make_key("colour-scale", "1", analysis=weight_analysis_key(view.head,
                                                                          view.analysis.params))
        return get_or_compute(
            self.cache, key, lambda: ModelView.colour_scale.func(view),
            pack=lambda scale: ({}, {"kind": scale.kind, "low": scale.low, "high": scale.high,
                                     "label": scale.label}),
            unpack=lambda _arrays, meta: ColourScale(meta["kind"], float(meta["low"]),
                                                     float(meta["high"]), meta["label"]))

    # -- heatmap -------------------------------------------------------------------------
    def heatmap_tile(
        self, view: ModelView, rows: tuple[int, int] | None = None,
        cols: tuple[int, int] | None = None,
    ) -> MatrixTile:
        """The heatmap region ``rows × cols`` (leaf positions; None = everything).

        Up to ``settings.dense_heatmap_limit`` positions per side come back cell by cell,
        wider regions as block means of at most HEATMAP_TILE_CELLS per side.
        """
        ordered = view.ordered
        c = view.num_classes
        rows = rows or (0, c)
        cols = cols or (0, c)
        span = max(rows[1] - rows[0], cols[1] - cols[0])
        limit = self.settings.dense_heatmap_limit
        if ordered is None:  # too many classes for a dense matrix: the cached tile pyramid
            return tile_from_pyramid(
                lambda level, row, col: pyramid_tile(view.analysis, level, row, col,
                                                     cache=self.cache,
                                                     prefix=lambda: view.unit_prefix),
                c, rows, cols, min(HEATMAP_TILE_CELLS, limit))
        max_cells = span if span <= limit else min(HEATMAP_TILE_CELLS, limit)
        return tile_from_dense(ordered, rows, cols, max_cells)

    def heatmap_image(
        self, view: ModelView, rows: tuple[int, int] | None = None,
        cols: tuple[int, int] | None = None,
    ) -> tuple[MatrixTile, str]:
        """:meth:`heatmap_tile` and its palette PNG (``figures.codes_png``), the PNG kept
        per view for the last HEATMAP_IMAGES regions: encoding 1,000 × 1,000 cells takes
        ≈ 20 ms of every page load that shows them otherwise."""
        from classmap.app.shell.matrix_tiles import codes_png, encode_codes

        tile = self.heatmap_tile(view, rows, cols)
        key = (tile.row_start, tile.col_start, tile.z.shape, tile.block)
        with view._lock:
            image = view._images.get(key)
            if image is not None:
                view._images.move_to_end(key)
                return tile, image
        image = codes_png(encode_codes(tile.z, view.colour_scale), view.colour_scale.kind)
        with view._lock:
            view._images[key] = image
            while len(view._images) > HEATMAP_IMAGES:
                view._images.popitem(last=False)
        return tile, image

    def cell_summary(self, view: ModelView, row: int, col: int) -> dict[str, Any]:
        """Names and exact score of heatmap cell (row, col) in leaf positions."""
        c = view.num_classes
        row = min(max(int(row), 0), c - 1)
        col = min(max(int(col), 0), c - 1)
        a, b = int(view.layout.order[row]), int(view.layout.order[col])
        if view.ordered is not None:
            score = float(view.ordered[row, col])
        else:
            pair = standardise_rows(view.head.weight[[a, b]])
            score = float(pairwise_scores(pair[:1], pair[1:], view.metric)[0, 0])
        return {"row": view.names[a], "col": view.names[b], "row_id": view.ids[a],
                "col_id": view.ids[b], "score": score}

    # -- selections ------------------------------------------------------------------------
    def summarise_node(self, view: ModelView, node: int) -> SelectionSummary:
        """The classes under tree ``node`` and their cohesion."""
        layout = view.layout
        if not 0 <= node <= layout.root:
            raise ClassmapError(f"tree node {node} does not exist; nodes are 0…{layout.root}")
        positions = np.arange(layout.first[node], layout.last[node] + 1)
        indices = layout.order[positions]
        return SelectionSummary(indices, self._cohesion(view, positions), node, True)

    def summarise_classes(self, view: ModelView, classes: Sequence[int]) -> SelectionSummary:
        """A lasso selection of classes, in leaf order, and its cohesion."""
        indices = np.asarray(sorted(set(int(i) for i in classes)), dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= view.num_classes):
            raise ClassmapError(f"class indices must be 0…{view.num_classes - 1}; reselect")
        positions = np.sort(view.layout.position[indices])
        contiguous = bool(positions.size) and positions[-1] - positions[0] + 1 == positions.size
        return SelectionSummary(view.layout.order[positions], self._cohesion(view, positions),
                                None, contiguous)

    def _cohesion(self, view: ModelView, positions: np.ndarray) -> float | None:
        """Mean score over ordered pairs of distinct classes at ``positions``."""
        n = positions.size
        if n < 2:
            return None
        ordered = view.ordered
        if ordered is not None:
            block = ordered[np.ix_(positions, positions)].astype(np.float64)
            return float((block.sum() - np.trace(block)) / (n * (n - 1)))
        if view.metric != "cosine":
            return None
        contiguous = positions[-1] - positions[0] + 1 == n
        if contiguous and view.prefix_ready:
            # A tree node (a contiguous run of leaves) from the prefix sums, in O(D); while
            # they are still being made (just after the view opened), directly from its
            # rows below (O(n · D) without the sums' C × D running total: ≈ 0.1 s for the
            # whole 21k head) instead of waiting ≈ 1–2 s for them.
            total = view.unit_prefix[positions[-1] + 1] - view.unit_prefix[positions[0]]
            return float((total @ total - n) / (n * (n - 1)))
        # With unit rows u_i (as the prefix sums hold them), the mean cosine over distinct
        # pairs is (‖Σ u_i‖² − n) / (n (n − 1)), without an n × n matrix.
        rows = standardise_rows(view.head.weight[view.layout.order[positions]]).double()
        rows /= rows.norm(dim=1, keepdim=True)
        total = float((rows.sum(dim=0) ** 2).sum())
        return (total - n) / (n * (n - 1))

    def neighbours(self, view: ModelView, focal: int, k: int) -> NeighbourRows:
        """The ``k`` nearest classes of class ``focal`` (self excluded, ties by index)."""
        hood = view.analysis.neighbours
        k = max(1, min(int(k), hood.index.shape[1]))
        return NeighbourRows(int(focal), hood.index[focal, :k], hood.score[focal, :k],
                             hood.metric)

    # -- embeddings --------------------------------------------------------------------------
    def embedding_ready(self, model_id: str, method: str) -> bool:
        """Whether the class map ``method`` is in memory or in the result cache."""
        check_embedding_method(method)
        with self._lock:
            if (model_id, method) in self._embeddings:
                return True
        if method == "pca":
            return True  # fast enough to compute in a request
        head = self.head(model_id)
        return embedding_cached(head, EmbeddingParams(method=method), self.cache)

    def embedding(self, model_id: str, method: str, progress: Any = None) -> ClassEmbedding:
        """Class coordinates ``[C, 2]`` for ``method`` (cached in memory and on disk)."""
        check_embedding_method(method)
        self.model_entry(model_id)  # before the id keys anything
        key = (model_id, method)
        with self._lock:
            found = self._embeddings.get(key)
        if found is not None:
            return found
        with self._key_lock(("embedding",) + key):
            head = self.head(model_id)
            result = embed_classes(head, EmbeddingParams(method=method), cache=self.cache,
                                   progress=progress)
            with self._lock:
                self._embeddings[key] = result
                while len(self._embeddings) > 2 * MAX_VIEWS:
                    self._embeddings.popitem(last=False)
        return result

    # -- exports ------------------------------------------------------------------------------
    def neighbours_csv(self, view: ModelView, focal: int) -> str:
        """CSV of every kept neighbour of ``focal``: rank, index, id, name, score."""
        rows = self.neighbours(view, focal, MAX_TOP_K)
        score = "similarity" if METRIC_KIND[rows.metric] == "similarity" else "distance"
        return _csv(
            ["focal_index", "focal_id", "focal_name", "rank", "index", "id", "name",
             f"{rows.metric}_{score}"],
            ([focal, view.ids[focal], view.names[focal], rank, int(i), view.ids[i], view.names[i],
              f"{float(s):.6f}"] for rank, (i, s) in enumerate(zip(rows.indices, rows.scores), 1)),
        )

    def selection_csv(self, view: ModelView, summary: SelectionSummary, cut: int) -> str:
        """CSV of the selected classes in dendrogram order (with their cluster at ``cut``)."""
        labels = view.clusters(cut)
        return _csv(
            ["position", "index", "id", "name", "cluster"],
            ([int(view.layout.position[i]), int(i), view.ids[i], view.names[i],
              "" if labels is None else int(labels[i])] for i in summary.indices),
        )

    def newick(self, view: ModelView) -> str:
        """The whole tree in Newick format, leaves labelled with class names."""
        return to_newick(view.analysis.linkage, list(view.names))


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def current_services() -> Services:
    """The Services of the app serving the current request (for pages' ``layout()``)."""
    import dash

    app = dash.get_app()
    return app._classmap_services  # type: ignore[attr-defined]
