"""Who may reach what: one guard in front of every route of the Flask server.

Why a Flask ``before_request`` hook and not ``dash-auth``: the hook runs before *every*
route the server has — Dash's own (layout, dependencies, update-component, assets,
component suites, background-job polls) and any a later change adds — so a new route is
protected without anyone remembering to wrap it; it also sees the callback request's
body, which the operator-only check needs (``dash-auth`` protects routes, not callbacks).

Order of checks for one request (each refusal is a short text with no server detail):

1. Host name: ``allowed_hosts`` or a loopback name          → 400
   (so a page on another site cannot reach a loopback server by DNS rebinding)
2. body size (``Content-Length`` above ``max_request_bytes``;
   the upload route, when uploads are on: ``upload_bytes``)    → 413
   (a callback body without a length is read up to the limit
   at step 6, past the identity check: more is a 413)
3. public path (:data:`PUBLIC_PATHS`: the health check)        → answered
4. identity: trusted proxy's user header, else HTTP Basic     → 401 when required
   (after ``[limits] login_failures`` wrong passwords for one
   user name from one client address — 3 × as many for the
   address over all names — within ``login_window_seconds``,
   counted by every web process of the instance together:
   refused without checking the password until the window
   ends, :mod:`.login_throttle`)                  → 429 + Retry-After
5. operator-only routes (:data:`OPERATOR_ROUTES`: uploads and
   their deletion)
   refused to viewers                                          → 403
   a method a fixed-path route does not take (a GET to the
   POST-only ``uploads/delete``), before Dash's catch-all page
   route could answer it                           → 405 + Allow
6. callback requests: ``application/json`` (else 415: a cross-
   site form cannot send it), within the size limit, well-
   formed JSON naming a registered callback; operator-only
   callbacks refused to viewers                   → 415 / 413 / 400 / 403

Without users or a trusted proxy (the loopback default) step 4 admits everyone as the
local operator; ``classmap serve`` refuses to listen beyond loopback that way unless
told ``--insecure-no-auth``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import ipaddress
import json
import logging
import os
import re
import secrets
import threading
import traceback
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable

import dash
import flask
from werkzeug.security import check_password_hash, generate_password_hash

from classmap.analysis.errors import ClassmapError
from classmap.analysis.settings import secret_key as secret_key_from_env
from classmap.app.hosting.config import HostingConfig, User, check_user_name
from classmap.app.hosting.identity import LOCAL_OPERATOR, Identity
from classmap.app.hosting.login_throttle import (DEFAULT_FAILURES, DEFAULT_WINDOW_SECONDS,
                                                 LoginThrottle, shared_throttle)
from classmap.app.pages.classes import ids as class_ids
from classmap.app.pages.compare import ids as compare_ids
from classmap.app.hosting.redact import PathRedactor, server_folders
from classmap.app.hosting.uploads import DELETE_ROUTE as UPLOAD_DELETE_ROUTE
from classmap.app.hosting.uploads import ROUTE as UPLOAD_ROUTE
from classmap.app.hosting.uploads import install_uploads, upload_limit
from classmap.app.pages.images import ids as image_ids

log = logging.getLogger(__name__)

# Reviewed list of routes answered without credentials. Adding one is a security
# decision: tests/app/test_routes_decide.py fails for any route not protected or listed.
PUBLIC_PATHS = frozenset({"/healthz"})
# Routes (under the app's prefix) only operators may use, whatever the method.
OPERATOR_ROUTES = frozenset({UPLOAD_ROUTE, UPLOAD_DELETE_ROUTE})
HEALTH_ENDPOINT = "healthz"
CALLBACK_PATH = "/_dash-update-component"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
REALM = 'Basic realm="Classmap", charset="UTF-8"'
MAX_LOG_CHARS = 2000
MIN_SECRET_KEY_CHARS = 32
# Background callbacks only an operator may start (their first output), by component id.
OPERATOR_JOBS = ((class_ids.EMBED_DONE, "data"),  # t-SNE / UMAP class maps
                 (image_ids.IMAGE_STATUS, "data"),  # image extraction and its analyses
                 (compare_ids.COMPARE_STATUS, "data"))  # a comparison of two sources
_VERIFIED_MAX = 256  # remembered (user, password) checks: scrypt costs ~50 ms a request
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))
_DASH_DIR = Path(dash.__file__).resolve().parent


def install_access(app: Any, settings: Any) -> None:
    """Put the guard in front of every route of ``app`` (a Dash app whose callbacks are
    registered) and set the secret key, cookie flags, body limit, security headers and
    the path redaction of responses, from ``settings`` (app/config.py Settings)."""
    config: HostingConfig = settings.hosting
    server = app.server
    install_uploads(app, settings)  # the upload route (404 while uploads are off)
    server.secret_key = load_secret_key(config, settings.cache_dir)
    server.config.update(
        MAX_CONTENT_LENGTH=config.max_request_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.tls,
        PROPAGATE_EXCEPTIONS=False,
    )
    # Celery mode (the job manager has a Redis broker): failed logins counted in Redis;
    # otherwise in the cache folder every gunicorn worker of the instance opens.
    # Without users (the loopback default) no password is ever checked: no table.
    broker = getattr(getattr(app, "_classmap_jobs", None), "broker", None)
    throttle = shared_throttle(config.limits.login_failures or DEFAULT_FAILURES,
                               config.limits.login_window_seconds or DEFAULT_WINDOW_SECONDS,
                               settings.cache_dir, broker if isinstance(broker, str) else None
                               ) if config.requires_login else None
    guard = AccessGuard(config, app, throttle)
    # First of all before-request functions, so nothing runs for a refused request.
    server.before_request_funcs.setdefault(None, []).insert(0, guard.check)
    redactor = PathRedactor(server_folders(settings))
    script_hashes = IndexScriptHashes(app, redactor)
    server.after_request(lambda response: add_security_headers(_redacted(response, redactor),
                                                               script_hashes))
    server.register_error_handler(Exception, refuse_unhandled)
    server.extensions["classmap_access"] = guard


def operator_outputs(callback_map: dict[str, Any]) -> frozenset[str]:
    """The callback ids (``app.callback_map`` keys) of the background callbacks in
    :data:`OPERATOR_JOBS`."""
    wanted = {f"{component}.{prop}" for component, prop in OPERATOR_JOBS}
    found = set()
    for callback_id, spec in callback_map.items():
        if not spec.get("background"):
            continue
        parts = [part.split("@")[0] for part in callback_id.strip(".").split("...")]
        if wanted.intersection(parts):
            found.add(callback_id)
    return frozenset(found)


class AccessGuard:
    """The ``before_request`` check (see the module docstring for the order)."""

    def __init__(self, config: HostingConfig, app: Any,
                 throttle: LoginThrottle | None = None) -> None:
        self.config = config
        self.app = app
        self.operator_callbacks = operator_outputs(app.callback_map)
        self.allowed_hosts = frozenset(config.allowed_hosts) | LOOPBACK_HOSTS
        # The health route also under a URL prefix (``serve --url-prefix /classmap``).
        prefix = getattr(getattr(app, "config", None), "routes_pathname_prefix", None) or "/"
        self.public_paths = PUBLIC_PATHS | {prefix + HEALTH_ENDPOINT}
        self.operator_paths = frozenset(prefix + route for route in OPERATOR_ROUTES)
        # Only the upload route's body may exceed max_request_bytes, and only when on.
        self.upload_path = prefix + UPLOAD_ROUTE if config.uploads.enabled else None
        self._verified: OrderedDict[bytes, Identity] = OrderedDict()
        # The instance's table of failed logins (install_access: shared by its processes).
        self.throttle = throttle or LoginThrottle(
            config.limits.login_failures or DEFAULT_FAILURES,
            config.limits.login_window_seconds or DEFAULT_WINDOW_SECONDS)
        self._lock = threading.Lock()
        self._pepper = secrets.token_bytes(32)
        self._route_methods: tuple[int, dict[str, frozenset[str]]] | None = None

    def check(self) -> flask.Response | None:
        request = flask.request
        if _host_name(request.host) not in self.allowed_hosts:
            return _refuse(400, "unknown host name")
        length = request.content_length
        limit = self.config.max_request_bytes
        if request.path == self.upload_path and request.method == "POST":
            limit = max(limit, upload_limit(self.config))
        if length is not None and length > limit:
            return _refuse(413, "request body too large")
        if request.path in self.public_paths:
            return None
        identity = self.identify()
        if isinstance(identity, flask.Response):
            return identity  # locked out: 429
        if identity is None:
            response = _refuse(401, "authentication required")
            response.headers["WWW-Authenticate"] = REALM
            return response
        flask.g.classmap_identity = identity
        if request.path in self.operator_paths and not identity.is_operator:
            log.warning("refused %s %s to %s (%s)", request.method, request.path[:100],
                        identity.name, identity.role)
            return _refuse(403, "this page needs the operator role; ask an operator")
        refusal = self.check_method()
        if refusal is not None:
            return refusal
        if request.path.endswith(CALLBACK_PATH):
            return self.check_callback(identity)
        return None

    def check_method(self) -> flask.Response | None:
        """A method a fixed-path route does not take → 405 with its ``Allow`` (OPTIONS → 204
        with it), before Dash's page route (``/<path:path>``, GET) could answer instead: a
        GET to the POST-only ``uploads/delete`` or ``_dash-update-component`` fell through
        to the dashboard's page with 200."""
        request = flask.request
        allowed = self._fixed_route_methods().get(request.path)
        if allowed is None or (request.method in allowed and request.method != "OPTIONS"):
            return None
        allow = ", ".join(sorted(allowed - {"OPTIONS"}))
        if request.method == "OPTIONS":
            response = flask.make_response("", 204)
        else:
            response = _refuse(405, f"method not allowed here; use {allow}")
        response.headers["Allow"] = allow
        return response

    def _fixed_route_methods(self) -> dict[str, frozenset[str]]:
        """Path → methods of every route without parameters (read again when a route is
        added: Dash adds some at its first request)."""
        rules = self.app.server.url_map._rules  # noqa: SLF001 — werkzeug's list of rules
        if self._route_methods is None or self._route_methods[0] != len(rules):
            table = {}
            for rule in list(rules):
                if not rule.arguments and rule.methods:
                    table[rule.rule] = table.get(rule.rule, frozenset()) | frozenset(rule.methods)
            self._route_methods = (len(rules), table)
        return self._route_methods[1]

    # -- identity ------------------------------------------------------------------------------
    def identify(self) -> Identity | flask.Response | None:
        """The request's user; None when credentials are required and missing or wrong; a
        429 response while this (client address, user name) or the address is locked out
        (the password is then not checked)."""
        if not self.config.requires_login:
            return LOCAL_OPERATOR
        proxied = self._proxy_identity()
        if proxied is not None:
            return proxied
        auth = flask.request.authorization
        if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
            return None
        address = self.client_address()
        wait = self.throttle.retry_after(address, auth.username)
        if wait is not None:
            return _locked_out(wait)
        identity = self.verify(auth.username, auth.password)
        if identity is None:
            self.throttle.record_failure(address, auth.username)
            log.warning("failed login for %r from %s", auth.username[:64], address)
        return identity

    def client_address(self) -> str:
        """The client's address: the peer's, or — only when the peer is a configured
        trusted proxy — the last address in ``X-Forwarded-For`` (the one that proxy
        appended; every header line read, in order, so a line the client sent before the
        proxy's cannot pose as it), so one client's failures do not lock out everyone
        behind the proxy. From any other peer the header is ignored."""
        peer = flask.request.remote_addr or ""
        if self.config.trusted_proxies and _in_networks(peer, self.config.trusted_proxies):
            forwarded = ",".join(flask.request.headers.getlist("X-Forwarded-For"))
            last = forwarded.rsplit(",", 1)[-1].strip()
            try:
                return str(ipaddress.ip_address(last))
            except ValueError:
                pass
        return peer

    def verify(self, name: str, password: str) -> Identity | None:
        """Identity for a correct (name, password), else None; always one hash check."""
        token = hmac.new(self._pepper, f"{name}\0{password}".encode("utf-8", "replace"),
                         hashlib.sha256).digest()
        with self._lock:
            known = self._verified.get(token)
            if known is not None:
                self._verified.move_to_end(token)
                return known
        user = self.config.users.get(name)
        stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
        if not check_password_hash(stored, password) or user is None or not user.password_hash:
            return None
        identity = Identity(user.name, user.role)
        with self._lock:
            self._verified[token] = identity
            while len(self._verified) > _VERIFIED_MAX:
                self._verified.popitem(last=False)
        return identity

    def _proxy_identity(self) -> Identity | None:
        config = self.config
        if not (config.trusted_proxies and config.proxy_user_header):
            return None
        if not _in_networks(flask.request.remote_addr or "", config.trusted_proxies):
            return None
        name = flask.request.headers.get(config.proxy_user_header)
        if not name:
            return None
        try:
            check_user_name(name)
        except ClassmapError:
            return None
        user: User | None = config.users.get(name)
        return Identity(name, user.role if user is not None else config.proxy_default_role)

    # -- callbacks ---------------------------------------------------------------------------------
    def check_callback(self, identity: Identity) -> flask.Response | None:
        """A callback request must be JSON naming a registered callback with the inputs it
        declares; operator-only callbacks are refused to viewers (before any job starts)."""
        request = flask.request
        if request.method != "POST":
            return None
        if request.mimetype != "application/json":
            # Dash's renderer always sends JSON; a cross-site <form> cannot (without a CORS
            # preflight this server never grants), even with the browser's cached Basic
            # credentials.
            return _refuse(415, "callback requests must be application/json")
        if request.content_length is None:
            refusal = _buffer_unsized_body(self.config.max_request_bytes)
            if refusal is not None:
                return refusal
        try:
            body = json.loads(request.get_data(cache=True) or b"null")
        except (ValueError, RecursionError):
            return _refuse(400, "malformed callback request")
        # Read at request time: Dash adds callbacks (Pages' router) when it first serves.
        problem = _callback_problem(body, self.app.callback_map)
        if problem:
            return _refuse(400, problem)
        if body["output"] in self.operator_callbacks and not identity.is_operator:
            log.warning("refused operator job to %s (%s)", identity.name, identity.role)
            return _refuse(403, "this job needs the operator role; ask an operator to start it")
        return None


