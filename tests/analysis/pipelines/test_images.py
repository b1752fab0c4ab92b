"""Extraction + every seed-002/003 analysis: references, the cache, failures, the export."""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import adjusted_rand_score, confusion_matrix

import classmap.analysis.pipelines.images as pipeline
from classmap.analysis import cli
from classmap.analysis.cache import ResultCache
from classmap.analysis.loading.data import load_dataset
from classmap.analysis.errors import ClassmapError
from classmap.analysis.pipelines.images import (
    ImageParams,
    Representations,
    analyse_images,
    extract_representations,
    load_cached_analysis,
    representations_key,
    sample_cam,
    sample_summary,
)
from classmap.analysis.loading.models import ModelSpec, load_classifier
from classmap.analysis.loading.training import prepare_training_data, save_checkpoint, train_model


@pytest.fixture(scope="module")
def digits_setup(tmp_path_factory):
    """A LeNet-5 trained briefly on digits (loaded as ``--model lenet5 --weights``) and
    the held-out digits opened with its classes."""
    from dataclasses import replace

    data = prepare_training_data("digits")
    data = replace(data, train_images=data.train_images[:300], train_labels=data.train_labels[:300])
    path = tmp_path_factory.mktemp("model") / "digits.safetensors"
    save_checkpoint(train_model(data, epochs=2, seed=0), path)
    classifier = load_classifier(ModelSpec(model="lenet5", weights=str(path)), device="cpu")
    dataset = load_dataset("digits", classifier.head.classes, channels=1)
    return classifier, dataset


@pytest.fixture(scope="module")
def digits_reps(digits_setup):
    classifier, dataset = digits_setup
    return extract_representations(classifier, dataset, batch_size=64)


@pytest.fixture(scope="module")
def digits_analysis(digits_reps):
    return analyse_images(digits_reps, ImageParams(seed=0))


