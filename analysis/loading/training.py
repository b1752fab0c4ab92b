"""``classmap train``: a LeNet-5 (seed 003's network) on an image folder or the digits.

::

    classmap train --data DIR|digits --arch lenet5 [--epochs N] [--seed S] --out FILE

writes a safetensors checkpoint that ``--model lenet5 --weights FILE`` loads back
(:mod:`classmap.analysis.loading.models`). Its metadata carries what the loader needs and what a
reader wants to know: ``class_names`` (JSON list, read by
``classnames.checkpoint_class_names``), ``input_mean``/``input_std`` (the input
normalisation), and the architecture, epochs, seed, held-out accuracy and data digest.

Data:

- ``digits`` — the fixed 80/20 split of :func:`classmap.analysis.loading.lenet.load_digits_split` (the
  split never depends on ``--seed``, so ``--data digits`` analyses are always held
  out); 1 grey channel, normalised like ``lenet-digits``. With the default seed and
  epochs this reproduces the embedded ``lenet-digits`` network.
- a folder — every readable image (see :mod:`classmap.analysis.loading.data`), classes = the sorted
  folder names with images, RGB at 32 × 32 (:class:`classmap.analysis.loading.lenet.LeNetPreprocess`,
  the same code that prepares images for analysis later). A stratified 20 % of each
  class (rounded down; classes under 5 images keep all for training) is held out
  with split seed 0 to report accuracy; the per-channel mean and std of the training
  images become the input normalisation.

Training is :func:`classmap.analysis.loading.lenet.train_lenet` (Adam, cross-entropy, seeded,
deterministic on the CPU); ``--seed`` sets the initialisation and batch order. The
file is written to a temporary name beside ``--out`` and renamed into place.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classmap.analysis import __version__
from classmap.analysis.loading.data import DIGITS, DataReport, load_dataset
from classmap.analysis.errors import ClassmapError, check_choice

log = logging.getLogger(__name__)

ARCHITECTURES = ("lenet5",)
CHECKPOINT_FORMAT = "classmap-lenet5/1"
HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 0
MIN_HELD_OUT_CLASS_SIZE = 5
DEFAULT_EPOCHS = 30


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality
class TrainingData:
    """Network-ready training and held-out images.

    Attributes
    ----------
    train_images, test_images : ndarray of shape (n, channels, 32, 32), float32, normalised
    train_labels, test_labels : ndarray of shape (n,), int64
    class_names : C names, in label order
    mean, std : per-channel input normalisation (``(x − mean) / std`` of [0, 1] pixels)
    source : ``"digits"`` or the folder
    digest : the data set's digest
    report : what was skipped or converted while reading
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    digest: str
    report: DataReport

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[1])


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality
class TrainedModel:
    """A trained network, its held-out accuracy and the checkpoint metadata."""

    network: torch.nn.Module
    held_out_accuracy: float
    history: tuple[tuple[float, float], ...]
    metadata: dict[str, str]


def prepare_training_data(source: str) -> TrainingData:
    """Load ``--data`` (``digits`` or a folder) as network-ready arrays (see module doc)."""
    if source == DIGITS:
        return _digits_training_data()
    return _folder_training_data(source)


