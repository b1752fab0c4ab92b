"""Thumbnails of the image pages: time of ``GET /_classmap/thumbnail`` through Flask's
test client on ``lenet-digits`` with the digits (100 images) — the first render of each
thumbnail, a repeat served from the server's memory, a repeat answered 304 by ETag — and
the PNG sizes. The network and the data set are loaded (and LeNet trained, when the
cache has no checkpoint) before the clock starts.

    python benchmarks/bench_thumbnails.py [--images 100] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine_line, print_table  # noqa: E402

ROUTE = "/_classmap/thumbnail?model=lenet-digits&data=digits&kind=image&index="


def timed_ms(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache/classmap")
    args = parser.parse_args()

    from classmap.app.config import Settings
    from classmap.app.server import create_app

    jobs = Path(tempfile.mkdtemp(prefix="bench-thumbnails-"))
    settings = Settings.create(cache_dir=args.cache_dir, jobs_dir=jobs / "jobs", environ={},
                               warm_default=False)
    client = create_app(settings).server.test_client()
    first = client.get(ROUTE + "0")  # loads the network and the data set once
    if first.status_code != 200:
        raise SystemExit(f"thumbnail route answered {first.status_code}: {first.data[:200]!r}")
    indices = range(1, args.images + 1)
    cold = [timed_ms(lambda i=i: client.get(ROUTE + str(i)))[0] for i in indices]
    memo = [timed_ms(lambda i=i: client.get(ROUTE + str(i)))[0] for i in indices]
    tags = {i: client.get(ROUTE + str(i)).headers["ETag"] for i in indices}
    not_modified = []
    for i in indices:
        ms, response = timed_ms(lambda i=i: client.get(ROUTE + str(i),
                                                       headers={"If-None-Match": tags[i]}))
        assert response.status_code == 304, response.status_code
        not_modified.append(ms)
    sizes = [len(client.get(ROUTE + str(i)).data) for i in indices]
    print(machine_line())
    print_table(f"Thumbnails, lenet-digits, {args.images} images (Flask test client)",
                ["request", "median ms", "max ms"],
                [["first render", f"{statistics.median(cold):.2f}", f"{max(cold):.2f}"],
                 ["repeat, from the server's memory", f"{statistics.median(memo):.2f}",
                  f"{max(memo):.2f}"],
                 ["repeat with If-None-Match (304)", f"{statistics.median(not_modified):.2f}",
                  f"{max(not_modified):.2f}"]])
    print(f"PNG bytes: median {statistics.median(sizes):.0f}, max {max(sizes)}")


if __name__ == "__main__":
    main()
