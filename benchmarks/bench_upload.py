"""One large head upload through a served instance: end-to-end time of ``POST /uploads``
(multipart body over loopback, counted read into the cache, SHA-256, safetensors header
check, ``--head`` validation of the head tensor picked by ``head_key``, atomic store).

A "checkpoint" of the given size: ``fc.weight`` [1000, 1280] float32 plus 16 MiB filler
tensors. The server runs in a thread of this process (Werkzeug's development server); the
first upload of a process also pays the import of timm (class-name lookup).

    python benchmarks/bench_upload.py [SIZE_MIB ...]      # default: 64 256
"""

from __future__ import annotations

import base64
import http.client
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from classmap.app.config import Settings
from classmap.app.hosting.config import add_user, load_config
from classmap.app.server import create_app, serve_in_thread

BOUNDARY = "benchboundary"


def checkpoint(path: Path, mib: int) -> None:
    rng = np.random.default_rng(0)
    tensors = {"fc.weight": rng.normal(size=(1000, 1280)).astype(np.float32)}
    for i in range(max(mib * 2**20 - tensors["fc.weight"].nbytes, 0) // (16 * 2**20)):
        tensors[f"block{i}.conv.weight"] = np.ones((16, 2**18), np.float32)
    save_file(tensors, str(path))


def main(sizes: list[int]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    config = folder / "classmap.toml"
    config.write_text('[server]\nallowed_hosts = ["bench.test"]\n[limits]\n'
                      'upload_bytes = 2147483648\n[uploads]\nenabled = true\n')
    add_user(config, "alice", "alice-secret-1", "operator")
    settings = Settings.create(cache_dir=folder / "cache", jobs_dir=folder / "jobs", environ={},
                               warm_default=False, hosting=load_config(config))
    thread = serve_in_thread(create_app(settings), "127.0.0.1", 0)
    port = thread._classmap_server.server_port
    token = base64.b64encode(b"alice:alice-secret-1").decode()
    for mib in sizes:
        path = folder / f"checkpoint-{mib}.safetensors"
        checkpoint(path, mib)
        data = path.read_bytes()
        body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"c.safetensors\"\r\n\r\n").encode() + data + (
            f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"head_key\"\r\n\r\n"
            f"fc\r\n--{BOUNDARY}--\r\n").encode()
        start = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        connection.request("POST", "/uploads", body=body, headers={
            "Host": "bench.test", "Authorization": f"Basic {token}", "Accept": "application/json",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        response = connection.getresponse()
        answer = response.read()
        elapsed = time.perf_counter() - start
        print(f"{len(data) / 2**20:.0f} MiB: HTTP {response.status} in {elapsed:.2f} s "
              f"({len(data) / 2**20 / elapsed:.0f} MiB/s) {answer[:60]!r}")
    thread._classmap_server.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [64, 256])
