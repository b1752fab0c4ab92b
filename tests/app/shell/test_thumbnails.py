"""The thumbnail route (issue 14, "images where people would rather look than read"):
small PNGs named by (model, data set, index, kind), cached (ETag + max-age, 304), hostile
queries answered 4xx in one line without a path, and behind the login like every route.

References: the held-out digits from scikit-learn itself (enlarged by np.kron), the
Grad-CAM maps of the cached representations, hand-made pictures."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from classmap.app.config import Settings
from classmap.app.hosting.config import add_user, load_config
from classmap.app.server import create_app
from classmap.app.shell import thumbnails as th
from classmap.app.shell.images import image_services_for
from classmap.app.shell.services import Services

MODEL, DATA = "lenet-digits", "digits"
URL = "/_classmap/thumbnail"


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def app(session_cache, lenet_digits, tmp_path_factory):
    settings = Settings.create(cache_dir=session_cache.directory,
                               jobs_dir=tmp_path_factory.mktemp("thumb-jobs"), environ={},
                               warm_default=False)
    return create_app(settings, Services(settings, cache=session_cache))


@pytest.fixture(scope="module")
def client(app):
    return app.server.test_client()


def heldout_digits() -> np.ndarray:
    """The digits data set's pictures in its row order, from scikit-learn: [360, 8, 8]."""
    from sklearn.datasets import load_digits

    from classmap.analysis.loading.lenet import DIGITS_SEED, load_digits_split

    rows = np.sort(load_digits_split(DIGITS_SEED).test_indices)
    return load_digits().images[rows] / 16.0


# -- rendering ---------------------------------------------------------------------------


def test_small_pictures_are_enlarged_pixel_for_pixel():
    rng = np.random.default_rng(3)
    grey = rng.random((8, 8)).astype(np.float32)
    thumb = np.asarray(th.image_thumbnail(Image.fromarray(grey, mode="F"), (32, 32)))
    assert thumb.shape == (64, 64, 3)
    expected = np.kron(np.round(grey * 255), np.ones((8, 8)))  # nearest neighbours, by hand
    np.testing.assert_array_equal(thumb[..., 0], expected)


def test_large_pictures_are_framed_like_the_input_and_shrunk():
    # A 200 × 100 (W × H) picture on a square grid: covered, then centre-cropped: the left
    # and right quarters (red) are cut, the middle (blue) fills the thumbnail.
    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[:, :50] = pixels[:, 150:] = (255, 0, 0)
    pixels[:, 50:150] = (0, 0, 255)
    thumb = np.asarray(th.image_thumbnail(Image.fromarray(pixels), (224, 224)))
    assert thumb.shape == (64, 64, 3)
    assert (thumb[4:-4, 4:-4, 2] > 240).all() and (thumb[4:-4, 4:-4, 0] < 15).all()
    assert th.thumb_size((224, 112), 64) == (32, 64)


def test_cam_thumbnail_blends_inferno_over_grey():
    grey = Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32), mode="F")
    cold = np.asarray(th.cam_thumbnail(grey, np.zeros((32, 32)), alpha=0.5))
    hot = np.asarray(th.cam_thumbnail(grey, np.ones((32, 32)), alpha=0.5))
    # inferno's ends are (0, 0, 4) and (252, 255, 164); grey 0.5 is 128 (by hand).
    np.testing.assert_allclose(cold[0, 0], [64, 64, 66], atol=1)
    np.testing.assert_allclose(hot[0, 0], [190, 191.5, 146], atol=1)


# -- the route ---------------------------------------------------------------------------


def test_thumbnail_is_the_digit_small_and_cached(client):
    response = client.get(f"{URL}?model={MODEL}&data={DATA}&index=5&kind=image")
    assert response.status_code == 200 and response.mimetype == "image/png"
    pixels = decode(response.data)
    assert max(pixels.shape[:2]) <= 96 and pixels.shape[:2] == (64, 64)
    assert len(response.data) < 5000
    expected = np.kron(np.round(heldout_digits()[5] * 255), np.ones((8, 8)))
    np.testing.assert_array_equal(pixels[..., 0], expected)
    assert "max-age" in response.headers["Cache-Control"]
    assert "private" in response.headers["Cache-Control"]
    tag = response.headers["ETag"]
    again = client.get(f"{URL}?model={MODEL}&data={DATA}&index=5", headers={"If-None-Match": tag})
    assert again.status_code == 304 and not again.data
    other = client.get(f"{URL}?model={MODEL}&data={DATA}&index=6")
    assert other.headers["ETag"] != tag


def test_rendered_once_then_served_from_memory(app, monkeypatch):
    thumbs = app._classmap_services.owned("thumbnails", lambda: None)
    request = th.ThumbnailRequest(MODEL, DATA, 7, "image")
    first = thumbs.render(request)
    monkeypatch.setattr(th, "image_thumbnail", lambda *a, **k: pytest.fail("rendered again"))
    assert thumbs.render(request) is first


