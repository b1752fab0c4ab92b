"""Batched features / gradients / Grad-CAM against per-image autograd and the grad-cam package.

The ``grad-cam`` package (pytorch_grad_cam 1.5.7) is the independent reference. Its
conventions, matched here explicitly:

- target class: ``argmax`` of the logits (``targets=None``), the logit itself (no softmax);
- ``α = grads.mean(axis=(2, 3))`` of the target layer's output, ``cam = ReLU(Σ α F)``;
- ``scale_cam_image``: per image ``x − min`` then ``/ (max + 1e-7)``, **then**
  ``cv2.resize`` (bilinear, half-pixel centres = torch ``align_corners=False``) to the
  input's (W, H), then the same min-max again (``aggregate_multi_layers``). Bilinear
  resizing is affine-equivariant, so this equals our upsample-then-scale up to its ε;
- ViTs need a ``reshape_transform`` from tokens to ``[N, D, h, w]``; we pass the grid
  of the model under test (not 14 × 14).
"""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from pytorch_grad_cam import GradCAM

from classmap.analysis.methods.gradcam import extract_batch, find_feature_site, grad_cam_maps
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.lenet import LeNet5, load_digits_split, train_lenet

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def digits_lenet() -> tuple[LeNet5, torch.Tensor]:
    """A LeNet-5 trained briefly on digits, and 8 held-out digits [8, 1, 32, 32]."""
    split = load_digits_split()
    result = train_lenet(split.train_images[:600], split.train_labels[:600],
                         split.test_images[:8], split.test_labels[:8], 10, epochs=3, seed=0)
    return result.model.eval(), torch.as_tensor(split.test_images[:8])


def grad_cam_reference(model, layer, images, reshape=None) -> np.ndarray:
    with GradCAM(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
        return cam(input_tensor=images, targets=None)


def per_image_reference(model, layer, images, to_grid=lambda t: t):
    """Plain autograd, one image at a time, the feature map kept by a hook."""
    weights, pooled, logits_all = [], [], []
    for image in images:
        kept: dict[str, torch.Tensor] = {}
        handle = layer.register_forward_hook(
            lambda m, i, o, kept=kept: kept.setdefault("out", o)
        )
        try:
            logits = model(image[None])
        finally:
            handle.remove()
        feature = kept["out"]
        (grad,) = torch.autograd.grad(logits[0, logits[0].argmax()], feature)
        weights.append(to_grid(grad).mean(dim=(2, 3))[0].detach())
        pooled.append(to_grid(feature).mean(dim=(2, 3))[0].detach())
        logits_all.append(logits[0].detach())
    return torch.stack(weights).numpy(), torch.stack(pooled).numpy(), torch.stack(logits_all).numpy()


def assert_matches_references(model, family, layer, images, reshape=None):
    site = find_feature_site(model, family)
    batched = extract_batch(site, images)
    reference_cams = grad_cam_reference(model, layer, images, reshape)
    np.testing.assert_allclose(batched.cams, reference_cams, atol=TOLERANCE, rtol=0)
    weights, pooled, logits = per_image_reference(model, layer, images, reshape or (lambda t: t))
    np.testing.assert_allclose(batched.grad_weights, weights, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(batched.features, pooled, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched.logits, logits, rtol=1e-5, atol=1e-5)
    for index in range(len(images)):
        single = extract_batch(site, images[index : index + 1])
        np.testing.assert_allclose(single.cams[0], batched.cams[index], atol=1e-5, rtol=0)
        np.testing.assert_allclose(single.grad_weights[0], batched.grad_weights[index],
                                   rtol=1e-4, atol=1e-8)
    return batched


def test_lenet_digits_equal_per_image_and_grad_cam_package(digits_lenet):
    model, images = digits_lenet
    result = assert_matches_references(model, "lenet", model.features, images)
    assert result.features.shape == (8, 16) and result.grid_size == (10, 10)
    assert result.cams.shape == (8, 32, 32)
    np.testing.assert_allclose(result.softmax.sum(1), 1.0, atol=1e-6)
    assert np.array_equal(result.preds, result.logits.argmax(1))


def test_tiny_timm_cnn_equals_grad_cam_package_and_the_gap_identity():
    """resnet10t ends in global average pooling + a linear layer, so the Grad-CAM weights
    of class c are the head row W_c divided by H'·W' — a hand-derived reference."""
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=6).eval()
    images = torch.randn(3, 3, 96, 64)  # non-square input
    result = assert_matches_references(model, "timm", model.layer4, images)
    height, width = result.grid_size
    assert (height, width) == (3, 2) and result.cams.shape == (3, 96, 64)
    head = model.fc.weight.detach().numpy()
    np.testing.assert_allclose(result.grad_weights, head[result.preds] / (height * width),
                               rtol=1e-5, atol=1e-8)
    contiguous = extract_batch(find_feature_site(model, "timm"), images,
                               memory_format=torch.contiguous_format)
    np.testing.assert_allclose(contiguous.cams, result.cams, atol=1e-5, rtol=0)
    np.testing.assert_allclose(contiguous.features, result.features, rtol=1e-5, atol=1e-6)


def test_embedded_lite0_on_real_photos_equals_grad_cam_package(lite0_classifier):
    from PIL import Image
    from skimage import data

    network = lite0_classifier.network
    images = torch.stack([
        lite0_classifier.preprocess(Image.fromarray(photo).convert("RGB"))
        for photo in (data.coffee(), data.chelsea())
    ])
    site = find_feature_site(network, "timm")
    result = extract_batch(site, images)
    np.testing.assert_allclose(
        result.cams, grad_cam_reference(network, network.bn2, images), atol=TOLERANCE, rtol=0
    )
    assert result.features.shape == (2, 1280) and result.grid_size == (7, 7)
    assert lite0_classifier.head.classes.names[result.preds[0]] == "espresso"


@pytest.mark.parametrize("img_size, grid", [((64, 64), (4, 4)), ((32, 80), (2, 5))])
def test_vit_token_grid_comes_from_the_model(img_size, grid):
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=img_size,
                              num_classes=5, depth=2).eval()

    def reshape(tokens):
        return tokens[:, 1:].reshape(tokens.shape[0], *grid, tokens.shape[2]).permute(0, 3, 1, 2)

    images = torch.randn(2, 3, *img_size)
    result = assert_matches_references(model, "timm", model.blocks[-1].norm1, images, reshape)
    assert result.grid_size == grid and result.features.shape == (2, 192)


