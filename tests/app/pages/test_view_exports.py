""""Export this view" on the Weight distributions and image pages (app/pages/weights/export.py,
app/pages/images/export.py): each page's zip, opened and checked against independent
references — the histogram against numpy's, the fit table's counts against the head's
row, the clusterings' scores against scikit-learn's ARI of the exported assignments, the
Jensen–Shannon matrix against scipy's, the confusion matrix against scikit-learn's — the
figures by parsing and decoding them, the URL by parsing it back into a selection."""

from __future__ import annotations

import base64
import csv
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import adjusted_rand_score, confusion_matrix

from classmap.analysis.errors import ClassmapError
from classmap.app.pages.images import export as image_export
from classmap.app.pages.weights import export as weights_export
from classmap.app.pages.weights.services import ald_analysis, class_split
from classmap.app.shell.export_view import export_view_logic
from classmap.app.shell.images import ImageServices, image_services_for
from classmap.app.shell.selection import default_selection, parse_query, update_selection

HOST = "http://127.0.0.1:8050"
REGISTRY = {"weights": weights_export.view_export, **image_export.EXPORTERS}
MODELS = ["lite0-imagenet", "small", "lenet-digits"]
# Weights: the planted head (60 classes × 32 weights).
W_KEY = ["small", "euclidean", "average"]
W_STATUS = {"key": W_KEY, "state": "ready", "message": ""}
# Image pages: LeNet-5 on the built-in digits (360 images, 10 classes).
MODEL, DATA = "lenet-digits", "digits"


def pages(name: str) -> list[dict]:
    return [{"type": "page-query", "page": name}]


def export(services, page: str, selection: dict, status: dict | None = None):
    """(payload, opened zip) of one export of ``page``."""
    payload = export_view_logic(services, REGISTRY, pages(page), selection, status or {},
                                f"{HOST}/{'' if page == 'classes' else page}?stale=1")
    return payload, zipfile.ZipFile(io.BytesIO(base64.b64decode(payload["content"])))


def rows(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))


def figure_members(archive: zipfile.ZipFile) -> list[str]:
    return [n for n in archive.namelist() if n.endswith((".svg", ".png"))
            and not n.startswith("sample-")]


def check_figures(archive: zipfile.ZipFile, titles: dict[str, str]) -> None:
    """Every figure is a decodable PNG and a parseable SVG whose text holds its title
    (``titles``: a part of the file name → a part of the title) and axis titles."""
    stems = {n.rsplit(".", 1)[0] for n in figure_members(archive)}
    assert stems and all(f"{stem}.svg" in archive.namelist() and f"{stem}.png" in
                         archive.namelist() for stem in stems)
    for stem in stems:
        image = Image.open(io.BytesIO(archive.read(f"{stem}.png")))
        image.verify()
        assert image.format == "PNG" and image.size[0] >= 1000, stem
        root = ET.fromstring(archive.read(f"{stem}.svg"))
        assert root.tag.endswith("svg"), stem
        text = " ".join("".join(node.itertext()) for node in root.iter()
                        if node.tag.endswith("text"))
        part = next(p for p in titles if p in stem)
        assert titles[part] in text, (stem, text[:300])


def reopened(archive: zipfile.ZipFile, path: str) -> dict:
    """The selection the archive's URL opens (its path checked)."""
    url = archive.read("view-url.txt").decode().splitlines()[0]
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:8050", path)
    parsed, problems = parse_query(dict(parse_qsl(parts.query)), MODELS)
    assert not problems
    return parsed


def check_manifest(archive: zipfile.ZipFile, view: str) -> dict:
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["view"] == view and manifest["kind"] == "view"
    assert set(manifest["file_info"]) == set(archive.namelist()) - {"manifest.json"}
    return manifest


# -- Weight distributions ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights_view(services):
    view = services.view(tuple(W_KEY))
    sel = update_selection(default_selection("small"), model="small", metric="euclidean",
                           linkage="average")
    sel = update_selection(sel, focal=view.ids[7], split="full", minsize=3)
    tree = class_split(view, 7, "full", 3)
    node = next(label for label, size in zip(tree.label, tree.size)
                if label != "all" and size > 1)
    sel = update_selection(sel, snode=node)
    payload, archive = export(services, "weights", sel, W_STATUS)
    return sel, payload, archive, view, tree, node


