"""``classmap export``'s wordnet_agreement.json and ``classmap compare A B --out DIR``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from classmap.analysis.cli import main
from classmap.analysis.pipelines.compare import SourceSpec, wordnet_for_tree


def test_export_writes_wordnet_agreement_of_the_imagenet_tree(tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "--out", str(out), "--quiet", "--top-k", "3",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    agreement = json.loads((out / "wordnet_agreement.json").read_text())
    assert agreement["available"] is True
    assert 0.5 < agreement["spearman"] <= 1
    assert agreement["nn_wordnet_distance"] < agreement["baseline_wordnet_distance"]
    assert agreement["pairs"] == 1000 * 999 // 2
    assert "METHODS.md" in agreement["distance"]
    with open(out / "wordnet_nodes.csv", newline="") as handle:
        nodes = list(csv.DictReader(handle))
    assert len(nodes) == 999 and nodes[-1]["size"] == "1000"
    assert any(row["wordnet_name"] == "crab" for row in nodes)


def test_export_says_when_there_is_no_wordnet(tmp_path):
    head = tmp_path / "head.npy"
    np.save(head, np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32))
    out = tmp_path / "export"
    assert main(["export", "--head", str(head), "--out", str(out), "--quiet",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    agreement = json.loads((out / "wordnet_agreement.json").read_text())
    assert agreement["available"] is False and "spearman" not in agreement
    assert "not WordNet 3.0 noun ids" in agreement["reason"]
    assert not (out / "wordnet_nodes.csv").exists()


def test_wordnet_view_is_cached(lite0_head, session_cache):
    from classmap.analysis.pipelines.weights import WeightParams, analyse_weights

    linkage = analyse_weights(lite0_head, WeightParams(), device="cpu").linkage
    first = wordnet_for_tree(lite0_head.classes.ids, linkage, session_cache)
    again = wordnet_for_tree(lite0_head.classes.ids, linkage, session_cache)
    assert again.agreement.spearman == first.agreement.spearman
    assert again.names.name == first.names.name
    np.testing.assert_array_equal(again.names.purity, first.names.purity)


def test_compare_writes_the_measures_as_files(tmp_path, capsys):
    out = tmp_path / "compare"
    code = main(["compare", "lite0-imagenet", "lite0-imagenet:wordnet", "--out", str(out),
                 "--permutations", "99", "--top-pairs", "10",
                 "--cache-dir", str(tmp_path / "cache")])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["classes"] == 1000 and summary["mantel"]["permutations"] == 99
    assert 0 < summary["spearman"] < 1 and summary["mantel"]["p_value"] == pytest.approx(0.01)
    with open(out / "disagreeing_pairs.csv", newline="") as handle:
        pairs = list(csv.DictReader(handle))
    assert len(pairs) == 10 and pairs[0]["id_a"].startswith("n")
    with open(out / "fowlkes_mallows.csv", newline="") as handle:
        curve = list(csv.DictReader(handle))
    assert curve[0]["k"] == "2" and all(0 <= float(r["B_k"]) <= 1 for r in curve)
    with open(out / "tanglegram.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(r["class_in_b"]) for r in rows) == list(range(1000))
    with open(out / "classes.csv", newline="") as handle:
        classes = list(csv.DictReader(handle))
    assert len(classes) == 1000 and all(0 <= float(r["neighbour_overlap"]) <= 1 for r in classes)
    assert {"comparison.json", "manifest.json"} <= {p.name for p in out.iterdir()}


@pytest.mark.parametrize("text, message", [
    ("lite0-imagenet:pearson", "unknown relation 'pearson'"),
    ("lite0-imagenet:wordnet:ward", "ward needs Euclidean geometry"),
    ("a:b:c:d", "is not MODEL"),
])
def test_bad_sources_are_refused_in_one_line(tmp_path, capsys, text, message):
    code = main(["compare", text, "lite0-imagenet", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_sources_over_different_classes_are_refused(tmp_path, capsys):
    head = tmp_path / "head.npy"
    np.save(head, np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32))
    code = main(["compare", "lenet-digits", "lite0-imagenet", "--out", str(tmp_path / "o"),
                 "--cache-dir", str(tmp_path / "cache")])
    assert code == 2 and "different class sets" in capsys.readouterr().err


def test_source_spec_defaults():
    assert SourceSpec.parse("lite1-imagenet") == SourceSpec("lite1-imagenet", "cosine", "ward")
    assert SourceSpec.parse("default:wordnet").linkage == "average"
