"""Issue #12: the two condensed Ward routines side by side on one head — float64 vs float32.

``condensed`` (float64 distances, fastcluster's ``linkage``) and ``condensed32`` (float32
squared distances, the Python nearest-neighbour chain of
:mod:`classmap.analysis.methods.ward_chain`) are each run ``--repeats`` times in a fresh
interpreter, alternating (A B, B A, …) so that the load on a shared machine falls on both;
each row gives distances + linkage seconds, the process's peak RSS (``VmHWM``) and the load
average when it started. Then the two trees are compared:

- ARI of each tree cut at the planted levels (groups, supergroups) against the plant;
- ARI between the two trees cut at the same k (k = groups, supergroups, 2, 10, 1000);
- clades in common (leaf sets, hashed) and the largest relative difference of the sorted
  merge heights;
- cophenetic correlation between the two trees on ``--pairs`` random class pairs (the full
  cophenetic vectors would be 1.9 GB each at 21,843 classes).

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_ward32.py [--classes N] [--repeats R]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import machine_line, print_table, run_isolated  # noqa: E402
from bench_scale import PEAK  # noqa: E402

ROUTINE = """
import time, numpy as np
from classmap.analysis.methods.similarity import standardise_rows
z = standardise_rows(np.load({weight!r}))
c = z.shape[0]
started = time.perf_counter()
if {routine!r} == "condensed":
    import fastcluster
    from classmap.analysis.methods.hierarchy import condensed_distances
    distances = condensed_distances(z, "euclidean")
    between = time.perf_counter()
    linkage = fastcluster.linkage(distances, method="ward", preserve_input=False)
else:
    from classmap.analysis.methods.ward_chain import condensed_squared_float32, ward_chain
    distances = condensed_squared_float32(z)
    between = time.perf_counter()
    linkage = ward_chain(distances, c)
del distances
seconds = time.perf_counter() - started
np.save({out!r}, linkage)
""" + PEAK + """print(json.dumps({{'seconds': seconds, 'distances': between - started,
    'linkage': seconds - (between - started), 'peak_gb': peak_gb}}))"""


def clade_hashes(linkage: np.ndarray, seed: int = 0) -> np.ndarray:
    """One random 64-bit hash per clade (sum of its leaves' random values, mod 2⁶⁴)."""
    n = len(linkage) + 1
    value = np.empty(2 * n - 1, dtype=np.uint64)
    value[:n] = np.random.default_rng(seed).integers(0, 2**63, n, dtype=np.uint64)
    with np.errstate(over="ignore"):  # the sums wrap mod 2⁶⁴, as meant
        for i, (a, b) in enumerate(linkage[:, :2].astype(np.int64)):
            value[n + i] = value[a] + value[b]
    return value[n:]


def cophenetic_sample(linkage: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cophenetic distance (the height of the lowest common ancestor) of each pair."""
    n = len(linkage) + 1
    parent = np.empty(2 * n - 1, dtype=np.int64)
    parent[linkage[:, 0].astype(np.int64)] = np.arange(n, 2 * n - 1)
    parent[linkage[:, 1].astype(np.int64)] = np.arange(n, 2 * n - 1)
    parent[-1] = -1
    a, b = left.copy(), right.copy()
    while True:  # lift the smaller id: a parent's id is always larger than its child's
        differ = a != b
        if not differ.any():
            break
        lift_a = differ & (a < b)
        lift_b = differ & (b < a)
        a[lift_a] = parent[a[lift_a]]
        b[lift_b] = parent[b[lift_b]]
    return linkage[a - n, 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=21843)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    options = parser.parse_args(argv)
    from scipy.cluster import hierarchy
    from sklearn.metrics import adjusted_rand_score

    from classmap.analysis.synthetic import planted_head

    head = planted_head(options.classes, 768, seed=options.seed)
    rows, trees = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        weight = str(Path(tmp) / "head.npy")
        np.save(weight, head.weight)
        for repeat in range(options.repeats):
            order = ("condensed", "condensed32")[:: 1 if repeat % 2 == 0 else -1]
            for routine in order:
                out = str(Path(tmp) / f"{routine}-{repeat}.npy")
                load = os.getloadavg()
                found = run_isolated(ROUTINE.format(weight=weight, routine=routine, out=out),
                                     timeout=3600)
                trees.setdefault(routine, np.load(out))
                rows.append((routine, repeat + 1, f"{found['distances']:.1f}",
                             f"{found['linkage']:.1f}", f"{found['seconds']:.1f}",
                             f"{found['peak_gb']:.2f}", " ".join(f"{x:.2f}" for x in load)))
    a, b = trees["condensed"], trees["condensed32"]
    comparisons = []
    for name, planted in (("groups", head.group), ("supergroups", head.supergroup)):
        k = int(planted.max()) + 1
        cut_a, cut_b = (hierarchy.fcluster(t, k, "maxclust") for t in (a, b))
        comparisons.append((f"ARI vs planted {name} (k = {k})",
                            f"{adjusted_rand_score(planted, cut_a):.4f}",
                            f"{adjusted_rand_score(planted, cut_b):.4f}"))
    for k in sorted({2, 10, int(head.supergroup.max()) + 1, int(head.group.max()) + 1, 1000}):
        agree = adjusted_rand_score(hierarchy.fcluster(a, k, "maxclust"),
                                    hierarchy.fcluster(b, k, "maxclust"))
        comparisons.append((f"ARI between the trees cut at k = {k}", f"{agree:.6f}", ""))
    common = len(np.intersect1d(clade_hashes(a), clade_hashes(b)))
    comparisons.append(("clades in common", f"{common} of {len(a)}", ""))
    heights = np.abs(np.sort(b[:, 2]) - np.sort(a[:, 2])) / np.maximum(np.sort(a[:, 2]), 1e-12)
    comparisons.append(("sorted merge heights: max relative difference",
                        f"{heights.max():.2e}", ""))
    rng = np.random.default_rng(1)
    left = rng.integers(0, options.classes, options.pairs)
    right = rng.integers(0, options.classes, options.pairs)
    keep = left != right
    coph = np.corrcoef(cophenetic_sample(a, left[keep], right[keep]),
                       cophenetic_sample(b, left[keep], right[keep]))[0, 1]
    comparisons.append((f"cophenetic correlation between the trees ({keep.sum()} random pairs)",
                        f"{coph:.9f}", ""))
    print(f"Synthetic planted head {options.classes} × 768 (seed {options.seed}); "
          f"{machine_line()}.")
    print_table("Ward on the condensed matrix: float64 (fastcluster) vs float32 (chain)",
                ["routine", "run", "distances (s)", "linkage (s)", "total (s)",
                 "peak RSS (GiB)", "load (1/5/15 min) at start"], rows)
    print_table("The two trees", ["measure", "condensed (float64)", "condensed32"],
                comparisons)
    print(json.dumps({"rows": rows, "comparisons": comparisons,
                      "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