def test_weights_archive_holds_its_tables_figures_url_and_manifest(weights_view):
    sel, payload, archive, view, _, node = weights_view
    name = payload["filename"]
    assert name.startswith(f"classmap-small-weights-focal-{view.ids[7]}".replace(" ", "_"))
    spelled = node.replace("+", "p").replace("-", "m")  # download_name's letters for a sign path
    assert name.endswith(f"-split-full-minsize-3-snode-{spelled}.zip")
    data = [n for n in archive.namelist() if n.endswith(".csv")]
    assert data == ["class-fits.csv", "focal-histogram.csv", "focal-densities.csv",
                    "focal-split.csv", "node-channels.csv"]
    views = sorted(n[:-4].split("-small-weights-", 1)[1].split("-")[0] for n in figure_members(archive)
                   if n.endswith(".svg"))
    assert views == ["histogram", "icicle", "overview", "scatter", "scatter"]
    assert archive.namelist()[-2:] == ["view-url.txt", "manifest.json"]
    manifest = check_manifest(archive, "weights")
    assert manifest["focal"]["id"] == view.ids[7] and manifest["snode"] == sel["snode"]


def test_weights_fit_table_agrees_with_the_head_and_the_fits(weights_view, services):
    _, _, archive, view, _, _ = weights_view
    table = rows(archive, "class-fits.csv")
    assert [r["class_id"] for r in table] == list(view.ids)
    weights = np.asarray(view.head.weight, dtype=np.float64)
    for k in (0, 7, 59):  # the counts, straight from the head's row
        row = table[k]
        assert int(row["n_pos"]) == int((weights[k] > 0).sum())
        assert int(row["n_neg"]) == int((weights[k] < 0).sum())
        assert int(row["n_zero"]) == int((weights[k] == 0).sum())
    fits = ald_analysis(services, "small").table
    got = np.array([float(r["kappa_mle"] or "nan") for r in table])
    np.testing.assert_array_equal(got, fits.kappa_mle)  # repr: exact round trip


def test_weights_histogram_is_numpy_s_histogram_of_the_focal_row(weights_view):
    _, _, archive, view, _, _ = weights_view
    bins = rows(archive, "focal-histogram.csv")
    row = np.asarray(view.head.weight[7], dtype=np.float64)
    counts, edges = np.histogram(row, bins=len(bins), range=(row.min(), row.max()))
    assert [int(b["count"]) for b in bins] == counts.tolist()
    np.testing.assert_allclose([float(b["left"]) for b in bins], edges[:-1], rtol=1e-12)
    density = np.array([float(b["density"]) for b in bins])
    assert float((density * np.diff(edges)).sum()) == pytest.approx(1.0)
    curves = rows(archive, "focal-densities.csv")
    assert len(curves) >= 600 and {"weight", "mle_density", "regression_density"} <= set(curves[0])


def test_weights_node_channels_are_the_node_s_weights_largest_first(weights_view):
    _, _, archive, view, tree, node = weights_view
    split = rows(archive, "focal-split.csv")
    # Sign paths start with + or −: spreadsheet-safe cells, a leading ' (OWASP) keeps them text.
    assert [r["path"].removeprefix("'") for r in split] == list(tree.label)
    assert all(r["path"][0] in "'a" for r in split)
    listed = rows(archive, "node-channels.csv")
    size = int(next(r["channels"] for r in split if r["path"] == "'" + node))
    assert len(listed) == size
    head = np.asarray(view.head.weight[7])
    values = [float(r["weight"]) for r in listed]
    assert values == sorted(values, reverse=True)
    assert all(float(head[int(r["channel"])]) == float(r["weight"]) for r in listed)


def test_weights_figures_are_valid_images_with_their_titles(weights_view):
    _, _, archive, view, _, _ = weights_view
    name = view.names[7]
    check_figures(archive, {"overview": "Weight distributions over the classes",
                            "scatter": "Classes by their fits",
                            "histogram": f"Head weights of {name}",
                            "icicle": f"Channel split of {name}"})


def test_weights_url_reopens_the_same_selection(weights_view):
    sel, _, archive, _, _, _ = weights_view
    parsed = reopened(archive, "/weights")
    for field in ("model", "metric", "linkage", "focal", "split", "minsize", "snode"):
        assert parsed[field] == sel[field], field


def test_weights_export_before_the_analysis_is_one_line(services):
    sel = update_selection(default_selection("small"), model="small")
    pending = {"key": ["small", "cosine", "ward"], "state": "pending"}
    with pytest.raises(ClassmapError) as error:
        export_view_logic(services, REGISTRY, pages("weights"), sel, pending, f"{HOST}/weights")
    assert "weight distributions to be drawn" in str(error.value)
    assert "\n" not in str(error.value)


# -- image pages ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_result(services, lenet_digits):
    return image_services_for(services).result(MODEL, DATA)


