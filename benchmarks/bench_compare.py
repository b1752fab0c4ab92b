"""Benchmark: issue 13's WordNet names/agreement and the full 1k source comparison.

Two questions, each answered with a baseline measured in the same run:

1. What do WordNet names and agreement add to the cache reads behind a Classes page
   load? Baseline: the weight analysis read from the cache; then the same plus
   :func:`wordnet_for_tree` read from the cache, in a warm process (the server's case)
   and the first call in a fresh process (reading the shipped WordNet file too). These
   are two cache reads only: no page is rendered and no Dash callback runs, so the rows
   say "cached analysis (+ WordNet) read", not "page load". Target: ≤ 0.3 s added.
2. How long does the full ImageNet-1k comparison take (two sources, every measure,
   999 permutations)? Baseline: Spearman alone on the same two sources. Target ≤ 10 s.
   Sources: lite0 weight cosine / ward vs lite1 weight cosine / ward (model vs model) and
   vs WordNet / average; the sources themselves are loaded from the cache.
3. What does an image-based source cost once its image analysis is cached (the page's
   case after the Samples page)? Baseline: reading the cached representations and image
   analysis (what the Samples page reads); then the same plus building the confidence
   JS / feature-mean relation and comparing it with the weight cosine (999 permutations).
   lenet-digits on the 360 held-out digits (10 classes); trained and extracted once first.

    .venv/bin/python benchmarks/bench_compare.py [--repeats 3] [--only images]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import machine_line, print_table, run_isolated  # noqa: E402
from scipy import stats  # noqa: E402

from classmap.analysis.cache import ResultCache  # noqa: E402
from classmap.analysis.loading.models import ModelSpec, load_head  # noqa: E402
from classmap.analysis.methods.compare import compare  # noqa: E402
from classmap.analysis.pipelines.compare import (  # noqa: E402
    relation_from_head,
    wordnet_for_tree,
)
from classmap.analysis.pipelines.weights import WeightParams, analyse_weights  # noqa: E402

TARGET_ADDED = 0.3
TARGET_COMPARE = 10.0

FRESH = """
import json, time
from classmap.analysis.cache import ResultCache
from classmap.analysis.loading.models import ModelSpec, load_head
from classmap.analysis.pipelines.weights import WeightParams, analyse_weights
cache = ResultCache({cache!r})
head = load_head(ModelSpec(), cache)
started = time.perf_counter()
result = analyse_weights(head, WeightParams(), cache=cache, device="cpu")
base = time.perf_counter() - started
from classmap.analysis.pipelines.compare import wordnet_for_tree
started = time.perf_counter()
view = wordnet_for_tree(tuple(head.classes.ids), result.linkage, cache)
added = time.perf_counter() - started
print(json.dumps({{"base": base, "added": added}}))
"""


def timed(run, repeats: int) -> float:
    """Median wall seconds of ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["images"], help="run only question 3")
    args = parser.parse_args()
    cache = ResultCache(Path(tempfile.mkdtemp(prefix="classmap-bench-compare-")))
    if args.only == "images":
        print(f"machine: {machine_line()}")
        image_sources(cache, args.repeats)
        return
    lite0 = load_head(ModelSpec(), cache)
    lite1 = load_head(ModelSpec(model="lite1-imagenet"), cache)
    ids = tuple(lite0.classes.ids)
    weights = analyse_weights(lite0, WeightParams(), cache=cache, device="cpu")
    wordnet_for_tree(ids, weights.linkage, cache)  # fill the cache

    def analysis_read() -> None:
        analyse_weights(lite0, WeightParams(), cache=cache, device="cpu")

    def analysis_and_wordnet_read() -> None:
        result = analyse_weights(lite0, WeightParams(), cache=cache, device="cpu")
        wordnet_for_tree(ids, result.linkage, cache)

    base = timed(analysis_read, args.repeats)
    warm = timed(analysis_and_wordnet_read, args.repeats)
    fresh = [run_isolated(FRESH.format(cache=str(cache.directory))) for _ in range(args.repeats)]
    fresh_base = statistics.median(f["base"] for f in fresh)
    fresh_added = statistics.median(f["added"] for f in fresh)
    print(f"machine: {machine_line()}")
    print_table(
        "WordNet names + agreement read from the cache (ImageNet-1k, lite0 cosine / ward; "
        "cache reads only: no page rendered, no Dash callback)",
        ["step", "seconds (median)", "added", "target"],
        [["cached analysis read (baseline, warm process)", f"{base:.4f}", "", ""],
         ["cached analysis + WordNet read (warm process)", f"{warm:.4f}",
          f"{warm - base:+.4f} s", f"≤ {TARGET_ADDED} s added"],
         ["cached analysis read (baseline, fresh process)", f"{fresh_base:.4f}", "", ""],
         ["cached analysis + WordNet read, first call in a fresh process (reads the WordNet "
          "file)", f"{fresh_base + fresh_added:.4f}", f"{fresh_added:+.4f} s",
          f"≤ {TARGET_ADDED} s added"]],
    )
    rows = []
    a = relation_from_head(lite0, "cosine", "ward", cache, "cpu")
    for label, b in (
        ("lite0 cosine/ward vs lite1 cosine/ward",
         relation_from_head(lite1, "cosine", "ward", cache, "cpu")),
        ("lite0 cosine/ward vs WordNet/average",
         relation_from_head(lite0, "wordnet", "average", cache, "cpu")),
    ):
        ca, cb = a.relation.condensed(), b.relation.condensed()
        spearman = timed(lambda: stats.spearmanr(ca, cb), args.repeats)
        full = timed(lambda: compare(a.relation, b.relation, permutations=999), args.repeats)
        rows.append([label, f"{spearman:.3f}", f"{full:.3f}", f"{full / spearman:.1f}×",
                     f"≤ {TARGET_COMPARE:.0f} s"])
    print_table(
        "Full ImageNet-1k comparison: every measure, 999 Mantel permutations",
        ["sources", "Spearman only (baseline) s", "all measures s", "ratio", "target"], rows,
    )
    image_sources(cache, args.repeats)


