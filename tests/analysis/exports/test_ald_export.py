"""``classmap export --ald``: ald.csv and ald_pooled.json (analysis/ald_export.py)."""

from __future__ import annotations

import argparse
import csv
import json
import math

import numpy as np
import pytest

from classmap.analysis.exports import ald as ald_export
from classmap.analysis.methods.ald import fit_ald, fit_pooled
from classmap.analysis.cache import ResultCache
from classmap.analysis.loading.classnames import ClassNames
from classmap.analysis.exports.folder import write_export
from classmap.analysis.loading.models import ModelSpec, head_from_arrays
from classmap.analysis.progress import NullProgress

EXPECTED_HEADER = [
    "class_index", "r2_pos", "r2_neg", "slope_pos", "intercept_pos", "slope_neg",
    "intercept_neg", "kappa_mle", "loc_mle", "scale_mle", "loglik_mle", "ks_mle", "status",
]


@pytest.fixture()
def small_head():
    """12 classes × 64 features: healthy rows plus zero, constant and one-sided rows."""
    rng = np.random.default_rng(42)
    weight = rng.laplace(0.0, 0.05, (12, 64)).astype(np.float32)
    weight[3] = 0.0
    weight[5] = 0.125
    weight[7, :62] = -np.abs(weight[7, :62])
    weight[7, 62:] = [0.01, 0.02]  # two positives only
    weight[9, :10] = 0.0
    names = tuple(f"class {i}" for i in range(12))
    return head_from_arrays(weight, None, ClassNames(names, names, "generic"), ModelSpec(), "test")


def _args(**overrides) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    ald_export.add_export_flags(parser)
    namespace = parser.parse_args([])
    namespace.device = "cpu"
    for key, value in overrides.items():
        setattr(namespace, key, value)
    return namespace


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def test_no_writers_without_the_flag(small_head, tmp_path):
    args = _args()
    assert args.ald is False
    assert ald_export.export_writers(args, small_head, ResultCache(tmp_path), NullProgress()) == []


def test_export_writes_the_table_and_the_pooled_fit(small_head, tmp_path):
    cache = ResultCache(tmp_path / "cache")
    writers = ald_export.export_writers(_args(ald=True), small_head, cache, NullProgress())
    out = write_export(tmp_path / "out", writers, {})
    header, rows = _read_csv(out / "ald.csv")
    assert header == EXPECTED_HEADER
    assert len(rows) == 12
    table = fit_ald(small_head.weight, device="cpu")
    for k, row in enumerate(rows):
        assert int(row[0]) == k
        for name, cell in zip(header[1:-1], row[1:-1]):
            value = float(cell)  # "nan" parses; every cell is a number or nan
            expected = getattr(table, name)[k]
            if math.isnan(expected):
                assert math.isnan(value), (k, name)
            else:
                assert value == expected, (k, name)  # repr round-trips float64 exactly
        has_nan = any(math.isnan(float(cell)) for cell in row[1:-1])
        assert (row[-1] != "ok") or not has_nan, k
    assert rows[3][-1].count("zero weight(s) excluded") == 1
    assert "MLE: constant row" in rows[5][-1]
    assert "positive side: 2 nonzero weight(s)" in rows[7][-1]
    assert "10 zero weight(s) excluded" in rows[9][-1]
    assert rows[0][-1] == "ok"

    text = (out / "ald_pooled.json").read_text()
    pooled = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON {name}"))
    reference = fit_pooled(small_head.weight)
    for key in ("r2_pos", "r2_neg", "slope_pos", "intercept_pos", "slope_neg", "intercept_neg",
                "kappa_pos", "lambda_pos", "mean_pos", "kappa_neg", "lambda_neg", "mean_neg"):
        assert pooled[key] == pytest.approx(getattr(reference, key), rel=1e-12), key
    assert pooled["n_zero"] == 64 + 10 and pooled["n_pos"] + pooled["n_neg"] == 12 * 64 - 74
    assert "74 zero weight(s) excluded" in pooled["status"]
    assert pooled["seed_status_pos"] == "ok"

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ald"]["files"] == ["ald.csv", "ald_pooled.json"]
    assert manifest["ald"]["zero_weights"] == 74
    assert manifest["ald"]["from_cache"] is False
    assert manifest["ald"]["classes_with_status"] == sum(r[-1] != "ok" for r in rows)

    again = ald_export.export_writers(_args(ald=True), small_head, cache, NullProgress())
    out2 = write_export(tmp_path / "out2", again, {})
    assert json.loads((out2 / "manifest.json").read_text())["ald"]["from_cache"] is True
    assert (out2 / "ald.csv").read_text() == (out / "ald.csv").read_text()


def test_undefined_pooled_mapping_is_null_with_a_status(tmp_path):
    """Positive weights whose log-magnitudes rise slowly (a < e^b): κ, λ, mean are null."""
    rng = np.random.default_rng(0)
    weight = np.concatenate(
        [rng.uniform(1.0, 1.001, (4, 30)), -rng.uniform(0.01, 0.1, (4, 30))], axis=1
    ).astype(np.float32)
    names = tuple(f"c{i}" for i in range(4))
    head = head_from_arrays(weight, None, ClassNames(names, names, "generic"), ModelSpec(), "t")
    writers = ald_export.export_writers(_args(ald=True), head, None, NullProgress())
    out = write_export(tmp_path / "out", writers, {})
    pooled = json.loads((out / "ald_pooled.json").read_text())
    assert pooled["kappa_pos"] is None and pooled["lambda_pos"] is None
    assert pooled["mean_pos"] is None
    assert pooled["seed_status_pos"].startswith("undefined")
    assert isinstance(pooled["kappa_neg"], float)


def test_cli_export_with_ald(tmp_path, monkeypatch):
    """Through ``classmap export``, where cli.py registers the extension."""
    from classmap.analysis import cli

    assert "classmap.analysis.exports.ald" in cli.EXPORT_EXTENSIONS
    weight = np.random.default_rng(9).laplace(0.0, 0.05, (6, 40)).astype(np.float32)
    np.save(tmp_path / "head.npy", weight)
    code = cli.main([
        "export", "--head", str(tmp_path / "head.npy"), "--out", str(tmp_path / "out"),
        "--cache-dir", str(tmp_path / "cache"), "--top-k", "2", "--quiet", "--device", "cpu",
        "--ald",
    ])
    assert code == 0
    header, rows = _read_csv(tmp_path / "out" / "ald.csv")
    assert header == EXPECTED_HEADER and len(rows) == 6
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "classes.csv" in manifest["files"] and manifest["ald"]["files"][0] == "ald.csv"
