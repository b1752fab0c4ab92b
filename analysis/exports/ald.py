"""``classmap export --ald``: the asymmetric Laplace fits as files (seed 001).

Adds two files to an export folder:

- ``ald.csv`` — one row per class, columns :data:`CSV_COLUMNS`: the seed regression per
  side (R², slope, intercept), the maximum-likelihood ``laplace_asymmetric`` fit
  (κ, loc, scale, log-likelihood, KS statistic) and a ``status`` that is ``ok`` or says
  why a cell is ``nan`` (too few weights on a side, a constant row …) and how many
  exact zeros were left out of the regressions;
- ``ald_pooled.json`` — the seed regression on all weights of the head at once, with
  the zero count and the seed's derived κ, λ and mean (``null`` plus a status where
  the mapping is undefined).

The numbers come from :func:`classmap.analysis.pipelines.ald.analyse_ald`, cached by head digest,
parameters and :data:`classmap.analysis.methods.ald.ALD_VERSION`.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from classmap.analysis.methods.ald import ALD_VERSION, MIN_SIDE_WEIGHTS, OK
from classmap.analysis.pipelines.ald import AldAnalysis, analyse_ald
from classmap.analysis.cache import ResultCache
from classmap.analysis.exports.folder import Writer, spreadsheet_safe
from classmap.analysis.loading.classifier import ClassifierHead

ALD_CSV = "ald.csv"
ALD_POOLED_JSON = "ald_pooled.json"
CSV_COLUMNS: tuple[str, ...] = (
    "class_index", "r2_pos", "r2_neg", "slope_pos", "intercept_pos", "slope_neg",
    "intercept_neg", "kappa_mle", "loc_mle", "scale_mle", "loglik_mle", "ks_mle", "status",
)


def add_export_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--ald`` to ``classmap export``."""
    group = parser.add_argument_group("weight distributions (seed 001)")
    group.add_argument(
        "--ald", action="store_true",
        help="also write ald.csv (per class: the seed's log-linear regression per side and "
             "a maximum-likelihood asymmetric Laplace fit with its KS statistic) and "
             "ald_pooled.json (the seed regression on all weights at once)",
    )


def export_writers(
    args: argparse.Namespace,
    head: ClassifierHead,
    cache: ResultCache | None,
    progress: Any,
) -> list[Writer]:
    """The writers ``--ald`` asks for (none without it); the fits run here, before writing."""
    if not getattr(args, "ald", False):
        return []
    analysis = analyse_ald(
        head, cache=cache, progress=progress, device=getattr(args, "device", None)
    )
    return [ald_writer(analysis)]


def ald_writer(analysis: AldAnalysis) -> Writer:
    """Writer of ``ald.csv`` and ``ald_pooled.json``; returns the manifest's ``ald`` entry."""

    def write(folder: Path) -> dict[str, Any]:
        write_ald_csv(folder / ALD_CSV, analysis)
        pooled = {
            "method": "seed 001 log-linear regression on all weights of the head at once: "
                      "log y_i ≈ slope · i/n + intercept, y = sorted |w| of one sign, "
                      "exact zeros excluded",
            **analysis.pooled.to_json(),
            "derived": "kappa = sqrt(e^b / (a - e^b)), lambda = a·kappa, "
                       "mean = (1 - kappa²) / (lambda·kappa); null where undefined",
            "derived_rel_tol": analysis.params.derived_rel_tol,
        }
        (folder / ALD_POOLED_JSON).write_text(
            json.dumps(pooled, indent=2, allow_nan=False, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        table = analysis.table
        return {
            "ald": {
                "files": [ALD_CSV, ALD_POOLED_JSON],
                "version": ALD_VERSION,
                "regression": "per side, OLS of log y_i on q_i = i/n (i = 1..n), y sorted "
                              f"ascending; NaN with fewer than {MIN_SIDE_WEIGHTS} nonzero "
                              "weights on a side",
                "mle": "scipy.stats.laplace_asymmetric(kappa, loc, scale); loc = the exact "
                       "maximiser among the row's values (not its min or max); loglik = "
                       "total log-likelihood; ks = Kolmogorov-Smirnov statistic",
                "classes_with_status": int(sum(s != OK for s in table.status)),
                "zero_weights": int(table.n_zero.sum()),
                "from_cache": analysis.from_cache,
                "seconds": analysis.seconds,
            }
        }

    return write


def write_ald_csv(path: Path, analysis: AldAnalysis) -> None:
    """``ald.csv``: the columns of :data:`CSV_COLUMNS`, one row per class, NaN as ``nan``.

    Floats are written with ``repr`` (shortest text that reads back to the same float64).
    """
    table = analysis.table
    numeric = [np.asarray(getattr(table, name)) for name in CSV_COLUMNS[1:-1]]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for k in range(table.num_classes):
            writer.writerow(
                [int(table.class_index[k])]
                + [repr(float(column[k])) for column in numeric]
                + [spreadsheet_safe(table.status[k])]
            )
