"""The channel CAM's background job (issue 15), without a browser: the request only
checks and starts a job; the job reads a folder no job has read yet (the scan is then
what the server's image picker offers) and computes the CAM; Cancel, Retry and forged
requests. The CAM itself is checked against ``smooth_gradcam_pp_channels`` on the image
read back with Pillow (an independent reference), as in test_channel_cam.py."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate
from PIL import Image
from skimage import data

import classmap.app.pages.weights.callbacks as cw
from classmap.analysis.methods.channel_cam import smooth_gradcam_pp_channels
from classmap.app.config import Settings
from classmap.app.pages.weights.services import NO_CAM_DATA
from classmap.app.shell.image_render import cam_overlay_uri
from classmap.app.shell.images import ImageServices
from classmap.app.shell.jobs import CANCELLED, ERROR, PENDING, READY, job_status, retry_status
from classmap.app.shell.services import Services

MODEL = "lite0-imagenet"
ESPRESSO = ("n07920052", 967)
ANALYSED = {"key": [MODEL, "cosine", "ward"], "state": "ready", "message": ""}


def selection(model: str = MODEL, **changes):
    base = {"model": model, "metric": "cosine", "linkage": "ward", "focal": ESPRESSO[0],
            "split": "chains", "minsize": 20, "snode": None}
    base.update(changes)
    return base


def no_reads(*args, **kwargs):
    raise AssertionError("the request thread read the folder or ran the network")


@pytest.fixture(scope="module")
def server(session_cache, tmp_path_factory, lite0_classifier):
    """(services, images, folder) of a server with a folder no job has read yet (the
    first test reads it through the job)."""
    root = tmp_path_factory.mktemp("cam-job") / "unread"
    for name, picture in (("espresso", data.coffee()), ("tabby", data.chelsea())):
        (root / name).mkdir(parents=True)
        Image.fromarray(picture).save(root / name / f"{name}.jpg", quality=92)
    settings = Settings.create(cache_dir=session_cache.directory,
                               jobs_dir=tmp_path_factory.mktemp("jobs"), environ={},
                               warm_default=False, data_roots=[root])
    services = Services(settings, cache=session_cache)
    return services, ImageServices(services), root


@pytest.fixture
def unread(server, monkeypatch):
    """``server``, whose request side must not read the folder (that fails the test)."""
    services, images, root = server
    monkeypatch.setattr(images, "scan_dataset", no_reads)
    return services, images, root


def run_job(services, images, job, monkeypatch, offered=None):
    """The job's work, as its process runs it (fresh services), with its progress and
    what it offers the image picker (``offered``: a list it appends (id, props) to)."""
    reports: list = []
    offered = [] if offered is None else offered
    with monkeypatch.context() as patch:
        patch.setattr(cw, "cam_request_logic", no_reads)  # nothing of the request side
        out = cw.cam_job_logic(services, images, reports.append, job,
                               offer=lambda *args: offered.append(args))
    return out, reports


def pictures(view) -> list[str]:
    return [figure.children[0].src for figure in view.children]


def decode_png(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_an_unread_folder_is_read_by_the_job_then_the_cam_is_drawn_by_a_second_job(
        unread, monkeypatch, lite0_classifier):
    services, images, root = unread
    # 1. The request: no scan yet → a job that reads the folder; nothing read here.
    monkeypatch.setattr(cw, "channel_cam_logic", no_reads)
    status, job, title, view = cw.cam_request_logic(services, images, selection(), ANALYSED,
                                                    "unread", None, None)
    key = [MODEL, "cosine", "ward", ESPRESSO[0], "chains", "20", "", "unread", ""]
    assert status == job_status(key, PENDING, job=job) and title == "" and view == []
    assert (job["model"], job["data"], job["image"]) == (MODEL, "unread", None)
    with pytest.raises(PreventUpdate):  # asked again while it runs: no second job
        cw.cam_request_logic(services, images, selection(), ANALYSED, "unread", None, status)
    monkeypatch.undo()
    monkeypatch.setattr(images, "scan_dataset", no_reads)

    # 2. The job reads the folder, stores the scan and offers the focal class's images in
    # the picker (set_props: its first image then starts the CAM's job).
    offered: list = []
    (status, title, view), reports = run_job(services, images, job, monkeypatch, offered)
    assert status == job_status(key, READY) and title == "Pick an image" and view == []
    assert reports[0] == (5, "Reading the images of data set 'unread'…")
    assert offered == [("weights-cam-image", {
        "options": [{"label": "espresso/espresso.jpg (espresso)", "value": 0}], "value": 0})]

    # 3. The server's picker now offers the folder's images, from the stored scan.
    options, image = cw.cam_images_logic(services, images, selection(), ANALYSED, "unread",
                                         None)
    assert [o["label"] for o in options] == ["espresso/espresso.jpg (espresso)"]
    assert image == 0

    # 4. The request for image 0 starts the CAM job; the job computes it.
    monkeypatch.setattr(cw, "channel_cam_logic", no_reads)
    status, job, title, view = cw.cam_request_logic(services, images, selection(), ANALYSED,
                                                    "unread", image, status)
    assert status["state"] == PENDING and status["key"][-1] == "0" and job["image"] == 0
    monkeypatch.undo()
    monkeypatch.setattr(images, "scan_dataset", no_reads)
    (status, title, view), reports = run_job(services, images, job, monkeypatch)
    assert status == job_status(key[:-1] + ["0"], READY)
    assert "espresso" in title and "all 1280 channels" in title
    assert reports == [(50, "Computing the channel CAM (Smooth Grad-CAM++)…")]
    picture, overlay = (decode_png(uri).astype(float) for uri in pictures(view))
    assert picture.shape == overlay.shape == (224, 224, 3)

    # The job's overlay is the one the independent reference's CAM gives (the JPEG read
    # back with Pillow, all channels).
    rgb = Image.open(root / "espresso" / "espresso.jpg").convert("RGB")
    expected = smooth_gradcam_pp_channels(lite0_classifier, lite0_classifier.preprocess(rgb),
                                          ESPRESSO[1], np.arange(1280))
    crop = float(lite0_classifier.data_config.get("crop_pct") or 1.0)
    reference = decode_png(cam_overlay_uri(rgb, expected.upsampled((224, 224)), crop_pct=crop))
    assert np.abs(overlay - reference).max() <= 2  # PNG rounding of the same CAM
    assert np.abs(overlay - picture).mean() > 5  # the overlay shows a CAM at all


def test_a_node_click_starts_a_job_for_that_node(unread, monkeypatch):
    services, images, _ = unread
    monkeypatch.setattr(images, "stored_dataset", lambda model, data_id: object())
    monkeypatch.setattr(cw, "channel_cam_logic", no_reads)
    drawn = job_status([MODEL, "cosine", "ward", ESPRESSO[0], "chains", "20", "", "unread",
                        "0"], READY)
    with pytest.raises(PreventUpdate):  # the CAM on show: nothing to do
        cw.cam_request_logic(services, images, selection(), ANALYSED, "unread", 0, drawn)
    status, job, _, _ = cw.cam_request_logic(services, images, selection(snode="+-"), ANALYSED,
                                             "unread", 0, drawn)
    assert status["state"] == PENDING and status["key"][6] == "+-"
    assert job["selection"]["snode"] == "+-" and job["image"] == 0


def test_cancel_and_retry(unread):
    key = [MODEL, "cosine", "ward", ESPRESSO[0], "full", "7", "+", "unread", "3"]
    pending = job_status(key, PENDING, job=cw.cam_job(key))
    status, title, view = cw.cam_cancel_logic(1, pending)
    assert status == job_status(key, CANCELLED, "the channel CAM was cancelled")
    assert title.startswith("The channel CAM was cancelled;") and view == []
    for n_clicks, value in ((None, pending), (1, None), (1, ["forged"]), (1, status),
                            (1, {**pending, "key": 5}), (1, {**pending, "key": [{}]})):
        with pytest.raises(PreventUpdate):
            cw.cam_cancel_logic(n_clicks, value)
    # Retry of a failed job: a new request (fresh id) for the same CAM.
    failed = job_status(key, ERROR, "the background job stopped unexpectedly")
    again, job = retry_status(1, failed, cw.cam_job)
    assert again["state"] == PENDING and again["job"] == job["id"] != pending["job"]
    assert cw._job_key(job) == key
    assert job["selection"] == {"model": MODEL, "metric": "cosine", "linkage": "ward",
                                "focal": ESPRESSO[0], "split": "full", "minsize": 7,
                                "snode": "+"}


@pytest.mark.parametrize("job", [None, [], "x", {"selection": "x"},
                                 {"model": MODEL, "selection": {"model": "other"}, "data": "d"},
                                 {"model": MODEL, "selection": {"model": MODEL}, "data": 3},
                                 {"model": MODEL, "selection": {"model": MODEL}, "data": "d",
                                  "image": -1},
                                 {"model": MODEL, "selection": {"model": MODEL, "cut": "x"},
                                  "data": "d"}])
def test_a_forged_job_request_is_ignored(unread, job):
    services, images, _ = unread
    with pytest.raises(PreventUpdate):
        cw.cam_job_logic(services, images, lambda _: None, job)


def test_a_job_that_meets_a_bad_data_set_says_so_in_one_line(unread, monkeypatch):
    services, images, _ = unread
    job = cw.cam_job([MODEL, "cosine", "ward", ESPRESSO[0], "chains", "20", "", "nope", ""])
    (status, title, view), _ = run_job(services, images, job, monkeypatch)
    assert status["state"] == ERROR and view == [] and "\n" not in title
    assert title.startswith("data set 'nope' is not configured on this server")


def test_no_job_when_the_cam_cannot_be_drawn(unread, session_cache, tmp_path_factory):
    services, images, _ = unread
    for data_id, why in ((None, "Pick a data set"), ("nope", "data set 'nope' is not")):
        status, job, title, view = cw.cam_request_logic(services, images, selection(),
                                                        ANALYSED, data_id, None, None)
        assert (status, job, view) == (None, no_update, []) and title.startswith(why)
    _, job, title, _ = cw.cam_request_logic(services, images, selection(focal=None), ANALYSED,
                                            "unread", None, None)
    assert job is no_update and title.startswith("Pick a focal class")
    bare = Services(Settings.create(cache_dir=session_cache.directory,
                                    jobs_dir=tmp_path_factory.mktemp("jobs"), environ={},
                                    warm_default=False), cache=session_cache)
    _, job, title, _ = cw.cam_request_logic(bare, ImageServices(bare), selection(), ANALYSED,
                                            None, None, None)
    assert job is no_update and title == NO_CAM_DATA
