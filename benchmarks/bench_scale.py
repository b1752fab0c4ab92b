"""Issue #12: the weight analysis of an ImageNet-21k-sized head against scipy, in one run.

The head is the seeded synthetic 21,843 × 768 head with a planted class tree
(``classmap.analysis.synthetic``); real 21k weights are not downloaded. Each row is a
fresh interpreter (``_measure.run_isolated``), so peak memory (the process's ``VmHWM``)
and cold timings are honest:

1. **baseline**: ``scipy.cluster.hierarchy.linkage(X, "ward")`` alone on the standardised
   rows (what a user would write);
2. **classmap cold**, empty cache: top-k neighbours + Ward linkage (``analyse_weights``)
   + the heatmap pyramid's overview tiles (``heatmap_overview``) — on the CPU, and on
   CUDA too when present;
3. **classmap cached re-open** of the same (fresh process, same cache);
4. optional: fastcluster's ``linkage_vector`` (the routine used before, ``--with-vector``);
   the float32 Ward chain (routine ``condensed32``) alone on the same head, its budget
   set so that the float64 vector does not fit (``--with-float32``); and the
   50,000 × 768 head cold (``--with-50k``), whose routine is whatever the memory budget
   allows: ``condensed32`` under ``CLASSMAP_MEMORY_BUDGET=6G`` (8 min on 2 busy cores),
   ``linkage_vector`` under the 4G default (estimated: 953 s at 21,843 × C², over an hour).

Run: ``HF_HUB_OFFLINE=1 CLASSMAP_MEMORY_BUDGET=6G .venv/bin/python benchmarks/bench_scale.py
[--classes N] [--with-float32] [--with-50k]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import machine_line, print_table, run_isolated  # noqa: E402

# Peak RSS of this process's own address space: Linux's VmHWM (ru_maxrss would carry the
# forking parent's peak across exec, flooring every row at the benchmark driver's size).
PEAK = ("import resource, json, re, pathlib\n"
        "status = pathlib.Path('/proc/self/status')\n"
        "hwm = re.search(r'VmHWM:\\s*(\\d+)', status.read_text()) if status.exists() else None\n"
        "peak_gb = (int(hwm.group(1)) if hwm else "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024**2\n")

SCIPY = """
import time, numpy as np
from scipy.cluster import hierarchy
from classmap.analysis.methods.similarity import standardise_rows
z = standardise_rows(np.load({weight!r})).numpy().astype(np.float64)
started = time.perf_counter()
linkage = hierarchy.linkage(z, "ward")
seconds = time.perf_counter() - started
""" + PEAK + "print(json.dumps({{'seconds': seconds, 'peak_gb': peak_gb}}))"

VECTOR = """
import time, numpy as np, fastcluster
from classmap.analysis.methods.similarity import standardise_rows
z = standardise_rows(np.load({weight!r})).numpy().astype(np.float64)
started = time.perf_counter()
linkage = fastcluster.linkage_vector(z, method="ward", metric="euclidean")
seconds = time.perf_counter() - started
""" + PEAK + "print(json.dumps({{'seconds': seconds, 'peak_gb': peak_gb}}))"

FLOAT32 = """
import time, numpy as np
from scipy.cluster import hierarchy
from classmap.analysis.methods.hierarchy import condensed32_bytes, linkage_matrix, plan_linkage
from classmap.analysis.methods.similarity import standardise_rows
z = standardise_rows(np.load({weight!r}))
budget = condensed32_bytes(*z.shape)
routine = plan_linkage(*z.shape, "ward", budget).routine
started = time.perf_counter()
linkage = linkage_matrix(z, "cosine", "ward", budget=budget)
seconds = time.perf_counter() - started
""" + PEAK + """
from sklearn.metrics import adjusted_rand_score
groups = np.load({groups!r})
found = hierarchy.fcluster(linkage, int(groups.max()) + 1, "maxclust")
print(json.dumps({{'seconds': seconds, 'peak_gb': peak_gb, 'routine': routine,
    'budget_gb': budget / 1024**3, 'ari': adjusted_rand_score(groups, found)}}))"""

# scikit-learn (0.08 GiB resident) is imported only after the analysis, for the ARI: the
# peak is the analysis's, as a user's `classmap export` process would see it.
CLASSMAP = """
import time, numpy as np
from scipy.cluster import hierarchy
from classmap.analysis.cache import ResultCache
from classmap.analysis.loading.models import ModelSpec, load_head
from classmap.analysis.pipelines.weights import (WeightParams, analyse_weights,
    heatmap_overview, linkage_plan)