def image_selection(result, **extra) -> dict:
    sel = update_selection(default_selection(MODEL), model=MODEL, data=DATA)
    return update_selection(sel, **extra)


@pytest.fixture(scope="module")
def samples_view(services, image_result):
    reps = image_result.representations
    index = int(np.flatnonzero(reps.labels == 3)[2])
    ids = services.head(MODEL).classes.ids
    sel = image_selection(image_result, rep="softmax", image=index, focal=ids[3])
    payload, archive = export(services, "samples", sel)
    return sel, payload, archive, index


def test_samples_archive_holds_projection_sample_figure_url(samples_view):
    sel, payload, archive, index = samples_view
    assert payload["filename"] == (f"classmap-lenet-digits-samples-rep-softmax-focal-"
                                   f"{sel['focal']}-image-{index}.zip")
    assert archive.namelist() == [
        "samples.csv", "sample.csv", "sample-image.png", "sample-gradcam.png",
        "classmap-lenet-digits-samples-rep-softmax.svg",
        "classmap-lenet-digits-samples-rep-softmax.png", "view-url.txt", "manifest.json"]
    manifest = check_manifest(archive, "samples")
    assert manifest["sample"]["index"] == index and manifest["representation"] == "softmax"


def test_samples_csv_agrees_with_the_representations(samples_view, image_result):
    _, _, archive, index = samples_view
    reps = image_result.representations
    table = rows(archive, "samples.csv")
    assert len(table) == reps.num_images == 360
    softmax = np.asarray(reps.softmax, dtype=np.float64)
    for i in (0, index, 359):  # the prediction and confidence, from the softmax itself
        assert int(table[i]["true_index"]) == int(reps.labels[i])
        assert int(table[i]["pred_index"]) == int(softmax[i].argmax())
        assert float(table[i]["confidence"]) == pytest.approx(softmax[i].max(), rel=1e-6)
    coords = np.array([[float(r["pc1"]), float(r["pc2"])] for r in table])
    np.testing.assert_array_equal(coords, image_result.analysis.pca["softmax"].coordinates)
    # PCA of the softmax vectors: the exported axes are uncorrelated and ordered by variance.
    assert abs(np.corrcoef(coords.T)[0, 1]) < 1e-6 and coords[:, 0].var() >= coords[:, 1].var()


def test_sample_csv_and_pictures_describe_the_selected_image(samples_view, image_result):
    _, _, archive, index = samples_view
    softmax = np.asarray(image_result.representations.softmax[index], dtype=np.float64)
    top = rows(archive, "sample.csv")
    assert [int(r["class_index"]) for r in top] == np.argsort(-softmax,
                                                              kind="stable")[:len(top)].tolist()
    assert float(top[0]["softmax"]) == pytest.approx(softmax.max(), rel=1e-6)
    for name in ("sample-image.png", "sample-gradcam.png"):
        picture = Image.open(io.BytesIO(archive.read(name)))
        picture.verify()
        assert picture.format == "PNG" and min(picture.size) >= 28, name


def test_samples_figure_and_url(samples_view):
    sel, _, archive, _ = samples_view
    check_figures(archive, {"samples": "Images by softmax (PCA)"})
    parsed = reopened(archive, "/samples")
    for field in ("model", "data", "rep", "focal", "image"):
        assert parsed[field] == sel[field], field


@pytest.fixture(scope="module")
def clustering_view(services, image_result):
    sel = image_selection(image_result, rep="features")
    payload, archive = export(services, "clustering", sel)
    return sel, payload, archive


def test_clustering_archive_members(clustering_view):
    _, payload, archive = clustering_view
    assert payload["filename"] == "classmap-lenet-digits-clustering.zip"
    assert archive.namelist()[:4] == ["clustering-assignments.csv",
                                      "within_class_similarity.csv", "clustering_metrics.csv",
                                      "confusion.csv"]
    stems = sorted(n for n in figure_members(archive) if n.endswith(".svg"))
    assert stems == ["classmap-lenet-digits-clustering-cluster-gmm.svg",
                     "classmap-lenet-digits-clustering-cluster-kmeans.svg",
                     "classmap-lenet-digits-clustering-true.svg"]
    check_manifest(archive, "clustering")
    check_figures(archive, {"kmeans": "k-means clusters of features",
                            "gmm": "Gaussian mixture clusters of features",
                            "true": "coloured by true class"})


