"""The digits default end to end: LeNet-5 + scikit-learn's held-out digits, every analysis.

Steps, in a fresh result cache:

1. train ``lenet-digits`` (its first use on a machine; cached afterwards);
2. **cold**: open the digits, extract every image's representations and run every
   seed-002 and seed-003 analysis (target ≤ 60 s on the 2-core CPU);
3. **warm**: the same again, served from the cache.

Baselines in the same run: extraction one image at a time (batch 1) against the batched
extraction, and the warm run against the cold one.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_digits.py``
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

TARGET_SECONDS = 60.0


def main() -> None:
    from classmap.analysis.cache import ResultCache
    from classmap.analysis.loading.data import load_dataset
    from classmap.analysis.pipelines.images import ImageParams, analyse_images, extract_representations
    from classmap.analysis.loading.models import LENET_DIGITS, ModelSpec, load_classifier

    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        cache = ResultCache(folder)
        started = time.perf_counter()
        classifier = load_classifier(ModelSpec(model=LENET_DIGITS), cache, device="cpu")
        rows.append(("train lenet-digits (first use only, 30 epochs)", time.perf_counter() - started))

        def run(use_cache: bool) -> dict[str, float]:
            seconds = {}
            started = time.perf_counter()
            dataset = load_dataset("digits", classifier.head.classes, channels=1)
            seconds["open digits"] = time.perf_counter() - started
            started = time.perf_counter()
            reps = extract_representations(classifier, dataset, batch_size=64,
                                           cache=cache if use_cache else None)
            seconds["extract (batch 64)"] = time.perf_counter() - started
            started = time.perf_counter()
            analysis = analyse_images(reps, ImageParams(), cache=cache if use_cache else None)
            seconds["every analysis"] = time.perf_counter() - started
            seconds.update({f"  of which {k}": v for k, v in analysis.seconds.items()})
            return seconds

        cold = run(use_cache=True)
        warm = run(use_cache=True)
        dataset = load_dataset("digits", classifier.head.classes, channels=1)
        started = time.perf_counter()
        extract_representations(classifier, dataset, batch_size=1)
        per_image = time.perf_counter() - started

    cold_total = sum(v for k, v in cold.items() if not k.startswith("  "))
    warm_total = sum(v for k, v in warm.items() if not k.startswith("  "))
    print(f"### Digits default end to end (360 held-out digits, torch threads "
          f"{torch.get_num_threads()}, CPU)\n")
    print("| step | seconds |")
    print("|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")
    for name, seconds in cold.items():
        print(f"| cold: {name} | {seconds:.2f} |")
    print(f"| **cold total (open + extract + every analysis)** | **{cold_total:.2f}** |")
    print(f"| warm total (served from the cache) | {warm_total:.2f} |")
    print(f"| extraction one image at a time (batch 1) | {per_image:.2f} |")
    print("\n| comparison | ratio |")
    print("|---|---|")
    print(f"| cold total / target {TARGET_SECONDS:.0f} s | {cold_total / TARGET_SECONDS:.2f} "
          f"{'✓' if cold_total <= TARGET_SECONDS else '✗'} |")
    print(f"| cold + first-use training / target | "
          f"{(cold_total + rows[0][1]) / TARGET_SECONDS:.2f} |")
    print(f"| cold / warm | {cold_total / warm_total:.1f}× |")
    print(f"| extraction batch 1 / batch 64 | {per_image / cold['extract (batch 64)']:.1f}× |")


if __name__ == "__main__":
    main()