def test_hooks_removed_grad_mode_restored_and_parameters_untouched(digits_lenet):
    model, images = digits_lenet
    model.zero_grad(set_to_none=True)  # the grad-cam package's backward fills them
    flags = [p.requires_grad for p in model.parameters()]
    with torch.no_grad():
        extract_batch(find_feature_site(model, "lenet"), images)
        assert not torch.is_grad_enabled()
    with torch.inference_mode():  # a caller in inference mode still gets gradients
        in_inference = extract_batch(find_feature_site(model, "lenet"), images)
    assert np.abs(in_inference.grad_weights).sum() > 0
    assert torch.is_grad_enabled()
    assert not model.features._forward_hooks
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_hook_is_removed_when_the_forward_fails(digits_lenet):
    model, _ = digits_lenet
    site = find_feature_site(model, "lenet")
    with pytest.raises(RuntimeError):
        extract_batch(site, torch.zeros(2, 3, 32, 32))  # wrong channel count
    assert not model.features._forward_hooks
    assert torch.is_grad_enabled()


def test_cam_scaling_hand_computed():
    feature = torch.tensor([[[[1.0, 3.0], [-2.0, 0.0]]]])  # K = 1, 2 × 2
    cams = grad_cam_maps(feature, torch.tensor([[2.0]]), (2, 2))
    # ReLU(2·F) = [[2, 6], [0, 0]] → min 0, max 6
    np.testing.assert_allclose(cams[0].numpy(), [[1 / 3, 1.0], [0.0, 0.0]], rtol=1e-6)
    zero = grad_cam_maps(feature, torch.tensor([[-5.0]]) * 0, (4, 4))
    assert torch.equal(zero, torch.zeros(1, 4, 4))  # a constant map stays 0, no NaN


def test_unsupported_architecture_is_a_clear_error():
    with pytest.raises(ClassmapError, match="cannot locate the last feature map"):
        find_feature_site(torch.nn.Sequential(torch.nn.Linear(3, 2)), "timm")
    with pytest.raises(ClassmapError, match="shape"):
        extract_batch(find_feature_site(LeNet5(), "lenet"), torch.zeros(3, 32, 32))
