"""Smooth Grad-CAM++ restricted to split-node channels, against the grad-cam package
(``pytorch_grad_cam.GradCAMPlusPlus``) on the embedded Lite0 and a scikit-image photo."""

from __future__ import annotations

import numpy as np
import pytest

from classmap.analysis.methods.channel_cam import smooth_gradcam_pp_channels
from classmap.analysis.methods.channel_split import split_head_class
from classmap.analysis.errors import ClassmapError

TABBY = 281  # ImageNet "tabby cat"; chelsea is a tabby


@pytest.fixture(scope="module")
def photo(lite0_classifier):
    from PIL import Image
    from skimage import data

    return lite0_classifier.preprocess(Image.fromarray(data.chelsea()))


@pytest.fixture(scope="module")
def package_reference(lite0_classifier, photo):
    """The package's map (normalised, resized) and its channel weights and activations."""
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    network = lite0_classifier.network
    layer = network.bn2  # its output is forward_features(x), the head's input map
    targets = [ClassifierOutputTarget(TABBY)]
    batch = photo[None]
    with GradCAMPlusPlus(model=network, target_layers=[layer]) as cam:
        grayscale = cam(input_tensor=batch, targets=targets)[0]
        activations = cam.activations_and_grads.activations[-1].cpu().numpy()
        gradients = cam.activations_and_grads.gradients[-1].cpu().numpy()
        weights = cam.get_cam_weights(batch, layer, targets, activations, gradients)[0]
    return grayscale, weights, activations[0]


def scale_like_package(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """pytorch_grad_cam's scale_cam_image: min–max normalise, then cv2 resize to (W, H)."""
    import cv2

    cam = cam - cam.min()
    cam = cam / (1e-7 + cam.max())
    return cv2.resize(cam, (size[1], size[0]))


def test_all_channels_without_noise_is_the_packages_gradcam_pp(lite0_classifier, photo,
                                                               package_reference):
    grayscale, weights, activations = package_reference
    ours = smooth_gradcam_pp_channels(lite0_classifier, photo, TABBY, np.arange(1280),
                                      samples=1, noise=0.0)
    np.testing.assert_allclose(ours.activations, activations, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.weights, weights, rtol=2e-3, atol=1e-7)
    # float64 here, float32 there: the normalised maps agree to well under 1 %
    scaled = scale_like_package(ours.cam, grayscale.shape)
    np.testing.assert_allclose(scaled, grayscale, atol=1e-2)
    assert np.corrcoef(scaled.ravel(), grayscale.ravel())[0, 1] > 0.9999


def test_split_node_map_sums_only_its_channels(lite0_classifier, lite0_head, photo,
                                               package_reference):
    _, weights, activations = package_reference
    tree = split_head_class(lite0_head.weight, TABBY)
    for channels in (tree.discriminative_channels, tree.confusing_channels):
        ours = smooth_gradcam_pp_channels(lite0_classifier, photo, TABBY, channels,
                                          samples=1, noise=0.0)
        reference = np.maximum(np.tensordot(weights[channels], activations[channels], 1), 0)
        np.testing.assert_allclose(ours.cam, reference, rtol=2e-3,
                                   atol=2e-3 * max(reference.max(), 1e-12))
        np.testing.assert_array_equal(ours.channels, np.sort(channels))
    assert ours.upsampled((224, 224)).shape == (224, 224)


def test_noise_cannot_change_the_map_at_the_head_input(lite0_classifier, lite0_head, photo):
    # Behind a global average pool and a linear head, ∂S_c/∂A_kij = W_ck / (h·w) for every
    # input, so the smoothed derivative terms equal the plain ones: Smooth Grad-CAM++ at
    # this layer is Grad-CAM++ whatever the noise (documented in channel_cam.py).
    channels = np.arange(0, 1280, 3)
    plain = smooth_gradcam_pp_channels(lite0_classifier, photo, TABBY, channels, samples=1,
                                       noise=0.0)
    noisy = smooth_gradcam_pp_channels(lite0_classifier, photo, TABBY, channels, samples=3,
                                       noise=0.2, seed=5)
    np.testing.assert_allclose(noisy.weights, plain.weights, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(noisy.cam, plain.cam, rtol=1e-5, atol=1e-9)


def test_head_input_gradient_is_the_class_row_over_the_map_size(lite0_head, lite0_classifier,
                                                                photo):
    network = lite0_classifier.network
    features = network.forward_features(photo[None] + 0.3).detach().requires_grad_(True)
    network.forward_head(features)[0, TABBY].backward()
    h, w = features.shape[2:]
    expected = lite0_head.weight[TABBY][:, None, None] / (h * w)
    np.testing.assert_allclose(features.grad[0].numpy(), np.broadcast_to(expected, (1280, h, w)),
                               rtol=1e-5, atol=1e-9)


def test_bad_channels_are_refused(lite0_classifier, photo):
    with pytest.raises(ClassmapError, match="channels must be"):
        smooth_gradcam_pp_channels(lite0_classifier, photo, TABBY, np.array([1280]))
    with pytest.raises(ClassmapError, match="out of range"):
        smooth_gradcam_pp_channels(lite0_classifier, photo, 1000, np.array([1]))
