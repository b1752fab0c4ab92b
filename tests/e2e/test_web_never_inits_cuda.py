"""The web processes never initialise CUDA (issue 11 item 4): ``classmap serve --workers 1
--broker redis://…`` (gunicorn; background callbacks published to Celery) runs with a trap
(tests/e2e/cuda_trap/sitecustomize.py) that makes every web process look like a GPU host
and records any CUDA initialisation; a ``classmap worker`` (without the trap: workers may
use a GPU) does the model work. A browser draws the Classes and Weights pages, and a
background job (an operator's class-map embedding) is requested. The trap's file must
stay empty. (Without the trap's "a GPU is present" the test could not fail on a
machine without one: code that picks CUDA when present would pick the CPU here.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from classmap.app.config import Settings
from classmap.app.hosting import access
from classmap.app.server import create_app
from classmap.app.shell.services import Services
from tests.e2e.conftest import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT = 60_000
MODEL = "cuda-trap"
CLASSES = 40
TRAP_DIR = Path(__file__).resolve().parent / "cuda_trap"
REDIS = "/usr/bin/redis-server"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if not Path(REDIS).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but redis-server is missing (.ci/run installs it)")
        pytest.skip("redis-server is not installed")
    port = free_port()
    folder = tmp_path_factory.mktemp("cuda-redis")
    process = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    import socket

    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start within 30 s")
            time.sleep(0.2)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def trapped_server(redis_url, tmp_path_factory, artifacts_dir):
    """(URL, trap file, app of the same settings) of gunicorn with the CUDA trap, its
    model analysed beforehand into its cache (this test process, not the server)."""
    folder = tmp_path_factory.mktemp("cuda-trap")
    head = folder / f"{MODEL}.npy"
    np.save(head, np.random.default_rng(0).normal(size=(CLASSES, 16)).astype(np.float32))
    models = json.dumps([{"id": MODEL, "head": str(head)}])
    settings = Settings.create(cache_dir=folder / "cache", jobs_dir=folder / "jobs",
                               warm_default=False, device="cpu",
                               environ={"CLASSMAP_MODELS": models})
    services = Services(settings)
    services.view((MODEL, "cosine", "ward"))
    services.embedding(MODEL, "pca")
    trap = folder / "cuda-initialised.txt"
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_MODELS": models,
           "CLASSMAP_JOBS_DIR": str(folder / "jobs"), "CLASSMAP_CUDA_TRAP": str(trap),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(TRAP_DIR),
                                                       os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--cache-dir", str(folder / "cache"), "--workers", "1",
               "--broker", redis_url]
    worker_log = artifacts_dir / "cuda-trap-worker.log"
    worker_env = {key: value for key, value in env.items() if key != "CLASSMAP_CUDA_TRAP"}
    with open(worker_log, "w") as log:  # the model work: a worker may use a GPU
        worker = subprocess.Popen(
            [sys.executable, "-m", "classmap.app.cli", "worker", "--broker", redis_url,
             "--cache-dir", str(folder / "cache"), "--device", "cpu", "--concurrency", "1"],
            cwd=ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "ready." not in worker_log.read_text():
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"classmap worker did not start; see {worker_log}")
            time.sleep(0.5)
        server_log = artifacts_dir / "cuda-trap-server.log"
        with open(server_log, "w") as log:  # its own group: gunicorn's workers stop with it
            server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while not answers(url + "/healthz"):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"classmap serve did not start; see {server_log}")
                time.sleep(0.5)
            yield url, trap, create_app(settings)
        finally:
            stop_group(server)
    finally:
        stop_group(worker)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process's group, SIGKILL after 20 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def test_the_trap_records_a_cuda_initialisation(tmp_path):
    """The trap itself: a process that creates a CUDA tensor is recorded, one that does
    not is not (so an empty file means something)."""
    trap = tmp_path / "trap.txt"
    env = {**os.environ, "CLASSMAP_CUDA_TRAP": str(trap), "PYTHONPATH": str(TRAP_DIR)}
    quiet = subprocess.run([sys.executable, "-c", "import torch; torch.zeros(3) + 1"],
                           env=env, capture_output=True, timeout=120)
    assert quiet.returncode == 0 and not trap.exists()
    picked = subprocess.run(
        [sys.executable, "-c", "import torch\n"
         "device = 'cuda' if torch.cuda.is_available() else 'cpu'\n"
         "torch.zeros(3, device=device)"], env=env, capture_output=True, timeout=120)
    assert picked.returncode != 0
    assert "initialised CUDA" in trap.read_text()


def post_job(url: str, app) -> dict:
    """Request the class map's t-SNE job (a background callback) as the page would start
    it; → the server's answer (the job's handle)."""
    callback_id = next(key for key in access.operator_outputs(app.callback_map)
                       if key.startswith("classes-embedding-done.data") or
                       "classes-embedding-done.data" in key)
    spec = app.callback_map[callback_id]
    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1)))
               for part in callback_id.strip(".").split("...")]
    selection = {"model": MODEL, "metric": "cosine", "linkage": "ward", "embedding": "tsne"}
    body = {"output": callback_id, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "changedPropIds": [f"{item['id']}.{item['property']}" for item in spec["inputs"]],
            "inputs": [{**item, "value": {"model": MODEL, "method": "tsne",
                                          "selection": selection}}
                       for item in spec["inputs"]],
            "state": [{**item, "value": None} for item in spec["state"]]}
    request = urllib.request.Request(url + "/_dash-update-component",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status in (200, 204)
        return json.loads(response.read() or b"{}")


def test_web_processes_never_initialise_cuda(trapped_server, new_page):
    url, trap, app = trapped_server
    page = new_page()
    page.goto(f"{url}/?model={MODEL}&focal=class_3")
    try:
        page.get_by_text(f"{CLASSES} classes, every cell shown").wait_for(timeout=TIMEOUT)
    except Exception:  # noqa: BLE001 — fail with what the page and the trap say instead
        pytest.fail("the Classes page was not drawn; it says: "
                    + page.evaluate("document.body.innerText")[:1500]
                    + ("\ntrap: " + trap.read_text()[:3000] if trap.exists() else ""))
    page.wait_for_timeout(2000)  # the secondary views (class map, neighbours)
    page.goto(f"{url}/weights?model={MODEL}&focal=class_3")
    page.wait_for_selector("#shell-model", timeout=TIMEOUT)
    page.wait_for_timeout(3000)
    answer = post_job(url, app)  # published to Redis; no worker runs it here
    assert "cacheKey" in json.dumps(answer) or "job" in json.dumps(answer), answer
    time.sleep(2)
    assert not trap.exists(), "a web process initialised CUDA:\n" + trap.read_text()[:4000]
