"""Where a full view's server time goes: one process, Flask's test client, the callback
bodies ``bench_load.py --bodies FILE`` recorded from a real page (no browser here).

Replays ``--views`` full views (the page, ``_dash-layout`` and every recorded callback,
the focal class varied) after one warm-up view, prints each request kind's median time
and response size, and the top of a cProfile of the replay (sorted by cumulative time).

    python benchmarks/bench_load.py --sessions 1 --interactions 1 --only-gunicorn \\
        --bodies /tmp/bodies.json         # records the bodies once (Chromium)
    python benchmarks/profile_full_view.py --bodies /tmp/bodies.json [--views 20]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine_line  # noqa: E402
from bench_load import CLASSES, MODEL  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--stats", type=Path, help="also write the cProfile stats there")
    args = parser.parse_args()
    from classmap.app.config import Settings
    from classmap.app.server import create_app

    bodies = json.loads(args.bodies.read_text())
    folder = Path(tempfile.mkdtemp(prefix="profile-view-"))
    head = folder / f"{MODEL}.npy"
    np.save(head, np.random.default_rng(0).normal(size=(CLASSES, 32)).astype(np.float32))
    settings = Settings.create(cache_dir=folder / "cache", jobs_dir=folder / "jobs",
                               warm_default=False, environ={"HF_HUB_OFFLINE": "1",
                               "CLASSMAP_MODELS": json.dumps([{"id": MODEL, "head": str(head)}])})
    app = create_app(settings)
    client = app.server.test_client()
    times: dict[str, list[float]] = defaultdict(list)
    sizes: dict[str, int] = {}

    def view(focal: str, record: bool) -> None:
        requests = [("page", "GET", f"/?model={MODEL}&focal={focal}", None),
                    ("layout", "GET", "/_dash-layout", None)]
        requests += [(json.loads(body)["output"][:60], "POST", "/_dash-update-component",
                      body.replace("class_0", focal)) for body in bodies]
        for name, method, path, body in requests:
            began = time.perf_counter()
            response = client.open(path, method=method, data=body,
                                   content_type="application/json" if body else None)
            elapsed = time.perf_counter() - began
            assert response.status_code in (200, 204), (name, response.status_code)
            if record:
                times[name].append(elapsed)
                sizes[name] = len(response.data)

    view("class_0", record=False)  # computes and caches the analysis
    rng = random.Random(0)
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    for _ in range(args.views):
        view(f"class_{rng.randrange(CLASSES)}", record=True)
    profile.disable()
    total = time.perf_counter() - began
    print(f"\n{machine_line()}; {args.views} full views of {CLASSES} classes, "
          f"{len(bodies)} callbacks each, one process (cProfile on: times inflated)")
    print(f"\nmean full view {total / args.views * 1000:.0f} ms, "
          f"{sum(sizes.values()) / 1e6:.2f} MB\n")
    print("| request | median ms | bytes |\n|---|---|---|")
    for name, values in sorted(times.items(), key=lambda item: -sum(item[1])):
        print(f"| {name} | {statistics.median(values) * 1000:.1f} | {sizes[name]:,} |")
    print()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    if args.stats is not None:
        profile.dump_stats(args.stats)


if __name__ == "__main__":
    main()
