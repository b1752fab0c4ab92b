"""``classmap compare`` with image-based sources (issue 13 item 5): the confidence JS of
lenet-digits on the digits against its weight cosine, checked against an independent
computation (softmax by hand, scipy's Jensen–Shannon, numpy's correlation, scipy's
spearmanr over the same upper triangle)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import jensenshannon, squareform

from classmap.analysis.cli import main
from classmap.analysis.loading.data import load_dataset


def _class_mean_softmax(classifier) -> tuple[np.ndarray, np.ndarray]:
    dataset = load_dataset("digits", classifier.head.classes,
                           channels=int(classifier.data_config["input_size"][0]))
    images = torch.stack([classifier.preprocess(dataset.load_image(i))
                          for i in range(len(dataset))])
    with torch.no_grad():
        scores = torch.softmax(classifier.network(images).double(), dim=1).numpy()
    labels = np.asarray(dataset.labels)
    return np.stack([scores[labels == c].mean(axis=0) for c in range(10)]), labels


def test_confidence_js_against_weight_cosine_matches_scipy(tmp_path, lenet_digits, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "lenet-digits:confidence@digits", "lenet-digits:cosine",
                 "--out", str(out), "--device", "cpu", "--permutations", "99", "--quiet"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["a"] == "lenet-digits confidence JS on digits / average"
    assert summary["classes"] == 10
    assert summary["classes_compared"].startswith("all 10 classes")

    means, _labels = _class_mean_softmax(lenet_digits)
    js = np.array([[jensenshannon(p, q, base=2) ** 2 for q in means] for p in means])
    np.fill_diagonal(js, 0.0)
    weight = np.asarray(lenet_digits.head.weight, dtype=np.float64)
    cosine = 1.0 - np.corrcoef(weight)  # cosine of standardised rows = Pearson r
    np.fill_diagonal(cosine, 0.0)
    expected = stats.spearmanr(squareform(js, checks=False),
                               squareform(cosine, checks=False)).statistic
    assert summary["spearman"] == pytest.approx(expected, abs=1e-6)
    assert 0 < summary["mantel"]["p_value"] <= 1


def test_feature_and_gradcam_sources_run_from_the_cached_images(tmp_path, lenet_digits,
                                                                capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "lenet-digits:features@digits", "lenet-digits:gradcam:average@digits",
                 "--out", str(out), "--device", "cpu", "--permutations", "9", "--quiet"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["b"] == "lenet-digits Grad-CAM weight class means on digits / average"
    assert -1 <= summary["spearman"] <= 1 and summary["classes"] == 10


def test_an_image_source_without_data_is_refused(tmp_path, capsys):
    code = main(["compare", "lenet-digits:confidence", "lenet-digits", "--out",
                 str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "add @DATA" in err and err.count("\n") == 1
