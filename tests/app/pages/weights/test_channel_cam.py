"""The weights page's Channel CAM panel without a browser: a tiny image folder written
here (scikit-image's coffee as ``espresso``, chelsea as ``tabby``), the embedded Lite0,
and the callback logic checked against ``smooth_gradcam_pp_channels`` called directly
on the image read back with Pillow and the node's channels split independently."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

import classmap.app.pages.weights.callbacks as cw
from classmap.analysis.methods.channel_cam import smooth_gradcam_pp_channels
from classmap.analysis.methods.channel_split import split_head_class
from classmap.app.config import Settings
from classmap.app.shell.services import Services
from classmap.app.shell.images import ImageServices
from classmap.app.pages.weights.services import NO_CAM_DATA, channel_cam_view

MODEL = "lite0-imagenet"
ESPRESSO = ("n07920052", 967)
READY = {"key": [MODEL, "cosine", "ward"], "state": "ready", "message": ""}


def selection(model: str = MODEL, **changes):
    base = {"model": model, "metric": "cosine", "linkage": "ward", "focal": None,
            "split": "chains", "minsize": 20, "snode": None}
    base.update(changes)
    return base


def ready(model: str) -> dict:
    return {**READY, "key": [model, "cosine", "ward"]}


def decode_png(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cam") / "photos"
    for name, picture in (("espresso", data.coffee()), ("tabby", data.chelsea())):
        (root / name).mkdir(parents=True)
        Image.fromarray(picture).save(root / name / f"{name}.jpg", quality=92)
    return root


def make_images(session_cache, tmp_path_factory, roots) -> tuple[Services, ImageServices]:
    settings = Settings.create(cache_dir=session_cache.directory,
                               jobs_dir=tmp_path_factory.mktemp("jobs"), environ={},
                               warm_default=False, data_roots=roots)
    services = Services(settings, cache=session_cache)
    return services, ImageServices(services)


@pytest.fixture(scope="module")
def configured(session_cache, tmp_path_factory, folder, lite0_classifier):
    services, images = make_images(session_cache, tmp_path_factory, [folder])
    images.scan_dataset(MODEL, "photos")  # what the image job does (never a request)
    return services, images


def test_a_folder_no_job_has_read_is_not_read_in_the_request(
        session_cache, tmp_path_factory, lite0_classifier, monkeypatch):
    """Issue 15: the panel never scans a folder in a request thread; until a background
    job has read it, it says how to get it read."""
    root = tmp_path_factory.mktemp("unread") / "unread"
    (root / "espresso").mkdir(parents=True)
    Image.fromarray(data.coffee()).save(root / "espresso" / "espresso.jpg")
    services, images = make_images(session_cache, tmp_path_factory, [root])

    def no_scan(*args, **kwargs):
        raise AssertionError("the folder was read in a request")
    monkeypatch.setattr(images, "scan_dataset", no_scan)
    sel = selection(focal=ESPRESSO[0])
    assert cw.cam_images_logic(services, images, sel, READY, "unread", None) == ([], None)
    for image in (None, 0):
        title, view = cw.channel_cam_logic(services, images, sel, READY, "unread", image)
        assert title.startswith("the images of data set 'unread' have not been read yet; ")
        assert "Samples page" in title and view == []


def test_panel_draws_the_focal_class_cam_of_an_espresso(configured, lite0_classifier, folder):
    services, images = configured
    options, data_id = cw.cam_data_logic(images, None)
    assert [o["value"] for o in options] == ["photos"] and data_id == "photos"  # no digits
    sel = selection(focal=ESPRESSO[0])
    choices, image = cw.cam_images_logic(services, images, sel, READY, data_id, None)
    assert [c["label"] for c in choices] == ["espresso/espresso.jpg (espresso)"]
    title, view = cw.channel_cam_logic(services, images, sel, READY, data_id, image)
    assert "espresso" in title and "all 1280 channels" in title
    picture, overlay = (child.children[0].src for child in view.children)
    assert decode_png(picture).shape == decode_png(overlay).shape == (224, 224, 3)

    # Independent reference: the JPEG read back with Pillow, all channels.
    rgb = Image.open(folder / "espresso" / "espresso.jpg").convert("RGB")
    expected = smooth_gradcam_pp_channels(lite0_classifier, lite0_classifier.preprocess(rgb),
                                          ESPRESSO[1], np.arange(1280))
    found = channel_cam_view(images, MODEL, data_id, image, ESPRESSO[1], np.arange(1280))
    np.testing.assert_allclose(found.cam.cam, expected.cam, rtol=1e-4, atol=1e-6)
    assert found.cam.cam.max() > 0


def test_cam_of_a_node_is_restricted_to_its_channels(configured, lite0_classifier, folder,
                                                      lite0_head):
    services, images = configured
    tree = split_head_class(lite0_head.weight, ESPRESSO[1], mode="chains", min_size=20)
    node = list(tree.label).index("+++")
    channels = tree.channels[node]
    assert 0 < channels.size < 1280
    sel = selection(focal=ESPRESSO[0], snode="+++")
    title, _ = cw.channel_cam_logic(services, images, sel, READY, "photos", 0)
    assert f"node +++ ({channels.size} channels)" in title
    rgb = Image.open(folder / "espresso" / "espresso.jpg").convert("RGB")
    x = lite0_classifier.preprocess(rgb)
    expected = smooth_gradcam_pp_channels(lite0_classifier, x, ESPRESSO[1], channels)
    found = channel_cam_view(images, MODEL, "photos", 0, ESPRESSO[1], channels)
    np.testing.assert_array_equal(found.cam.channels, channels)
    np.testing.assert_allclose(found.cam.cam, expected.cam, rtol=1e-4, atol=1e-6)
    whole = smooth_gradcam_pp_channels(lite0_classifier, x, ESPRESSO[1], np.arange(1280))
    assert not np.allclose(found.cam.cam, whole.cam, rtol=1e-3)  # the restriction matters


def test_class_without_images_offers_the_first_images(configured):
    services, images = configured
    sel = selection(focal="n01978287")  # Dungeness crab: not in the folder
    choices, image = cw.cam_images_logic(services, images, sel, READY, "photos", None)
    assert len(choices) == 2 and image == choices[0]["value"]


def test_lenet_gets_a_one_line_message(configured, lenet_digits):
    services, images = configured
    sel = selection("lenet-digits", focal="0")
    title, view = cw.channel_cam_logic(services, images, sel, ready("lenet-digits"),
                                       "photos", 0)
    assert view == [] and "fully connected" in title and "\n" not in title
    assert cw.cam_images_logic(services, images, sel, ready("lenet-digits"), "photos",
                               None) == ([], None)


def test_without_a_data_folder_the_message_says_how_to_configure_one(
        session_cache, tmp_path_factory, lite0_classifier):
    services, images = make_images(session_cache, tmp_path_factory, None)
    assert cw.cam_data_logic(images, "digits") == ([], None)
    title, view = cw.channel_cam_logic(services, images, selection(focal=ESPRESSO[0]),
                                       READY, None, None)
    assert title == NO_CAM_DATA and view == []
    assert "classmap serve --data DIR" in title and "one sub-folder per class" in title
