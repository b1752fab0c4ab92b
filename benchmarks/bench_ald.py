"""Benchmark: vectorised asymmetric Laplace fits against scipy, class by class.

Fits every class of the embedded ImageNet head (EfficientNet-Lite0, 1000 × 1280) with
:func:`classmap.analysis.methods.ald.fit_mle` in one call, and times ``scipy.stats.laplace_asymmetric.fit``
on a spread sample of classes, extrapolated per class to all of them (scipy needs
several seconds for the whole head, so the sample keeps the run short; the table
says which rows are extrapolated). The seed regression is timed the same way against
the notebook's per-class ``np.polyfit`` loop. Prints a markdown table.

    .venv/bin/python benchmarks/bench_ald.py [--repeats 7] [--scipy-classes 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from scipy import stats

from classmap.analysis.methods.ald import fit_ald, fit_mle, regress_log_linear
from classmap.analysis.loading.models import ModelSpec, load_head

TARGET_SECONDS = 0.5
TARGET_SPEEDUP = 100.0


def time_best(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(best, median) wall seconds of ``repeats`` runs after one warm-up run."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def scipy_fit_per_class(weight: np.ndarray, classes: np.ndarray) -> float:
    """Seconds per class of ``laplace_asymmetric.fit`` over ``classes`` (one pass)."""
    rows = weight[classes].astype(np.float64)
    started = time.perf_counter()
    for row in rows:
        stats.laplace_asymmetric.fit(row)
    return (time.perf_counter() - started) / len(classes)


def polyfit_loop(weight: np.ndarray) -> None:
    """The seed notebook's regression, one class and one side at a time."""
    for row in weight.astype(np.float64):
        for side in (row[row > 0], -row[row < 0]):
            y = np.log(np.sort(side))
            q = np.arange(1, y.size + 1) / y.size
            coefficients = np.polyfit(q, y, 1)
            residual = y - np.polyval(coefficients, q)
            _r2 = 1 - residual.var() / y.var()


def _fit_runs(weight: np.ndarray, device: str) -> list[tuple[str, Callable[[], object]]]:
    """The vectorised fits to time on ``device`` (synchronised on CUDA)."""

    def timed(fit: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            result = fit()
            if device == "cuda":
                torch.cuda.synchronize()
            return result

        return run

    return [
        ("vectorised MLE, all classes (κ, loc, scale, loglik)",
         timed(lambda: fit_mle(weight, device=device, ks=False))),
        ("vectorised MLE + KS statistic, all classes",
         timed(lambda: fit_mle(weight, device=device, ks=True))),
        ("`fit_ald`: seed regression + MLE + KS, all classes",
         timed(lambda: fit_ald(weight, device=device))),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--scipy-classes", type=int, default=20)
    options = parser.parse_args()

    head = load_head(ModelSpec())
    weight = head.weight
    classes, dim = weight.shape
    sample = np.linspace(0, classes - 1, options.scipy_classes).astype(int)
    scipy_per_class = scipy_fit_per_class(weight, sample)
    scipy_total = scipy_per_class * classes
    regression_loop, _ = time_best(lambda: polyfit_loop(weight), 1)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows: list[tuple[str, str, float, float, str]] = [
        ((f"scipy `laplace_asymmetric.fit`, class by class ({options.scipy_classes} classes "
          f"timed, extrapolated to {classes})"), "cpu", scipy_total, scipy_total, "1×"),
    ]
    for device in devices:
        for label, run in _fit_runs(weight, device):
            best, median = time_best(run, options.repeats)
            rows.append((label, device, best, median, f"{scipy_total / best:,.0f}×"))
    rows.append(("seed regression: notebook-style `np.polyfit` loop, both sides", "cpu",
                 regression_loop, regression_loop, "—"))
    best, median = time_best(lambda: regress_log_linear(weight), options.repeats)
    rows.append(("seed regression: vectorised `regress_log_linear`", "cpu", best, median,
                 f"{regression_loop / best:,.0f}× vs the loop"))

    print(f"ALD fits of the embedded EfficientNet-Lite0 head ({classes} classes × {dim} "
          f"features); torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
          f"best of {options.repeats} runs after a warm-up (median beside it).\n")
    print("| what | device | best (s) | median (s) | per class (ms) | vs scipy |")
    print("|---|---|---:|---:|---:|---:|")
    for label, device, best, median, ratio in rows:
        print(f"| {label} | {device} | {best:.4f} | {median:.4f} | "
              f"{1000 * best / classes:.3f} | {ratio} |")
    mle_cpu = rows[1][2]
    print(f"\nTargets on the CPU: all {classes} classes ≤ {TARGET_SECONDS} s — "
          f"{'met' if mle_cpu <= TARGET_SECONDS else 'NOT met'} ({mle_cpu:.3f} s); "
          f"≥ {TARGET_SPEEDUP:.0f}× scipy — "
          f"{'met' if scipy_total / mle_cpu >= TARGET_SPEEDUP else 'NOT met'} "
          f"({scipy_total / mle_cpu:,.0f}×). scipy measured at "
          f"{1000 * scipy_per_class:.2f} ms per class.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
