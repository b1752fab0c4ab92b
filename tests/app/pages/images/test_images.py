"""The image pages without a browser: services, figure builders and callbacks as plain
functions, on the offline default lenet-digits + digits (references: scikit-learn,
scipy, the pipeline's own arrays)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from dash.exceptions import PreventUpdate
from PIL import Image
from scipy.cluster.hierarchy import leaves_list
from sklearn.metrics import adjusted_rand_score, confusion_matrix

from classmap.analysis.errors import ClassmapError
from classmap.app.pages.images import figures as figs
from classmap.app.shell import image_render
from classmap.app.pages.images import callbacks as cb
from classmap.app.config import Settings, parse_data_roots
from classmap.app.shell.services import Services
from classmap.app.shell.images import DataSetEntry, ImageServices, data_entries

MODEL, DATA = "lenet-digits", "digits"
SEL = {"model": MODEL, "data": DATA, "rep": "features"}
READY = {"key": [MODEL, DATA], "state": "ready", "message": ""}


@pytest.fixture(scope="module")
def images(services, lenet_digits):
    return ImageServices(services)


@pytest.fixture(scope="module")
def result(images):
    return images.result(MODEL, DATA)


def decode_png(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


# -- configuration and services ----------------------------------------------------------


def test_data_roots_from_flag_and_environment(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert parse_data_roots([str(a)], {"CLASSMAP_DATA_ROOTS": f"{b}:{a}"}) == (a, b)
    with pytest.raises(ClassmapError, match="is not a folder"):
        parse_data_roots([str(tmp_path / "missing")], {})
    entries = data_entries((a, b / ".." / "a"))
    assert [e.id for e in entries] == ["digits", "a", "a-2"]


def test_browser_cannot_name_a_path(images):
    for bad in ("/etc", "../digits", "DIGITS", ""):
        with pytest.raises(ClassmapError, match="not configured on this server; choose one of"):
            images.data_entry(bad)
    status, job = cb.request_images_logic(images, {**SEL, "data": "/etc"}, None)
    assert status["state"] == "error" and "digits" in status["message"]


def test_folder_outside_the_configured_roots_is_refused(tmp_path, session_cache, lenet_digits):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "0").mkdir(parents=True)
    (outside / "0").mkdir(parents=True)
    settings = Settings.create(cache_dir=session_cache.directory, jobs_dir=tmp_path / "jobs",
                               environ={}, warm_default=False, data_roots=[root])
    service = ImageServices(Services(settings, cache=session_cache))
    assert service.data_ids == ("digits", "root")
    # Even a data-set entry that somehow points outside the roots is not opened.
    service.data_sets = service.data_sets + (DataSetEntry("evil", "evil", outside),)
    with pytest.raises(ClassmapError, match="outside the folders this server may open"):
        service.dataset(MODEL, "evil")


def test_result_is_the_pipeline_output_and_then_ready(images, result):
    reps, analysis = result.representations, result.analysis
    assert reps.num_images == 360 and len(analysis.classes) == 10
    assert images.ready(MODEL, DATA)
    fresh = ImageServices(images.services)  # a new process finds it in the result cache
    assert fresh.ready(MODEL, DATA)
    again = fresh.result(MODEL, DATA)
    np.testing.assert_array_equal(again.analysis.js, analysis.js)
    np.testing.assert_array_equal(again.representations.softmax, reps.softmax)


# -- image rendering ---------------------------------------------------------------------


def test_colour_map_and_overlay_blend():
    ends = image_render.colour_map(np.array([[0.0, 1.0]]))
    np.testing.assert_array_equal(ends[0], [[0, 0, 4], [252, 255, 164]])
    grey = Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32), mode="F")
    cam = np.zeros((32, 32), dtype=np.float32)
    plain = np.asarray(image_render.cam_overlay(grey, cam, alpha=0.0))
    assert plain.shape == (224, 224, 3) and np.abs(plain.astype(int) - 128).max() <= 1
    hot = np.asarray(image_render.cam_overlay(grey, cam + 1.0, alpha=1.0))
    assert (hot == [252, 255, 164]).all()


def test_sample_view_shows_the_cached_cam(images, result):
    view = images.sample(result, 5)
    picture, overlay = decode_png(view.image_uri), decode_png(view.cam_uri)
    assert picture.shape[:2] == overlay.shape[:2] == (224, 224)
    assert view.summary.index == 5 and view.summary.label == int(result.representations.labels[5])
    with pytest.raises(ClassmapError, match="does not exist"):
        images.sample(result, 360)


# -- figures -----------------------------------------------------------------------------


def test_sample_scatter_points_name_their_images(result):
    reps = result.representations
    coords = result.analysis.pca["features"].coordinates
    figure = figs.sample_scatter(coords, reps.labels, reps.class_names,
                                 hover=[str(i) for i in range(360)], focal=3, selected=7)
    classes, overlay = figure.data[:-2], figure.data[-2]
    # the classes in a fixed order (a focal change does not reorder them)
    assert [t.name for t in classes] == [reps.class_names[g] for g in range(10)]
    seen = []
    for trace in classes:
        index = np.array([c[0] for c in trace.customdata])
        np.testing.assert_allclose(trace.x, coords[index, 0])
        assert set(reps.labels[index]) == {int(trace.name)}
        seen += index.tolist()
    assert sorted(seen) == list(range(360))
    # the focal class on top in full colour with a dark outline, the others faded
    alpha = {t.name: float(t.marker.color[5:-1].split(",")[3]) * t.marker.opacity
             if t.marker.color.startswith("rgba") else t.marker.opacity for t in classes}
    assert alpha["3"] > 0.5 and all(a < 0.5 for name, a in alpha.items() if name != "3")
    assert classes[3].marker.color == figs.class_palette(3)
    assert classes[3].zorder == 1 and {t.zorder for t in classes if t.name != "3"} == {0}
    assert classes[3].marker.line.width > 1 and classes[3].marker.line.color == figs.INK
    assert len(overlay.x) == 0  # the overlay serves only the one trace of many classes
    assert list(figure.data[-1].x) == [coords[7, 0]]
    plain = figs.sample_scatter(coords, reps.labels, reps.class_names, hover=[""] * 360)
    assert len(plain.data[-2].x) == 0 and all(
        t.marker.opacity > 0.5 and t.marker.color == figs.class_palette(int(t.name))
        and not t.zorder for t in plain.data[:-2])


def test_sample_scatter_of_many_classes_overlays_the_focal_class():
    """Above LEGEND_LIMIT classes one trace holds every point: the focal class is drawn
    again on top (the overlay), the trace faded."""
    groups = np.arange(3 * (figs.LEGEND_LIMIT + 5)) % (figs.LEGEND_LIMIT + 5)
    coords = np.column_stack([groups, groups * 2.0])
    names = [f"c{g}" for g in range(figs.LEGEND_LIMIT + 5)]
    figure = figs.sample_scatter(coords, groups, names, hover=[str(i) for i in range(len(groups))],
                                 focal=4)
    assert len(figure.data) == 3 and figure.data[0].marker.opacity < 0.5
    overlay = figure.data[1]
    assert overlay.name == "c4" and [c[0] for c in overlay.customdata] == \
        np.flatnonzero(groups == 4).tolist()
    assert figs.class_styles(groups, 4) == []


def test_js_heatmap_is_in_dendrogram_order(result):
    analysis = result.analysis
    figure = figs.js_heatmap(analysis.js, analysis.js_linkage, analysis.class_names,
                             analysis.class_clusters, focal=2)
    order = leaves_list(analysis.js_linkage)
    heat = figure.data[-1]
    np.testing.assert_allclose(np.array(heat.z), analysis.js[np.ix_(order, order)])
    assert list(figure.layout.xaxis3.ticktext) == [analysis.class_names[i] for i in order]
    assert heat.customdata[1][4] == [int(order[1]), int(order[4])]
    assert len(figure.layout.shapes) == 2  # the focal row and column


def test_confusion_figure_counts_match_sklearn(result):
    reps, analysis = result.representations, result.analysis
    figure = figs.confusion_figure(analysis.confusion, analysis.class_names,
                                   analysis.confusion_columns)
    expected = confusion_matrix(reps.labels, reps.preds, labels=range(10))
    text = np.array([[int(t) if t else 0 for t in row] for row in figure.data[0].text])
    np.testing.assert_array_equal(text, expected)


# -- callbacks -----------------------------------------------------------------------------


def test_request_and_message(images, result):
    status, job = cb.request_images_logic(images, SEL, None)
    assert status == READY
    with pytest.raises(PreventUpdate):
        cb.request_images_logic(images, SEL, READY)
    text = cb.message_logic(images, SEL, READY)
    assert "360 images of 10 classes" in text
    pending = cb.message_logic(images, SEL, {**READY, "state": "pending"})
    assert "progress" in pending


def test_click_selects_sample_and_focal_class(images, result, services):
    selection = cb.sample_click_logic(images, {"points": [{"customdata": [42]}]}, SEL, READY)
    label = int(result.representations.labels[42])
    assert selection["image"] == 42
    assert selection["focal"] == services.head(MODEL).classes.ids[label]
    image, cam, details = cb.sample_detail_logic(images, selection, READY)
    assert decode_png(cam).shape == (224, 224, 3) and image.startswith("data:image/png")
    figure = cb.samples_figure_logic(images, selection, READY)
    (on_top,) = [t for t in figure.data[:-2] if t.zorder == 1]
    assert on_top.name == result.representations.class_names[label]
    with pytest.raises(PreventUpdate):
        cb.sample_click_logic(images, {"points": [{}]}, SEL, READY)


def test_heatmap_click_focuses_the_row(images, result, services):
    row = 6
    click = {"points": [{"customdata": [row, 2]}]}
    selection = cb.heatmap_click_logic(images, click, SEL, READY)
    assert selection["focal"] == services.head(MODEL).classes.ids[int(result.analysis.classes[row])]


def test_clustering_tables_and_figures(images, result):
    selection = {**SEL, "rep": "softmax"}
    table = str(cb.metrics_table_logic(images, selection, READY))
    found = result.analysis.clustering[("softmax", "kmeans")]
    ari = adjusted_rand_score(result.representations.labels, found.assignments)
    assert f"{ari:.3f}" in table and "Silhouette (euclidean" in table
    within = str(cb.within_table_logic(images, selection, READY))
    assert f"{result.analysis.within_class['softmax'].overall_pairs:.3f}" in within
    true, clusters = cb.clustering_figures_logic(images, selection, READY, "gmm")
    assert len(true.data) == 12 and "ARI" in clusters.layout.title.text
    heat, cluster_list, tsne, confusion = cb.confidence_figures_logic(images, selection, READY)
    assert "k = " in str(cluster_list) and len(tsne.data) == 12


def test_image_figures_and_services_load_no_dash():
    import subprocess
    import sys

    code = ("import sys, classmap.app.pages.images.figures, classmap.app.shell.image_render, "
            "classmap.app.shell.images; print('dash' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sample_scatter_with_many_classes_keeps_every_point():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 100, size=500)
    coords = rng.normal(size=(500, 2))
    figure = figs.sample_scatter(coords, groups, [str(g) for g in range(100)],
                                 hover=[""] * 500, focal=int(groups[0]))
    assert len(figure.data) == 3  # every point, the focal overlay, the ring
    assert sorted(c[0] for c in figure.data[0].customdata) == list(range(500))
    assert [c[0] for c in figure.data[1].customdata] == np.flatnonzero(
        groups == groups[0]).tolist()


def test_background_job_returns_ready_or_the_error(images, result):
    # (Progress is not checked here: the session cache already holds the result, so the
    # job reports no steps; any report it makes is a (percent, label) pair.)
    reports = []
    status = cb.prepare_images_logic(images, reports.append, {"model": MODEL, "data": DATA})
    assert status == READY
    assert all(0 <= percent <= 100 and isinstance(label, str) for percent, label in reports)
    failed = cb.prepare_images_logic(images, reports.append, {"model": MODEL, "data": "/etc"})
    assert failed["state"] == "error" and "not configured" in failed["message"]
    with pytest.raises(PreventUpdate):
        cb.prepare_images_logic(images, reports.append, None)


# -- issue 14: each view listens to the fields it shows; highlights are patches -----------


def _inputs_of(callbacks, output: str) -> set[str]:
    # keys: "id.prop" or "..id.prop...id.prop.." (several outputs)
    (spec,) = [spec for key, spec in callbacks.items() if f"..{output}." in f"..{key}."]
    return {f"{item['id']}.{item['property']}" for item in spec["inputs"]}


def test_image_views_listen_to_the_fields_they_show(app_settings):
    from classmap.app.pages.images import ids
    from classmap.app.server import create_app

    callbacks = create_app(app_settings).callback_map
    expected = {
        f"{ids.SAMPLE_IMAGE}.src": ids.IMAGE_SAMPLE_KEY,  # not the focal class, not rep
        f"{ids.SAMPLES_GRID_DATA}.data": ids.IMAGE_MARKS_KEY,  # not rep
        f"{ids.IMAGE_MESSAGE}.children": ids.IMAGE_DATA_KEY,
        f"{ids.CLUSTERING_WITHIN}.children": ids.IMAGE_DATA_KEY,  # not rep, not focal
        f"{ids.CONFIDENCE_HEATMAP}.figure": ids.IMAGE_FOCAL_KEY,  # not image
        f"{ids.CONFIDENCE_TSNE}.figure": ids.IMAGE_MARKS_KEY,  # not rep
        f"{ids.SAMPLES_GRAPH}.figure": ids.IMAGE_VIEW_KEY,
    }
    for output, store in expected.items():
        found = _inputs_of(callbacks, output)
        assert f"{store}.data" in found, (output, found)
        assert f"{ids.IMAGE_SELECTION}.data" not in found, (output, found)
    fields = cb.VIEW_FIELDS
    assert not {"focal", "rep", "image"} & set(fields[ids.IMAGE_DATA_KEY])
    assert not {"focal", "rep"} & set(fields[ids.IMAGE_SAMPLE_KEY])
    assert "rep" not in fields[ids.IMAGE_MARKS_KEY]


def test_focal_change_patches_the_confidence_frames(images, result, services):
    from classmap.app.pages.images import ids
    from dash import no_update

    class_ids = services.head(MODEL).classes.ids
    key = {"model": MODEL, "data": DATA, "focal": class_ids[int(result.analysis.classes[4])]}
    heat, listing, confusion = cb.confidence_matrices_logic(images, key, READY,
                                                            {ids.IMAGE_FOCAL_KEY})
    assert listing is no_update  # the k-means clusters of the classes do not move
    full = cb.confidence_figures_logic(images, key, READY)
    for patch, figure in ((heat, full[0]), (confusion, full[3])):
        (operation,) = patch.to_plotly_json()["operations"]
        assert operation["location"] == ["layout", "shapes"]
        drawn = [s.to_plotly_json() for s in figure.layout.shapes]
        assert len(drawn) == len(operation["params"]["value"]) >= 1
        for sent, shape in zip(operation["params"]["value"], drawn):
            assert {k: shape[k] for k in ("x0", "x1", "y0", "y1", "xref", "yref")} == \
                {k: sent[k] for k in ("x0", "x1", "y0", "y1", "xref", "yref")}
    # the focal row's frame is row 4 of the confusion matrix (true class 4)
    (row,) = confusion.to_plotly_json()["operations"][0]["params"]["value"]
    assert (row["y0"], row["y1"]) == (3.5, 4.5)
    # anything else (the data, the status) redraws in full
    assert len(cb.confidence_matrices_logic(images, key, READY, set())[0].data) >= 2


def test_image_change_patches_only_the_marks(images, result):
    from classmap.app.pages.images import ids

    key = {**SEL, "focal": None, "image": 42}
    patch = cb.samples_update_logic(images, key, READY, {ids.IMAGE_VIEW_KEY})
    operations = patch.to_plotly_json()["operations"]
    ring = {op["location"][2]: op["params"]["value"] for op in operations
            if op["location"][:2] == ["data", -1]}
    coords = result.analysis.pca["features"].coordinates
    assert ring == {"x": [coords[42, 0]], "y": [coords[42, 1]], "customdata": [[42]]}
    # no point data is sent: only the ring and the classes' style (colour, outline, zorder)
    for op in operations:
        assert op["location"][:2] == ["data", -1] or op["location"][2:] in (
            ["marker", "color"], ["marker", "line"], ["zorder"]), op["location"]
    full = cb.samples_update_logic(images, key, READY, {ids.IMAGE_VIEW_KEY,
                                                         ids.IMAGE_REP_KEY})
    assert list(full.data[-1].x) == ring["x"] and len(full.data) == 12


def apply_patch(figure: dict, patch) -> dict:
    """``figure`` (a plotly JSON dict) with ``patch``'s Assign operations applied, as the
    browser applies them (negative indices count from the end)."""
    import copy

    figure = copy.deepcopy(figure)
    for op in patch.to_plotly_json()["operations"]:
        assert op["operation"] == "Assign", op
        *path, last = op["location"]
        node = figure
        for part in path:
            node = node[part]
        node[last] = op["params"]["value"]
    return figure


def marks_of(figure: dict) -> list:
    """What the scatters draw: each trace's points, names, colours, opacity, outline and
    drawing order."""
    def plain(value):  # plotly's JSON writes numpy arrays as base64 ("bdata")
        if isinstance(value, dict) and "bdata" in value:
            value = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return np.asarray(value).tolist() if value is not None else None

    return [(t.get("name"), plain(t.get("x")), plain(t.get("y")), t.get("customdata"),
             t.get("text"), t.get("marker", {}).get("color"),
             t.get("marker", {}).get("opacity"), t.get("marker", {}).get("line"),
             t.get("zorder")) for t in figure["data"]]


@pytest.mark.parametrize("page", ["samples", "clustering", "tsne"])
def test_a_class_change_is_a_patch_that_draws_the_new_class(images, result, services, page):
    """Issue 14: on every image scatter a class change (and an image change) answers with a
    small Patch — and the old figure patched is the figure drawn afresh for the new class."""
    import json as _json

    from classmap.app.pages.images import ids

    class_ids = services.head(MODEL).classes.ids
    old_key = {**SEL, "focal": class_ids[3], "image": None}
    changes = [{**old_key, "focal": class_ids[7]}, {**old_key, "focal": None, "image": 42},
               {**old_key, "image": 5}]

    def draw(key, triggered):
        if page == "samples":
            return cb.samples_update_logic(images, key, READY, triggered)
        if page == "clustering":
            return cb.clustering_update_logic(images, key, READY, "kmeans", triggered)[0]
        return cb.tsne_update_logic(images, key, READY, triggered)

    only = {"samples": ids.IMAGE_VIEW_KEY, "clustering": ids.IMAGE_VIEW_KEY,
            "tsne": ids.IMAGE_MARKS_KEY}[page]
    drawn_from = {"samples": ids.IMAGE_REP_KEY, "clustering": ids.IMAGE_REP_KEY,
                  "tsne": ids.IMAGE_DATA_KEY}[page]
    old = draw(old_key, {only, drawn_from})
    assert not isinstance(old, type(cb.Patch()))
    old_json = _json.loads(old.to_json())
    for new_key in changes:
        patch = draw(new_key, {only})
        assert isinstance(patch, type(cb.Patch())), new_key
        fresh = _json.loads(draw(new_key, {only, drawn_from}).to_json())
        assert marks_of(apply_patch(old_json, patch)) == marks_of(fresh), new_key
        # the patch carries the marks, not the 360 points of the classes
        assert len(_json.dumps(patch.to_plotly_json())) < len(old.to_json()) / 4
    # the data or the representation changed: drawn in full
    assert not isinstance(draw(changes[0], {only, drawn_from}), type(cb.Patch()))


def test_clustering_class_change_leaves_the_cluster_colours(images, result, services):
    from classmap.app.pages.images import ids

    class_ids = services.head(MODEL).classes.ids
    key = {**SEL, "focal": class_ids[7], "image": 9}
    true, clusters = cb.clustering_update_logic(images, key, READY, "gmm", {ids.IMAGE_VIEW_KEY})
    operations = clusters.to_plotly_json()["operations"]
    assert {tuple(op["location"][:2]) for op in operations} == {("data", -1)}  # the ring
    coords = result.analysis.pca["features"].coordinates
    values = {op["location"][2]: op["params"]["value"] for op in operations}
    assert values["x"] == [coords[9, 0]]