def _buffer_unsized_body(limit: int) -> flask.Response | None:
    """Read a body sent without ``Content-Length`` (chunked) into memory, at most
    ``limit`` bytes: a 413 when more came, a 411 when the server cannot tell where the
    body ends; else the request reads the buffered bytes (with their length) from now on.

    Werkzeug's ``MAX_CONTENT_LENGTH`` alone stops such a stream *at* the limit without
    an error, so a longer body would be parsed cut short (werkzeug 3.1).
    """
    environ = flask.request.environ
    if "wsgi.input_terminated" not in environ:
        # The WSGI server does not end the stream for us: werkzeug would read nothing.
        return _refuse(411, "a callback request needs a Content-Length")
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(1 << 16, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        return _refuse(413, "request body too large")
    data = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    for cached in ("content_length", "stream"):  # werkzeug's cached properties
        flask.request.__dict__.pop(cached, None)
    return None


def refuse_unhandled(error: Exception) -> Any:
    """What escapes a view: HTTP errors pass as they are; anything else is answered in
    one line, without traceback, path or exception class.

    Callback functions' own errors never come here (the app's ``on_error`` shows them in
    the page). On the callback route, Dash refusing the request's shape (its outputs,
    inputs: :func:`is_request_shape_error`) is a 400 with a one-line warning; anything
    else (the job manager's disk, Redis or forkserver failing …) is a server fault: a
    500, logged with its traceback.
    """
    from werkzeug.exceptions import HTTPException

    if isinstance(error, HTTPException):
        return error
    if flask.request.path.endswith(CALLBACK_PATH) and is_request_shape_error(error):
        log.warning("refused callback request: %s%s: %s", type(error).__name__,
                    _raised_at(error), str(error)[:200])
        return _refuse(400, "malformed callback request")
    log.error("request %s %s failed", flask.request.method, flask.request.path[:100],
              exc_info=error)
    return _refuse(500, "internal error; the server log has the details")


# What Dash raises for a request whose outputs or inputs do not fit the callback (dash
# 4.4: dash/_validate.py validate_output_spec / validate_multi_return raise
# CallbackException and InvalidCallbackReturnValue; malformed items there and in
# dash.py's dispatch helpers raise KeyError, IndexError, TypeError, AttributeError).
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError)


