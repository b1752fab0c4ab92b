"""Image folders with every kind of bad input, the digits default, and allowed data roots."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classmap.analysis.loading.classnames import ClassNames
from classmap.analysis.loading.data import (
    DIGITS,
    load_dataset,
    load_digits_dataset,
    match_class_folders,
    open_image,
    resolve_data_root,
)
from classmap.analysis.errors import ClassmapError

CLASSES = ClassNames(
    ids=("n001", "n002", "n003", "n004", "n005"),
    names=("red square", "green disc", "Blue Thing, azure thing", "empty one", "unused"),
    source="test",
)


def _rgb(seed: int, size=(20, 16)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)


def write_mixed_folder(root: Path) -> Path:
    """Folders matched by loose name, id, synonym; PNG, JPEG, grey, RGBA, 16-bit, palette,
    a truncated JPEG, non-image files, an empty class folder, a single-image class."""
    red = root / "red_square"
    red.mkdir(parents=True)
    Image.fromarray(_rgb(0)).save(red / "a.png")
    Image.fromarray(_rgb(1)).save(red / "b.jpg", quality=90)
    Image.fromarray(_rgb(2)[..., 0]).save(red / "c_grey.png")
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)   # opaque red
    rgba[0, 1] = (0, 0, 255, 0)     # fully transparent blue → white
    rgba[0, 2] = (0, 0, 0, 128)     # half-transparent black → grey
    Image.fromarray(rgba, mode="RGBA").save(red / "d_rgba.png")
    sixteen = np.array([[0, 65535], [32896, 1000]], dtype=np.uint16)
    Image.fromarray(sixteen).save(red / "e_16bit.png")
    good_jpeg = io.BytesIO()
    Image.fromarray(_rgb(3, (64, 64))).save(good_jpeg, format="JPEG")
    (red / "f_truncated.jpg").write_bytes(good_jpeg.getvalue()[: len(good_jpeg.getvalue()) // 2])
    (red / "notes.txt").write_text("not an image")
    (red / ".DS_Store").write_bytes(b"\0\1")
    nested = red / "more"
    nested.mkdir()
    Image.fromarray(_rgb(4)).save(nested / "g.bmp")

    green = root / "n002"
    green.mkdir()
    Image.fromarray(_rgb(5)).convert("P").save(green / "p_palette.png")
    Image.fromarray(_rgb(6)).save(green / "q.webp")
    (green / "fake.png").write_text("a text file with an image name")

    blue = root / "azure_thing"
    blue.mkdir()
    Image.fromarray(_rgb(7)).save(blue / "only.tif")
    (root / "empty one").mkdir()
    (root / "README.txt").write_text("loose file")
    return root


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    return write_mixed_folder(tmp_path / "data")


def test_mixed_folder_is_read_converted_and_reported(mixed_folder):
    dataset = load_dataset(mixed_folder, CLASSES)
    report = dataset.report
    assert dataset.sample_ids == (
        "azure_thing/only.tif", "n002/p_palette.png", "n002/q.webp",
        "red_square/a.png", "red_square/b.jpg", "red_square/c_grey.png",
        "red_square/d_rgba.png", "red_square/e_16bit.png", "red_square/more/g.bmp",
    )
    assert dataset.labels.tolist() == [2, 1, 1, 0, 0, 0, 0, 0, 0]
    assert dataset.class_names == CLASSES.names
    assert dataset.present_classes.tolist() == [0, 1, 2]
    assert report.num_images == 9
    assert report.non_image_files == 3  # notes.txt, .DS_Store, README.txt
    assert {s.path for s in report.unreadable} == {"red_square/f_truncated.jpg", "n002/fake.png"}
    assert all(s.reason for s in report.unreadable)
    assert dict(report.conversions) == {
        "grayscale → RGB": 1, "alpha → RGB": 1, "16-bit → RGB": 1, "palette → RGB": 1,
    }
    assert report.empty_classes == ("empty one",)
    assert report.single_image_classes == ("azure_thing",)
    assert dict(report.class_counts) == {"red square": 6, "green disc": 2,
                                         "Blue Thing, azure thing": 1}
    summary = report.summary()
    assert "f_truncated.jpg" in summary and "empty classes: empty one" in summary
    assert report.to_json()["unreadable"][0]["path"]
    for index in range(len(dataset)):
        image = dataset.load_image(index)
        assert image.mode == "RGB" and image.size[0] > 0


def test_conversions_have_the_documented_pixel_values(mixed_folder):
    rgba = np.asarray(open_image(mixed_folder / "red_square" / "d_rgba.png", "RGB"))
    assert rgba[0, 0].tolist() == [255, 0, 0]
    assert rgba[0, 1].tolist() == [255, 255, 255]  # transparent → white background
    assert abs(int(rgba[0, 2, 0]) - 127) <= 1       # half black over white
    sixteen = np.asarray(open_image(mixed_folder / "red_square" / "e_16bit.png", "L"))
    expected = np.round(np.array([[0, 65535], [32896, 1000]]) * 255 / 65535)
    assert sixteen.tolist() == expected.tolist()
    # Pillow's own conversion clips instead of scaling: why the explicit path exists.
    with Image.open(mixed_folder / "red_square" / "e_16bit.png") as raw:
        assert np.asarray(raw.convert("L"))[1, 0] == 255
    grey = open_image(mixed_folder / "red_square" / "a.png", "L")
    assert grey.mode == "L"


def test_digest_follows_content_not_file_times(mixed_folder):
    first = load_dataset(mixed_folder, CLASSES).digest
    os.utime(mixed_folder / "red_square" / "a.png", (1, 1))
    assert load_dataset(mixed_folder, CLASSES).digest == first
    Image.fromarray(_rgb(99)).save(mixed_folder / "red_square" / "a.png")
    changed = load_dataset(mixed_folder, CLASSES).digest
    assert changed != first
    Image.fromarray(_rgb(100)).save(mixed_folder / "n002" / "new.png")
    assert load_dataset(mixed_folder, CLASSES).digest not in (first, changed)
    assert load_dataset(mixed_folder, CLASSES, channels=1).digest != load_dataset(
        mixed_folder, CLASSES).digest


def test_without_a_model_the_folders_with_images_are_the_classes(mixed_folder):
    dataset = load_dataset(mixed_folder, None)
    assert dataset.class_names == ("azure_thing", "n002", "red_square")
    assert dataset.labels.tolist() == [0, 1, 1, 2, 2, 2, 2, 2, 2]
    assert dataset.report.empty_classes == ("empty one",)


def test_unmatched_ambiguous_and_duplicate_folders_are_errors(tmp_path):
    for name in ("red_square", "strange", "stranger"):
        (tmp_path / name).mkdir()
    with pytest.raises(ClassmapError, match="2 class folder.*strange, stranger"):
        load_dataset(tmp_path, CLASSES)
    twins = ClassNames(("a1", "a2", "b"), ("crane", "crane", "bird"), "test")
    with pytest.raises(ClassmapError, match="crane .*a1, a2.*class id"):
        match_class_folders(["crane"], twins)
    assert match_class_folders(["a2", "bird"], twins) == {"a2": 1, "bird": 2}
    with pytest.raises(ClassmapError, match="both match class 'red square'"):
        match_class_folders(["red_square", "n001"], CLASSES)


@pytest.mark.parametrize("case", ["missing", "file", "no-classes", "no-images", "one-class"])
def test_unusable_folders_are_one_line_errors(tmp_path, case):
    root = tmp_path / "data"
    if case == "file":
        root.write_text("x")
    elif case != "missing":
        root.mkdir()
    if case == "no-images":
        (root / "red_square").mkdir()
        (root / "red_square" / "x.txt").write_text("x")
    if case == "one-class":
        (root / "red_square").mkdir()
        Image.fromarray(_rgb(0)).save(root / "red_square" / "a.png")
        (root / "n002").mkdir()
    messages = {"missing": "does not exist", "file": "is a file", "no-classes": "no class sub",
                "no-images": "no readable image", "one-class": "at least 2 classes"}
    with pytest.raises(ClassmapError, match=messages[case]) as error:
        load_dataset(root, CLASSES)
    assert "\n" not in str(error.value) and ";" in str(error.value)


def test_allowed_roots_resolve_links_and_dot_dot(tmp_path):
    allowed = tmp_path / "allowed"
    data = write_mixed_folder(allowed / "set")
    outside = write_mixed_folder(tmp_path / "outside")
    assert resolve_data_root(allowed / "set", [allowed]) == data.resolve()
    assert resolve_data_root(allowed, [allowed]) == allowed.resolve()
    with pytest.raises(ClassmapError, match="outside the folders"):
        resolve_data_root(allowed / "set" / ".." / ".." / "outside", [allowed])
    (allowed / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ClassmapError, match="outside the folders"):
        resolve_data_root(allowed / "link", [allowed])
    # Outside and missing: same answer as outside and present (no existence probe).
    with pytest.raises(ClassmapError, match="outside the folders"):
        resolve_data_root(tmp_path / "nowhere", [allowed])
    with pytest.raises(ClassmapError, match="does not exist"):
        resolve_data_root(allowed / "nowhere", [allowed])
    with pytest.raises(ClassmapError, match="no data folders configured"):
        resolve_data_root(data, [])
    with pytest.raises(ClassmapError, match="not a valid path"):
        resolve_data_root(str(allowed / "a\0b"), [allowed])
    with pytest.raises(ClassmapError, match="outside the folders"):
        load_dataset(outside, CLASSES, allowed_roots=[allowed])


def test_links_inside_a_root_that_lead_outside_are_skipped(tmp_path):
    allowed = tmp_path / "allowed"
    data = write_mixed_folder(allowed / "set")
    secret = tmp_path / "secret.png"
    Image.fromarray(_rgb(11)).save(secret)
    (data / "n002" / "leak.png").symlink_to(secret)
    served = load_dataset(data, CLASSES, allowed_roots=[allowed])
    assert "n002/leak.png" not in served.sample_ids
    assert served.report.links_outside == ("n002/leak.png",)
    local = load_dataset(data, CLASSES)  # the CLI (no roots) follows the user's links
    assert "n002/leak.png" in local.sample_ids


def test_digits_are_the_held_out_split_exactly_as_lenet_sees_it():
    from sklearn.datasets import load_digits

    from classmap.analysis.loading.lenet import load_digits_split, prepare_grey_images
    from classmap.analysis.loading.lenet import LeNetPreprocess

    digits_names = ClassNames(tuple(str(i) for i in range(10)), tuple(str(i) for i in range(10)),
                              "test")
    dataset = load_dataset(DIGITS, digits_names, channels=1)
    rows = np.array([int(s.split(":")[1]) for s in dataset.sample_ids])
    assert len(dataset) == 360 and np.all(np.diff(rows) > 0)
    assert set(rows) == set(load_digits_split().test_indices.tolist())
    raw = load_digits()
    assert dataset.labels.tolist() == raw.target[rows].tolist()
    preprocess = LeNetPreprocess(1, (0.3,), (0.4,))
    for index in (0, 17, 359):
        image = dataset.load_image(index)
        assert image.mode == "F"
        expected = prepare_grey_images(raw.images[rows[index]][None] / 16.0)[0]
        assert np.array_equal(preprocess(image).numpy(), expected)
    assert dataset.digest == load_digits_dataset(digits_names, channels=1).digest
    assert dataset.load_image(0).mode == "F"
    rgb = load_dataset(DIGITS, digits_names, channels=3).load_image(0)
    assert rgb.mode == "RGB" and rgb.size == (8, 8)


def test_digits_with_a_model_without_digit_classes_says_which_model_to_use():
    with pytest.raises(ClassmapError, match="use --model lenet-digits"):
        load_dataset(DIGITS, CLASSES)
