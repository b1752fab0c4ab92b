"""Benchmark the foundation: embedded-default export (cold and cached) and top-k at scale.

Targets (issue 2), on a 2-core CPU:
- embedded default export (1,000 × 1,280), cold, excluding interpreter and import
  time: ≤ 2 s; repeat from the cache: ≤ 0.2 s;
- synthetic head 20,000 × 768: top-25 neighbours of every class ≤ 30 s, peak memory ≤ 4 GB.

Each measurement runs in a fresh interpreter (honest cold caches and peak memory).
Baselines measured in the same run: the cold export against its cached repeat, and
chunked top-k against scikit-learn's brute-force ``NearestNeighbors`` (cosine).

Run: ``.venv/bin/python benchmarks/bench_export.py [--classes 20000 --dim 768]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import machine_line, print_table, run_isolated

EXPORT_CODE = r"""
import json, tempfile, time, resource
from pathlib import Path
import torch, timm, scipy, fastcluster, sklearn  # imports excluded from the timing
import classmap.analysis.cli, classmap.analysis.exports.folder, classmap.analysis.pipelines.weights
import classmap.analysis.loading.models, classmap.analysis.loading.classnames
from timm.data import ImageNetInfo
ImageNetInfo()  # timm's class metadata module loads lazily: part of import, not of work
tmp = Path(tempfile.mkdtemp())
args = ["export", "--quiet", "--cache-dir", str(tmp / "cache")]
started = time.perf_counter()
assert classmap.analysis.cli.main(args + ["--out", str(tmp / "cold")]) == 0
cold = time.perf_counter() - started
warm = []
for i in range(5):
    started = time.perf_counter()
    assert classmap.analysis.cli.main(args + ["--out", str(tmp / f"warm{i}")]) == 0
    warm.append(time.perf_counter() - started)
steps = json.loads((tmp / "cold" / "manifest.json").read_text())["seconds"]
print(json.dumps({"cold": cold, "warm": min(warm), "steps": steps}))
"""

SEED_STYLE_CODE = r"""
import json, time
import numpy as np, torch
from scipy.cluster import hierarchy
from classmap.analysis.loading.models import ModelSpec, load_head
head = load_head(ModelSpec())
started = time.perf_counter()
w = torch.from_numpy(head.weight)
w = (w - w.mean(1, keepdim=True)) / w.std(1, keepdim=True)
cos = (w @ w.T) / (w.norm(dim=1)[:, None] * w.norm(dim=1)[None])
order = np.argsort(-cos.numpy(), axis=1, kind="stable")[:, 1:26]
z = hierarchy.linkage(cos.numpy(), "ward")  # the seed's call: square matrix as observations
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

TOPK_CODE = r"""
import json, resource, time
import numpy as np, torch
from classmap.analysis.methods.similarity import nearest_classes, standardise_rows
rng = np.random.default_rng(0)
weight = rng.normal(size=({classes}, {dim})).astype(np.float32)
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
before = rss_mb()
started = time.perf_counter()
z = standardise_rows(weight)
result = nearest_classes(z, "cosine", 25)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
np.save("{out}", result.index[:200])
print(json.dumps({{"seconds": seconds, "peak_mb": peak, "before_mb": before}}))
"""

SKLEARN_CODE = r"""
import json, resource, time
import numpy as np
from sklearn.neighbors import NearestNeighbors
rng = np.random.default_rng(0)
weight = rng.normal(size=({classes}, {dim})).astype(np.float32)
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
before = rss_mb()
started = time.perf_counter()
z = (weight - weight.mean(1, keepdims=True)) / weight.std(1, ddof=1, keepdims=True)
index = NearestNeighbors(n_neighbors=26, metric="cosine", algorithm="brute").fit(z) \
    .kneighbors(z, return_distance=False)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
ours = np.load("{out}")
agree = np.mean([len(set(ours[i]) & set(index[i][index[i] != i][:25])) / 25 for i in range(200)])
print(json.dumps({{"seconds": seconds, "peak_mb": peak, "before_mb": before, "agree": agree}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--skip-baseline", action="store_true",
                        help="skip scikit-learn's brute-force baseline at scale")
    args = parser.parse_args()
    print(f"Machine: {machine_line()}")

    export = run_isolated(EXPORT_CODE)
    seed_style = run_isolated(SEED_STYLE_CODE)
    steps = ", ".join(f"{k} {v:.2f}" for k, v in sorted(export["steps"].items()))
    print_table(
        "Embedded default export (1,000 classes × 1,280), imports excluded",
        ["measurement", "seconds", "target", "ratio"],
        [
            ["cold export (load, analyse, write)", f"{export['cold']:.2f}", "≤ 2 s",
             "1.00 (baseline)"],
            ["repeat from cache (best of 5)", f"{export['warm']:.3f}", "≤ 0.2 s",
             f"{export['cold'] / export['warm']:.0f}× faster"],
            ["seed-000 style (dense argsort + linkage on square matrix, wrong)",
             f"{seed_style['seconds']:.2f}", "—", f"{seed_style['seconds'] / export['cold']:.2f}×"],
        ],
    )
    print(f"Cold steps (s): {steps}")

    import tempfile

    out = str(Path(tempfile.mkdtemp()) / "ours.npy")
    fields = {"classes": args.classes, "dim": args.dim, "out": out}
    ours = run_isolated(TOPK_CODE.format(**fields))
    rows = [[
        "Classmap chunked top-k (torch)", f"{ours['seconds']:.1f}", f"{ours['peak_mb']:.0f}",
        f"{ours['peak_mb'] - ours['before_mb']:.0f}", "1.00 (baseline)", "—",
    ]]
    if not args.skip_baseline:
        reference = run_isolated(SKLEARN_CODE.format(**fields))
        rows.append([
            "scikit-learn NearestNeighbors brute (cosine)", f"{reference['seconds']:.1f}",
            f"{reference['peak_mb']:.0f}", f"{reference['peak_mb'] - reference['before_mb']:.0f}",
            f"{reference['seconds'] / ours['seconds']:.2f}× our time",
            f"{reference['agree']:.3f}",
        ])
    print_table(
        f"Top-25 neighbours of every class, synthetic head {args.classes:,} × {args.dim} "
        "(targets: ≤ 30 s, peak ≤ 4 GB)",
        ["method", "seconds", "peak RSS MB", "RSS growth MB", "time ratio",
         "neighbour agreement (200 rows)"],
        rows,
    )


if __name__ == "__main__":
    main()
