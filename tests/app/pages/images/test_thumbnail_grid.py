"""The Samples page's thumbnail grid data (issue 14) as a plain function, on lenet-digits +
digits: every image once, grouped by its true class (reference: the labels themselves),
the focal class first, URLs made of ids and the index only."""

from __future__ import annotations

import numpy as np
import pytest

from classmap.app.pages.images import callbacks as cb
from classmap.app.shell.images import ImageServices

MODEL, DATA = "lenet-digits", "digits"
READY = {"key": [MODEL, DATA], "state": "ready", "message": ""}


def urls(model, data):
    return f"/t?m={model}&d={data}&kind=image&index=", f"/t?m={model}&d={data}&kind=cam&index="


@pytest.fixture(scope="module")
def images(services, lenet_digits):
    found = ImageServices(services)
    found.result(MODEL, DATA)
    return found


def test_grid_holds_every_image_once_by_true_class(images):
    labels = images.result(MODEL, DATA).representations.labels
    data, note = cb.grid_logic(images, {"model": MODEL, "data": DATA}, READY, urls)
    assert note.startswith("360 of 360 images of 10 classes")
    tiles = [tile for group in data["groups"] for tile in group["tiles"]]
    assert sorted(tile[0] for tile in tiles) == list(range(360))
    for group in data["groups"]:
        indices = [tile[0] for tile in group["tiles"]]
        assert len(set(labels[indices].tolist())) == 1  # one true class per group
        assert group["note"] == f"{len(indices)} images"
    assert data["image"].endswith("kind=image&index=") and data["cam"].endswith("kind=cam&index=")
    assert data["selected"] is None


def test_focal_class_comes_first_and_the_selected_image_is_named(images, monkeypatch):
    labels = images.result(MODEL, DATA).representations.labels
    ids = images.services.head(MODEL).classes.ids
    selection = {"model": MODEL, "data": DATA, "focal": ids[7], "image": 12}
    data, _ = cb.grid_logic(images, selection, READY, urls)
    first = data["groups"][0]
    assert first["focal"] and not any(g["focal"] for g in data["groups"][1:])
    assert [t[0] for t in first["tiles"]] == np.flatnonzero(labels == 7).tolist()
    assert all(t[1] == ids[7] for t in first["tiles"])
    assert data["selected"] == 12
    assert sum(len(g["tiles"]) for g in data["groups"]) == 360  # the budget fits them all
    # With a cap below the class sizes, each class shows its first images and says so.
    monkeypatch.setattr(cb, "GRID_TILES", 50)
    monkeypatch.setattr(cb, "GRID_FOCAL", 20)
    data, note = cb.grid_logic(images, selection, READY, urls)
    assert [len(g["tiles"]) for g in data["groups"]] == [20] + [3] * 9
    assert "of" in data["groups"][0]["note"] and "pick a class" in note


def test_grid_waits_for_the_analysis(images):
    data, note = cb.grid_logic(images, {"model": MODEL, "data": DATA},
                               {"key": [MODEL, DATA], "state": "pending"}, urls)
    assert data is None and "progress above" in note
