"""Head uploads (issue 11 items 6 and 7): operators only, safetensors only, a size limit
the server enforces, validated like ``--head``, never unpickled, stored in the cache.

Through Flask's test client on the real app (guard included); the raw-socket cases
(chunked bodies, a lying Content-Length) are in tests/e2e/test_hostile_uploads.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save, save_file

from classmap.analysis.errors import ClassmapError
from classmap.app.config import Settings
from classmap.app.hosting import access, uploads
from classmap.app.hosting.config import DEFAULT_UPLOAD_BYTES, add_user, load_config
from classmap.app.server import create_app

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22"}
HOST = {"Host": "classmap.test"}
LIMIT = 64_000  # [limits] upload_bytes of the test instance
# Never in a response: tracebacks, exception classes, pickled code, server paths.
FORBIDDEN = [b"Traceback", b"Error:", b"KeyError", b"ValueError", b"RuntimeError",
             b"UnpicklingError", b"SafetensorError", b"posix", b".incoming"]


def basic(name: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{PASSWORDS[name]}".encode()).decode()
    return {"Authorization": f"Basic {token}", **HOST}


def make_config(folder: Path, uploads_section: str) -> Path:
    path = folder / "classmap.toml"
    path.write_text(f'[server]\nallowed_hosts = ["classmap.test"]\n\n[limits]\n'
                    f"upload_bytes = {LIMIT}\nmax_classes = 50\n\n{uploads_section}")
    add_user(path, "alice", PASSWORDS["alice"], "operator")
    add_user(path, "bob", PASSWORDS["bob"], "viewer")
    return path


def make_app(folder: Path, uploads_section: str = "[uploads]\nenabled = true\n"):
    config = make_config(folder, uploads_section)
    settings = Settings.create(cache_dir=folder / "cache", jobs_dir=folder / "jobs", environ={},
                               warm_default=False, hosting=load_config(config))
    return create_app(settings)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def app(folder):
    return make_app(folder)


@pytest.fixture(scope="module")
def client(app):
    return app.server.test_client()


def stored_files(folder: Path) -> list[str]:
    """Every file (not folder) under the instance's uploads folder."""
    root = folder / "cache" / "uploads"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) \
        if root.exists() else []


def planted_head(classes: int = 6, features: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"weight": rng.normal(size=(classes, features)).astype(np.float32),
            "bias": rng.normal(size=classes).astype(np.float32)}


def post(client, data: bytes, user: str = "alice", filename: str = "head.safetensors",
         headers: dict[str, str] | None = None, **fields: str):
    form = {"file": (io.BytesIO(data), filename), **fields}
    return client.post("/uploads", data=form, content_type="multipart/form-data",
                       headers={**basic(user), "Accept": "application/json", **(headers or {})})


def assert_refused(response, status: int, folder: Path, before: list[str], *words: str) -> None:
    """A one-line 4xx of plain text, naming the problem, with nothing stored."""
    body = response.data
    assert response.status_code == status, body
    assert response.mimetype == "text/plain"
    assert body.endswith(b"\n") and body.count(b"\n") == 1, body
    for word in FORBIDDEN:
        assert word not in body, f"{word!r} in {body!r}"
    assert str(folder).encode() not in body and b"/tmp" not in body, body
    for word in words:
        assert word.encode() in body, f"{word!r} not in {body!r}"
    assert stored_files(folder) == before


# -- the config ---------------------------------------------------------------------------------


def test_uploads_are_off_by_default_and_the_limit_has_a_default(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[server]\n")
    config = load_config(path)
    assert config.uploads.enabled is False
    assert config.upload_bytes == DEFAULT_UPLOAD_BYTES == 512 * 2**20
    path.write_text("[uploads]\nenabled = true\nmax_files = 3\n[limits]\nupload_bytes = 1000\n")
    config = load_config(path)
    assert (config.uploads.enabled, config.uploads.max_files, config.upload_bytes) == (True, 3,
                                                                                      1000)


@pytest.mark.parametrize("text, word", [("[uploads]\nenabled = \"yes\"\n", "true or false"),
                                        ("[uploads]\nmax_bytes = 5\n", "unknown key"),
                                        ("[uploads]\nmax_files = 0\n", "positive")])
def test_bad_upload_settings_are_refused_in_one_line(tmp_path, text, word):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ClassmapError, match=word):
        load_config(path)


