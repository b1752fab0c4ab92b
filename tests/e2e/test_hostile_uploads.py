"""Hostile uploads against a real server on loopback (issue 11 item 7): bodies that lie
about their length, chunked bodies past the limit, half-sent bodies — each refused with
a one-line 4xx, nothing stored, nothing written outside the cache, the server healthy.

The server runs in a thread of this process (``serve_in_thread``) with uploads on, a
64,000-byte limit, alice (operator) and bob (viewer); requests go over raw sockets so
the headers can say what the test client would correct.
"""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from classmap.app.config import Settings
from classmap.app.hosting.config import add_user, load_config
from classmap.app.server import create_app, serve_in_thread

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22"}
LIMIT = 64_000
BOUNDARY = "cmboundary"
FORBIDDEN = [b"Traceback", b"Error:", b"KeyError", b"ValueError", b".incoming", b"/tmp"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile-uploads")
    config = root / "classmap.toml"
    config.write_text(f'[server]\nallowed_hosts = ["classmap.test"]\n[limits]\n'
                      f"upload_bytes = {LIMIT}\n[uploads]\nenabled = true\n")
    add_user(config, "alice", PASSWORDS["alice"], "operator")
    add_user(config, "bob", PASSWORDS["bob"], "viewer")
    return root


@pytest.fixture(scope="module")
def port(sandbox):
    settings = Settings.create(cache_dir=sandbox / "cache", jobs_dir=sandbox / "jobs",
                               environ={}, warm_default=False,
                               hosting=load_config(sandbox / "classmap.toml"))
    thread = serve_in_thread(create_app(settings), "127.0.0.1", 0)
    yield thread._classmap_server.server_port
    thread._classmap_server.shutdown()


def snapshot(root: Path) -> dict[str, int]:
    """Every file of the sandbox (job folder left out: the server's own)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")
            if p.is_file() and "jobs" not in p.relative_to(root).parts}


@pytest.fixture(scope="module")
def before(sandbox, port):
    return snapshot(sandbox)


def multipart(data: bytes, name: str = "head.safetensors") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() \
        + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def exchange(port: int, headers: dict[str, str], chunks: list[bytes], user: str = "alice",
             close_write: bool = True) -> tuple[int, bytes]:
    """POST /uploads with ``headers`` as given (no Content-Length added), send ``chunks``
    as they are, and read the answer (a server that answers early may reset the rest)."""
    token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
    headers = {"Accept": "text/plain", **headers}
    lines = ["POST /uploads HTTP/1.1", "Host: classmap.test", f"Authorization: Basic {token}",
             f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
             *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        try:
            connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            for chunk in chunks:
                connection.sendall(chunk)
            if close_write:
                connection.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the body was sent: the answer is waiting
        answer = b""
        try:
            while True:
                part = connection.recv(65536)
                if not part:
                    break
                answer += part
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
        except ConnectionResetError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def chunked(payload: bytes, size: int = 8192) -> list[bytes]:
    parts = [payload[i:i + size] for i in range(0, len(payload), size)]
    return [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts] + [b"0\r\n\r\n"]


def head_bytes(classes: int, features: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return save({"weight": rng.normal(size=(classes, features)).astype(np.float32)})


def assert_clean_refusal(status: int, body: bytes, expected: int) -> None:
    assert status == expected, body
    assert body.count(b"\n") == 1, body
    for word in FORBIDDEN:
        assert word not in body, f"{word!r} in {body!r}"


def healthy(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: classmap.test\r\nConnection: close"
                           b"\r\n\r\n")
        return connection.recv(100).startswith(b"HTTP/1.1 200")


def test_a_chunked_body_past_the_limit_is_cut_off_with_413(port, sandbox, before):
    big = multipart(head_bytes(40, 500))  # ~80 kB, no Content-Length
    assert len(big) > LIMIT
    status, body = exchange(port, {"Transfer-Encoding": "chunked"}, chunked(big))
    assert_clean_refusal(status, body, 413)
    assert snapshot(sandbox) == before and healthy(port)


def test_a_body_longer_than_its_content_length_is_read_only_that_far(port, sandbox, before):
    big = multipart(head_bytes(40, 500))
    status, body = exchange(port, {"Content-Length": "1000"}, [big])
    assert_clean_refusal(status, body, 400)
    assert snapshot(sandbox) == before and healthy(port)


def test_a_content_length_past_the_limit_is_refused_before_the_body(port, sandbox, before):
    # Nothing but the headers is sent and the socket stays open: an answer proves the
    # server did not wait for the 10 GB it was promised.
    status, body = exchange(port, {"Content-Length": str(10**10)}, [], close_write=False)
    assert status == 413 and body == b"request body too large\n"
    assert snapshot(sandbox) == before and healthy(port)


def test_a_body_cut_short_is_refused_and_its_part_removed(port, sandbox, before):
    full = multipart(head_bytes(6, 8))
    status, body = exchange(port, {"Content-Length": str(len(full))}, [full[: len(full) // 2]])
    assert_clean_refusal(status, body, 400)
    assert snapshot(sandbox) == before and healthy(port)


def test_a_viewer_is_refused_even_with_a_valid_head(port, sandbox, before):
    data = multipart(head_bytes(6, 8))
    status, body = exchange(port, {"Content-Length": str(len(data))}, [data], user="bob")
    assert status == 403
    assert snapshot(sandbox) == before


def test_after_the_attacks_a_good_upload_is_stored_only_in_the_cache(port, sandbox, before):
    data = head_bytes(6, 8, seed=1)
    form = multipart(data, "team.safetensors")
    status, body = exchange(port, {"Content-Length": str(len(form)),
                                   "Accept": "application/json"}, [form])
    assert status == 201, body
    record = json.loads(body)
    assert record["num_classes"] == 6
    added = sorted(set(snapshot(sandbox)) - set(before))
    assert added == sorted([f"cache/uploads/{record['sha256']}.safetensors",
                            f"cache/uploads/{record['id']}.json"])
    assert not any((sandbox / "cache" / "uploads" / ".incoming").iterdir())
    assert (sandbox / "cache" / "uploads" / f"{record['sha256']}.safetensors").read_bytes() == data