def is_request_shape_error(error: BaseException) -> bool:
    """Whether ``error`` is Dash refusing a callback request's shape: one of Dash's
    ``CallbackException`` (its validation of outputs and returned values), or a lookup /
    type error raised inside Dash's own code (the innermost frame is in the dash
    package) — not one raised by our code or a library Dash called (a disk, Redis)."""
    from dash.exceptions import CallbackException

    if isinstance(error, CallbackException):
        return True
    if not isinstance(error, _SHAPE_ERRORS):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(_DASH_DIR)


def _raised_at(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    return f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


def _callback_problem(body: Any, callback_map: dict[str, Any]) -> str | None:
    if not isinstance(body, dict):
        return "malformed callback request"
    output = body.get("output")
    spec = callback_map.get(output) if isinstance(output, str) else None
    if spec is None or "callback" not in spec:  # clientside callbacks run in the browser
        return "unknown callback"
    for key in ("inputs", "state"):
        items = body.get(key, [])
        if not isinstance(items, list) or len(items) != len(spec.get(key, [])):
            return f"callback {key} do not match the callback"
        for item in items:
            group = item if isinstance(item, list) else [item]
            if not all(isinstance(one, dict) and "id" in one and isinstance(
                    one.get("property"), str) for one in group):
                return f"malformed callback {key}"
            if not all(_value_fits(one["property"], one.get("value")) for one in group):
                return f"a callback {key} value has the wrong type"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "malformed changedPropIds"
    return None


# Component properties whose type Dash fixes (plotly events are objects, clicks counts):
# a value of another type never comes from the page, so it is refused before any callback.
_PROP_TYPES: dict[str, tuple[type, ...]] = {
    "clickData": (dict,), "hoverData": (dict,), "selectedData": (dict,),
    "relayoutData": (dict,), "restyleData": (list,), "n_clicks": (int,),
    "n_intervals": (int,), "modified_timestamp": (int,), "n_submit": (int,),
    "pathname": (str,), "search": (str,), "hash": (str,), "href": (str,),
}


def _value_fits(prop: str, value: Any) -> bool:
    name = prop.split("@")[0]
    types = _PROP_TYPES.get(name)
    if types is None or value is None:
        return True
    if name == "pathname" and not (isinstance(value, str) and value.startswith("/")):
        return False  # a location's path is absolute (Dash's router refuses the rest)
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _in_networks(address: str, networks: Iterable[Any]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def _locked_out(seconds: int) -> flask.Response:
    response = _refuse(429, f"too many failed logins; try again in {seconds} s")
    response.headers["Retry-After"] = str(seconds)
    return response


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _refuse(status: int, text: str) -> flask.Response:
    response = flask.make_response(text + "\n", status)
    response.mimetype = "text/plain"
    return response


# -- response headers -------------------------------------------------------------------------------
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>",
                            re.S)
_BASE_CSP = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
             "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
             "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def add_security_headers(response: flask.Response,
                         script_hashes: Callable[[], Iterable[str]] | None = None
                         ) -> flask.Response:
    """X-Frame-Options, X-Content-Type-Options, Referrer-Policy and a CSP; for an HTML
    response the CSP also allows the inline scripts ``script_hashes()`` names (the
    index page's, :class:`IndexScriptHashes`) — a fixed set, never read from the response
    itself, so a ``<script>`` injected into a page is not allowed."""
    headers = response.headers
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    script_src = "script-src 'self'"
    if response.mimetype == "text/html" and script_hashes is not None:
        script_src = " ".join([script_src, *script_hashes()])
    headers["Content-Security-Policy"] = f"{_BASE_CSP}; {script_src}"
    return response


