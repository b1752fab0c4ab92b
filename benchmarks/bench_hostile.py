"""What a hostile client costs the server: memory, log bytes and per-key tables.

Each scenario runs in fresh processes (``--repeats``, default 3) that serve the app on
loopback (two users, the embedded default model analysed once first) and send N
callback requests:

* ``benign``  — N requests for the analysis that is already in memory;
* ``hostile`` — N requests naming a different, made-up model each (a 20 KB id every
  20th request), N requests without credentials, and 5 requests announcing a 50 MB
  body (``Content-Length: 50000000``): headers only, the answer read before any body
  byte is sent, so a 413 is the server's refusal from the headers and a connection
  reset is counted on its own (``reset``), never as a 413.

It prints, as absolute MB (median and min–max over the fresh processes; sub-MB
differences are noise), the growth of the process's resident memory over the N
requests and then over the 50 MB announcements, the bytes its log received, the
per-key lock table, the analyses kept and the statuses. Client and server share the
process.

    python benchmarks/bench_hostile.py [--requests 2000] [--repeats 3] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
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

# Every state the callback declares: None, or no component for a wildcard (ALL) one.
states = [[] if s["id"].startswith("{{") else {{**s, "value": None}} for s in spec["state"]]

def post(key, headers):
    body = json.dumps({{"output": callback_id, "outputs": outputs, "changedPropIds": [],
                       "inputs": [{{**spec["inputs"][0], "value": key}}],
                       "state": states}}).encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request("POST", "/_dash-update-component", body=body,
                  headers={{"Content-Type": "application/json", **headers}})
        r = c.getresponse(); r.read(); return r.status
    except (BrokenPipeError, ConnectionResetError):
        return "reset"  # not a refusal: counted on its own
    finally:
        c.close()

def announce(length, headers):
    # Headers only (Content-Length: length), the answer read before any body byte.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.putrequest("POST", "/_dash-update-component", skip_accept_encoding=True)
        for name, value in {{"Content-Type": "application/json",
                             "Content-Length": str(length), **headers}}.items():
            c.putheader(name, value)
        c.endheaders()
        r = c.getresponse(); r.read(); return r.status
    except (BrokenPipeError, ConnectionResetError):
        return "reset"
    finally:
        c.close()

process = psutil.Process()
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
        s = announce(50_000_000, auth)
        statuses[s] = statuses.get(s, 0) + 1
seconds = time.perf_counter() - started
print(json.dumps({{"rss_growth_mb": (process.memory_info().rss - rss0) / 2**20,
                   "rss_growth_requests_mb": (rss_loop - rss0) / 2**20,
                   "log_bytes": len(log.getvalue()) - log0, "locks": len(services._key_lock),
                   "views": len(services._views), "statuses": {{str(k): v for k, v in statuses.items()}}, "seconds": seconds}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh processes per scenario; memory is their median")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    cache = args.cache_dir or tempfile.mkdtemp(prefix="classmap-bench-")
    rows = []
    for scenario in ("benign", "hostile"):
        runs = [run_isolated(CHILD.format(n=args.requests, scenario=scenario, cache=cache))
                for _ in range(args.repeats)]
        grown = [r["rss_growth_requests_mb"] for r in runs]
        bodies = [r["rss_growth_mb"] - r["rss_growth_requests_mb"] for r in runs]
        statuses: dict[str, int] = {}
        for r in runs:
            for status, count in r["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        rows.append([
            scenario, f"{statistics.median(grown):.1f} ({min(grown):.1f}–{max(grown):.1f})",
            f"{statistics.median(bodies):.1f} ({min(bodies):.1f}–{max(bodies):.1f})"
            if scenario == "hostile" else "—",
            f"{statistics.median(r['log_bytes'] for r in runs) / 1024:.0f}",
            max(r["locks"] for r in runs), max(r["views"] for r in runs),
            ", ".join(f"{k}: {v // args.repeats if v % args.repeats == 0 else v / args.repeats}"
                      for k, v in sorted(statuses.items())),
            f"{statistics.median(r['seconds'] for r in runs):.1f}"])
    print(f"\n{machine_line()}; {args.requests} requests per scenario; median of "
          f"{args.repeats} fresh processes (min–max)")
    print_table("Hostile client and the same number of benign requests: absolute growth",
                ["scenario", "RSS growth over the requests (MB)",
                 "then 5 × 50 MB announced bodies (MB)", "log (KiB)", "locks left (max)",
                 "analyses kept (max)", "statuses per run (reset = connection reset)",
                 "seconds"], rows)


if __name__ == "__main__":
    main()