# -- who may upload ------------------------------------------------------------------------------


def test_uploads_off_answers_404_and_stores_nothing(tmp_path):
    client = make_app(tmp_path, "").server.test_client()
    data = save(planted_head())
    for method in ("GET", "POST"):
        response = client.open("/uploads", method=method, headers=basic("alice"),
                               data={"file": (io.BytesIO(data), "h.safetensors")})
        assert response.status_code == 404 and b"[uploads] enabled = true" in response.data
    # The guard's body limit stays the general one while uploads are off.
    big = client.post("/uploads", data=b"x" * 4_100_000, headers=basic("alice"))
    assert big.status_code == 413
    assert stored_files(tmp_path) == []


def test_no_credentials_401_and_a_viewer_403_before_the_body_is_read(client, folder):
    before = stored_files(folder)
    data = save(planted_head())
    anonymous = client.post("/uploads", headers=HOST,
                            data={"file": (io.BytesIO(data), "h.safetensors")})
    assert anonymous.status_code == 401 and anonymous.data == b"authentication required\n"
    for method in ("GET", "POST"):
        viewer = client.open("/uploads", method=method, headers=basic("bob"),
                             data={"file": (io.BytesIO(data), "h.safetensors")})
        assert viewer.status_code == 403 and b"operator" in viewer.data
        assert b"<form" not in viewer.data
    assert stored_files(folder) == before


def test_the_upload_route_is_declared_operator_only():
    assert "uploads" in access.OPERATOR_ROUTES


def test_a_cross_site_form_post_is_refused(client, folder):
    before = stored_files(folder)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}):
        response = post(client, save(planted_head(seed=9)), headers=headers)
        assert_refused(response, 403, folder, before, "cross-site")


def test_the_operator_page_has_the_form_and_passes_the_csp(client):
    response = client.get("/uploads", headers=basic("alice"))
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert b'enctype="multipart/form-data"' in response.data
    assert f"{LIMIT:,}".encode() in response.data
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert b"<script" not in response.data  # nothing the CSP would block


def test_head_of_the_upload_page_is_its_gets_headers_not_an_upload(client, folder):
    before = stored_files(folder)
    response = client.head("/uploads", headers=basic("alice"))
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.data == b"" and stored_files(folder) == before


# -- the happy path ----------------------------------------------------------------------------


def menu_response(app, client, user: str) -> dict:
    """The Model menu's callback answer (its options, the header's upload link's
    ``hidden``) as ``user``'s page asks for it on a navigation."""
    callback_id = next(key for key in app.callback_map if "shell-model.options" in key)
    spec = app.callback_map[callback_id]
    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1)))
               for part in callback_id.strip(".").split("...")]
    body = {"output": callback_id, "outputs": outputs, "changedPropIds": [], "state": [],
            "inputs": [{**item, "value": "/"} for item in spec["inputs"]]}
    response = client.post("/_dash-update-component", json=body, headers=basic(user))
    assert response.status_code == 200, response.data
    return json.loads(response.data)["response"]


