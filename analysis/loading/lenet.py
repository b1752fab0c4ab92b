"""LeNet-5 (seed 003's architecture) and its deterministic training.

The offline default for image-based analyses is LeNet-5 trained on scikit-learn's
bundled digits (1,797 real 8 × 8 images of 10 classes). The network takes
``[N, 1, 32, 32]`` grey images scaled to ``[0, 1]`` then normalised with
``DIGITS_MEAN``/``DIGITS_STD``; the 8 × 8 digits are upsampled bilinearly to 32 × 32.

Layout (kept so the last convolutional feature map is a named module output):

- ``features``: conv 5×5 (1→6) · tanh · max-pool 2 · conv 5×5 (6→16) · tanh →
  the last convolutional feature map ``[N, 16, 10, 10]`` (Grad-CAM target layer:
  ``features``);
- ``pool``: max-pool 2 → ``[N, 16, 5, 5]``;
- ``classifier``: flatten · 400→120 · tanh · 120→84 · tanh · ``head`` 84→C.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

DIGITS_SEED = 0
DIGITS_HELD_OUT_FRACTION = 0.2
DIGITS_MEAN = 0.3
DIGITS_STD = 0.4
INPUT_SIZE = 32


class LeNet5(nn.Module):
    """LeNet-5 with tanh activations as in seed 003.

    Parameters
    ----------
    in_channels : int
        1 for grey images, 3 for colour.
    num_classes : int
        Number of output classes C.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),
            nn.Tanh(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.Tanh(),
        )
        self.pool = nn.MaxPool2d(2, 2)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.Tanh(),
            nn.Linear(120, 84),
            nn.Tanh(),
        )
        self.head = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, C]`` of images ``[N, in_channels, 32, 32]``."""
        return self.head(self.classifier(self.pool(self.features(x))))

    def get_classifier(self) -> nn.Module:
        """The final linear layer (timm's name for it), whose weight is ``[C, 84]``."""
        return self.head


@dataclass(frozen=True)
class DigitsSplit:
    """scikit-learn's digits, split once with a fixed seed.

    Attributes
    ----------
    train_images, test_images : ndarray of shape (n, 1, 32, 32), float32, normalised
    train_labels, test_labels : ndarray of shape (n,), int64
    test_indices : ndarray of shape (n_test,), int64 — ``test_images[i]`` is row
        ``test_indices[i]`` of ``load_digits()`` (aligned, not sorted)
    class_names : tuple of str — ``"0"`` … ``"9"``
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    test_indices: np.ndarray
    class_names: tuple[str, ...]


def load_digits_split(seed: int = DIGITS_SEED) -> DigitsSplit:
    """Load scikit-learn's bundled digits and split them 80/20, stratified, seeded."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = prepare_grey_images(digits.images / 16.0)
    indices = np.arange(len(digits.target))
    train_idx, test_idx = train_test_split(
        indices, test_size=DIGITS_HELD_OUT_FRACTION, stratify=digits.target, random_state=seed
    )
    labels = digits.target.astype(np.int64)
    return DigitsSplit(
        train_images=images[train_idx],
        train_labels=labels[train_idx],
        test_images=images[test_idx],
        test_labels=labels[test_idx],
        test_indices=np.asarray(test_idx, dtype=np.int64),
        class_names=tuple(str(i) for i in range(10)),
    )


def prepare_grey_images(images: np.ndarray) -> np.ndarray:
    """Resize grey images in ``[0, 1]`` to the network's input and normalise them.

    Parameters
    ----------
    images : ndarray of shape (n, h, w), values in [0, 1]

    Returns
    -------
    ndarray of shape (n, 1, 32, 32), float32
    """
    tensor = torch.as_tensor(np.asarray(images, dtype=np.float32)).unsqueeze(1)
    if tensor.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        tensor = nn.functional.interpolate(
            tensor, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
        )
    return ((tensor - DIGITS_MEAN) / DIGITS_STD).numpy()


@dataclass(frozen=True)
class TrainingResult:
    """A trained network with its held-out accuracy and per-epoch history."""

    model: LeNet5
    held_out_accuracy: float
    history: tuple[tuple[float, float], ...]  # (mean train loss, train accuracy) per epoch
    seed: int
    epochs: int


EpochCallback = Callable[[int, float, float], None]


def train_lenet(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    num_classes: int,
    *,
    epochs: int = 30,
    seed: int = DIGITS_SEED,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    on_epoch: EpochCallback | None = None,
) -> TrainingResult:
    """Train LeNet-5 with Adam (seed 003's optimiser), deterministically on the CPU.

    Parameters
    ----------
    train_images, test_images : ndarray of shape (n, channels, 32, 32), float32
    train_labels, test_labels : ndarray of shape (n,), int64 in [0, num_classes)
    on_epoch : called as ``on_epoch(epoch, mean_loss, train_accuracy)`` after each epoch.

    Same inputs and seed → the same weights, bit for bit, on the same machine.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = LeNet5(in_channels=train_images.shape[1], num_classes=num_classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    x = torch.as_tensor(train_images)
    y = torch.as_tensor(train_labels)
    history: list[tuple[float, float]] = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        total_loss, correct = 0.0, 0
        for start in range(0, len(y), batch_size):
            batch = order[start : start + batch_size]
            optimiser.zero_grad()
            logits = model(x[batch])
            loss = nn.functional.cross_entropy(logits, y[batch])
            loss.backward()
            optimiser.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == y[batch]).sum())
        history.append((total_loss / len(y), correct / len(y)))
        if on_epoch is not None:
            on_epoch(epoch, *history[-1])
    model.eval()
    with torch.inference_mode():
        predictions = model(torch.as_tensor(test_images)).argmax(1).numpy()
    accuracy = float((predictions == test_labels).mean()) if len(test_labels) else float("nan")
    log.info("LeNet-5 trained: %d epochs, held-out accuracy %.3f", epochs, accuracy)
    return TrainingResult(model, accuracy, tuple(history), seed, epochs)


@dataclass(frozen=True)
class LeNetPreprocess:
    """PIL image → ``[channels, 32, 32]`` normalised tensor for LeNet-5.

    A mode ``"F"`` image holds grey values already in [0, 1] (scikit-learn's digits, kept
    in memory unquantised); any other mode is converted to ``L`` or ``RGB`` and divided
    by 255. The resize is bilinear (``align_corners=False``) and antialiased only when
    shrinking, so an 8 × 8 digit becomes exactly what ``lenet.prepare_grey_images``
    gives. Then ``(x − mean) / std`` per channel.
    """

    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, image: Any) -> torch.Tensor:
        if image.mode == "F":
            pixels = np.asarray(image, dtype=np.float32)[None]
            pixels = np.repeat(pixels, self.channels, axis=0)
        else:
            converted = image.convert("L" if self.channels == 1 else "RGB")
            pixels = np.asarray(converted, dtype=np.float32).reshape(
                converted.height, converted.width, self.channels
            ).transpose(2, 0, 1) / 255.0
        tensor = torch.from_numpy(np.ascontiguousarray(pixels))[None]
        if tensor.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            shrinking = tensor.shape[-2] > INPUT_SIZE or tensor.shape[-1] > INPUT_SIZE
            tensor = nn.functional.interpolate(
                tensor, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                antialias=shrinking,
            )
        mean = torch.tensor(self.mean, dtype=torch.float32).reshape(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).reshape(-1, 1, 1)
        return (tensor[0] - mean) / std

    def data_config(self) -> dict[str, Any]:
        """timm-style data config of this preprocessing."""
        return {
            "input_size": (self.channels, INPUT_SIZE, INPUT_SIZE),
            "mean": self.mean,
            "std": self.std,
            "interpolation": "bilinear",
        }
