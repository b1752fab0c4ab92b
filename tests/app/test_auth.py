"""Authentication, roles, the users file, the secret key and the exposure rules
(issue 11 items 1 and 8), through Flask's test client on the real app."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from pathlib import Path

import pytest
from werkzeug.security import check_password_hash

from classmap.analysis.errors import ClassmapError
from classmap.app import cli
from classmap.app.config import Settings
from classmap.app.hosting import access
from classmap.app.hosting.config import add_user, list_users, load_config, remove_user
from classmap.app.hosting.identity import Identity, current_identity
from classmap.app.server import create_app

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22"}


def basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hosting") / "classmap.toml"
    path.write_text("# the team's instance\n[server]\nallowed_hosts = [\"classmap.test\"]\n"
                    "trusted_proxies = [\"10.9.8.7\"]\nproxy_user_header = \"X-Remote-User\"\n")
    add_user(path, "alice", PASSWORDS["alice"], "operator")
    add_user(path, "bob", PASSWORDS["bob"], "viewer")
    return path


@pytest.fixture(scope="module")
def hosted(config_file, session_cache, tmp_path_factory):
    """The app with two users (alice operator, bob viewer) and a trusted proxy."""
    settings = Settings.create(cache_dir=session_cache.directory,
                               jobs_dir=tmp_path_factory.mktemp("jobs"), environ={},
                               warm_default=False, hosting=load_config(config_file))
    return create_app(settings)


@pytest.fixture(scope="module")
def client(hosted):
    return hosted.server.test_client()


HOST = {"Host": "classmap.test"}


# -- the users file -------------------------------------------------------------------------------


def test_users_file_holds_salted_hashes_never_passwords(config_file):
    text = config_file.read_text()
    assert PASSWORDS["alice"] not in text and PASSWORDS["bob"] not in text
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    users = load_config(config_file).users
    assert check_password_hash(users["alice"].password_hash, PASSWORDS["alice"])
    assert not check_password_hash(users["alice"].password_hash, PASSWORDS["bob"])
    assert [(u.name, u.role) for u in list_users(config_file)] == [("alice", "operator"),
                                                                  ("bob", "viewer")]
    assert text.startswith("# the team's instance")  # the operator's comments survive


def test_same_password_gets_different_salted_hashes(tmp_path):
    path = tmp_path / "c.toml"
    add_user(path, "one", "same-password", "viewer")
    add_user(path, "two", "same-password", "viewer")
    users = load_config(path).users
    assert users["one"].password_hash != users["two"].password_hash
    remove_user(path, "one")
    assert [u.name for u in list_users(path)] == ["two"]
    with pytest.raises(ClassmapError, match="not in"):
        remove_user(path, "one")


def test_user_add_reads_the_password_from_stdin_and_creates_the_file(tmp_path, monkeypatch,
                                                                     capsys):
    path = tmp_path / "new" / "c.toml"
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin-pass\n"))
    assert cli.main(["user", "add", "carol", "--role", "operator", "--config", str(path)]) == 0
    assert check_password_hash(load_config(path).users["carol"].password_hash, "from-stdin-pass")
    assert cli.main(["user", "list", "--config", str(path)]) == 0
    assert "carol\toperator" in capsys.readouterr().out


@pytest.mark.parametrize("name, password, role", [
    ("bad:name", "long-enough", "viewer"), ("ok", "short", "viewer"), ("ok", "long-enough", "root"),
])
def test_user_add_refuses_bad_names_short_passwords_and_unknown_roles(tmp_path, name, password,
                                                                      role):
    with pytest.raises(ClassmapError):
        add_user(tmp_path / "c.toml", name, password, role)
    assert not (tmp_path / "c.toml").exists()


# -- authentication ---------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {}, basic("alice", "wrong-password"), basic("mallory", PASSWORDS["alice"]),
    {"Authorization": "Bearer abc"}, {"X-Remote-User": "alice"},  # header, but not from the proxy
])
def test_missing_or_wrong_credentials_get_401_and_no_content(client, headers):
    for path in ("/", "/classes", "/_dash-layout", "/_dash-dependencies"):
        response = client.get(path, headers={**HOST, **headers})
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert response.data == b"authentication required\n"


def test_correct_credentials_get_the_page(client):
    for name in PASSWORDS:
        response = client.get("/", headers={**HOST, **basic(name, PASSWORDS[name])})
        assert response.status_code == 200
        assert b"_dash-config" in response.data


def test_trusted_proxy_user_header_only_from_its_address(client):
    from_proxy = {"REMOTE_ADDR": "10.9.8.7"}
    ok = client.get("/_dash-layout", headers={**HOST, "X-Remote-User": "bob"},
                    environ_base=from_proxy)
    assert ok.status_code == 200
    other = client.get("/_dash-layout", headers={**HOST, "X-Remote-User": "bob"},
                       environ_base={"REMOTE_ADDR": "10.9.8.8"})
    assert other.status_code == 401


def test_loopback_without_users_needs_no_login(app_settings):
    response = create_app(app_settings).server.test_client().get("/_dash-layout")
    assert response.status_code == 200


def test_a_loopback_server_without_users_answers_only_loopback_host_names(app_settings):
    """DNS rebinding: a page of another site that resolves its name to 127.0.0.1."""
    client = create_app(app_settings).server.test_client()
    assert client.get("/healthz", headers={"Host": "rebind.attacker.example"}).status_code == 400
    for host in ("127.0.0.1:8050", "localhost:8050", "[::1]:8050", "localhost"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_unknown_host_names_are_refused(client):
    response = client.get("/healthz", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert client.get("/healthz", headers=HOST).status_code == 200
    assert client.get("/healthz", headers={"Host": "127.0.0.1:8050"}).status_code == 200


# -- roles ------------------------------------------------------------------------------------------


def callback_body(app, callback_id: str) -> dict:
    spec = app.callback_map[callback_id]
    return {"output": callback_id, "outputs": [],
            "inputs": [{**item, "value": None} for item in spec["inputs"]],
            "state": [{**item, "value": None} for item in spec["state"]],
            "changedPropIds": []}


def test_operator_jobs_are_the_embedding_image_and_compare_background_callbacks(hosted):
    operator = access.operator_outputs(hosted.callback_map)
    assert len(operator) == 3
    assert all(hosted.callback_map[key]["background"] for key in operator)
    assert any(key.startswith("classes-embedding-done.data") for key in operator)
    assert any(key.startswith("images-status.data@") for key in operator)
    assert any("compare-status.data@" in key for key in operator)


def test_a_viewer_cannot_start_operator_jobs(hosted, client):
    for callback_id in access.operator_outputs(hosted.callback_map):
        body = callback_body(hosted, callback_id)
        response = client.post("/_dash-update-component", json=body,
                               headers={**HOST, **basic("bob", PASSWORDS["bob"])})
        assert response.status_code == 403
        assert b"operator" in response.data


def test_an_operator_passes_the_role_check(hosted):
    guard = hosted.server.extensions["classmap_access"]
    for callback_id in access.operator_outputs(hosted.callback_map):
        with hosted.server.test_request_context(
                "/_dash-update-component", method="POST", json=callback_body(hosted, callback_id),
                headers={**HOST, **basic("alice", PASSWORDS["alice"])}):
            assert guard.check() is None
            assert current_identity() == Identity("alice", "operator")


# -- secret key, cookies, headers ----------------------------------------------------------------------


def test_secret_key_file_is_private_and_shared_by_processes(tmp_path, monkeypatch):
    monkeypatch.delenv("CLASSMAP_SECRET_KEY", raising=False)
    path = tmp_path / "keys" / "secret_key"
    first = access.read_or_create_secret(path)
    assert access.read_or_create_secret(path) == first and len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary left
    os.chmod(path, 0o644)
    with pytest.raises(ClassmapError, match="chmod 600"):
        access.read_or_create_secret(path)
    monkeypatch.setenv("CLASSMAP_SECRET_KEY", "k" * 40)
    assert access.load_secret_key(load_config_default(), tmp_path) == "k" * 40


def load_config_default():
    from classmap.app.hosting.config import HostingConfig

    return HostingConfig()


def test_cookie_flags_and_security_headers(hosted, client):
    config = hosted.server.config
    assert config["SESSION_COOKIE_HTTPONLY"] and config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["MAX_CONTENT_LENGTH"] == 4_000_000
    assert hosted.server.secret_key and len(hosted.server.secret_key) >= 32
    response = client.get("/", headers={**HOST, **basic("bob", PASSWORDS["bob"])})
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1]
    # Every inline script of the page is allowed by its hash, and nothing else inline.
    inline = access._INLINE_SCRIPT.findall(response.data)
    assert inline and all(access._sha256_source(s) in csp for s in inline)


# -- who may listen where ----------------------------------------------------------------------------


def test_loopback_serves_without_users():
    access.check_exposure("127.0.0.1", load_config_default(), insecure_no_auth=False)
    access.check_exposure("::1", load_config_default(), insecure_no_auth=False)


def test_other_interfaces_need_users_or_the_insecure_flag(config_file):
    with pytest.raises(ClassmapError, match="classmap user add"):
        access.check_exposure("0.0.0.0", load_config_default(), insecure_no_auth=False)
    with pytest.raises(ClassmapError, match="allowed_hosts"):
        access.check_exposure("0.0.0.0", load_config_default(), insecure_no_auth=True)
    access.check_exposure("0.0.0.0", load_config(config_file), insecure_no_auth=False)
    with pytest.raises(ClassmapError, match="--debug"):
        access.check_exposure("0.0.0.0", load_config(config_file), False, debug=True)


def test_serve_on_all_interfaces_without_users_refuses_in_one_line(capsys, tmp_path):
    code = cli.main(["serve", "--host", "0.0.0.0", "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "classmap user add" in err


def test_long_log_records_are_cut():
    record = access.logging.LogRecord("x", 30, "f", 1, "bad value %s", ("v" * 10**6,), None)
    access.TruncateLongRecords().filter(record)
    assert len(record.getMessage()) < access.MAX_LOG_CHARS + 50


def test_callback_requests_must_name_a_registered_callback(client):
    headers = {**HOST, **basic("bob", PASSWORDS["bob"])}
    for body in (b"[1, 2]", b"{", b"[" * 100_000 + b"]" * 100_000,
                 json.dumps({"output": "no-such.data", "inputs": []}).encode()):
        response = client.post("/_dash-update-component", data=body, headers=headers,
                               content_type="application/json")
        assert response.status_code == 400
        assert b"Traceback" not in response.data


def test_a_viewer_is_told_instead_of_given_a_job(hosted, monkeypatch):
    """The pages do not even ask for an operator job on a viewer's behalf: the image page
    says why, the class map shows PCA with a note (the guard's 403 stays the real check)."""
    import flask
    from dash import no_update

    from classmap.app.pages.classes.callbacks import class_map_logic
    from classmap.app.pages.images.callbacks import request_images_logic
    from classmap.app.shell.images import image_services_for
    from classmap.app.shell.jobs import ERROR, READY, job_status

    services = hosted._classmap_services
    images = image_services_for(services)
    monkeypatch.setattr(images, "data_entry", lambda data_id: None)  # exists, not cached
    monkeypatch.setattr(images, "ready", lambda model, data: False)
    monkeypatch.setattr(services, "embedding_ready", lambda model, method: method == "pca")
    key = ["lite0-imagenet", "cosine", "ward"]
    services.view(tuple(key))
    selection = {"model": key[0], "metric": key[1], "linkage": key[2], "embedding": "umap",
                 "data": "digits"}
    for role, refused in (("viewer", True), ("operator", False)):
        with hosted.server.test_request_context("/"):
            flask.g.classmap_identity = Identity("someone", role)
            status, job = request_images_logic(images, selection, None)
            assert ("operator role" in status.get("message", "")) == refused
            assert (status["state"] == ERROR and job is no_update) == refused
            *_, note, map_job = class_map_logic(services, selection,
                                                job_status(key, READY), None, None)
            assert ("operator role" in note) == refused
            assert isinstance(map_job, dict) != refused


# -- hardening (review of the guard): CSP, unsized bodies, content type, faults, key ------------


def test_the_csp_allows_the_index_pages_scripts_never_one_injected_into_a_response(
        app_settings):
    """A response carrying an inline script of its own (an HTML injection) gets the same
    fixed script hashes as the page, not that script's."""
    app = create_app(app_settings)
    injected = b"alert('injected')"

    def planted():  # a page that echoes something it should not have
        return f"<html><body><script>{injected.decode()}</script></body></html>"
    app.server.add_url_rule("/planted-injection", "planted_injection", planted)
    client = app.server.test_client()
    response = client.get("/planted-injection")
    assert response.status_code == 200 and injected in response.data
    csp = response.headers["Content-Security-Policy"]
    assert access._sha256_source(injected) not in csp
    page = client.get("/")
    inline = access._INLINE_SCRIPT.findall(page.data)
    assert len(inline) >= 2 and all(access._sha256_source(s) in csp for s in inline)
    assert page.headers["Content-Security-Policy"] == csp  # one fixed set for every page


def weights_summary_body(hosted) -> bytes:
    """A cheap callback request a viewer may send (the Weights page's summary)."""
    body = callback_body(hosted, "weights-summary.children")
    body["outputs"] = {"id": "weights-summary", "property": "children"}
    return json.dumps(body).encode()


def post_unsized(client, body: bytes, terminated: bool = True, **headers):
    """POST a callback body without Content-Length, as a chunked request reaches the app
    (werkzeug's and gunicorn's servers set ``wsgi.input_terminated`` and de-chunk)."""
    return client.post("/_dash-update-component", input_stream=io.BytesIO(body),
                       headers={**HOST, **basic("bob", PASSWORDS["bob"]),
                                "Transfer-Encoding": "chunked",
                                "Content-Type": "application/json", **headers},
                       environ_overrides={"wsgi.input_terminated": True} if terminated else {})


def test_a_chunked_callback_body_past_the_limit_is_refused_not_cut_short(hosted, client):
    body = weights_summary_body(hosted)
    small = post_unsized(client, body)
    assert small.status_code == 200 and b"weights-summary" in small.data
    # Valid JSON, then spaces past max_request_bytes: cut at the limit it would still
    # parse (and run); the whole body is too large.
    padded = body + b" " * (hosted.server.config["MAX_CONTENT_LENGTH"] + 10)
    big = post_unsized(client, padded)
    assert big.status_code == 413 and big.data == b"request body too large\n"
    exact = body + b" " * (hosted.server.config["MAX_CONTENT_LENGTH"] - len(body))
    assert post_unsized(client, exact).status_code == 200  # the limit itself is allowed
    # A server that does not end the stream: the length is required.
    assert post_unsized(client, body, terminated=False).status_code == 411


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None,
])
def test_callback_posts_that_are_not_json_are_refused_415(hosted, client, content_type):
    """A cross-site <form> (enctype text/plain can carry a JSON body) with the browser's
    cached Basic credentials never reaches the callback."""
    headers = {**HOST, **basic("bob", PASSWORDS["bob"])}
    if content_type:
        headers["Content-Type"] = content_type
    guard = hosted.server.extensions["classmap_access"]
    with hosted.server.test_request_context("/_dash-update-component", method="POST",
                                            data=weights_summary_body(hosted), headers=headers):
        refusal = guard.check()  # the guard itself, before the body is parsed
        assert refusal is not None and refusal.status_code == 415
    # Refused before any parsing or role check: even a body that is not JSON at all.
    response = client.post("/_dash-update-component", data=b"{not json", headers=headers)
    assert response.status_code == 415
    assert response.data == b"callback requests must be application/json\n"
    ok = client.post("/_dash-update-component", data=weights_summary_body(hosted),
                     headers={**headers, "Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


def test_a_server_fault_on_the_callback_path_is_a_logged_500_not_a_400(hosted, client,
                                                                      monkeypatch, caplog):
    """The job manager failing (a full disk) while the error report fails too, so the
    fault escapes Dash: the server's fault, a 500 logged with its traceback; the answer
    names no path, class or traceback. (Dash 4.4 hands call_job_fn's own errors to the
    app's on_error first: logged there, the page told.)"""
    import errno

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/srv/jobs/planted.db")
    monkeypatch.setattr(hosted._classmap_jobs, "call_job_fn", full_disk)
    monkeypatch.setattr(hosted, "_on_error", full_disk)  # the report cannot be written
    callback_id = sorted(access.operator_outputs(hosted.callback_map))[0]
    body = callback_body(hosted, callback_id)
    body["outputs"] = [  # as the renderer sends them (a wildcard output: no component)
        [] if part.startswith("{") else dict(zip(("id", "property"), part.rsplit(".", 1)))
        for part in callback_id[2:-2].split("...")]
    with caplog.at_level("WARNING", logger=access.log.name):
        response = client.post("/_dash-update-component", json=body,
                               headers={**HOST, **basic("alice", PASSWORDS["alice"])})
    assert response.status_code == 500
    assert response.data == b"internal error; the server log has the details\n"
    records = [r for r in caplog.records if r.name == access.log.name]
    assert [r.levelname for r in records] == ["ERROR"]
    assert isinstance(records[0].exc_info[1], OSError)


@pytest.mark.parametrize("error, status", [
    (OSError(28, "No space left on device", "/srv/jobs/x.db"), 500),
    (ConnectionError("Redis at redis://10.0.0.9:6379 cannot be reached"), 500),
    (EOFError("forkserver closed"), 500),
    (RuntimeError("boom"), 500),
])
def test_refuse_unhandled_answers_faults_500_and_logs_the_traceback(hosted, caplog, error,
                                                                    status):
    with hosted.server.test_request_context("/_dash-update-component", method="POST"):
        with caplog.at_level("WARNING", logger=access.log.name):
            response = access.refuse_unhandled(error)
    assert response.status_code == status
    assert response.get_data() == b"internal error; the server log has the details\n"
    assert [r.exc_info[1] for r in caplog.records if r.levelname == "ERROR"] == [error]


def test_dash_refusing_a_requests_shape_stays_a_400_without_an_error_record(hosted, client,
                                                                            caplog):
    body = json.loads(weights_summary_body(hosted))
    headers = {**HOST, **basic("bob", PASSWORDS["bob"])}
    with caplog.at_level("WARNING", logger=access.log.name):
        for outputs in ([1, 2], {"id": "weights-summary"}, {"id": 5, "property": 7}, None, "x"):
            response = client.post("/_dash-update-component",
                                   json={**body, "outputs": outputs}, headers=headers)
            assert response.status_code == 400, outputs
            assert response.data == b"malformed callback request\n"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_is_request_shape_error_tells_dash_from_the_rest():
    from dash import Output, _validate
    from dash.exceptions import CallbackException

    with pytest.raises(TypeError) as inside_dash:  # a request's output spec that is a number
        _validate.validate_output_spec(Output("a", "b"), 5, Output)
    assert access.is_request_shape_error(inside_dash.value)
    assert access.is_request_shape_error(CallbackException("Wrong length output_spec"))
    try:
        {}["ours"]
    except KeyError as ours:
        assert not access.is_request_shape_error(ours)  # raised here, not in Dash
    assert not access.is_request_shape_error(OSError(28, "No space left on device"))


@pytest.mark.parametrize("key", ["x", "k" * 31])
def test_a_short_secret_key_in_the_environment_is_refused(tmp_path, monkeypatch, key):
    monkeypatch.setenv("CLASSMAP_SECRET_KEY", key)
    with pytest.raises(ClassmapError, match="shorter than 32 characters") as error:
        access.load_secret_key(load_config_default(), tmp_path)
    assert "\n" not in str(error.value)
    monkeypatch.setenv("CLASSMAP_SECRET_KEY", "k" * 32)
    assert access.load_secret_key(load_config_default(), tmp_path) == "k" * 32


# -- failed-login rate limit --------------------------------------------------------------------


class Clock:
    """A clock the test moves (wall-clock seconds: the shared table's expiry uses them)."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttled(config_file, session_cache, tmp_path):
    """A fresh app allowing 3 failures in 60 s, its table of failed logins in its own
    cache folder (the instance's shared store), on a test clock."""
    limited = tmp_path / "limited.toml"
    limited.write_text(config_file.read_text().replace(
        "[server]", "[limits]\nlogin_failures = 3\nlogin_window_seconds = 60\n\n[server]", 1))
    limited.chmod(0o600)
    settings = Settings.create(cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs",
                               environ={}, warm_default=False, hosting=load_config(limited))
    app = create_app(settings)
    guard = app.server.extensions["classmap_access"]
    clock = Clock()
    guard.throttle.store.clock = clock
    return app.server.test_client(), guard, clock


@pytest.fixture
def hash_checks(monkeypatch):
    """The password-hash checks the guard makes, in order."""
    checks = []
    real_check = access.check_password_hash
    monkeypatch.setattr(access, "check_password_hash",
                        lambda *args: checks.append(args) or real_check(*args))
    return checks


def get_as(client, name, password, address="10.1.1.1"):
    return client.get("/_dash-layout", headers={**HOST, **basic(name, password)},
                      environ_base={"REMOTE_ADDR": address})


def test_the_table_of_failed_logins_is_the_instances_shared_store(throttled, tmp_path):
    from classmap.app.hosting.login_throttle import DiskStore

    _, guard, _ = throttled
    assert isinstance(guard.throttle.store, DiskStore)
    assert Path(guard.throttle.store.cache.directory) == tmp_path / "cache" / "login-failures"


def test_failed_logins_lock_that_name_at_that_address_with_429_without_checking(
        throttled, hash_checks):
    client, guard, clock = throttled
    for _ in range(3):
        assert get_as(client, "alice", "wrong-password").status_code == 401
    assert len(hash_checks) == 3
    locked = get_as(client, "alice", PASSWORDS["alice"])  # now the right password
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == "60"
    assert locked.data == b"too many failed logins; try again in 60 s\n"
    clock.now += 59.5
    assert get_as(client, "alice", PASSWORDS["alice"]).headers["Retry-After"] == "1"
    assert len(hash_checks) == 3  # no password was checked during the lockout
    # Neither the name's owner elsewhere nor another user at that address is locked out.
    assert get_as(client, "alice", PASSWORDS["alice"], address="10.1.1.2").status_code == 200
    assert get_as(client, "bob", PASSWORDS["bob"]).status_code == 200
    clock.now += 1  # the window is over
    assert get_as(client, "alice", PASSWORDS["alice"]).status_code == 200


def test_a_guesser_cannot_lock_a_user_out_from_another_address(throttled, hash_checks):
    client, guard, clock = throttled
    for _ in range(50):  # an attacker hammering alice's name from one address
        assert get_as(client, "alice", "wrong-password", "10.6.6.6").status_code in (401, 429)
    assert get_as(client, "alice", "wrong-password", "10.6.6.6").status_code == 429
    assert len(hash_checks) == 3
    assert get_as(client, "alice", PASSWORDS["alice"], "10.2.0.9").status_code == 200
    assert get_as(client, "alice", PASSWORDS["alice"], "10.2.0.10").status_code == 200


def test_one_address_trying_many_names_is_capped_over_all_of_them(throttled, hash_checks):
    from classmap.app.hosting.login_throttle import ADDRESS_FACTOR

    client, guard, clock = throttled
    names = [f"guess{n}" for n in range(ADDRESS_FACTOR)]
    for name in names:  # 3 wrong passwords for each of ADDRESS_FACTOR names
        for _ in range(3):
            assert get_as(client, name, "wrong-password", "10.7.7.7").status_code == 401
    assert len(hash_checks) == 3 * ADDRESS_FACTOR
    assert get_as(client, "bob", "wrong-password", "10.7.7.7").status_code == 429
    assert get_as(client, "bob", PASSWORDS["bob"], "10.7.7.7").status_code == 429
    assert len(hash_checks) == 3 * ADDRESS_FACTOR
    assert get_as(client, "bob", PASSWORDS["bob"], "10.7.7.8").status_code == 200


def test_an_ipv6_client_is_counted_by_its_64(throttled):
    client, guard, clock = throttled
    for host in ("1", "2", "3"):  # one guess from each of three addresses of one /64
        assert get_as(client, "alice", "wrong-password",
                      f"2001:db8:1:2::{host}").status_code == 401
    assert get_as(client, "alice", PASSWORDS["alice"], "2001:db8:1:2::99").status_code == 429
    assert get_as(client, "alice", PASSWORDS["alice"], "2001:db8:1:3::1").status_code == 200


def test_requests_without_credentials_and_right_passwords_are_not_failures(throttled):
    client, guard, clock = throttled
    for _ in range(10):  # a browser's first request of each page, before it asks
        assert client.get("/_dash-layout", headers=HOST,
                          environ_base={"REMOTE_ADDR": "10.1.1.1"}).status_code == 401
        assert get_as(client, "alice", PASSWORDS["alice"]).status_code == 200
    assert len(guard.throttle.store) == 0


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_counted(throttled):
    client, guard, clock = throttled

    def via(peer, forwarded, password="wrong-password", name="bob"):
        return client.get("/_dash-layout", headers=[
            *HOST.items(), *basic(name, password).items(),
            *(("X-Forwarded-For", line) for line in forwarded)],
            environ_base={"REMOTE_ADDR": peer})
    for _ in range(3):  # the proxy appended 192.0.2.10 to what the client sent
        assert via("10.9.8.7", ["1.2.3.4, 192.0.2.10"]).status_code == 401
    assert via("10.9.8.7", ["1.2.3.4, 192.0.2.10"], PASSWORDS["bob"]).status_code == 429
    (pair, _), _ = guard.throttle.keys("192.0.2.10", "bob")
    assert guard.throttle.store.read([pair])[0][0] == 3
    # Another client behind the same proxy is not locked out with it.
    assert via("10.9.8.7", ["192.0.2.11"], PASSWORDS["bob"]).status_code == 200
    # A line the client sent ahead of the proxy's own is not taken for the proxy's.
    assert via("10.9.8.7", ["192.0.2.11", "192.0.2.10"], PASSWORDS["bob"]).status_code == 429
    assert via("10.9.8.7", ["192.0.2.10", "192.0.2.11"], PASSWORDS["bob"]).status_code == 200
    # From any other peer the header is ignored: the peer's own address counts, so a
    # client cannot lock bob out at 192.0.2.12 by naming it.
    for _ in range(3):
        assert via("10.3.3.3", ["192.0.2.12"]).status_code == 401
    assert via("10.3.3.3", ["192.0.2.12"], PASSWORDS["bob"]).status_code == 429
    assert via("10.9.8.7", ["192.0.2.12"], PASSWORDS["bob"]).status_code == 200


def test_processes_sharing_the_cache_folder_share_the_count(tmp_path):
    """Two throttles on one folder (as two gunicorn workers are): the failures add up."""
    from classmap.app.hosting.login_throttle import DiskStore, LoginThrottle

    first = LoginThrottle(4, 60, DiskStore(tmp_path / "t"))
    second = LoginThrottle(4, 60, DiskStore(tmp_path / "t"))
    for throttle in (first, second, first):
        throttle.record_failure("10.0.0.1", "alice")
    assert second.retry_after("10.0.0.1", "alice") is None
    second.record_failure("10.0.0.1", "alice")
    assert first.retry_after("10.0.0.1", "alice") == 60
    assert second.retry_after("10.0.0.1", "alice") == 60
    assert first.retry_after("10.0.0.2", "alice") is None


def test_when_the_shared_store_fails_failures_are_still_counted(caplog):
    from classmap.app.hosting.login_throttle import LoginThrottle, MemoryStore

    class Broken:
        errors = (OSError,)

        def read(self, *args):
            raise OSError("disk gone")

        add = read

    throttle = LoginThrottle(2, 60, Broken(), MemoryStore())
    for _ in range(2):
        throttle.record_failure("10.0.0.1", "alice")
    assert throttle.retry_after("10.0.0.1", "alice") == 60
    assert "failed: disk gone" in caplog.text


def test_the_in_memory_table_stays_bounded_under_many_addresses_and_names():
    from classmap.app.hosting.login_throttle import LoginThrottle, MemoryStore

    clock = Clock()
    store = MemoryStore(max_keys=500, clock=clock)
    throttle = LoginThrottle(failures=3, window=60, store=store)
    for n in range(20_000):  # a botnet: a new address and a new long name each time
        throttle.record_failure(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}",
                                f"guess-{n}-" + "x" * 5000)
        if n % 50 == 0:
            throttle.record_failure("10.0.0.1", "alice")
        assert len(store) <= 500
    assert all(len(key) < 64 for key in store._table)
    assert throttle.retry_after("10.0.0.1", "alice") == 60  # the pair under attack stays locked


def test_the_shared_table_stays_bounded_and_keeps_the_key_under_attack(tmp_path):
    from classmap.app.hosting.login_throttle import DiskStore, LoginThrottle

    limit = 256 << 10
    store = DiskStore(tmp_path / "t", size_limit=limit, clock=Clock())
    throttle = LoginThrottle(failures=3, window=60, store=store)
    for n in range(4000):
        throttle.record_failure(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}",
                                f"guess-{n}-" + "x" * 5000)
        if n % 50 == 0:
            throttle.record_failure("10.0.0.1", "alice")
    # 8,002 keys were written; the least recently stored were culled past the size limit.
    assert store.cache.volume() <= 1.25 * limit
    assert len(store) <= 2000
    assert throttle.retry_after("10.0.0.1", "alice") == 60


def test_login_limits_come_from_the_config_with_defaults(tmp_path, hosted):
    guard = hosted.server.extensions["classmap_access"]
    assert (guard.throttle.failures, guard.throttle.window) == (10, 300)
    assert [most for _, most in guard.throttle.keys("10.0.0.1", "alice")] == [10, 30]
    path = tmp_path / "c.toml"
    path.write_text("[limits]\nlogin_failures = 0\n")
    with pytest.raises(ClassmapError, match="login_failures must be a positive integer"):
        load_config(path)
    path.write_text("[limits]\nlogin_failures = 5\nlogin_window_seconds = 900\n")
    limits = load_config(path).limits
    assert (limits.login_failures, limits.login_window_seconds) == (5, 900)
