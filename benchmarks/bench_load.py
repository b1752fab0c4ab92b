"""Load on cached views: N concurrent sessions × M interactions against gunicorn
(``classmap serve --workers W``) and the development server, in the same run.

The interactions are real callback requests: a Chromium page loads the classes page
once with ``focal=class_0`` and its ``/_dash-update-component`` POSTs are recorded; a
session then replays them with the focal class varied (a "click"), and every tenth
interaction is a full view (the page's HTML, ``_dash-layout`` and every recorded
callback). Every analysis is computed before the clock starts, so this measures serving,
not computing. Reports errors, p50/p95/p99 latency per kind and the servers' resident
memory (the process tree) after warm-up and at the end.

    python benchmarks/bench_load.py [--sessions 20] [--interactions 50] [--workers 5]
                                    [--only-gunicorn] [--bodies FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine_line, print_table  # noqa: E402

CLASSES = 300
MODEL = "bench-load"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict[str, str], url: str) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{command[3:5]} did not start")


def tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def record_callbacks(url: str) -> list[str]:
    """The callback POST bodies a browser sends when it opens the page (focal=class_0)."""
    from playwright.sync_api import sync_playwright

    bodies: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--headless", "--no-sandbox"])
        page = browser.new_context(bypass_csp=True).new_page()
        page.on("request", lambda r: bodies.append(r.post_data) if
                "_dash-update-component" in r.url and r.post_data else None)
        page.goto(f"{url}/?model={MODEL}&focal=class_0")
        page.wait_for_function("(document.querySelector('#classes-model-summary')?.innerText"
                               f" || '').includes('{CLASSES}')", timeout=300_000)
        page.wait_for_timeout(3000)
        browser.close()
    return [body for body in bodies if "class_0" in body] or bodies


def post(url: str, body: str) -> None:
    request = urllib.request.Request(url + "/_dash-update-component", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()


def session(url: str, bodies: list[str], interactions: int, seed: int,
            out: dict[str, list[float]], errors: list[str]) -> None:
    rng = random.Random(seed)
    for step in range(interactions):
        focal = f"class_{rng.randrange(CLASSES)}"
        began = time.perf_counter()
        try:
            if step % 10 == 0:
                get(f"{url}/?model={MODEL}&focal={focal}")
                get(url + "/_dash-layout")
                for body in bodies:
                    post(url, body.replace("class_0", focal))
                out["view"].append(time.perf_counter() - began)
            else:
                post(url, rng.choice(bodies).replace("class_0", focal))
                out["click"].append(time.perf_counter() - began)
        except (OSError, urllib.error.HTTPError) as error:
            errors.append(str(error))


def load(url: str, bodies: list[str], sessions: int, interactions: int) -> dict:
    out: dict[str, list[float]] = {"click": [], "view": []}
    errors: list[str] = []
    threads = [threading.Thread(target=session, args=(url, bodies, interactions, i, out, errors))
               for i in range(sessions)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"out": out, "errors": errors, "seconds": time.perf_counter() - began}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--interactions", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--bodies", type=Path, metavar="FILE",
                        help="the recorded callback bodies: read from FILE when it exists "
                             "(no browser), else recorded and written there")
    parser.add_argument("--only-gunicorn", action="store_true",
                        help="leave out the development server (its baseline column then "
                             "compares gunicorn with itself)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
    head = folder / f"{MODEL}.npy"
    np.save(head, np.random.default_rng(0).normal(size=(CLASSES, 32)).astype(np.float32))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(folder / "jobs"),
           "CLASSMAP_MODELS": json.dumps([{"id": MODEL, "head": str(head)}])}
    base = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
            "--cache-dir", str(folder / "cache")]
    servers = {"development server (1 process, threads)": [],
               f"gunicorn --workers {args.workers}": ["--workers", str(args.workers)]}
    if args.only_gunicorn:
        servers = {name: extra for name, extra in servers.items() if extra}
    rows, bodies = [], None
    if args.bodies is not None and args.bodies.exists():
        bodies = json.loads(args.bodies.read_text())
    for name, extra in servers.items():
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = start([*base, "--port", str(port), *extra], env, url)
        try:
            if bodies is None:
                bodies = record_callbacks(url)  # computes the analysis once, into the cache
                if args.bodies is not None:
                    args.bodies.write_text(json.dumps(bodies))
            load(url, bodies, args.sessions, 5)  # warm-up: every worker has the view
            warm = tree_rss(process.pid)
            result = load(url, bodies, args.sessions, args.interactions)
            end = tree_rss(process.pid)
        finally:
            os.killpg(process.pid, 15)
            process.wait(30)
        out = result["out"]
        rows.append([name, len(out["click"]) + len(out["view"]), len(result["errors"]),
                     f"{pct(out['click'], 50):.0f} / {pct(out['click'], 95):.0f} / "
                     f"{pct(out['click'], 99):.0f}",
                     f"{pct(out['view'], 50):.0f} / {pct(out['view'], 95):.0f} / "
                     f"{pct(out['view'], 99):.0f}",
                     f"{warm / 2**20:.0f} → {end / 2**20:.0f} MiB "
                     f"({(end - warm) / max(warm, 1) * 100:+.1f} %)",
                     f"{(len(out['click']) + len(out['view'])) / result['seconds']:.1f}"])
    baseline = rows[0][3]
    for row in rows:  # click p95 against the development server's (the baseline)
        row.append(f"{float(row[3].split(' / ')[1]) / float(baseline.split(' / ')[1]):.2f}")
    print(f"\n{machine_line()}; {args.sessions} sessions × {args.interactions} interactions "
          f"on cached views ({len(bodies or [])} callbacks per full view, {CLASSES} classes)")
    print_table("Load on cached views",
                ["server", "interactions", "errors", "click p50/p95/p99 ms",
                 "full view p50/p95/p99 ms", "memory after warm-up → end", "interactions/s",
                 "click p95 ÷ dev server's"],
                rows)


if __name__ == "__main__":
    main()
