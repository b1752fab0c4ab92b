"""The WordNet agreement and model-vs-model table of the three ImageNet-1k models.

For lite0-, lite1- and lite2-imagenet (ward trees of weight cosine) it computes, with
the project's own pipelines:

* what ``classmap export --model M`` writes to ``wordnet_agreement.json``
  (:func:`wordnet_for_tree` on the ``MODEL:cosine:ward`` tree): Spearman ρ between the
  tree's LCA sizes and WordNet distance over all class pairs, the mean WordNet distance
  from each class to its nearest classes in the tree ("NN"), the mean over all pairs
  ("all pairs": the chance baseline) and the mean node purity;
* what ``classmap compare lite0-imagenet M`` writes to ``comparison.json``
  (:func:`relation_from_spec` + :func:`compare_sources`, 999 Mantel permutations, seed
  0): Spearman ρ between the two distance matrices, the Mantel r and its p-value, the
  cophenetic Pearson r of the two trees and the mean Fowlkes–Mallows B_k.

It prints the docs/comparison.md table (every column) and the README's shorter one.

    .venv/bin/python benchmarks/bench_wordnet_models.py [--cache-dir DIR] [--permutations 999]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import machine_line, print_table  # noqa: E402

from classmap.analysis.cache import ResultCache  # noqa: E402
from classmap.analysis.methods.compare import DEFAULT_PERMUTATIONS  # noqa: E402
from classmap.analysis.pipelines.compare import (  # noqa: E402
    compare_sources,
    relation_from_spec,
    wordnet_for_tree,
)

MODELS = ("lite0-imagenet", "lite1-imagenet", "lite2-imagenet")
REFERENCE = MODELS[0]


def model_rows(cache: ResultCache, permutations: int) -> list[dict]:
    """One dict per model: its WordNet agreement and (not for lite0) its comparison with
    lite0. Keys: model, spearman_wordnet, nn, all_pairs, purity, and for lite1/lite2
    spearman, mantel_r, mantel_p, cophenetic_r, mean_bk."""
    sources = {m: relation_from_spec(f"{m}:cosine:ward", cache, "cpu") for m in MODELS}
    rows = []
    for model, source in sources.items():
        view = wordnet_for_tree(source.class_ids, source.relation.linkage, cache)
        if view.agreement is None:
            raise SystemExit(f"bench_wordnet_models: no WordNet agreement for {model}: "
                             f"{view.reason}")
        score = view.agreement
        row = {"model": model, "spearman_wordnet": score.spearman,
               "nn": score.nn_wordnet_distance, "all_pairs": score.baseline_wordnet_distance,
               "purity": score.mean_purity}
        if model != REFERENCE:
            summary = compare_sources(sources[REFERENCE], source, permutations).result.summary()
            row.update(spearman=summary["spearman"],
                       mantel_r=summary["mantel"]["statistic"],
                       mantel_p=summary["mantel"]["p_value"],
                       cophenetic_r=summary["cophenetic_correlation"]["pearson"],
                       mean_bk=summary["fowlkes_mallows_mean"])
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None, help="result cache (default: a new one)")
    parser.add_argument("--permutations", type=int, default=DEFAULT_PERMUTATIONS)
    args = parser.parse_args()
    cache = ResultCache(Path(args.cache_dir or tempfile.mkdtemp(prefix="classmap-bench-wn-")))
    started = time.perf_counter()
    rows = model_rows(cache, args.permutations)
    seconds = time.perf_counter() - started
    print(f"machine: {machine_line()}; {args.permutations} permutations; {seconds:.0f} s")

    full = []
    for row in rows:
        versus = (["—"] * 4 if "spearman" not in row else
                  [f"{row['spearman']:.3f}", f"{row['mantel_r']:.3f} ({row['mantel_p']:.3f})",
                   f"{row['cophenetic_r']:.3f}", f"{row['mean_bk']:.3f}"])
        full.append([row["model"], f"{row['spearman_wordnet']:.3f}", f"{row['nn']:.2f}",
                     f"{row['all_pairs']:.2f}", f"{row['purity']:.3f}", *versus])
    print_table("docs/comparison.md: ward trees of weight cosine (export + compare vs lite0)",
                ["model", "ρ with WordNet", "NN WordNet distance", "all pairs", "mean purity",
                 "vs lite0: ρ", "Mantel r (p)", "cophenetic r", "mean B_k"], full)
    short = []
    for row in rows:
        pair = ("—" if "spearman" not in row else
                f"{row['spearman']:.3f} / {row['mantel_r']:.3f} / {row['cophenetic_r']:.3f}")
        short.append([row["model"].removesuffix("-imagenet"), f"{row['spearman_wordnet']:.3f}",
                      f"{row['nn']:.2f} vs {row['all_pairs']:.2f}", pair])
    print_table("README: ward trees, classmap compare",
                ["model", "ρ with WordNet", "nearest-neighbour vs all-pairs WordNet distance",
                 "vs lite0: ρ / Mantel r / cophenetic r"], short)


if __name__ == "__main__":
    main()