def test_an_uploaded_head_is_stored_offered_to_everyone_and_analysed(app, client, folder):
    arrays = planted_head()
    data = save(arrays)
    names = "\n".join(f"kind {i}" for i in range(6))
    response = post(client, data, name="Team head v2", classes=names)
    assert response.status_code == 201, response.data
    summary = json.loads(response.data)
    digest = hashlib.sha256(data).hexdigest()
    expected_id = "upload-" + hashlib.sha256(f"{digest}\0\0{names}".encode()).hexdigest()[:12]
    assert summary == {"id": expected_id, "name": "Team head v2", "num_classes": 6,
                       "num_features": 8, "bytes": len(data), "sha256": digest, "new": True}
    # Stored in the instance's cache: the file by its digest, the names, the sidecar.
    assert stored_files(folder) == sorted([f"{digest}.safetensors", f"{expected_id}.json",
                                           f"{expected_id}.classes.txt"])
    assert (folder / "cache" / "uploads" / f"{digest}.safetensors").read_bytes() == data
    record = json.loads((folder / "cache" / "uploads" / f"{expected_id}.json").read_text())
    assert record["uploader"] == "alice" and record["name"] == "Team head v2"
    assert str(folder) not in json.dumps(record)  # names inside the folder, no paths

    settings = app._classmap_services.settings
    assert expected_id in settings.model_ids
    assert settings.model(expected_id).label == "Team head v2 (uploaded)"
    # The Model menu's options, as a viewer's page asks for them.
    offered = menu_response(app, client, "bob")["shell-model"]["options"]
    assert {"label": "Team head v2 (uploaded)", "value": expected_id} in offered
    # The analysis runs on exactly the uploaded weights, with the given names.
    services = app._classmap_services
    head = services.head(expected_id)
    np.testing.assert_array_equal(head.weight, arrays["weight"])
    np.testing.assert_array_equal(head.bias, arrays["bias"])
    assert head.classes.names == tuple(f"kind {i}" for i in range(6))
    view = services.view((expected_id, "cosine", "ward"))
    assert view.num_classes == 6

    # The same upload again: the same id, nothing stored twice.
    again = post(client, data, name="Team head v2", classes=names)
    assert again.status_code == 200 and json.loads(again.data)["new"] is False
    assert len(stored_files(folder)) == 3


def test_a_browser_form_gets_a_page_with_a_link_to_the_model(client, folder):
    data = save(planted_head(seed=3))
    response = client.post("/uploads", headers={**basic("alice"), "Accept": "text/html",
                                                "Origin": "http://classmap.test",
                                                "Sec-Fetch-Site": "same-origin"},
                           data={"file": (io.BytesIO(data), "my <i>head.safetensors")},
                           content_type="multipart/form-data")
    assert response.status_code == 201 and response.mimetype == "text/html"
    assert b"?model=upload-" in response.data
    assert b"<i>head" not in response.data and b"my &lt;i&gt;head" in response.data


def test_a_whole_network_file_needs_head_key_like_the_cli(client, folder):
    rng = np.random.default_rng(5)
    network = {"features.0.weight": rng.normal(size=(16, 12)).astype(np.float32),
               "proj.weight": rng.normal(size=(12, 16)).astype(np.float32),
               "out_layer.weight": rng.normal(size=(7, 12)).astype(np.float32),
               "out_layer.bias": rng.normal(size=7).astype(np.float32)}
    data = save(network)
    before = stored_files(folder)
    refused = post(client, data)
    assert_refused(refused, 400, folder, before, "head_key", "out_layer.weight")
    assert b"--head" not in refused.data
    chosen = post(client, data, head_key="out_layer")
    assert chosen.status_code == 201, chosen.data
    head = client.application.config["CLASSMAP_SERVICES"].head(json.loads(chosen.data)["id"])
    np.testing.assert_array_equal(head.weight, network["out_layer.weight"])
    np.testing.assert_array_equal(head.bias, network["out_layer.bias"])


def test_class_names_in_the_safetensors_metadata_are_used(client):
    arrays = planted_head(classes=3, seed=4)
    data = save(arrays, metadata={"class_names": json.dumps(["ant", "bee", "cow"])})
    response = post(client, data)
    assert response.status_code == 201, response.data
    head = client.application.config["CLASSMAP_SERVICES"].head(json.loads(response.data)["id"])
    assert head.classes.names == ("ant", "bee", "cow")


# -- refused files ------------------------------------------------------------------------------


