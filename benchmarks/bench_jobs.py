"""How long a background job takes from its start to its stored result: Dash's stock
DiskcacheManager (forks the whole server) against Classmap's JobManager (forkserver,
app rebuilt in the job, heartbeat).

The job is the weight analysis of a model whose analysis is already in the result
cache, so the time is the job machinery's, not the computation's. Both managers run
in the same process, interleaved, ``--repeats`` times each.

    python benchmarks/bench_jobs.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import machine_line, print_table  # noqa: E402


def _run_one(manager, function_key: str, request: dict, timeout: float = 120.0) -> float:
    """Seconds from starting the job to its result being in the job store."""
    import uuid

    key = uuid.uuid4().hex
    job_fn = manager.func_registry[function_key]
    start = time.perf_counter()
    pid = manager.call_job_fn(key, job_fn, [request], {})
    while not manager.result_ready(key):
        if time.perf_counter() - start > timeout:
            raise RuntimeError("the job did not finish")
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    manager.get_result(key, pid)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from dash import DiskcacheManager

    from classmap.app.config import Settings
    from classmap.app.server import create_app
    from classmap.app.shell.jobs import job_request

    folder = Path(tempfile.mkdtemp(prefix="classmap-bench-jobs-"))
    settings = Settings.create(cache_dir=folder / "cache", jobs_dir=folder / "jobs")
    app = create_app(settings)
    services = app._classmap_services
    key = (settings.default_model, "cosine", "ward")
    services.view(key)  # the analysis is cached: the jobs measure the machinery only
    ours = app._classmap_jobs
    ours.start()
    stock = DiskcacheManager(ours.handle)  # registers every background callback too
    from dash.background_callback.managers import BaseBackgroundCallbackManager

    function_key = next(k for k, fn, _ in BaseBackgroundCallbackManager.functions
                        if fn.__name__ == "prepare_analysis")
    request = job_request(key[0], key=list(key))
    for name, manager in (("stock", stock), ("ours", ours)):  # warm both once
        _run_one(manager, function_key, dict(request, id=f"warm-{name}"))

    timings: dict[str, list[float]] = {"stock fork": [], "forkserver": []}
    for repeat in range(args.repeats):
        for name, manager in (("stock fork", stock), ("forkserver", ours)):
            timings[name].append(_run_one(manager, function_key,
                                          dict(request, id=f"{name}-{repeat}")))
    base = statistics.median(timings["stock fork"])
    rows = [(name, f"{statistics.median(values):.3f}", f"{min(values):.3f}",
             f"{statistics.median(values) / base:.2f}×") for name, values in timings.items()]
    print(f"Machine: {machine_line()}; repeats: {args.repeats}; job: cached weight analysis "
          f"of {key[0]}")
    print_table("Background job: start to stored result (seconds)",
                ("manager", "median s", "min s", "vs stock"), rows)


if __name__ == "__main__":
    main()