class IndexScriptHashes:
    """The SHA-256 sources (``'sha256-…'``, sorted) of the inline scripts of the app's
    index page, rendered once from Dash's template on its own (as the server serves it,
    paths redacted) — not from any response.

    Computed at the first HTML response, not at start: Dash adds inline scripts (Pages'
    title callback, clientside functions) in its first-request hooks. Until those have
    run the set is recomputed each time and not kept.
    """

    def __init__(self, app: Any, redactor: Callable[[bytes], bytes] | None = None) -> None:
        self.app = app
        self.redactor = redactor
        self._hashes: tuple[str, ...] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> tuple[str, ...]:
        if self._hashes is not None:
            return self._hashes
        with self._lock:
            if self._hashes is not None:
                return self._hashes
            hashes = self.compute()
            if all(getattr(self.app, "_got_first_request", {}).values()):
                self._hashes = hashes
            return hashes

    def compute(self) -> tuple[str, ...]:
        prefix = self.app.config.requests_pathname_prefix
        with self.app.server.test_request_context(prefix, headers={"Host": "localhost"}):
            page = self.app.index().encode("utf-8")
        if self.redactor is not None:
            page = self.redactor(page)
        return tuple(sorted({_sha256_source(m.group(1)) for m in _INLINE_SCRIPT.finditer(page)}))