class Bomb:
    """Unpickling it creates the folder ``marker`` (code run by a pickle)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_bomb_is_refused_and_never_unpickled(client, folder, tmp_path):
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Bomb(probe)))  # the bomb is real: unpickling runs it
    assert probe.is_dir()
    marker = tmp_path / "marker"
    raw = pickle.dumps({"weight": Bomb(marker)})
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(3, 4), "x": Bomb(marker)}, buffer)
    before = stored_files(folder)
    for payload in (raw, buffer.getvalue()):
        for name in ("head.pt", "head.safetensors", "head.pth"):
            response = post(client, payload, filename=name)
            assert_refused(response, 400, folder, before, "safetensors")
    assert not marker.exists()


def _header(entries: dict, data: bytes = b"") -> bytes:
    header = json.dumps(entries).encode()
    return len(header).to_bytes(8, "little") + header + data


def _corrupt_files() -> list[tuple[str, bytes, str]]:
    good = save(planted_head())
    one_class = save({"weight": np.ones((1, 4), np.float32)})
    nan = planted_head()
    nan["weight"][2, 1] = np.nan
    torch_file = io.BytesIO()
    torch.save({"weight": torch.ones(3, 4)}, torch_file)
    return [
        ("a torch file", torch_file.getvalue(), "not a safetensors file"),
        ("garbage", os.urandom(3000), "not a safetensors file"),
        ("too short", b"\x01\x02", "not a safetensors file"),
        ("truncated", good[: len(good) // 2], "truncated"),
        ("huge header length", (2**60).to_bytes(8, "little") + b"{}" * 50, "header length"),
        ("header not JSON", (20).to_bytes(8, "little") + b"\xff" * 20 + b"\0" * 16, "not JSON"),
        ("header a list", _header([1, 2]), "not a JSON object"),
        ("no tensors", _header({"__metadata__": {"a": "b"}}), "no tensors"),
        ("unknown dtype", _header({"w": {"dtype": "Q9", "shape": [2, 2],
                                         "data_offsets": [0, 8]}}, b"\0" * 8), "unknown dtype"),
        ("negative shape", _header({"w": {"dtype": "F32", "shape": [-2, 2],
                                          "data_offsets": [0, 16]}}, b"\0" * 16), "shape"),
        ("offsets outside", _header({"w": {"dtype": "F32", "shape": [2, 2],
                                           "data_offsets": [0, 10**12]}}, b"\0" * 16),
         "outside"),
        ("size not shape", _header({"w": {"dtype": "F32", "shape": [2, 2],
                                          "data_offsets": [0, 8]}}, b"\0" * 8), "bytes"),
        ("one class", one_class, "at least 2 classes"),
        ("NaN weights", save(nan), "NaN"),
        ("bool weights", save({"weight": np.ones((3, 3), bool)}), "not real numbers"),
        ("rank 3", save({"weight": np.ones((3, 3, 3), np.float32)}), "rank 3"),
    ]


@pytest.mark.parametrize("what, data, words", _corrupt_files(), ids=lambda v: v
                         if isinstance(v, str) and len(v) < 30 else "")
def test_non_safetensors_and_invalid_heads_are_refused_in_one_line(client, folder, what, data,
                                                                   words):
    before = stored_files(folder)
    assert_refused(post(client, data), 400, folder, before, words)


def test_more_classes_than_the_instance_allows_is_refused(client, folder):
    before = stored_files(folder)
    assert_refused(post(client, save(planted_head(classes=51))), 400, folder, before,
                   "51 classes", "max_classes")


def test_class_names_that_do_not_fit_are_refused(client, folder):
    before = stored_files(folder)
    response = post(client, save(planted_head(seed=7)), classes="a\nb\nc")
    assert_refused(response, 400, folder, before, "the class list", "3 classes", "6 rows")
    response = post(client, save(planted_head(seed=7)), classes="a\na\nb\nc\nd\ne")
    assert_refused(response, 400, folder, before, "twice")


def test_an_oversized_file_is_refused_with_413_and_nothing_written(client, folder):
    before = stored_files(folder)
    big = save(planted_head(classes=40, features=500))  # 80 kB > 64,000 bytes
    assert len(big) > LIMIT
    assert_refused(post(client, big), 413, folder, before, "upload limit", "upload_bytes")
    # Declared beyond the limit: refused by the guard before the body is read.
    response = client.post("/uploads", headers=basic("alice"), data=b"",
                           content_type="multipart/form-data; boundary=x",
                           environ_overrides={"CONTENT_LENGTH": str(10**10)})
    assert response.status_code == 413 and response.data == b"request body too large\n"
    assert stored_files(folder) == before


@pytest.mark.parametrize("body, content_type, word", [
    (b"\0" * 100, "application/octet-stream", "multipart/form-data"),
    (b"--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nhi\r\n--x--\r\n",
     "multipart/form-data; boundary=x", "one file part"),
    (b"garbage without a boundary", "multipart/form-data", "multipart"),
])
def test_malformed_requests_are_refused(client, folder, body, content_type, word):
    before = stored_files(folder)
    response = client.post("/uploads", data=body, content_type=content_type,
                           headers=basic("alice"))
    assert_refused(response, 400, folder, before, word)


def test_two_file_parts_are_refused(client, folder):
    before = stored_files(folder)
    data = save(planted_head(seed=11))
    response = client.post("/uploads", headers=basic("alice"), content_type="multipart/form-data",
                           data={"file": [(io.BytesIO(data), "a.safetensors"),
                                          (io.BytesIO(data), "b.safetensors")]})
    assert_refused(response, 400, folder, before, "exactly one file")


def test_the_instance_keeps_at_most_max_files_uploads(tmp_path):
    app = make_app(tmp_path, "[uploads]\nenabled = true\nmax_files = 1\n")
    client = app.server.test_client()
    assert post(client, save(planted_head(seed=1))).status_code == 201
    before = stored_files(tmp_path)
    assert_refused(post(client, save(planted_head(seed=2))), 409, tmp_path, before, "max_files")


def test_a_broken_sidecar_is_skipped_not_offered(tmp_path):
    app = make_app(tmp_path)
    settings = app._classmap_services.settings
    folder = tmp_path / "cache" / "uploads"
    folder.mkdir(parents=True)
    (folder / "upload-0123456789ab.json").write_text('{"id": "upload-0123456789ab", '
                                                     '"file": "../../etc/passwd", "name": "x"}')
    (folder / "upload-ba9876543210.json").write_text("not json")
    assert not any(i.startswith("upload-") for i in settings.model_ids)
    # A good upload next to them is offered.
    client = app.server.test_client()
    response = post(client, save(planted_head(seed=6)))
    assert json.loads(response.data)["id"] in settings.model_ids
    assert sum(i.startswith("upload-") for i in settings.model_ids) == 1


def test_the_safetensors_writer_and_the_header_check_agree(tmp_path):
    """Every dtype safetensors writes passes the hand-written header check."""
    arrays = {str(dtype): np.ones((2, 3), dtype) for dtype in
              (np.float16, np.float32, np.float64, np.int8, np.uint8, np.int16, np.int32,
               np.int64, np.bool_)}
    path = tmp_path / "all.safetensors"
    save_file(arrays, str(path))
    assert uploads.check_safetensors_header(path, path.stat().st_size) == len(arrays)


def test_parts_left_by_a_killed_upload_are_removed_after_an_hour(tmp_path):
    incoming = tmp_path / ".incoming"
    incoming.mkdir()
    old, fresh = incoming / "old.safetensors", incoming / "fresh.safetensors"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (1_000_000, 1_000_000))
    assert uploads.remove_stale_parts(incoming) == 1
    assert sorted(p.name for p in incoming.iterdir()) == ["fresh.safetensors"]


def test_under_a_url_prefix_the_route_and_its_limits_move_with_it(tmp_path):
    config = make_config(tmp_path, "[uploads]\nenabled = true\n")
    settings = Settings.create(cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs",
                               environ={}, warm_default=False, hosting=load_config(config))
    prefixed = create_app(settings, url_prefix="/classmap")
    client = prefixed.server.test_client()
    assert find_component(prefixed.layout, uploads.LINK_ID).href == "/classmap/uploads"
    data = save(planted_head(seed=12))
    form = {"file": (io.BytesIO(data), "h.safetensors")}
    viewer = client.post("/classmap/uploads", data=form, headers=basic("bob"))
    assert viewer.status_code == 403
    operator = client.post("/classmap/uploads", headers={**basic("alice"),
                                                         "Accept": "application/json"},
                           data={"file": (io.BytesIO(data), "h.safetensors")})
    assert operator.status_code == 201, operator.data
    model_id = json.loads(operator.data)["id"]
    page = client.get("/classmap/uploads", headers=basic("alice"))
    assert b'action="/classmap/uploads"' in page.data and model_id.encode() in page.data
    assert b'action="/classmap/uploads/delete"' in page.data
    assert client.post("/uploads/delete", data={"id": model_id},
                       headers=basic("alice")).status_code != 200  # only under the prefix
    deleted = client.post("/classmap/uploads/delete", data={"id": model_id},
                          headers={**basic("alice"), "Accept": "application/json"})
    assert deleted.status_code == 200 and model_id not in settings.model_ids
    # The larger body limit belongs to the prefixed route only.
    big = client.post("/classmap/_dash-update-component", headers=basic("alice"),
                      environ_overrides={"CONTENT_LENGTH": "5000000"}, data=b"")
    assert big.status_code == 413
    allowed = client.post("/classmap/uploads", headers=basic("alice"), data=b"",
                          content_type="multipart/form-data; boundary=x",
                          environ_overrides={"CONTENT_LENGTH": "5000000"})
    assert allowed.status_code == 400  # past the general limit, read, found incomplete


# -- the header link and deleting uploads --------------------------------------------------------


def find_component(layout, component_id: str):
    """The component of ``layout`` (a Dash tree) with ``component_id``, or None."""
    if getattr(layout, "id", None) == component_id:
        return layout
    children = getattr(layout, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            found = find_component(child, component_id)
            if found is not None:
                return found
    return None


def test_the_header_links_to_the_upload_page_for_operators_only(app, client, tmp_path):
    link = find_component(app.layout, uploads.LINK_ID)
    assert link is not None and link.href == "/uploads"
    assert link.hidden is True  # until the page's first navigation says who is there
    assert menu_response(app, client, "alice")[uploads.LINK_ID]["hidden"] is False
    assert menu_response(app, client, "bob")[uploads.LINK_ID]["hidden"] is True
    off = make_app(tmp_path, "[uploads]\nenabled = false\n")
    assert find_component(off.layout, uploads.LINK_ID) is None


def delete(client, model_id: str, user: str = "alice", headers: dict | None = None,
           accept: str = "application/json"):
    return client.post("/uploads/delete", data={"id": model_id},
                       headers={**basic(user), "Accept": accept, **(headers or {})})


def test_an_operator_deletes_an_upload_and_no_process_offers_it_any_more(tmp_path):
    app = make_app(tmp_path)
    client = app.server.test_client()
    settings = app._classmap_services.settings
    data = save(planted_head(seed=21))
    # The same file twice (other class names): two uploads sharing one stored file.
    first = json.loads(post(client, data, name="one", classes="\n".join("abcdef")).data)["id"]
    second = json.loads(post(client, data, name="two", classes="\n".join("ghijkl")).data)["id"]
    other_process = Settings.create(cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs2",
                                    environ={}, warm_default=False,
                                    hosting=settings.hosting)
    assert {first, second} <= set(other_process.model_ids)
    app._classmap_services.view((first, "cosine", "ward"))  # loaded and kept in memory

    response = delete(client, first)
    assert response.status_code == 200
    assert json.loads(response.data) == {"id": first, "deleted": True}
    digest = hashlib.sha256(data).hexdigest()
    assert stored_files(tmp_path) == sorted([f"{digest}.safetensors", f"{second}.json",
                                             f"{second}.classes.txt"])
    for offered in (settings, other_process):
        assert first not in offered.model_ids and second in offered.model_ids
    menu = menu_response(app, client, "bob")["shell-model"]["options"]
    assert first not in {option["value"] for option in menu}
    with pytest.raises(ClassmapError, match="not configured"):
        app._classmap_services.view((first, "cosine", "ward"))
    assert delete(client, first).status_code == 404  # gone

    # A browser's form: back to the upload page; the last user of the file removes it.
    page = delete(client, second, headers={"Origin": "http://classmap.test"},
                  accept="text/html")
    assert page.status_code == 303 and page.headers["Location"].endswith("/uploads")
    assert stored_files(tmp_path) == []
    assert not any(i.startswith("upload-") for i in other_process.model_ids)


def test_the_upload_page_offers_a_same_origin_delete_form_per_upload(client):
    uploaded = json.loads(post(client, save(planted_head(seed=22)), name="listed").data)["id"]
    page = client.get("/uploads", headers=basic("alice")).data.decode()
    assert 'action="/uploads/delete"' in page and 'method="post"' in page
    assert f'name="id" value="{uploaded}"' in page
    assert delete(client, uploaded).status_code == 200


def test_no_credentials_401_and_a_viewer_403_on_delete_and_nothing_removed(client, folder):
    uploaded = json.loads(post(client, save(planted_head(seed=23))).data)["id"]
    before = stored_files(folder)
    anonymous = client.post("/uploads/delete", data={"id": uploaded}, headers=HOST)
    assert anonymous.status_code == 401
    viewer = delete(client, uploaded, user="bob")
    assert viewer.status_code == 403 and b"operator" in viewer.data
    assert stored_files(folder) == before
    assert "uploads/delete" in access.OPERATOR_ROUTES


@pytest.mark.parametrize("model_id", [
    "../../etc/passwd", "/etc/passwd", "..%2f..%2fetc%2fpasswd", "upload-0123456789ab/../x",
    "upload-0123456789ab.json", "upload-0123456789ab/", "upload-../../victim", "",
    "upload-0123456789AB", "upload-0123456789ab\n", "x" * 10_000, "upload-\x00123456789ab",
])
def test_hostile_ids_are_refused_4xx_and_nothing_outside_is_touched(client, folder, tmp_path,
                                                                    model_id):
    victim = folder / "cache" / "victim.json"
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text("{}")
    uploaded = json.loads(post(client, save(planted_head(seed=24))).data)["id"]
    before = stored_files(folder)
    response = delete(client, model_id)
    assert_refused(response, 400, folder, before, "upload- and 12 hex digits")
    assert victim.exists()
    assert delete(client, "upload-0123456789ab").status_code == 404  # well-formed, unknown
    assert delete(client, uploaded).status_code == 200


def test_cross_site_and_non_form_deletes_are_refused(client, folder):
    uploaded = json.loads(post(client, save(planted_head(seed=25))).data)["id"]
    before = stored_files(folder)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}):
        assert_refused(delete(client, uploaded, headers=headers), 403, folder, before,
                       "cross-site")
    as_json = client.post("/uploads/delete", json={"id": uploaded}, headers=basic("alice"))
    assert_refused(as_json, 400, folder, before, "form field")
    # A GET (a link, an <img>) never deletes: the route takes POST only — 405, not the
    # dashboard's page from Dash's page route.
    refused = client.get(f"/uploads/delete?id={uploaded}", headers=basic("alice"))
    assert refused.status_code == 405 and refused.headers["Allow"] == "POST"
    assert stored_files(folder) == before
    assert delete(client, uploaded).status_code == 200


def test_deleting_while_uploads_are_off_is_404(tmp_path):
    client = make_app(tmp_path, "[uploads]\nenabled = false\n").server.test_client()
    assert delete(client, "upload-0123456789ab").status_code == 404
