"""Every model source, loaded from real files the tests write (no network)."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from classmap.analysis.loading.classnames import resolve_class_names
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.models import (
    ModelSpec,
    extract_head,
    load_classifier,
    load_head,
)
from classmap.analysis.pipelines.weights import WeightParams, analyse_weights

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _top1(classifier, image: np.ndarray) -> tuple[int, float]:
    x = classifier.preprocess(Image.fromarray(image).convert("RGB")).unsqueeze(0)
    with torch.inference_mode():
        probabilities = classifier.network(x).softmax(-1)[0]
    return int(probabilities.argmax()), float(probabilities.max())


def test_embedded_default_reproduces_real_imagenet_predictions(lite0_classifier):
    """The checkpoint mapped on tf_efficientnet_lite0 with its own preprocessing
    recognises scikit-image's photos: espresso for the coffee, a cat for the cat."""
    from skimage import data

    names = lite0_classifier.head.classes.names
    index, confidence = _top1(lite0_classifier, data.coffee())
    assert names[index] == "espresso" and confidence > 0.9
    index, _ = _top1(lite0_classifier, data.chelsea())
    assert index in CAT_CLASSES


def test_embedded_default_with_the_wrong_preprocessing_is_worse(lite0_classifier):
    """Why tf_efficientnet_lite0: ImageNet mean/std (efficientnet_lite0's) lowers the
    espresso confidence — the TF-ported weights expect inputs in [-1, 1]."""
    from skimage import data

    image = Image.fromarray(data.coffee()).convert("RGB")
    config = dict(lite0_classifier.data_config, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    wrong = timm.data.create_transform(**config)
    with torch.inference_mode():
        right_p = lite0_classifier.network(lite0_classifier.preprocess(image)[None]).softmax(-1)
        wrong_p = lite0_classifier.network(wrong(image)[None]).softmax(-1)
    espresso = lite0_classifier.head.classes.names.index("espresso")
    assert right_p[0, espresso] > wrong_p[0, espresso]


def test_embedded_head_is_the_network_head(lite0_head, lite0_classifier):
    assert lite0_head.weight.shape == (1000, 1280)
    np.testing.assert_array_equal(lite0_head.weight, lite0_classifier.head.weight)
    assert lite0_head.classes.ids[118] == "n01978287"
    assert lite0_head.classes.names[118].startswith("Dungeness crab")


def test_seed_000_finding_dungeness_crab_neighbours(lite0_head):
    """Nearest classes of Dungeness crab: crabs first, then lobsters (METHODS.md §1)."""
    result = analyse_weights(lite0_head, WeightParams(top_k=5), device="cpu")
    names = [lite0_head.classes.names[i].split(",")[0] for i in result.neighbours.index[118]]
    assert names[:3] == ["king crab", "rock crab", "American lobster"]
    assert set(names[3:]) == {"fiddler crab", "crayfish"}
    np.testing.assert_allclose(result.neighbours.score[118, :2], [0.39, 0.30], atol=0.01)


def test_lenet_digits_reaches_95_percent_held_out(lenet_digits):
    assert lenet_digits.head.weight.shape == (10, 84)
    accuracy = float(lenet_digits.head.source.split("accuracy ")[1].rstrip(")"))
    assert accuracy >= 0.95
    from classmap.analysis.loading.lenet import load_digits_split

    split = load_digits_split()
    with torch.inference_mode():
        predictions = lenet_digits.network(torch.as_tensor(split.test_images)).argmax(1).numpy()
    assert (predictions == split.test_labels).mean() >= 0.95


def test_lenet_digits_training_is_deterministic():
    from classmap.analysis.loading.lenet import load_digits_split, train_lenet

    split = load_digits_split()
    small = slice(0, 300)
    runs = [
        train_lenet(split.train_images[small], split.train_labels[small],
                    split.test_images, split.test_labels, 10, epochs=2, seed=3)
        for _ in range(2)
    ]
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.fixture(scope="module")
def tiny_timm():
    torch.manual_seed(0)
    return timm.create_model("resnet10t", pretrained=False, num_classes=7).eval()


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_timm_checkpoint_loads_with_its_head(tmp_path, tiny_timm, suffix):
    path = tmp_path / f"model{suffix}"
    state = {k: v.contiguous() for k, v in tiny_timm.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state, "epoch": 3}, path)
    spec = ModelSpec(model="resnet10t", weights=str(path))
    head = load_head(spec)
    np.testing.assert_array_equal(head.weight, tiny_timm.fc.weight.detach().numpy())
    assert head.classes.names == tuple(f"class_{i}" for i in range(7))
    loaded = load_classifier(spec, device="cpu")
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.network(x), tiny_timm(x))