def _redacted(response: flask.Response, redactor: PathRedactor) -> flask.Response:
    """Server folders cut out of JSON and HTML bodies (callbacks, layout, the page)."""
    if response.mimetype in ("application/json", "text/html") and not response.direct_passthrough:
        body = response.get_data()
        cleaned = redactor(body)
        if cleaned is not body:
            response.set_data(cleaned)
    return response


def _sha256_source(script: bytes) -> str:
    import base64

    return "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"


# -- secret key and logging ---------------------------------------------------------------------------


def load_secret_key(config: HostingConfig, cache_dir: Path) -> str:
    """``$CLASSMAP_SECRET_KEY``, else the private file ``secret_key_file`` (default
    ``<cache dir>/secret_key``), created once with mode 0600 so every web process of the
    instance reads the same key. Either must hold at least :data:`MIN_SECRET_KEY_CHARS`
    characters (ClassmapError, one line).

    The app sets no session cookie; the key is Flask's ``secret_key``, which Dash uses
    to HMAC-sign background-callback handles (the page load's ``end_id``, each job's
    ``cacheKey`` and process / task id: ``dash/_callback_signing.py``), so a client can
    neither poll nor kill a job it was not handed."""
    from_env = secret_key_from_env()
    if from_env:
        if len(from_env) < MIN_SECRET_KEY_CHARS:
            raise ClassmapError(
                f"CLASSMAP_SECRET_KEY is shorter than {MIN_SECRET_KEY_CHARS} characters; set "
                "it to a long random value, e.g. the output of 'python -c \"import secrets; "
                "print(secrets.token_hex(32))\"'")
        return from_env
    path = config.secret_key_file or Path(cache_dir) / "secret_key"
    try:
        return read_or_create_secret(path)
    except OSError as error:
        if path.exists():  # there but unreadable: not a full disk, refuse to guess
            raise
        # A full (or read-only) disk on the first start: serve with a key of this process.
        log.warning("cannot write the secret key file %s (%s); using a key for this process "
                    "only (other web processes cannot poll its jobs) — free some space or set "
                    "CLASSMAP_SECRET_KEY", path, os.strerror(error.errno) if error.errno
                    else error)
        return secrets.token_hex(32)