def image_sources(cache: ResultCache, repeats: int) -> None:
    """Question 3: an image-based source from the cached image analysis."""
    from classmap.analysis.loading.data import load_dataset
    from classmap.analysis.loading.models import LENET_DIGITS, load_classifier
    from classmap.analysis.pipelines.compare import compare_sources, relation_from_images
    from classmap.analysis.pipelines.images import (
        ImageParams,
        analyse_images,
        extract_representations,
        image_analysis_key,
        load_cached_analysis,
        load_cached_representations,
        representations_key,
    )

    classifier = load_classifier(ModelSpec(model=LENET_DIGITS), cache, device="cpu")
    dataset = load_dataset("digits", classifier.head.classes, channels=1)
    reps = extract_representations(classifier, dataset, cache=cache, device="cpu")
    analyse_images(reps, ImageParams(), cache=cache)  # fill the cache
    ids = tuple(classifier.head.classes.ids)
    weights = relation_from_head(classifier.head, "cosine", "ward", cache, "cpu")
    key = representations_key(classifier, dataset)

    def read() -> tuple:
        cached = load_cached_representations(cache, key)
        return cached, load_cached_analysis(cache, image_analysis_key(cached, ImageParams()))

    base = timed(read, repeats)
    rows = [["read the cached image analysis (baseline)", f"{base:.4f}", ""]]
    for relation, linkage in (("confidence", "average"), ("features", "ward")):
        def run() -> None:
            cached, analysis = read()
            source = relation_from_images(cached, analysis, ids, relation, linkage, relation)
            compare_sources(source, weights, permutations=999)

        full = timed(run, repeats)
        rows.append([f"+ {relation} relation and every measure vs weight cosine",
                     f"{full:.4f}", f"{full / base:.1f}×"])
    print_table("Image-based source from the cache (lenet-digits, 360 digits, 10 classes, "
                "999 permutations)", ["step", "seconds (median)", "ratio"], rows)


if __name__ == "__main__":
    main()
