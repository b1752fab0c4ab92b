"""Issue #12 at a size CI affords: the planted fixture, bounded memory, tiles, caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.cluster import hierarchy
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score

from classmap.analysis.cache import ResultCache
from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.matrix_pyramid import pyramid_tile, tile_span, top_level
from classmap.analysis.methods.similarity import standardise_rows
from classmap.analysis.pipelines import weights as pipeline
from classmap.analysis.pipelines.weights import (
    WeightParams,
    analyse_weights,
    heatmap_overview,
    heatmap_tile,
    weight_analysis_key,
)
from classmap.analysis.synthetic import as_classifier_head, imagenet_21k_names, planted_head

CI_CLASSES = 2000


@pytest.fixture(scope="module")
def planted():
    return planted_head(CI_CLASSES, 768, seed=3, names=False)


def test_planted_head_is_seeded_with_groups_of_at_least_two():
    first = planted_head(300, 32, seed=5, names=False)
    again = planted_head(300, 32, seed=5, names=False)
    other = planted_head(300, 32, seed=6, names=False)
    np.testing.assert_array_equal(first.weight, again.weight)
    assert not np.array_equal(first.weight, other.weight)
    assert first.weight.shape == (300, 32) and first.weight.dtype == np.float32
    assert first.num_groups == 3 and np.bincount(first.group).min() >= 2
    # Every group lies inside one supergroup.
    for group in range(first.num_groups):
        assert len(np.unique(first.supergroup[first.group == group])) == 1


def test_class_names_come_from_imagenet_21k():
    names = imagenet_21k_names(21845)
    assert len(names) == 21845
    assert names[0] == "organism"  # synset n00004475, the first ImageNet-21k class
    assert names[21843] == "organism #1"
    assert len(set(names)) == len(names)  # a shared name gets its synset id


@pytest.mark.parametrize("method", ["ward", "average", "complete", "single"])
def test_planted_groups_are_found_exactly(planted, method):
    head = as_classifier_head(planted)
    result = analyse_weights(head, WeightParams(linkage=method, top_k=1))
    found = hierarchy.fcluster(result.linkage, planted.num_groups, "maxclust")
    assert adjusted_rand_score(planted.group, found) == 1.0


def test_nearest_neighbours_are_planted_siblings(planted):
    head = as_classifier_head(planted)
    result = analyse_weights(head, WeightParams(top_k=1))
    nearest = result.neighbours.index[:, 0]
    assert (planted.group[nearest] == planted.group).all()
    # …and not trivially: the nearest class of another group is often in the same supergroup.
    assert len(np.unique(planted.supergroup)) > 1


def test_ward_matches_scipy_on_the_planted_head(planted):
    head = as_classifier_head(planted)
    ours = analyse_weights(head, WeightParams(top_k=1)).linkage
    z = standardise_rows(planted.weight).numpy().astype(np.float64)
    reference = hierarchy.linkage(z, "ward")
    np.testing.assert_allclose(ours[:, 2], reference[:, 2], rtol=1e-6)


def test_a_head_over_the_budget_is_refused_before_any_work(planted, monkeypatch, tmp_path):
    monkeypatch.setenv("CLASSMAP_MEMORY_BUDGET", "16M")
    monkeypatch.setattr(pipeline, "standardise_rows", lambda *a, **k: pytest.fail("computed"))
    with pytest.raises(ClassmapError) as caught:
        analyse_weights(as_classifier_head(planted), cache=ResultCache(tmp_path))
    message = str(caught.value)
    assert "\n" not in message and "memory budget of 16 MiB" in message
    assert "CLASSMAP_MEMORY_BUDGET=" in message


def test_an_interrupted_analysis_caches_nothing(planted, monkeypatch, tmp_path):
    cache = ResultCache(tmp_path)
    head = as_classifier_head(planted)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "prepare_linkage", interrupted)
    with pytest.raises(KeyboardInterrupt):
        analyse_weights(head, WeightParams(top_k=1), cache=cache)
    assert weight_analysis_key(head, WeightParams(top_k=1)) not in cache


def test_analysis_and_tiles_are_cached(planted, tmp_path):
    cache = ResultCache(tmp_path)
    head = as_classifier_head(planted)
    first = analyse_weights(head, WeightParams(top_k=1), cache=cache)
    again = analyse_weights(head, WeightParams(top_k=1), cache=cache)
    assert again.from_cache and not first.from_cache
    np.testing.assert_array_equal(again.linkage, first.linkage)
    tiles = heatmap_overview(first, cache=cache)
    top = top_level(CI_CLASSES)
    assert set(tiles) == {(top, 0, 0), (top - 1, 0, 0), (top - 1, 0, 1), (top - 1, 1, 0),
                          (top - 1, 1, 1)}
    original = pipeline.block_tile
    pipeline.block_tile = lambda *a, **k: pytest.fail("recomputed")
    try:
        np.testing.assert_array_equal(heatmap_tile(again, top, 0, 0, cache=cache),
                                      tiles[(top, 0, 0)])
    finally:
        pipeline.block_tile = original
    # The pipeline's tile (rows standardised per tile) is the pyramid tile of the ordered rows.
    ordered = standardise_rows(planted.weight)[torch.from_numpy(first.leaf_order)]
    np.testing.assert_allclose(tiles[(top - 1, 1, 0)],
                               pyramid_tile(ordered, "cosine", top - 1, 1, 0), atol=1e-6)


def _dense_block_means(matrix: np.ndarray, block: int) -> np.ndarray:
    """Reference: mean over block × block squares of a dense matrix (numpy, by hand)."""
    rows = -(-matrix.shape[0] // block)
    cols = -(-matrix.shape[1] // block)
    out = np.empty((rows, cols))
    for i in range(rows):
        for j in range(cols):
            out[i, j] = matrix[i * block:(i + 1) * block, j * block:(j + 1) * block].mean()
    return out


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_pyramid_tiles_are_block_means_of_the_ordered_matrix(metric):
    rows = standardise_rows(np.random.default_rng(12).normal(size=(300, 16)))
    dense = cdist(rows.numpy().astype(np.float64), rows.numpy().astype(np.float64),
                  metric)
    if metric == "cosine":
        dense = 1.0 - dense
    tile = 64
    for level, row, col in [(0, 0, 0), (0, 4, 2), (1, 1, 2), (2, 0, 1), (3, 0, 0)]:
        r0, r1 = tile_span(300, level, row, tile)
        c0, c1 = tile_span(300, level, col, tile)
        ours = pyramid_tile(rows, metric, level, row, col, tile=tile)
        expected = _dense_block_means(dense[r0:r1, c0:c1], 1 << level)
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ClassmapError, match="levels are 0…3"):
        pyramid_tile(rows, metric, 4, 0, 0, tile=tile)
    with pytest.raises(ClassmapError, match="does not exist"):
        pyramid_tile(rows, metric, 1, 3, 0, tile=tile)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_gpu_path_gives_the_cpu_result():
    head = as_classifier_head(planted_head(1000, 64, seed=1, names=False))
    on_gpu = analyse_weights(head, WeightParams(top_k=3), device="cuda")
    on_cpu = analyse_weights(head, WeightParams(top_k=3), device="cpu")
    np.testing.assert_array_equal(on_gpu.neighbours.index, on_cpu.neighbours.index)
    np.testing.assert_allclose(on_gpu.linkage[:, 2], on_cpu.linkage[:, 2], rtol=1e-9)
    rows = standardise_rows(head.weight)
    np.testing.assert_allclose(pyramid_tile(rows.cuda(), "euclidean", 1, 0, 1),
                               pyramid_tile(rows, "euclidean", 1, 0, 1), rtol=1e-6)


def test_memory_budget_reads_sizes_and_refuses_nonsense():
    from classmap.analysis.settings import DEFAULT_MEMORY_BUDGET, memory_budget

    assert memory_budget({}) == DEFAULT_MEMORY_BUDGET == 6 * 1024**3
    assert memory_budget({"CLASSMAP_MEMORY_BUDGET": "6G"}) == 6 * 1024**3
    assert memory_budget({"CLASSMAP_MEMORY_BUDGET": "512MiB"}) == 512 * 1024**2
    assert memory_budget({"CLASSMAP_MEMORY_BUDGET": "2.5gb"}) == int(2.5 * 1024**3)
    assert memory_budget({"CLASSMAP_MEMORY_BUDGET": "1000"}) == 1000
    for bad in ("lots", "-1G", "0", "6 X"):
        with pytest.raises(ClassmapError, match="is not a memory size; give e.g. 8G"):
            memory_budget({"CLASSMAP_MEMORY_BUDGET": bad})


@pytest.mark.slow
def test_the_scale_benchmark_runs_at_a_small_size(capsys):
    """Smoke run of benchmarks/bench_scale.py (the benchmark itself is not a test)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_scale.py"
    spec = importlib.util.spec_from_file_location("bench_scale", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--classes", "600"]) == 0
    table = capsys.readouterr().out.split("{\"rows\"")[0]  # the table, not the JSON line
    assert "| scipy `linkage(X, \"ward\")` alone (baseline) | cpu |" in table
    assert table.count("ARI 1.000; NN sibling 1.000") == 2  # cold and cached re-open


def test_the_float32_ward_routine_end_to_end_and_cancelled_caches_nothing(
        planted, monkeypatch, tmp_path):
    """Between the float32 and float64 condensed sizes (the interpreter and head counted) the
    pipeline plans ``condensed32``; run by the pipeline it finds the planted groups exactly,
    and a job cancelled during its merges leaves no cache entry."""
    import contextlib

    import classmap.analysis.methods.hierarchy as hierarchy_module
    from classmap.analysis.methods.hierarchy import (
        condensed32_bytes,
        condensed_bytes,
        vectors_bytes,
    )
    from classmap.analysis.progress import NullProgress

    c, d = planted.weight.shape
    head = as_classifier_head(planted)
    params = WeightParams(top_k=1)
    # Between the sizes: the pipeline reserves the interpreter, the head, the neighbours and
    # the dense matrix, and the float32 chain fits beside them where the float64 one does not.
    held = pipeline.linkage_plan(head, params, budget=2**60).bytes_needed - condensed_bytes(c, d)
    budget = held + condensed32_bytes(c, d)
    assert budget < held + condensed_bytes(c, d)
    assert pipeline.linkage_plan(head, params, budget).routine == "condensed32"
    with pytest.raises(ClassmapError, match="over the memory budget"):
        pipeline.linkage_plan(head, params, held + vectors_bytes(c, d) - 1)
    # The neighbour step (its blocks and the dense matrix) needs more than the chain here:
    # run the pipeline with the chain chosen by size instead.
    monkeypatch.setattr(hierarchy_module, "FLOAT32_WARD_ABOVE", c - 1)
    monkeypatch.setattr(hierarchy_module.fastcluster, "linkage",
                        lambda *a, **k: pytest.fail("ran the float64 routine"))

    class CancelDuringMerges(NullProgress):
        @contextlib.contextmanager
        def step(self, name, total=None):
            def advance(n=1):
                if name == "ward linkage":
                    raise KeyboardInterrupt
            yield advance

    cache = ResultCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        analyse_weights(head, params, cache=cache, progress=CancelDuringMerges())
    assert weight_analysis_key(head, params) not in cache
    result = analyse_weights(head, params, cache=cache)
    found = hierarchy.fcluster(result.linkage, planted.num_groups, "maxclust")
    assert adjusted_rand_score(planted.group, found) == 1.0
    assert weight_analysis_key(head, params) in cache


def test_the_pipeline_drops_its_rows_before_the_linkage_runs(planted, monkeypatch):
    """``_compute_weights`` releases the standardised rows once the linkage routine has
    taken what it needs, so that they are not resident beside the float32 vector."""
    import gc
    import weakref

    original = pipeline.prepare_linkage
    seen = {}

    def watched(standardised, *args, **kwargs):
        seen["rows"] = weakref.ref(standardised)
        run = original(standardised, *args, **kwargs)

        def run_and_check(progress):
            gc.collect()
            seen["alive_when_run"] = seen["rows"]() is not None
            return run(progress)
        return run_and_check

    monkeypatch.setattr(pipeline, "prepare_linkage", watched)
    monkeypatch.setattr("classmap.analysis.methods.hierarchy.FLOAT32_WARD_ABOVE", 10)
    result = analyse_weights(as_classifier_head(planted), WeightParams(top_k=1))
    assert seen["alive_when_run"] is False
    found = hierarchy.fcluster(result.linkage, planted.num_groups, "maxclust")
    assert adjusted_rand_score(planted.group, found) == 1.0


def test_the_budget_check_counts_the_interpreter_and_the_head(planted):
    from classmap.analysis.settings import RUNTIME_BYTES

    head, params = as_classifier_head(planted), WeightParams(top_k=1)
    from classmap.analysis.methods.hierarchy import condensed_bytes

    c, d = planted.weight.shape
    plan = pipeline.linkage_plan(head, params, 2**40)
    assert plan.routine == "condensed"
    assert plan.bytes_needed >= RUNTIME_BYTES + planted.weight.nbytes + condensed_bytes(c, d)
    need = pipeline.check_memory(head, params, budget=2**40)
    assert need >= plan.bytes_needed
    assert pipeline.check_memory(head, params, budget=need) == need
    with pytest.raises(ClassmapError) as caught:
        pipeline.check_memory(head, params, budget=RUNTIME_BYTES)
    message = str(caught.value)
    assert "\n" not in message and "over the memory budget of 768 MiB" in message