def test_extraction_equals_a_plain_forward_and_ignores_batch_size(digits_setup, digits_reps):
    classifier, dataset = digits_setup
    reps = digits_reps
    inputs = torch.stack([classifier.preprocess(dataset.load_image(i)) for i in range(len(dataset))])
    with torch.inference_mode():
        feature_map = classifier.network.features(inputs)
        logits = classifier.network(inputs)
    np.testing.assert_allclose(reps.features, feature_map.mean(dim=(2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reps.softmax, logits.softmax(1), rtol=1e-5, atol=1e-6)
    assert np.array_equal(reps.preds, logits.argmax(1).numpy())
    assert np.array_equal(reps.labels, dataset.labels)
    np.testing.assert_array_equal(reps.confidence, reps.softmax[np.arange(360), reps.preds])
    assert reps.grad_weights.shape == (360, 16) and reps.cams.shape == (360, 32, 32)
    assert reps.cams.dtype == np.float16 and 0 <= reps.cams.min() and reps.cams.max() <= 1
    assert reps.sample_ids[0].startswith("digits:") and reps.site == "features"
    small_batches = extract_representations(classifier, dataset, batch_size=7)
    for name in ("features", "grad_weights", "softmax"):
        np.testing.assert_allclose(getattr(small_batches, name), getattr(reps, name),
                                   rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(small_batches.cams, reps.cams, atol=1e-3)


def test_cache_hit_and_the_key_covers_every_parameter_not_only_the_head(tmp_path, digits_setup):
    classifier, dataset = digits_setup
    subset = dataclasses.replace(
        dataset, labels=dataset.labels[:40], sample_ids=dataset.sample_ids[:40],
        images=dataset.images[:40], digest="subset-40",
    )
    cache = ResultCache(tmp_path / "cache")
    first = extract_representations(classifier, subset, cache=cache)
    second = extract_representations(classifier, subset, cache=cache)
    assert not first.from_cache and second.from_cache and second.key == first.key
    for name in ("features", "softmax", "grad_weights", "cams", "labels", "preds"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert second.sample_ids == first.sample_ids and second.grid_size == (10, 10)

    changed = copy.copy(classifier)
    changed.network = copy.deepcopy(classifier.network)
    with torch.no_grad():
        changed.network.features[0].weight[0, 0, 0, 0] += 1e-3  # a backbone weight only
    assert np.array_equal(changed.network.head.weight.detach(), classifier.network.head.weight.detach())
    assert representations_key(changed, subset) != first.key
    assert not extract_representations(changed, subset, cache=cache).from_cache


def test_a_failure_half_way_caches_nothing(tmp_path, digits_setup, digits_reps, monkeypatch):
    classifier, dataset = digits_setup
    cache = ResultCache(tmp_path / "cache")
    calls = []
    real = pipeline.extract_batch

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "extract_batch", failing)
    with pytest.raises(RuntimeError):
        extract_representations(classifier, dataset, batch_size=64, cache=cache)
    assert cache.get(representations_key(classifier, dataset)) is None

    def failing_tsne(*args, **kwargs):
        raise RuntimeError("t-SNE failed")

    monkeypatch.setattr(pipeline, "tsne_softmax", failing_tsne)
    with pytest.raises(RuntimeError):
        analyse_images(digits_reps, cache=cache)
    assert cache.get(pipeline.image_analysis_key(digits_reps, ImageParams())) is None
    assert list((tmp_path / "cache" / "arrays").iterdir()) == []


def test_analyses_agree_with_independent_references(digits_reps, digits_analysis):
    reps, result = digits_reps, digits_analysis
    assert result.classes.tolist() == list(range(10)) and result.skipped == ()
    # within-class cosine: brute force over every pair
    for name in ("grad_weights", "softmax", "features"):
        vectors = reps.vectors(name).astype(np.float64)
        units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        for label in (0, 7):
            members = units[reps.labels == label]
            pairs = [members[i] @ members[j] for i, j in combinations(range(len(members)), 2)]
            assert result.within_class[name].per_class[label] == pytest.approx(np.mean(pairs))
    # clustering scored against the true labels, k = 10
    for (name, algorithm), clustering in result.clustering.items():
        assert clustering.num_clusters == 10
        assert clustering.ari == pytest.approx(adjusted_rand_score(reps.labels, clustering.assignments))
    assert set(result.clustering) == {(r, a) for r in ("grad_weights", "softmax", "features")
                                      for a in ("kmeans", "gmm")}
    # JS divergence of the class-mean softmax rows: scipy's distance squared
    means = np.stack([reps.softmax[reps.labels == c].mean(0) for c in range(10)]).astype(np.float64)
    np.testing.assert_allclose(result.class_mean_softmax, means, rtol=1e-5)
    assert result.js[2, 5] == pytest.approx(jensenshannon(means[2], means[5], base=2) ** 2, rel=1e-4)
    np.testing.assert_array_equal(result.confusion, confusion_matrix(reps.labels, reps.preds))
    assert result.confusion_columns == tuple(str(i) for i in range(10))
    assert result.tsne.shape == (360, 2) and result.js_linkage.shape == (9, 4)
    assert result.class_clusters.shape == (10,) and result.class_clusters.max() == 2  # k = 3
    assert result.pca["features"].coordinates.shape == (360, 2)
    assert result.map_agreement.pair_counts.tolist() == [200] * 10


def test_cached_analysis_is_identical_to_the_fresh_one(tmp_path, digits_reps, digits_analysis):
    cache = ResultCache(tmp_path / "cache")
    cache.put(digits_analysis.key, *pipeline._pack_analysis(digits_analysis))
    loaded = load_cached_analysis(cache, digits_analysis.key)
    assert loaded.from_cache and loaded.params == digits_analysis.params
    for item in dataclasses.fields(loaded):
        if item.name in ("seconds", "from_cache"):
            continue
        _assert_same(getattr(loaded, item.name), getattr(digits_analysis, item.name), item.name)
    again = analyse_images(digits_reps, ImageParams(seed=0), cache=cache)
    assert again.from_cache


def _assert_same(a, b, where):
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif dataclasses.is_dataclass(a):
        for item in dataclasses.fields(a):
            _assert_same(getattr(a, item.name), getattr(b, item.name), f"{where}.{item.name}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b and type(a) is type(b), where


def planted_representations(num_classes=6, present=(1, 3, 4), per_class=10) -> Representations:
    """Three well-separated classes of a six-class model; two images predicted 'other'."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(present), per_class)
    centres = rng.normal(size=(num_classes, 12)) * 10
    grad = centres[labels] + rng.normal(size=(len(labels), 12))
    logits = rng.normal(size=(len(labels), num_classes))
    logits[np.arange(len(labels)), labels] += 6
    logits[0, 5] += 20  # predicted as class 5, which has no images
    logits[1, 0] += 20  # predicted as class 0, which has no images
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    preds = softmax.argmax(1)
    cams = rng.random((len(labels), 6, 6)).astype(np.float16)
    return Representations(
        features=rng.normal(size=(len(labels), 12)).astype(np.float32), logits=logits.astype(np.float32),
        softmax=softmax.astype(np.float32), grad_weights=grad.astype(np.float32), cams=cams,
        labels=labels, preds=preds, confidence=softmax.max(1).astype(np.float32),
        class_names=tuple("abcdef"), sample_ids=tuple(f"s{i}" for i in range(len(labels))),
        site="planted", grid_size=(6, 6), key="planted",
    )


def test_classes_without_images_are_left_out_and_other_predictions_counted():
    reps = planted_representations()
    result = analyse_images(reps, ImageParams(seed=0, class_clusters=2))
    assert result.classes.tolist() == [1, 3, 4] and result.class_names == ("b", "d", "e")
    assert result.clustering[("grad_weights", "kmeans")].ari == 1.0
    assert result.clustering[("grad_weights", "gmm")].ari == 1.0
    assert result.confusion_columns == ("b", "d", "e", "(other)")
    assert result.confusion.shape == (3, 4) and result.confusion[0].tolist() == [8, 0, 0, 2]
    assert result.confusion.sum() == 30
    means = np.stack([reps.softmax[reps.labels == c].mean(0) for c in (1, 3, 4)])
    np.testing.assert_allclose(result.class_mean_softmax, means, rtol=1e-6)
    assert result.js.shape == (3, 3) and result.within_class["grad_weights"].per_class.shape == (3,)
    assert result.class_clusters.tolist() in ([0, 1, 1], [0, 0, 1], [0, 1, 0])


def test_too_few_images_skips_clustering_with_a_reason():
    reps = planted_representations(per_class=1)
    result = analyse_images(reps)
    assert ("kmeans on grad_weights", "needs more images (3) than classes (3)") in result.skipped
    assert result.clustering == {} and result.tsne.shape == (3, 2)
    assert np.isnan(result.within_class["softmax"].per_class).all()


def test_sample_api_for_pages(digits_reps):
    cam = sample_cam(digits_reps, 5)
    assert cam.dtype == np.float32 and cam.shape == (32, 32)
    np.testing.assert_array_equal(cam, digits_reps.cams[5].astype(np.float32))
    summary = sample_summary(digits_reps, 5, top_k=3)
    assert summary.sample_id == digits_reps.sample_ids[5] and summary.pred == summary.top_classes[0]
    assert list(summary.top_scores) == sorted(summary.top_scores, reverse=True)
    with pytest.raises(ClassmapError, match="out of range"):
        sample_cam(digits_reps, 360)


def test_bad_parameters_are_clear_errors(digits_reps, digits_setup):
    with pytest.raises(ClassmapError, match="choose one of average"):
        analyse_images(digits_reps, ImageParams(js_linkage="ward"))
    with pytest.raises(ClassmapError, match="more than the 10 classes"):
        analyse_images(digits_reps, ImageParams(class_clusters=11))
    classifier, dataset = digits_setup
    with pytest.raises(ClassmapError, match="batch-size"):
        extract_representations(classifier, dataset, batch_size=0)


# ------------------------------------------------------------------------ the export


@pytest.fixture
def cli_with_images():
    """The CLI, whose EXPORT_EXTENSIONS adds the image files with ``--data``."""
    assert "classmap.analysis.exports.images" in cli.EXPORT_EXTENSIONS
    return cli.main


IMAGE_FILES = {"samples.csv", "representations.npz", "within_class_similarity.csv",
               "clustering_metrics.csv", "confidence_js.npy", "confusion.csv"}


def test_export_of_the_digits_default(tmp_path, capsys, cli_with_images, session_cache, lenet_digits):
    out = tmp_path / "export"
    code = cli_with_images(["export", "--model", "lenet-digits", "--data", "digits", "--out", str(out),
                            "--cache-dir", str(session_cache.directory), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert IMAGE_FILES <= {p.name for p in out.iterdir()}
    with open(out / "samples.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["index", "path", "label", "pred", "confidence"] and len(rows) == 361
    assert rows[1][1].startswith("digits:")
    with np.load(out / "representations.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"features", "softmax", "grad_weights", "labels", "preds"}
        assert arrays["features"].shape == (360, 16) and arrays["softmax"].shape == (360, 10)
        accuracy = (arrays["labels"] == arrays["preds"]).mean()
    assert accuracy >= 0.95
    js = np.load(out / "confidence_js.npy", allow_pickle=False)
    assert js.shape == (10, 10) and np.allclose(js, js.T) and js.max() <= 1
    with open(out / "clustering_metrics.csv", newline="") as handle:
        metrics = list(csv.DictReader(handle))
    assert list(metrics[0]) == ["representation", "algorithm", "ari", "nmi", "silhouette"]
    assert len(metrics) == 6 and all(float(m["nmi"]) > 0 for m in metrics)
    with open(out / "confusion.csv", newline="") as handle:
        confusion = list(csv.reader(handle))
    assert sum(int(v) for row in confusion[1:] for v in row[1:]) == 360
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["num_images"] == 360 and manifest["image_analysis"]["feature_site"] == "features"
    assert set(manifest["image_analysis"]["within_class_cosine"]) == {"grad_weights", "softmax", "features"}


def imagenet_folder(root: Path) -> Path:
    """Coffee and cat photo crops in ImageNet class folders (by name and by id), plus a
    truncated JPEG, a text file and an empty class folder."""
    from skimage import data

    coffee, cat = Image.fromarray(data.coffee()), Image.fromarray(data.chelsea())
    (root / "espresso").mkdir(parents=True)
    (root / "n02123045").mkdir()  # tabby
    (root / "tench").mkdir()  # empty
    for index, box in enumerate([(0, 0, 400, 400), (100, 0, 600, 400), (50, 50, 450, 350)]):
        coffee.crop(box).save(root / "espresso" / f"{index}.jpg")
        cat.crop((box[0] // 2, 0, box[2] // 2 + 50, 300)).save(root / "n02123045" / f"{index}.png")
    coffee.convert("L").save(root / "espresso" / "grey.png")
    broken = (root / "espresso" / "0.jpg").read_bytes()
    (root / "espresso" / "broken.jpg").write_bytes(broken[: len(broken) // 3])
    (root / "espresso" / "notes.txt").write_text("x")
    return root


def test_export_of_an_image_folder_with_the_embedded_imagenet_model(tmp_path, capsys, cli_with_images,
                                                                    session_cache):
    folder = imagenet_folder(tmp_path / "photos")
    out = tmp_path / "export"
    code = cli_with_images(["export", "--data", str(folder), "--out", str(out), "--batch-size", "3",
                            "--cache-dir", str(session_cache.directory), "--quiet"])
    assert code == 0, capsys.readouterr().err
    with open(out / "samples.csv", newline="") as handle:
        samples = list(csv.DictReader(handle))
    assert [s["path"] for s in samples][:2] == ["espresso/0.jpg", "espresso/1.jpg"]
    assert {int(s["label"]) for s in samples} == {967, 281}
    espresso = [s for s in samples if s["label"] == "967"]
    assert sum(s["pred"] == "967" for s in espresso) >= 3
    with open(out / "confusion.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[-1] == "(other)" and len(header) == 4
    manifest = json.loads((out / "manifest.json").read_text())
    report = manifest["data"]
    assert [u["path"] for u in report["unreadable"]] == ["espresso/broken.jpg"]
    assert report["non_image_files"] == 1 and report["empty_classes"] == ["tench"]
    assert report["conversions"] == {"grayscale → RGB": 1}
    assert manifest["image_analysis"]["feature_grid"] == [7, 7]
    with np.load(out / "representations.npz", allow_pickle=False) as arrays:
        assert arrays["features"].shape == (7, 1280) and arrays["softmax"].shape == (7, 1000)


def test_export_without_data_writes_no_image_files_and_head_with_data_is_refused(
    tmp_path, capsys, cli_with_images
):
    head = tmp_path / "head.npy"
    np.save(head, np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32))
    assert cli_with_images(["export", "--head", str(head), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert not IMAGE_FILES & {p.name for p in (tmp_path / "a").iterdir()}
    code = cli_with_images(["export", "--head", str(head), "--data", "digits",
                            "--out", str(tmp_path / "b"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "needs the whole network" in err and err.count("\n") == 1
    assert not (tmp_path / "b").exists()


def test_an_image_changed_after_the_scan_is_a_clear_error_and_caches_nothing(tmp_path, digits_setup):
    classifier, _ = digits_setup
    rng = np.random.default_rng(0)
    for digit in ("0", "1"):
        (tmp_path / "data" / digit).mkdir(parents=True)
        for index in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
                tmp_path / "data" / digit / f"{index}.png")
    dataset = load_dataset(tmp_path / "data", classifier.head.classes, channels=1)
    (tmp_path / "data" / "1" / "2.png").write_bytes(b"gone")
    cache = ResultCache(tmp_path / "cache")
    with pytest.raises(ClassmapError, match="1/2.png could not be read any more"):
        extract_representations(classifier, dataset, batch_size=2, cache=cache)
    assert list((tmp_path / "cache" / "arrays").iterdir()) == []