def read_or_create_secret(path: Path) -> str:
    """The key in ``path``; a new random one when the file is missing (written to a
    private temporary file, then linked into place, so concurrent processes agree)."""
    import tempfile

    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.close(fd)
            os.link(temp, path)
        except FileExistsError:
            pass  # another process was first: use its key
        finally:
            Path(temp).unlink(missing_ok=True)
    info = path.stat()
    if info.st_mode & 0o077:
        raise ClassmapError(f"secret key file {path} is readable by other users; run "
                            f"'chmod 600 {path}'")
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_SECRET_KEY_CHARS:
        raise ClassmapError(f"secret key file {path} holds a short key; delete it to make a "
                            "new one")
    return key


class TruncateLongRecords(logging.Filter):
    """Shortens any log message beyond :data:`MAX_LOG_CHARS` (a client-chosen value must
    not be able to grow the log by megabytes a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > MAX_LOG_CHARS:
            record.msg = message[:MAX_LOG_CHARS] + f"… [{len(message) - MAX_LOG_CHARS} chars cut]"
            record.args = None
        return True


def limit_log_lines(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Add :class:`TruncateLongRecords` to the root logger's handlers (once each)."""
    root = logging.getLogger()
    for handler in handlers if handlers is not None else root.handlers:
        if not any(isinstance(f, TruncateLongRecords) for f in handler.filters):
            handler.addFilter(TruncateLongRecords())


# -- who may listen where -----------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an interface to bind) is reachable only from this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, config: HostingConfig, insecure_no_auth: bool,
                   debug: bool = False) -> None:
    """Refuse (ClassmapError, one line) to serve beyond loopback without authentication
    (unless ``insecure_no_auth``, which warns), without configured Host names, or with
    Dash's debug mode."""
    if is_loopback(host):
        return
    if debug:
        raise ClassmapError(f"--debug serves tracebacks and dev tools; use it on 127.0.0.1 "
                            f"only, not on {host}")
    if not config.requires_login and not insecure_no_auth:
        raise ClassmapError(
            f"serving on {host} needs users: run 'classmap user add NAME --role operator "
            "--config classmap.toml' and serve with '--config classmap.toml' (or pass "
            "--insecure-no-auth)"
        )
    if not config.allowed_hosts:
        raise ClassmapError(
            f"serving on {host} needs the Host names clients use; add allowed_hosts = "
            "[\"classmap.example.org\"] under [server] in the --config file"
        )
    if not config.requires_login:
        log.warning("WARNING: serving on %s WITHOUT AUTHENTICATION (--insecure-no-auth): "
                    "anyone who reaches this port can use every model, data set and job", host)
