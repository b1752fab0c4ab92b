"""What a hostile client costs the server: memory, log bytes and per-key tables.

Each scenario runs in a fresh process that serves the app on loopback (two users, the
embedded default model analysed once first) and sends N callback requests:

* ``benign``  — N requests for the analysis that is already in memory (the baseline);
* ``hostile`` — N requests naming a different, made-up model each (a 20 KB id every
  20th request), N requests without credentials, and 5 bodies of 50 MB.

It prints the growth of the process's resident memory over the N requests (with the
hostile/benign ratio) and then over the 50 MB bodies, the bytes its log received, the
per-key lock table and the analyses kept. Client and server share the process (the
bodies are made before measuring).

    python benchmarks/bench_hostile.py [--requests 2000] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile

from _measure import machine_line, print_table, run_isolated

CHILD = r"""
import base64, http.client, io, json, logging, os, tempfile, time
from pathlib import Path
import psutil
from classmap.app.config import Settings
from classmap.app.hosting import access
from classmap.app.hosting.config import add_user, load_config
from classmap.app.server import create_app, serve_in_thread

N, SCENARIO, CACHE = {n}, {scenario!r}, {cache!r}
folder = Path(tempfile.mkdtemp())
add_user(folder / "c.toml", "bob", "bob-secret-22", "viewer")
settings = Settings.create(cache_dir=CACHE, jobs_dir=folder / "jobs", environ={{}},
                           warm_default=False, hosting=load_config(folder / "c.toml"))
app = create_app(settings)
services = app._classmap_services
services.view((settings.default_model, "cosine", "ward"))
log = io.StringIO()
handler = logging.StreamHandler(log)
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
access.limit_log_lines()
thread = serve_in_thread(app, "127.0.0.1", 0)
port = thread._classmap_server.server_port
auth = {{"Authorization": "Basic " + base64.b64encode(b"bob:bob-secret-22").decode()}}
callback_id = next(k for k in app.callback_map if k.startswith("..analysis-status.data@")
                   and app.callback_map[k]["inputs"][0]["id"] == "analysis-key")
spec = app.callback_map[callback_id]
outputs = [dict(zip(("id", "property"), p.rsplit(".", 1))) for p in callback_id[2:-2].split("...")]

def post(key, headers, body=None):
    if body is None:
        body = json.dumps({{"output": callback_id, "outputs": outputs, "changedPropIds": [],
                           "inputs": [{{**spec["inputs"][0], "value": key}}],
                           "state": [{{**spec["state"][0], "value": None}}]}}).encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request("POST", "/_dash-update-component", body=body,
                  headers={{"Content-Type": "application/json", **headers}})
        r = c.getresponse(); r.read(); return r.status
    except (BrokenPipeError, ConnectionResetError):
        return 413
    finally:
        c.close()

process = psutil.Process()
big = b"[" + b"0," * (25 * 1024 * 1024) + b"0]"  # made before measuring: the client shares the process
for _ in range(50):  # warm the request path
    post([settings.default_model, "cosine", "ward"], auth)
rss0, log0 = process.memory_info().rss, len(log.getvalue())
statuses = {{}}
started = time.perf_counter()
for i in range(N):
    if SCENARIO == "benign":
        s = post([settings.default_model, "cosine", "ward"], auth)
    else:
        name = f"m{{i}}-" + ("x" * 20_000 if i % 20 == 0 else "")
        s = post([name, "cosine", "ward"], auth)
        statuses[s] = statuses.get(s, 0) + 1
        s = post([name, "cosine", "ward"], {{}})
    statuses[s] = statuses.get(s, 0) + 1
rss_loop = process.memory_info().rss
if SCENARIO == "hostile":
    for _ in range(5):
        s = post(None, auth, body=big)
        statuses[s] = statuses.get(s, 0) + 1
seconds = time.perf_counter() - started
print(json.dumps({{"rss_growth_mb": (process.memory_info().rss - rss0) / 2**20,
                   "rss_growth_requests_mb": (rss_loop - rss0) / 2**20,
                   "log_bytes": len(log.getvalue()) - log0, "locks": len(services._key_lock),
                   "views": len(services._views), "statuses": statuses, "seconds": seconds}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    cache = args.cache_dir or tempfile.mkdtemp(prefix="classmap-bench-")
    results = {scenario: run_isolated(CHILD.format(n=args.requests, scenario=scenario,
                                                   cache=cache))
               for scenario in ("benign", "hostile")}
    base = results["benign"]
    rows = []
    for scenario, r in results.items():
        grown = r["rss_growth_requests_mb"]
        ratio = grown / base["rss_growth_requests_mb"] if base["rss_growth_requests_mb"] > 0 else None
        rows.append([scenario, f"{grown:.1f}",
                     "—" if ratio is None or scenario == "benign" else f"{ratio:.2f}×",
                     f"{r['rss_growth_mb'] - grown:.1f}" if scenario == "hostile" else "—",
                     f"{r['log_bytes'] / 1024:.0f}", r["locks"], r["views"],
                     json.dumps(r["statuses"], sort_keys=True), f"{r['seconds']:.1f}"])
    print(f"\n{machine_line()}; {args.requests} requests per scenario")
    print_table("Hostile client vs the same number of benign requests",
                ["scenario", "RSS growth, requests (MB)", "vs benign",
                 "then 5 × 50 MB bodies (MB)", "log (KiB)", "locks left",
                 "analyses kept", "statuses", "seconds"], rows)


if __name__ == "__main__":
    main()
