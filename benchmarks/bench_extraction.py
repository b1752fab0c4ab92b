"""Throughput of Classmap's batched extraction (features, gradients, Grad-CAM) vs baselines.

Baselines, measured in the same run at the same batch size:

- the model's own forward + backward (loss = sum of each image's max logit, gradients
  for every parameter — what a training step or a naive Grad-CAM costs);
- the ``grad-cam`` package's GradCAM called once per image (how it is usually used);
- forward only, for scale.

Targets: extraction ≥ 0.7 × forward+backward, ≥ 5 × grad-cam per image. Models: the
embedded EfficientNet-Lite0 on synthetic 224 × 224 images, and LeNet-5 on the 360
held-out digits (untrained weights: throughput does not depend on their values).
Also the whole pipeline on a folder of JPEGs (decode + preprocess + extraction).

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_extraction.py [--images N]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from PIL import Image


def best_rates(runs: dict[str, tuple[Callable[[], None], int]], repeats: int) -> dict[str, float]:
    """Images/s of each run, best of ``repeats``, the runs interleaved within each repeat
    so that load from other processes on a shared machine hits every method alike."""
    for run, _count in runs.values():
        run()  # warm-up
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, (run, _count) in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: runs[name][1] / best[name] for name in runs}


def batches(images: torch.Tensor, size: int) -> list[torch.Tensor]:
    return [images[i : i + size] for i in range(0, len(images), size)]


def measure(network, family, layer, images, batch_size, repeats, per_image_limit):
    from pytorch_grad_cam import GradCAM

    from classmap.analysis.methods.gradcam import extract_batch, find_feature_site

    site = find_feature_site(network, family)
    chunks = batches(images, batch_size)

    def forward() -> None:
        with torch.inference_mode():
            for chunk in chunks:
                network(chunk)

    def forward_channels_last() -> None:
        with torch.inference_mode():
            for chunk in chunks:
                network(chunk.contiguous(memory_format=torch.channels_last))

    def forward_backward() -> None:
        for chunk in chunks:
            network.zero_grad(set_to_none=True)
            network(chunk).max(dim=1).values.sum().backward()
        network.zero_grad(set_to_none=True)

    def classmap() -> None:
        for chunk in chunks:
            extract_batch(site, chunk)

    few = images[:per_image_limit]

    def grad_cam_per_image() -> None:
        with GradCAM(model=network, target_layers=[layer]) as cam:
            for image in few:
                cam(input_tensor=image[None], targets=None)
        network.zero_grad(set_to_none=True)

    n = len(images)
    return best_rates({
        "forward only": (forward, n),
        "forward only, channels_last input (what extraction uses)": (forward_channels_last, n),
        "forward + backward (baseline)": (forward_backward, n),
        "Classmap batched extraction": (classmap, n),
        "grad-cam package, one call per image (baseline)": (grad_cam_per_image, len(few)),
    }, repeats)


def pipeline_throughput(classifier, count: int, batch_size: int) -> tuple[float, float]:
    """Images/s of extract_representations on a folder of JPEGs (decode included)."""
    from classmap.analysis.loading.data import load_dataset
    from classmap.analysis.pipelines.images import extract_representations

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        for class_name in ("espresso", "tabby, tabby cat"):
            target = Path(folder) / class_name.split(",")[0]
            target.mkdir()
            for index in range(count // 2):
                pixels = rng.integers(0, 256, size=(300, 400, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(target / f"{index}.jpg", quality=90)
        started = time.perf_counter()
        dataset = load_dataset(folder, classifier.head.classes)
        scan = time.perf_counter() - started
        extract_representations(classifier, dataset, batch_size=batch_size)  # warm-up
        started = time.perf_counter()
        extract_representations(classifier, dataset, batch_size=batch_size)
        seconds = time.perf_counter() - started
    return len(dataset) / seconds, len(dataset) / scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="synthetic 224×224 images")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from classmap.analysis.loading.lenet import LeNet5, load_digits_split
    from classmap.analysis.loading.models import ModelSpec, load_classifier

    torch.manual_seed(0)
    lite0 = load_classifier(ModelSpec(), None, device="cpu")
    synthetic = torch.randn(args.images, 3, 224, 224)
    rows = [("EfficientNet-Lite0, 224×224", args.batch_size,
             measure(lite0.network, "timm", lite0.network.bn2, synthetic, args.batch_size,
                     args.repeats, per_image_limit=min(args.images, 16)))]
    lenet = LeNet5(1, 10).eval()
    digits = torch.as_tensor(load_digits_split().test_images)
    rows.append(("LeNet-5, 360 digits 32×32", 64,
                 measure(lenet, "lenet", lenet.features, digits, 64, 5 * args.repeats,
                         per_image_limit=120)))
    folder_rate, scan_rate = pipeline_throughput(lite0, args.images, args.batch_size)

    print(f"### Extraction throughput (torch threads: {torch.get_num_threads()}, CPU)\n")
    print("| model | batch | method | images/s | ratio to forward+backward |")
    print("|---|---|---|---|---|")
    summary = []
    for model, batch, rates in rows:
        base = rates["forward + backward (baseline)"]
        for method, rate in rates.items():
            print(f"| {model} | {batch if 'per image' not in method else 1} | {method} | "
                  f"{rate:.1f} | {rate / base:.2f}× |")
        ours = rates["Classmap batched extraction"]
        summary.append((model, ours / base,
                        ours / rates["grad-cam package, one call per image (baseline)"]))
    lite0_base = rows[0][2]["forward + backward (baseline)"]
    print(f"| EfficientNet-Lite0, folder of 400×300 JPEGs | {args.batch_size} | "
          f"extract_representations (decode + preprocess + extraction) | {folder_rate:.1f} | "
          f"{folder_rate / lite0_base:.2f}× |")
    print(f"| EfficientNet-Lite0, folder of 400×300 JPEGs | — | load_dataset scan (read, hash, "
          f"decode) | {scan_rate:.1f} | — |")
    print("\n| model | extraction / forward+backward (target ≥ 0.7) | "
          "extraction / grad-cam per image (target ≥ 5) |")
    print("|---|---|---|")
    for model, vs_backward, vs_gradcam in summary:
        print(f"| {model} | {vs_backward:.2f}× {'✓' if vs_backward >= 0.7 else '✗'} | "
              f"{vs_gradcam:.1f}× {'✓' if vs_gradcam >= 5 else '✗'} |")


if __name__ == "__main__":
    main()