head = load_head(ModelSpec(head={weight!r}, classes={names!r}), None)
cache = ResultCache({cache!r})
plan = linkage_plan(head, WeightParams())
started = time.perf_counter()
result = analyse_weights(head, WeightParams(), cache=cache, device={device!r})
analysed = time.perf_counter()
tiles = heatmap_overview(result, cache=cache, device={device!r})
seconds = time.perf_counter() - started
""" + PEAK + """
from sklearn.metrics import adjusted_rand_score
groups = np.load({groups!r})
found = hierarchy.fcluster(result.linkage, int(groups.max()) + 1, "maxclust")
siblings = float((groups[result.neighbours.index[:, 0]] == groups).mean())
print(json.dumps({{'seconds': seconds, 'peak_gb': peak_gb, 'steps': result.seconds,
    'pyramid': seconds - (analysed - started), 'from_cache': result.from_cache,
    'routine': plan.routine, 'ari': adjusted_rand_score(groups, found),
    'siblings': siblings, 'tiles': len(tiles)}}))"""


def write_head(folder: Path, classes: int, seed: int) -> dict[str, str]:
    """The planted head as the files ``classmap export --head … --classes …`` reads."""
    from classmap.analysis.synthetic import planted_head

    head = planted_head(classes, 768, seed=seed)
    paths = {"weight": str(folder / f"head{classes}.npy"),
             "names": str(folder / f"head{classes}.classes.txt"),
             "groups": str(folder / f"head{classes}.groups.npy")}
    import numpy as np

    np.save(paths["weight"], head.weight)
    np.save(paths["groups"], head.group)
    Path(paths["names"]).write_text("\n".join(head.names) + "\n")
    return paths


def classmap_row(label: str, paths: dict[str, str], cache: str, device: str,
                 timeout: float = 900) -> tuple:
    found = run_isolated(CLASSMAP.format(cache=cache, device=device, **paths), timeout=timeout)
    steps = ", ".join(f"{k} {v:.1f}" for k, v in found["steps"].items())
    return (label, device, found["seconds"], found["peak_gb"],
            f"{found['routine']}; ARI {found['ari']:.3f}; NN sibling {found['siblings']:.3f}; "
            f"{found['tiles']} tiles in {found['pyramid']:.2f} s"
            + (f"; {steps}" if steps else "; from cache" if found["from_cache"] else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=21843)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--with-vector", action="store_true",
                        help="also time fastcluster.linkage_vector (minutes at 21k)")
    parser.add_argument("--with-float32", action="store_true",
                        help="also time the float32 Ward chain (routine condensed32) alone")
    parser.add_argument("--with-50k", action="store_true",
                        help="also run the 50,000-class head (minutes with "
                             "CLASSMAP_MEMORY_BUDGET=6G, over an hour under 4G)")
    options = parser.parse_args(argv)
    import torch

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_head(folder, options.classes, options.seed)
        weight = paths["weight"]
        baseline = run_isolated(SCIPY.format(weight=weight))
        rows.append(("scipy `linkage(X, \"ward\")` alone (baseline)", "cpu",
                     baseline["seconds"], baseline["peak_gb"], "pdist + NN-chain"))
        if options.with_vector:
            found = run_isolated(VECTOR.format(weight=weight), timeout=7200)
            rows.append(("fastcluster `linkage_vector` (previous routine)", "cpu",
                         found["seconds"], found["peak_gb"], "O(C·D) memory"))
        if options.with_float32:
            found = run_isolated(FLOAT32.format(weight=weight, groups=paths["groups"]),
                                 timeout=7200)
            rows.append(("float32 Ward chain alone (distances + linkage)", "cpu",
                         found["seconds"], found["peak_gb"],
                         f"{found['routine']} (budget {found['budget_gb']:.2f} GiB); "
                         f"ARI {found['ari']:.3f}"))
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        cold = {}
        for device in devices:
            cache = str(folder / f"cache-{device}")
            row = classmap_row("classmap cold: neighbours + Ward + pyramid overview",
                               paths, cache, device)
            cold[device] = row[2]
            rows.append(row)
            rows.append(classmap_row("classmap cached re-open (fresh process)", paths, cache,
                                     device))
        if options.with_50k:
            big = write_head(folder, 50000, options.seed)
            row = classmap_row("classmap cold, 50,000 × 768", big, str(folder / "cache-50k"),
                               "cpu", timeout=3 * 3600)
            rows.append(row[:4] + (f"{row[4]}; {row[2] / cold['cpu']:.1f}× the "
                                   f"{options.classes} run",))

    base = rows[0][2]
    table = [(what, device, f"{seconds:.2f}", f"{peak:.2f}", f"{peak * 1.024**3:.2f}",
              f"{seconds / base:.2f}×", note)
             for what, device, seconds, peak, note in rows]
    print(f"Synthetic planted head {options.classes} × 768 (seed {options.seed}); "
          f"{machine_line()}; memory budget {os.environ.get('CLASSMAP_MEMORY_BUDGET', '6G (default)')}.")
    print_table("Weight analysis at ImageNet-21k scale",
                ["what", "device", "wall (s)", "peak RSS (GiB)", "peak RSS (GB)", "vs scipy",
                 "notes"], table)
    print(json.dumps({"rows": rows, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