def train_model(
    data: TrainingData,
    *,
    arch: str = "lenet5",
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    on_epoch: Any = None,
) -> TrainedModel:
    """Train ``arch`` on ``data``; ``on_epoch(epoch, loss, accuracy)`` after each epoch."""
    from classmap.analysis.loading.lenet import train_lenet

    check_choice(arch, ARCHITECTURES, "--arch")
    for name, value in (("--epochs", epochs), ("--batch-size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ClassmapError(f"{name} {value!r} is invalid; pass a positive integer")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ClassmapError(f"--seed {seed!r} is invalid; pass a non-negative integer")
    if not (isinstance(learning_rate, float) and 0 < learning_rate < 1):
        raise ClassmapError(f"--learning-rate {learning_rate!r} is invalid; pass e.g. 0.001")
    result = train_lenet(
        data.train_images, data.train_labels, data.test_images, data.test_labels,
        num_classes=len(data.class_names), epochs=epochs, seed=seed, batch_size=batch_size,
        learning_rate=learning_rate, on_epoch=on_epoch,
    )
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "arch": arch,
        "class_names": json.dumps(list(data.class_names)),
        "input_channels": str(data.channels),
        "input_size": json.dumps([32, 32]),
        "input_mean": json.dumps(list(data.mean)),
        "input_std": json.dumps(list(data.std)),
        "epochs": str(epochs),
        "seed": str(seed),
        "batch_size": str(batch_size),
        "learning_rate": repr(learning_rate),
        "held_out_accuracy": repr(result.held_out_accuracy),
        "held_out_images": str(len(data.test_labels)),
        "train_images": str(len(data.train_labels)),
        "data": data.source,
        "data_sha256": data.digest,
        "classmap": __version__,
        "torch": torch.__version__,
    }
    return TrainedModel(result.model, result.held_out_accuracy, result.history, metadata)


def save_checkpoint(model: TrainedModel, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``model`` as safetensors with its metadata: temp file + rename (atomic)."""
    from safetensors.torch import save_file

    target = check_checkpoint_path(out, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.network.state_dict().items()}
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial",
                                         dir=target.parent)
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata=model.metadata)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def check_checkpoint_path(out: str | Path, *, overwrite: bool = False) -> Path:
    """Validate ``--out`` before training: a ``.safetensors`` path we may (over)write."""
    target = Path(out).expanduser().absolute()
    if target.suffix != ".safetensors":
        raise ClassmapError(
            f"--out {target.name} must end in .safetensors (the checkpoint format); "
            f"e.g. --out {target.with_suffix('.safetensors').name}"
        )
    if target.is_dir():
        raise ClassmapError(f"--out {target} is a folder; give a file path")
    if target.exists() and not overwrite:
        raise ClassmapError(f"--out {target} exists; pass --force to replace it")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ClassmapError(f"--out {target} is not writable (no permission on {parent}); "
                            "choose a folder you can write to")
    return target


# --------------------------------------------------------------------------------------
# command line


def register(subparsers: Any) -> None:
    """Add ``classmap train`` to the CLI (``classmap.analysis.cli.COMMAND_MODULES``)."""
    parser = subparsers.add_parser(
        "train", help="train a LeNet-5 on an image folder or the digits",
        description="Train LeNet-5 (seed 003's network) and write a safetensors checkpoint "
                    "that '--model lenet5 --weights FILE' loads.",
    )
    parser.add_argument("--data", required=True, metavar="DIR|digits",
                        help="a folder with one sub-folder per class, or 'digits' "
                             "(scikit-learn's digits, fixed 80/20 split)")
    parser.add_argument("--arch", default="lenet5", choices=ARCHITECTURES)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, metavar="N",
                        help=f"passes over the training images (default {DEFAULT_EPOCHS})")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="initialisation and batch order (default 0)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N")
    parser.add_argument("--learning-rate", type=float, default=1e-3, metavar="LR")
    parser.add_argument("--out", required=True, metavar="FILE", help="checkpoint (.safetensors)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    """``classmap train``: validate, load data, train with a progress bar, write atomically."""
    from tqdm import tqdm

    check_checkpoint_path(args.out, overwrite=args.force)
    data = prepare_training_data(args.data)
    log.info("training data: %s", data.report.summary())
    with tqdm(total=args.epochs, desc=f"train {args.arch}", unit="epoch", file=sys.stderr,
              disable=args.quiet, dynamic_ncols=True) as bar:

        def on_epoch(epoch: int, loss: float, accuracy: float) -> None:
            bar.set_postfix(loss=f"{loss:.4f}", accuracy=f"{accuracy:.3f}", refresh=False)
            bar.update(1)

        model = train_model(
            data, arch=args.arch, epochs=args.epochs, seed=args.seed,
            batch_size=args.batch_size, learning_rate=args.learning_rate, on_epoch=on_epoch,
        )
    path = save_checkpoint(model, args.out, overwrite=args.force)
    if not args.quiet:
        print(
            f"classmap: wrote {path} ({len(data.class_names)} classes, held-out accuracy "
            f"{model.held_out_accuracy:.3f} on {len(data.test_labels)} images)",
            file=sys.stderr,
        )
    return 0


# --------------------------------------------------------------------------------------
# data preparation


def _digits_training_data() -> TrainingData:
    from classmap.analysis.cache import digest_arrays
    from classmap.analysis.loading.lenet import DIGITS_MEAN, DIGITS_SEED, DIGITS_STD, load_digits_split

    split = load_digits_split(DIGITS_SEED)
    counts = np.bincount(split.train_labels, minlength=10)
    report = DataReport(
        source=DIGITS, num_images=len(split.train_labels) + len(split.test_labels),
        class_counts=tuple((name, int(count)) for name, count in zip(split.class_names, counts)),
    )
    return TrainingData(
        train_images=split.train_images,
        train_labels=split.train_labels,
        test_images=split.test_images,
        test_labels=split.test_labels,
        class_names=split.class_names,
        mean=(DIGITS_MEAN,),
        std=(DIGITS_STD,),
        source=DIGITS,
        digest=digest_arrays(split.train_images, split.train_labels, split.test_images,
                             split.test_labels),
        report=report,
    )


def _folder_training_data(source: str) -> TrainingData:
    from classmap.analysis.loading.lenet import LeNetPreprocess

    dataset = load_dataset(source, None, channels=3)
    raw = LeNetPreprocess(3, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    images = np.stack([raw(dataset.load_image(i)).numpy() for i in range(len(dataset))])
    train, test = split_held_out(dataset.labels, HELD_OUT_FRACTION, SPLIT_SEED)
    mean = images[train].mean(axis=(0, 2, 3))
    std = images[train].std(axis=(0, 2, 3))
    std = np.where(std > 1e-6, std, 1.0)  # a constant channel: leave it unscaled
    normalised = (images - mean[None, :, None, None]) / std[None, :, None, None]
    return TrainingData(
        train_images=normalised[train].astype(np.float32),
        train_labels=dataset.labels[train],
        test_images=normalised[test].astype(np.float32),
        test_labels=dataset.labels[test],
        class_names=dataset.class_names,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        source=dataset.source,
        digest=dataset.digest,
        report=dataset.report,
    )


def split_held_out(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: ``floor(fraction · n_c)`` images of each class held out.

    Classes with fewer than 5 images are kept whole for training. Returns sorted
    ``(train_indices, held_out_indices)``, each of shape (n,), int64.
    """
    rng = np.random.default_rng(seed)
    held_out: list[np.ndarray] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < MIN_HELD_OUT_CLASS_SIZE:
            continue
        count = int(np.floor(fraction * len(members)))
        held_out.append(rng.permutation(members)[:count])
    test = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train.astype(np.int64), test.astype(np.int64)