def test_clustering_scores_are_sklearn_s_ari_of_the_exported_assignments(clustering_view,
                                                                         image_result):
    _, _, archive = clustering_view
    table = rows(archive, "clustering-assignments.csv")
    assert len(table) == 360
    truth = [int(r["true_index"]) for r in table]
    scores = {(r["representation"], r["algorithm"]): r
              for r in rows(archive, "clustering_metrics.csv")}
    columns = [c for c in table[0] if c.startswith("cluster_")]
    assert columns  # at least one clustering was computed
    for column in columns:
        rep, algorithm = column[len("cluster_"):].rsplit("_", 1)
        found = [int(r[column]) for r in table]
        assert min(found) == 1  # numbered as the page's legend
        assert adjusted_rand_score(truth, found) == pytest.approx(
            float(scores[(rep, algorithm)]["ari"]), abs=1e-6)


def test_clustering_url_reopens_the_view(clustering_view):
    sel, _, archive = clustering_view
    parsed = reopened(archive, "/clustering")
    assert (parsed["model"], parsed["data"], parsed["rep"]) == (MODEL, DATA, "features")


@pytest.fixture(scope="module")
def confidence_view(services, image_result):
    ids = services.head(MODEL).classes.ids
    sel = image_selection(image_result, focal=ids[5])
    payload, archive = export(services, "confidence", sel)
    return sel, payload, archive


def test_confidence_matrix_is_scipy_s_js_of_the_class_mean_softmax(confidence_view,
                                                                   image_result):
    _, _, archive = confidence_view
    reps = image_result.representations
    with io.StringIO(archive.read("confidence-js.csv").decode()) as handle:
        table = list(csv.reader(handle))
    names = table[0][1:]
    assert names == list(image_result.analysis.class_names)
    matrix = np.array([[float(v) for v in row[1:]] for row in table[1:]])
    softmax = np.asarray(reps.softmax, dtype=np.float64)
    classes = [int(c) for c in image_result.analysis.classes]
    means = [softmax[reps.labels == c].mean(axis=0) for c in classes]
    for a, b in [(0, 1), (2, 7), (5, 9)]:  # JS divergence = JS distance², base 2
        assert matrix[a, b] == pytest.approx(jensenshannon(means[a], means[b], base=2) ** 2,
                                             rel=1e-4, abs=1e-9)
    assert np.allclose(np.diag(matrix), 0) and np.allclose(matrix, matrix.T)


def test_confidence_confusion_and_members(confidence_view, image_result):
    sel, payload, archive = confidence_view
    assert payload["filename"] == f"classmap-lenet-digits-confidence-focal-{sel['focal']}.zip"
    data = [n for n in archive.namelist() if n.endswith(".csv")]
    assert data == ["confidence-js.csv", "confusion.csv", "classes.csv", "tsne.csv"]
    reps = image_result.representations
    with io.StringIO(archive.read("confusion.csv").decode()) as handle:
        table = list(csv.reader(handle))
    counts = np.array([[int(v) for v in row[1:]] for row in table[1:]])
    classes = [int(c) for c in image_result.analysis.classes]
    expected = confusion_matrix(reps.labels, reps.preds, labels=classes)
    np.testing.assert_array_equal(counts[:, :len(classes)], expected)
    check_manifest(archive, "confidence")
    check_figures(archive, {"js-heatmap": "Class similarity from confidence scores",
                            "tsne": "t-SNE of the softmax vectors",
                            "confusion": "Confusion matrix"})
    parsed = reopened(archive, "/confidence")
    assert (parsed["model"], parsed["focal"]) == (MODEL, sel["focal"])


def test_image_export_before_the_analysis_is_one_line(services, image_result, monkeypatch):
    monkeypatch.setattr(ImageServices, "ready", lambda self, model, data: False)
    for page in image_export.EXPORTERS:
        with pytest.raises(ClassmapError) as error:
            export_view_logic(services, REGISTRY, pages(page), image_selection(image_result),
                              {}, f"{HOST}/{page}")
        message = str(error.value)
        assert "not computed" in message and "wait for the page's progress bar" in message
        assert "\n" not in message


def test_image_export_on_a_model_the_data_cannot_use_is_one_line(services):
    sel = update_selection(default_selection("small"), model="small", data=DATA)
    with pytest.raises(ClassmapError) as error:
        export_view_logic(services, REGISTRY, pages("samples"), sel, {}, f"{HOST}/samples")
    assert str(error.value).startswith("nothing to export") and "\n" not in str(error.value)


def test_image_export_of_an_image_the_data_set_lacks_is_one_line(services, image_result):
    sel = image_selection(image_result, image=999_999)
    with pytest.raises(ClassmapError, match="sample 999999 does not exist; this data set has "
                                            "360 images") as error:
        export_view_logic(services, REGISTRY, pages("samples"), sel, {}, f"{HOST}/samples")
    assert "\n" not in str(error.value)