@pytest.mark.parametrize("query, status", [
    ("model=lenet-digits&data=digits&index=360", 404),
    ("model=lenet-digits&data=digits&index=99999999", 404),
    ("model=lenet-digits&data=digits&index=9999999999999", 400),
    ("model=lenet-digits&data=digits&index=-1", 400),
    ("model=lenet-digits&data=digits&index=1e3", 400),
    ("model=lenet-digits&data=digits&index=0x10", 400),
    ("model=lenet-digits&data=digits&index=", 400),
    ("model=lenet-digits&data=digits", 400),
    ("model=lenet-digits&data=digits&index=1&kind=../../etc/passwd", 400),
    ("model=lenet-digits&data=/etc/passwd&index=1", 404),
    ("model=lenet-digits&data=../digits&index=1", 404),
    ("model=/root/model.pt&data=digits&index=1", 404),
    ("model=lite0-imagenet&data=digits&index=1", 404),
])
def test_hostile_queries_are_refused_in_one_line_without_a_path(client, session_cache, query,
                                                                 status):
    response = client.get(f"{URL}?{query}")
    assert response.status_code == status, response.data
    text = response.data.decode()
    assert text.count("\n") == 1 and "; " in text  # the problem; the fix
    assert "/" not in text and str(session_cache.directory) not in text
    assert response.headers["Cache-Control"] == "no-store"


def test_cam_thumbnail_follows_the_cached_grad_cam(app, client):
    images = image_services_for(app._classmap_services)
    reps = images.result(MODEL, DATA).representations  # computes or finds the analysis
    response = client.get(f"{URL}?model={MODEL}&data={DATA}&index=11&kind=cam")
    assert response.status_code == 200 and response.mimetype == "image/png"
    overlay = decode(response.data).astype(np.float64)
    assert overlay.shape == (64, 64, 3)
    plain = decode(client.get(f"{URL}?model={MODEL}&data={DATA}&index=11").data)
    assert not np.array_equal(plain, overlay)
    # Where the map is high the overlay is brighter in red than the grey alone could make it:
    # the red channel minus half the grey follows the map (inferno's red rises with it).
    cam = np.asarray(Image.fromarray(np.asarray(reps.cams[11], dtype=np.float32), mode="F")
                     .resize((64, 64), Image.Resampling.BILINEAR))
    grid = tuple(int(v) for v in reps.cams.shape[1:])[::-1]
    grey = np.asarray(Image.fromarray(np.round(heldout_digits()[11] * 255).astype(np.uint8))
                      .resize(grid, Image.Resampling.BILINEAR)
                      .resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float64)
    colour_red = 2 * overlay[..., 0] - grey
    assert spearmanr(colour_red.ravel(), cam.ravel()).statistic > 0.9


def test_an_image_folder_not_read_yet_is_409_without_its_path(session_cache, lenet_digits,
                                                              tmp_path):
    folder = tmp_path / "secret-folder-name"
    for digit in ("0", "1"):
        (folder / digit).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(folder / digit / "a.png")
    settings = Settings.create(cache_dir=session_cache.directory, jobs_dir=tmp_path / "jobs",
                               environ={}, warm_default=False, data_roots=[folder])
    client = create_app(settings, Services(settings, cache=session_cache)).server.test_client()
    response = client.get(f"{URL}?model={MODEL}&data=secret-folder-name&index=0")
    assert response.status_code == 409
    assert str(tmp_path) not in response.data.decode() and "Samples page" in response.data.decode()


def test_unauthenticated_requests_get_401_when_users_are_configured(session_cache,
                                                                    lenet_digits, tmp_path):
    add_user(tmp_path / "c.toml", "alice", "alice-secret-1", "viewer")
    settings = Settings.create(cache_dir=session_cache.directory, jobs_dir=tmp_path / "jobs",
                               environ={}, warm_default=False,
                               hosting=load_config(tmp_path / "c.toml"))
    client = create_app(settings, Services(settings, cache=session_cache)).server.test_client()
    query = f"{URL}?model={MODEL}&data={DATA}&index=5"
    response = client.get(query)
    assert response.status_code == 401 and response.mimetype == "text/plain"
    assert not response.data.startswith(b"\x89PNG")
    wrong = base64.b64encode(b"alice:wrong-password").decode()
    assert client.get(query, headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    right = base64.b64encode(b"alice:alice-secret-1").decode()
    ok = client.get(query, headers={"Authorization": f"Basic {right}"})
    assert ok.status_code == 200 and ok.data.startswith(b"\x89PNG")


def test_browser_urls_carry_ids_and_the_prefix_never_a_path(app):
    with app.server.test_request_context():
        url = th.thumbnail_url(app, MODEL, DATA, "cam")
    assert url == f"{URL}?model={MODEL}&data={DATA}&kind=cam&index="
    assert Path(url).name.startswith("thumbnail")
