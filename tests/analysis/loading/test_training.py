"""``classmap train``: determinism, the checkpoint round trip, folders, the CLI and atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from classmap.analysis import cli
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.models import ModelSpec, load_classifier, load_head
from classmap.analysis.loading.training import (
    prepare_training_data,
    save_checkpoint,
    split_held_out,
    train_model,
)


@pytest.fixture
def cli_with_train():
    """The CLI, whose COMMAND_MODULES registers ``train``."""
    assert "classmap.analysis.loading.training" in cli.COMMAND_MODULES
    return cli.main


@pytest.fixture(scope="module")
def digits_data():
    return prepare_training_data("digits")


def _small(data, count=400):
    """The first ``count`` training digits (fast), same held-out set."""
    from dataclasses import replace

    return replace(data, train_images=data.train_images[:count],
                   train_labels=data.train_labels[:count])


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as handle:
        names = list(handle.keys())
        return {k: handle.get_tensor(k) for k in names}, handle.metadata()


def test_training_is_deterministic_and_seeded(tmp_path, digits_data):
    """Same seed → identical tensors and metadata. (Not identical bytes: safetensors
    writes the metadata map in an arbitrary order.)"""
    data = _small(digits_data, 200)
    files = []
    for name in ("a", "b"):
        model = train_model(data, epochs=2, seed=5)
        files.append(_read(save_checkpoint(model, tmp_path / f"{name}.safetensors")))
    (tensors_a, meta_a), (tensors_b, meta_b) = files
    assert meta_a == meta_b and tensors_a.keys() == tensors_b.keys()
    assert all(torch.equal(tensors_a[k], tensors_b[k]) for k in tensors_a)
    other = train_model(data, epochs=2, seed=6)
    assert not torch.equal(other.network.head.weight, model.network.head.weight)


def test_checkpoint_loads_back_as_lenet5_with_names_and_same_outputs(tmp_path, digits_data):
    data = _small(digits_data, 300)
    model = train_model(data, epochs=2, seed=0)
    path = save_checkpoint(model, tmp_path / "digits.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    assert json.loads(metadata["class_names"]) == [str(i) for i in range(10)]
    assert metadata["arch"] == "lenet5" and metadata["seed"] == "0"

    spec = ModelSpec(model="lenet5", weights=str(path))
    loaded = load_classifier(spec, device="cpu")
    assert loaded.family == "lenet" and loaded.head.classes.names == tuple(map(str, range(10)))
    assert loaded.head.classes.source == "checkpoint"
    np.testing.assert_array_equal(load_head(spec).weight, model.network.head.weight.detach())
    test_images = torch.as_tensor(data.test_images)
    with torch.inference_mode():
        np.testing.assert_array_equal(loaded.network(test_images), model.network(test_images))
        accuracy = (loaded.network(test_images).argmax(1).numpy() == data.test_labels).mean()
    assert accuracy == pytest.approx(float(metadata["held_out_accuracy"]))


def test_digits_training_data_is_the_fixed_split_with_lenet_digits_normalisation(digits_data):
    from classmap.analysis.loading.lenet import load_digits_split

    split = load_digits_split(seed=0)
    np.testing.assert_array_equal(digits_data.train_images, split.train_images)
    np.testing.assert_array_equal(digits_data.test_labels, split.test_labels)
    assert digits_data.mean == (0.3,) and digits_data.std == (0.4,)
    assert digits_data.class_names == tuple(str(i) for i in range(10))


def colour_folder(root: Path, per_class: int = 12) -> Path:
    """Two planted classes: reddish and bluish noisy images of varied sizes."""
    rng = np.random.default_rng(0)
    for name, channel in (("blues", 2), ("reds", 0)):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            height, width = 24 + 4 * (index % 5), 40 + 3 * (index % 4)
            pixels = rng.integers(0, 90, size=(height, width, 3)).astype(np.uint8)
            pixels[..., channel] = rng.integers(170, 256, size=(height, width))
            Image.fromarray(pixels).save(root / name / f"{index:02d}.png")
    (root / "reds" / "notes.txt").write_text("skipped")
    return root


def test_folder_training_learns_planted_classes_and_records_normalisation(tmp_path):
    folder = colour_folder(tmp_path / "colours")
    data = prepare_training_data(str(folder))
    assert data.class_names == ("blues", "reds") and data.channels == 3
    assert len(data.test_labels) == 4 and data.report.non_image_files == 1
    model = train_model(data, epochs=15, seed=0, batch_size=8)
    assert model.held_out_accuracy == 1.0
    path = save_checkpoint(model, tmp_path / "colours.safetensors")

    loaded = load_classifier(ModelSpec(model="lenet5", weights=str(path)), device="cpu")
    assert loaded.head.classes.names == ("blues", "reds")
    # Independent check of the stored normalisation: per-channel statistics of the
    # training images, each resized to 32 × 32 with antialiasing, in [0, 1].
    train, _ = split_held_out(np.array([0] * 12 + [1] * 12), 0.2, 0)
    files = sorted(folder.glob("*/*.png"))
    pixels = np.stack([
        torch.nn.functional.interpolate(
            torch.from_numpy(np.asarray(Image.open(files[i]).convert("RGB"), np.float32) / 255)
            .permute(2, 0, 1)[None], size=(32, 32), mode="bilinear", antialias=True,
            align_corners=False)[0].numpy()
        for i in train
    ])
    np.testing.assert_allclose(loaded.data_config["mean"], pixels.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(loaded.data_config["std"], pixels.std(axis=(0, 2, 3)), rtol=1e-4)
    with torch.inference_mode():
        image = loaded.preprocess(Image.open(files[-1]))
        assert loaded.network(image[None]).argmax().item() == 1  # a red one


def test_split_is_stratified_and_small_classes_stay_in_training():
    labels = np.array([0] * 10 + [1] * 4 + [2] * 7)
    train, test = split_held_out(labels, 0.2, 0)
    assert np.bincount(labels[test], minlength=3).tolist() == [2, 0, 1]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
    again = split_held_out(labels, 0.2, 0)
    assert np.array_equal(again[1], test)


def test_cli_train_writes_a_loadable_checkpoint_quietly(tmp_path, capsys, cli_with_train):
    folder = colour_folder(tmp_path / "colours", per_class=5)
    out = tmp_path / "model.safetensors"
    code = cli_with_train(["train", "--data", str(folder), "--epochs", "2", "--seed", "1",
                           "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == "" and out.exists()
    code = cli_with_train(["train", "--data", str(folder), "--epochs", "1", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and "--force" in captured.err
    code = cli_with_train(["train", "--data", str(folder), "--epochs", "1", "--out", str(out),
                           "--force"])
    captured = capsys.readouterr()
    assert code == 0 and "held-out accuracy" in captured.err and "epoch" in captured.err
    assert load_head(ModelSpec(model="lenet5", weights=str(out))).classes.names == (
        "blues", "reds")


@pytest.mark.parametrize("extra, out_name, message", [
    ([], "model.pt", "must end in .safetensors"),
    (["--epochs", "0"], "m.safetensors", "--epochs 0 is invalid"),
    (["--data", "no-such-folder"], "m.safetensors", "does not exist"),
])
def test_cli_train_bad_input_is_one_line_and_writes_nothing(
    tmp_path, capsys, cli_with_train, extra, out_name, message
):
    argv = ["train", "--data", "digits", "--out", str(tmp_path / out_name), "--quiet", *extra]
    assert cli_with_train(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_cli_train_unknown_arch_is_a_usage_error(tmp_path, capsys, cli_with_train):
    with pytest.raises(SystemExit) as exit_info:
        cli_with_train(["train", "--data", "digits", "--arch", "resnet",
                        "--out", str(tmp_path / "m.safetensors")])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_failed_write_leaves_no_file(tmp_path, digits_data, monkeypatch):
    model = train_model(_small(digits_data, 64), epochs=1, seed=0)

    def broken(*args, **kwargs):
        Path(args[1]).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", broken)
    with pytest.raises(OSError):
        save_checkpoint(model, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_lenet5_loader_refuses_wrong_files(tmp_path):
    with pytest.raises(ClassmapError, match="needs --weights"):
        load_head(ModelSpec(model="lenet5"))
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3, 4)}, str(other))
    with pytest.raises(ClassmapError, match="not a LeNet-5 checkpoint"):
        load_head(ModelSpec(model="lenet5", weights=str(other)))
    from classmap.analysis.loading.lenet import LeNet5

    state = {k: v.contiguous() for k, v in LeNet5(in_channels=3, num_classes=4).state_dict().items()}
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata={"input_mean": json.dumps([0.5])})
    with pytest.raises(ClassmapError, match="input_mean"):
        load_classifier(ModelSpec(model="lenet5", weights=str(bad)), device="cpu")
    state.pop("head.bias")
    save_file(state, str(bad))
    with pytest.raises(ClassmapError, match="1 missing keys"):
        load_head(ModelSpec(model="lenet5", weights=str(bad)))
