"""The Classes page's thumbnail strips (issue 14) as a plain function: the focal class and
its nearest classes (reference: the analysis's neighbour table), the selection's classes,
each with its first images (reference: the data set's labels); none for a model without
images."""

from __future__ import annotations

import numpy as np
import pytest

from classmap.app.pages.classes import thumbnails as strips
from classmap.app.shell.images import image_services_for

MODEL = "lenet-digits"


def url(model, data):
    return f"/t?m={model}&d={data}&kind=image&index="


@pytest.fixture(scope="module")
def view(services, lenet_digits):
    return services.view((MODEL, "cosine", "ward"))


def test_strips_of_the_focal_class_its_neighbours_and_the_selection(services, view):
    images = image_services_for(services)
    status = {"key": [MODEL, "cosine", "ward"], "state": "ready", "message": ""}
    root = 2 * view.num_classes - 2
    selection = {"model": MODEL, "metric": "cosine", "linkage": "ward", "focal": view.ids[3],
                 "k": 4, "node": root}
    near, chosen = strips.strips_logic(services, images, selection, status, url)
    hood = view.analysis.neighbours.index[3, :4].tolist()
    assert [row["label"] for row in near["rows"]] == (
        [view.short_names[3] + " (focal)"] + [view.short_names[i] for i in hood])
    labels = images.stored_dataset(MODEL, "digits").labels
    for row, c in zip(near["rows"], [3] + hood):
        assert [t[0] for t in row["tiles"]] == np.flatnonzero(labels == c)[:6].tolist()
        assert all(t[1] == view.ids[c] for t in row["tiles"])
    assert len(chosen["rows"]) == 10 and near["image"] == url(MODEL, "digits")


def test_no_strips_without_images(services, view):
    images = image_services_for(services)
    assert strips.strip_data_id(images, "lite0-imagenet", "digits") is None  # no folder here
    assert strips.strip_data_id(images, "small", "digits") is None  # a bare head
    assert strips.strip_data_id(images, MODEL, None) == "digits"
