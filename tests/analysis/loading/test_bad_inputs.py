"""The guards behind issue 15's bad inputs, one by one (the end-to-end replay of every
case is ``tests/analysis/test_fault_injection.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading import data
from classmap.analysis.loading.checkpoints import TensorFile, real_tensors
from classmap.analysis.loading.classifier import resolve_device
from classmap.analysis.loading.classnames import check_class_names, read_classes_file
from classmap.analysis.loading.data import (
    ScanLimits,
    UnusableFile,
    load_image_folder,
    pack_folder_dataset,
    read_regular_file,
    readable_name,
    unpack_folder_dataset,
)
from classmap.analysis.methods.similarity import standardise_rows


def _png(path: Path, seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


@pytest.fixture
def two_classes(tmp_path) -> Path:
    root = tmp_path / "data"
    for label, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(2):
            _png(root / name / f"{i}.png", 10 * label + i)
    return root


# -- regular files only, bounded ----------------------------------------------------------


def test_a_fifo_swapped_in_after_the_type_check_is_caught_on_the_descriptor(
        tmp_path, monkeypatch):
    regular, fifo = tmp_path / "ok.png", tmp_path / "pipe.png"
    _png(regular, 0)
    os.mkfifo(fifo)
    real_stat = os.stat
    # The path check sees a regular file (the race); only fstat of the open file tells.
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: real_stat(regular if Path(p) == fifo
                                                                  else p, *a, **k))
    with pytest.raises(UnusableFile, match=r"not a regular file \(a FIFO\)"):
        read_regular_file(fifo)


def test_a_read_slower_than_the_limit_is_abandoned(tmp_path, monkeypatch):
    path = tmp_path / "slow.png"
    path.write_bytes(b"\0" * (3 << 20))  # three 1 MiB reads
    clock = iter(range(0, 1000, 10))  # each look at the clock: 10 s later

    class SlowClock:
        @staticmethod
        def monotonic() -> float:
            return float(next(clock))

    monkeypatch.setattr(data, "time", SlowClock)
    with pytest.raises(UnusableFile, match="reading took over 15 s"):
        read_regular_file(path, ScanLimits(max_seconds=15))
    monkeypatch.undo()
    assert len(read_regular_file(path, ScanLimits(max_seconds=15))) == 3 << 20


def test_load_image_refuses_a_file_replaced_by_a_fifo_after_the_scan(two_classes):
    dataset = load_image_folder(two_classes)
    target = two_classes / "a" / "0.png"
    target.unlink()
    os.mkfifo(target)
    with pytest.raises(ClassmapError, match="could not be read any more.*a FIFO.*run again"):
        dataset.load_image(0)


def test_second_link_to_a_folder_is_skipped_not_read_twice(two_classes):
    os.symlink("../a", two_classes / "b" / "again")
    (two_classes / "b" / "sub").mkdir()
    _png(two_classes / "b" / "sub" / "x.png", 5)
    os.symlink("sub", two_classes / "b" / "sub2")
    dataset = load_image_folder(two_classes)
    assert dataset.sample_ids == ("a/0.png", "a/1.png", "b/0.png", "b/1.png", "b/sub/x.png")
    reasons = {s.path: s.reason for s in dataset.report.unreadable}
    assert reasons == {"b/again": "link to folder a (already scanned)",
                       "b/sub2": "link to folder b/sub (already scanned)"}


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize("name, shown", [
    ("plain.png", "plain.png"),
    ("café.png", "café.png"),  # UTF-8 stays as it is
    (os.fsdecode(b"caf\xe9.png"), "caf\\xe9.png"),  # Latin-1 bytes
    ("a\tb\nc.png", "a\\x09b\\x0ac.png"),
])
def test_readable_name(name, shown):
    assert readable_name(name) == shown
    shown.encode("utf-8")


def test_a_folder_scan_survives_the_cache_round_trip_with_undecodable_names(two_classes):
    raw = os.path.join(os.fsencode(two_classes / "a"), b"\xff\xfe.png")
    _png(Path(os.fsdecode(raw)), 3)
    dataset = load_image_folder(two_classes)
    back = unpack_folder_dataset(*pack_folder_dataset(dataset))
    assert back.digest == dataset.digest and back.paths == dataset.paths
    assert back.sample_ids == dataset.sample_ids and "a/\\xff\\xfe.png" in back.sample_ids
    assert back.report == dataset.report
    np.testing.assert_array_equal(back.labels, dataset.labels)
    index = back.sample_ids.index("a/\\xff\\xfe.png")
    assert np.asarray(back.load_image(index)).shape == (6, 6, 3)


# -- class names: one rule for every source -----------------------------------------------


def test_class_name_rules():
    ids, names = check_class_names(["\ufeffn1", "n2"], ["\ufeff one ", "two"], "x", "fix")
    assert ids == ["n1", "n2"] and names == ["one", "two"]
    with pytest.raises(ClassmapError, match=r"^x: empty class id at row 1; fix$"):
        check_class_names(["n1", ""], ["a", "b"], "x", "fix")
    with pytest.raises(ClassmapError, match=r"class name 'a' appears twice \(rows 0 and 2\)"):
        check_class_names(["1", "2", "3"], ["a", "b", "a"], "x", "fix")


def test_classes_file_with_bom_and_ids(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_bytes("\ufeffn01\tcat\nn02\tdog\n".encode())
    assert read_classes_file(path) == (["n01", "n02"], ["cat", "dog"])
    path.write_bytes(b"n01\tcat\n\tdog\n")
    with pytest.raises(ClassmapError, match="empty class id at line 2"):
        read_classes_file(path)


# -- heads and devices --------------------------------------------------------------------


def test_real_tensors_densifies_sparse_and_refuses_bool_and_complex(tmp_path):
    dense = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    for sparse in (dense.to_sparse(), dense.to_sparse_csr()):
        out = real_tensors(TensorFile(tmp_path, {"w": sparse}), "--head")
        assert torch.equal(out.tensors["w"], dense)
    for bad in (dense > 3, dense.to(torch.complex64)):
        with pytest.raises(ClassmapError, match="not real numbers"):
            real_tensors(TensorFile(tmp_path, {"w": dense, "x": bad}), "--head")


def test_standardising_rows_near_float32_limit_matches_float64():
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(4, 300)).astype(np.float32)
    huge = weight / np.abs(weight).max(axis=1, keepdims=True) * np.float32(3.3e38)
    reference = (huge.astype(np.float64) - huge.mean(axis=1, dtype=np.float64, keepdims=True))
    reference /= reference.std(axis=1, ddof=1, keepdims=True)
    got = standardise_rows(huge).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, reference, atol=1e-5)
    # Ordinary rows are computed exactly as before (no rescaling): bit for bit.
    w = torch.from_numpy(weight)
    centred = w - w.mean(dim=1, keepdim=True)
    assert torch.equal(standardise_rows(weight), centred / centred.std(dim=1, keepdim=True))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    for bad, message in (("foo", "unknown --device 'foo'"), ("meta", "meta device"),
                         ("cuda:99", "cuda:99 asks for"), ("xla", "xla device")):
        with pytest.raises(ClassmapError, match=message):
            resolve_device(bad)


def test_every_skipped_file_is_named(two_classes):
    notes = [f"a/note{i:02d}.txt" for i in range(25)]  # more than any "examples" cut
    for note in notes:
        (two_classes / note).write_text("x")
    os.mkfifo(two_classes / "b" / "pipe.png")
    report = load_image_folder(two_classes).report
    assert report.non_image_files == 25 and list(report.non_image_examples) == notes
    assert [s.path for s in report.unreadable] == ["b/pipe.png"]