def test_checkpoint_for_another_architecture_is_refused(tmp_path, tiny_timm):
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_timm.state_dict().items()}, str(path))
    with pytest.raises(ClassmapError, match="does not match timm's mobilenetv3_small_050"):
        load_head(ModelSpec(model="mobilenetv3_small_050", weights=str(path)))


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(3, 4), "callback": Image.new}, path)
    with pytest.raises(ClassmapError, match="pickled code"):
        load_head(ModelSpec(head=str(path)))


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".safetensors"])
def test_bare_head_files_with_bias(tmp_path, suffix):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(6, 9)).astype(np.float32)
    bias = rng.normal(size=6).astype(np.float32)
    path = tmp_path / f"head{suffix}"
    if suffix == ".npy":
        np.save(path, weight)
        bias = None
    elif suffix == ".pt":
        torch.save({"weight": torch.from_numpy(weight), "bias": torch.from_numpy(bias)}, path)
    else:
        save_file({"weight": torch.from_numpy(weight), "bias": torch.from_numpy(bias)}, str(path))
    head = load_head(ModelSpec(head=str(path)))
    np.testing.assert_array_equal(head.weight, weight)
    if bias is not None:
        np.testing.assert_array_equal(head.bias, bias)


def test_classes_file_names_the_rows(tmp_path):
    np.save(tmp_path / "head.npy", np.random.default_rng(1).normal(size=(3, 5)))
    (tmp_path / "classes.txt").write_text("n001\tcat\nn002\tdog\nn003\tcow\n")
    head = load_head(ModelSpec(head=str(tmp_path / "head.npy"), classes=str(tmp_path / "classes.txt")))
    assert head.classes.ids == ("n001", "n002", "n003")
    assert head.classes.names == ("cat", "dog", "cow")


class ConvHeadNet(nn.Module):
    """A network whose classifier is a 1×1 convolution (SqueezeNet style)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 8, 3)
        self.classifier = nn.Sequential(nn.Dropout(), nn.Conv2d(8, 5, kernel_size=1))


def test_one_by_one_conv_head_is_a_matrix():
    network = ConvHeadNet()
    weight, bias = extract_head(network)
    assert weight.shape == (5, 8)
    np.testing.assert_array_equal(weight, network.classifier[1].weight[:, :, 0, 0].detach().numpy())


def test_distilled_tuple_head_uses_the_class_token_head():
    network = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, num_classes=4)
    weight, _ = extract_head(network)
    np.testing.assert_array_equal(weight, network.head.weight.detach().numpy())


def test_identity_head_is_a_clear_error():
    network = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    with pytest.raises(ClassmapError, match="no classifier head"):
        extract_head(network)


def test_imagenet_names_by_class_count():
    assert resolve_class_names(1000).source == "imagenet-1k"
    names21k = resolve_class_names(21843)
    assert names21k.source == "imagenet-21k-goog" and len(names21k.names) == 21843
    assert resolve_class_names(12).names[11] == "class_11"


def _forbid_network(monkeypatch) -> None:
    """No weights in the local hub cache; any connection or download fails the test."""
    from classmap.analysis.loading.sources import timm_hub

    def no_network(*args, **kwargs):
        raise AssertionError("the offline path tried the network")

    monkeypatch.setattr(timm_hub, "_cached_hub_file", lambda name: None)
    monkeypatch.setattr(timm_hub.socket, "create_connection", no_network)
    monkeypatch.setattr(timm, "create_model", no_network)


def test_hf_hub_offline_gives_a_one_line_fix_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _forbid_network(monkeypatch)
    with pytest.raises(ClassmapError, match="not reachable.*--weights FILE") as caught:
        load_head(ModelSpec(model="resnet50.a1_in1k"))
    assert "\n" not in str(caught.value)


def test_unreachable_hub_is_probed_once_and_never_downloads(monkeypatch):
    from classmap.analysis.loading.sources import timm_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    _forbid_network(monkeypatch)
    probes = []

    def refused(address, timeout):
        probes.append((address, timeout))
        raise OSError("network unreachable")

    monkeypatch.setattr(timm_hub.socket, "create_connection", refused)
    with pytest.raises(ClassmapError, match="not reachable.*--weights FILE"):
        load_head(ModelSpec(model="resnet50.a1_in1k"))
    assert probes == [(("huggingface.co", 443), timm_hub.HUB_PROBE_SECONDS)]


def test_unknown_model_suggests_close_names():
    # The error lists Classmap's own sources, then timm's closest names.
    pattern = "unknown model 'resnet5O'.*lite0-imagenet, lenet-digits.*did you mean"
    with pytest.raises(ClassmapError, match=pattern):
        load_head(ModelSpec(model="resnet5O"))
