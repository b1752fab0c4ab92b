"""The instance's config file (TOML): what it offers, its limits, its users.

``classmap serve --config FILE`` reads it; ``classmap user add|remove|list --config FILE``
edits its ``[users.*]`` tables (tomlkit keeps the operator's comments and layout). Every
path in it is resolved (``~``, relative to the file's folder, symlinks followed) when it
is read; the browser only ever names a model or data set by its id. Example::

    [server]
    allowed_hosts = ["classmap.example.org"]   # Host names accepted beyond loopback
    trusted_proxies = ["10.0.0.5"]             # addresses whose user header is believed
    proxy_user_header = "X-Forwarded-User"     # (both or neither; never 0.0.0.0/0 or ::/0)
    proxy_default_role = "viewer"
    tls = true                                 # served over HTTPS: Secure cookies
    max_request_bytes = 4000000
    secret_key_file = "/var/lib/classmap/secret_key"   # default: <cache dir>/secret_key

    [cache]
    dir = "/var/cache/classmap"

    [limits]
    max_classes = 50000        # a model with more classes is refused
    upload_bytes = 536870912   # largest uploaded head (default 512 MiB)
    jobs_per_user = 2
    login_failures = 10        # wrong passwords for one name from one address (3 × per address) …
    login_window_seconds = 300 # … within this window; then 429 until it ends

    [uploads]
    enabled = false            # operators may upload heads (POST /uploads); off by default
    max_files = 100            # uploads kept per instance

    [[models]]
    id = "r18-mine"
    model = "resnet18"
    weights = "models/r18.safetensors"        # relative to this file's folder

    [[data]]
    path = "/srv/data/pets"                    # one sub-folder per class

    [users.alice]
    role = "operator"
    password_hash = "scrypt:32768:8:1$…"       # written by `classmap user add`
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.security import generate_password_hash

from classmap.analysis.errors import ClassmapError

ROLES = ("viewer", "operator")
DEFAULT_MAX_REQUEST_BYTES = 4_000_000
DEFAULT_UPLOAD_BYTES = 512 * 2**20
DEFAULT_MAX_UPLOADS = 100
MIN_PASSWORD_CHARS = 8
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
_SECTIONS: dict[str, set[str]] = {
    "server": {"allowed_hosts", "trusted_proxies", "proxy_user_header", "proxy_default_role",
               "tls", "max_request_bytes", "secret_key_file"},
    "cache": {"dir"},
    "limits": {"max_classes", "upload_bytes", "jobs_per_user", "login_failures",
               "login_window_seconds"},
    "models": {"id", "label", "model", "weights", "head", "head_key", "classes"},
    "data": {"path"},
    "uploads": {"enabled", "max_files"},
    "users": set(),
}
_USER_KEYS = {"role", "password_hash"}


@dataclass(frozen=True)
class User:
    """One configured user: ``name``, ``role`` (viewer|operator) and the salted
    password hash werkzeug wrote (empty for a user known only through the proxy)."""

    name: str
    role: str
    password_hash: str = field(repr=False, default="")


@dataclass(frozen=True)
class Limits:
    """Per-instance limits (None: no limit; for the two login keys: their default,
    :mod:`.login_throttle`'s 10 failures in 300 s)."""

    max_classes: int | None = None
    upload_bytes: int | None = None
    jobs_per_user: int | None = None
    login_failures: int | None = None
    login_window_seconds: int | None = None


@dataclass(frozen=True)
class Uploads:
    """``[uploads]``: whether operators may upload heads (off by default) and how many
    the instance keeps; the size limit is ``[limits] upload_bytes``."""

    enabled: bool = False
    max_files: int = DEFAULT_MAX_UPLOADS


@dataclass(frozen=True)
class HostingConfig:
    """The parsed config file; every path absolute and resolved.

    Attributes
    ----------
    path : the file it came from (None: no file — the loopback defaults)
    users : name → User
    allowed_hosts : Host names accepted (empty: any; only allowed on loopback)
    trusted_proxies : networks whose ``proxy_user_header`` is believed
    models : dicts in the CLASSMAP_MODELS JSON form (``id``, ``model``, ``weights`` …)
    data_roots : folders of labelled images the browser may pick by id
    uploads : whether operators may upload heads (app/hosting/uploads.py)
    """

    path: Path | None = None
    users: dict[str, User] = field(default_factory=dict, hash=False)  # Settings stay hashable
    allowed_hosts: tuple[str, ...] = ()
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    proxy_user_header: str | None = None
    proxy_default_role: str = "viewer"
    tls: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    secret_key_file: Path | None = None
    cache_dir: Path | None = None
    limits: Limits = Limits()
    models: tuple[dict[str, str], ...] = field(default=(), hash=False)
    data_roots: tuple[Path, ...] = ()
    uploads: Uploads = Uploads()

    @property
    def upload_bytes(self) -> int:
        """The largest upload the server accepts (``[limits] upload_bytes``, default 512 MiB)."""
        return self.limits.upload_bytes or DEFAULT_UPLOAD_BYTES

    @property
    def requires_login(self) -> bool:
        """Whether requests must carry credentials (users or a trusted proxy configured)."""
        return bool(self.users) or bool(self.trusted_proxies and self.proxy_user_header)


def load_config(path: str | Path) -> HostingConfig:
    """Read and check the config file at ``path`` (raises ClassmapError with the fix)."""
    import tomllib

    file = Path(path).expanduser().resolve()
    try:
        with open(file, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ClassmapError(
            f"config file {path} does not exist; create it with "
            f"'classmap user add NAME --config {path}' or write it by hand"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ClassmapError(f"config file {path} is not valid TOML ({error}); fix it") from None
    return _parse(data, file)


def _parse(data: dict[str, Any], file: Path) -> HostingConfig:
    if "workers" in data:
        raise ClassmapError(
            f"{file}: [workers] is not supported in the config file; remove it and choose "
            "workers on the command line ('classmap serve --workers N', '--broker redis://…')")
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ClassmapError(f"{file}: unknown section(s) {', '.join(unknown)}; "
                            f"use {', '.join(sorted(_SECTIONS))}")
    server = _table(data, "server", file)
    cache = _table(data, "cache", file)
    limits = _table(data, "limits", file)
    uploads = _table(data, "uploads", file)
    base = file.parent
    role = server.get("proxy_default_role", "viewer")
    _check_role(role, f"{file}: proxy_default_role")
    proxies = tuple(_network(t, file) for t in _strings(server, "trusted_proxies", file))
    header = _optional_str(server, "proxy_user_header", file)
    _check_proxy(proxies, header, file)
    return HostingConfig(
        path=file,
        users=parse_users(data.get("users", {}), file),
        allowed_hosts=tuple(_host(h, file) for h in _strings(server, "allowed_hosts", file)),
        trusted_proxies=proxies,
        proxy_user_header=header,
        proxy_default_role=role,
        tls=_bool(server, "tls", file),
        max_request_bytes=_positive(server, "max_request_bytes", file)
        or DEFAULT_MAX_REQUEST_BYTES,
        secret_key_file=_path(server.get("secret_key_file"), base),
        cache_dir=_path(cache.get("dir"), base),
        limits=Limits(*(_positive(limits, key, file) for key in
                        ("max_classes", "upload_bytes", "jobs_per_user", "login_failures",
                         "login_window_seconds"))),
        models=tuple(_model(item, base, file) for item in _array(data, "models", file)),
        data_roots=tuple(_data_root(item, base, file) for item in _array(data, "data", file)),
        uploads=Uploads(enabled=_bool(uploads, "enabled", file),
                        max_files=_positive(uploads, "max_files", file) or DEFAULT_MAX_UPLOADS),
    )


def parse_users(tables: Any, file: Path | str) -> dict[str, User]:
    """``[users.NAME]`` tables → name → User; each needs a known role and a werkzeug hash."""
    if not isinstance(tables, dict):
        raise ClassmapError(f"{file}: 'users' must be tables [users.NAME]; see 'classmap user'")
    users: dict[str, User] = {}
    for name, table in tables.items():
        check_user_name(name)
        if not isinstance(table, dict) or set(table) - _USER_KEYS:
            raise ClassmapError(f"{file}: [users.{name}] may only hold role and password_hash; "
                                "manage users with 'classmap user add|remove'")
        role = table.get("role", "viewer")
        _check_role(role, f"{file}: [users.{name}] role")
        password_hash = table.get("password_hash", "")
        if not isinstance(password_hash, str) or (password_hash and "$" not in password_hash):
            raise ClassmapError(f"{file}: [users.{name}] password_hash is not a werkzeug hash; "
                                f"set the password again with 'classmap user add {name}'")
        users[name] = User(name, role, password_hash)
    return users


def check_user_name(name: Any) -> str:
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise ClassmapError(f"user name {name!r} is not allowed; use 1-64 letters, digits, "
                            "'.', '_', '@' or '-' (starting with a letter or digit)")
    return name


def _check_role(role: Any, what: str) -> None:
    if role not in ROLES:
        raise ClassmapError(f"{what} {role!r} is not a role; use one of {', '.join(ROLES)}")


# -- editing users (classmap user add|remove|list) ---------------------------------------------


def add_user(path: str | Path, name: str, password: str, role: str = "viewer") -> None:
    """Add ``name`` (or replace its password and role) in the config file at ``path``,
    which is created (mode 0600) when missing. The password is stored only as a salted
    werkzeug hash (scrypt)."""
    check_user_name(name)
    _check_role(role, "role")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ClassmapError(f"the password is shorter than {MIN_PASSWORD_CHARS} characters; "
                            "choose a longer one")
    import tomlkit

    document = _read_document(path)
    users = document.setdefault("users", tomlkit.table(is_super_table=True))
    entry = tomlkit.table()
    entry["role"] = role
    entry["password_hash"] = generate_password_hash(password)
    users[name] = entry
    _write_document(path, document)


def remove_user(path: str | Path, name: str) -> None:
    """Remove ``name`` from the config file (raises when it is not there)."""
    document = _read_document(path)
    users = document.get("users", {})
    if name not in users:
        raise ClassmapError(f"user {name!r} is not in {path}; see 'classmap user list --config "
                            f"{path}'")
    del users[name]
    _write_document(path, document)


def list_users(path: str | Path) -> list[User]:
    """The users of the config file, by name (an empty list when the file is missing)."""
    if not Path(path).expanduser().exists():
        return []
    return sorted(load_config(path).users.values(), key=lambda user: user.name)


def _read_document(path: str | Path) -> Any:
    import tomlkit

    file = Path(path).expanduser()
    if not file.exists():
        return tomlkit.document()
    try:
        document = tomlkit.parse(file.read_text(encoding="utf-8"))
    except tomlkit.exceptions.ParseError as error:
        raise ClassmapError(f"config file {path} is not valid TOML ({error}); fix it") from None
    parse_users(document.get("users", {}).unwrap() if "users" in document else {}, file)
    return document


def _write_document(path: str | Path, document: Any) -> None:
    """Replace the file atomically, mode 0600 (it holds password hashes)."""
    import tomlkit

    file = Path(path).expanduser()
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(tomlkit.dumps(document))
        os.chmod(temp, 0o600)
        os.replace(temp, file)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# -- value checks ---------------------------------------------------------------------------------


def _table(data: dict[str, Any], name: str, file: Path) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ClassmapError(f"{file}: '{name}' must be a table [{name}]; see the operator guide")
    unknown = sorted(set(table) - _SECTIONS[name])
    if unknown:
        raise ClassmapError(f"{file}: unknown key(s) {', '.join(unknown)} in [{name}]; use "
                            f"{', '.join(sorted(_SECTIONS[name]))}")
    return table


def _array(data: dict[str, Any], name: str, file: Path) -> list[dict[str, Any]]:
    items = data.get(name, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ClassmapError(f"{file}: '{name}' must be tables [[{name}]]; see the operator guide")
    for item in items:
        unknown = sorted(set(item) - _SECTIONS[name])
        if unknown:
            raise ClassmapError(f"{file}: unknown key(s) {', '.join(unknown)} in [[{name}]]; "
                                f"use {', '.join(sorted(_SECTIONS[name]))}")
    return items


def _strings(table: dict[str, Any], key: str, file: Path) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClassmapError(f"{file}: {key} must be a list of strings; write {key} = [\"…\"]")
    return value


def _optional_str(table: dict[str, Any], key: str, file: Path) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ClassmapError(f"{file}: {key} must be a non-empty string; quote it")
    return value


def _bool(table: dict[str, Any], key: str, file: Path) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise ClassmapError(f"{file}: {key} must be true or false; write {key} = true")
    return value


def _positive(table: dict[str, Any], key: str, file: Path) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ClassmapError(f"{file}: {key} must be a positive integer; write {key} = 1000")
    return value


def _host(text: str, file: Path) -> str:
    host = text.strip().lower()
    if not _HOST.fullmatch(host):
        raise ClassmapError(f"{file}: allowed host {text!r} is not a host name; write the "
                            "name clients use, without scheme or port")
    return host


def _network(text: str, file: Path) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ClassmapError(f"{file}: trusted proxy {text!r} is not an address or network; "
                            "write e.g. \"10.0.0.5\" or \"10.0.0.0/24\"") from None


def _check_proxy(proxies: tuple[Any, ...], header: str | None, file: Path) -> None:
    """A trusted proxy needs both its addresses and its header (one alone would be
    silently ignored), and never every address (anyone could name any user)."""
    if proxies and not header:
        raise ClassmapError(f"{file}: trusted_proxies is set without proxy_user_header; add "
                            "proxy_user_header = \"X-Forwarded-User\" (the header your proxy "
                            "sets) or remove trusted_proxies")
    if header and not proxies:
        raise ClassmapError(f"{file}: proxy_user_header is set without trusted_proxies; add "
                            "trusted_proxies = [\"10.0.0.5\"] (your proxy's address) or remove "
                            "proxy_user_header")
    for network in proxies:
        if network.prefixlen == 0:
            raise ClassmapError(f"{file}: trusted proxy {network} is every address (anyone "
                                "could claim any user in the header); list only your proxy's "
                                "addresses, e.g. \"10.0.0.5\"")


def _path(text: Any, base: Path) -> Path | None:
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip() or "\0" in text:
        raise ClassmapError(f"path {text!r} in the config file is not a path; quote a path")
    return (base / Path(text).expanduser()).resolve()


def _model(item: dict[str, Any], base: Path, file: Path) -> dict[str, str]:
    entry: dict[str, str] = {}
    for key, value in item.items():
        if not isinstance(value, str):
            raise ClassmapError(f"{file}: [[models]] {key} must be a string; quote it")
        entry[key] = value
    for key in ("weights", "head", "classes"):
        if key in entry:
            resolved = _path(entry[key], base)
            assert resolved is not None
            if not resolved.is_file():
                raise ClassmapError(f"{file}: [[models]] {key} {entry[key]} is not a file; "
                                    "fix the path (relative paths start at the config's folder)")
            entry[key] = str(resolved)
    return entry


def _data_root(item: dict[str, Any], base: Path, file: Path) -> Path:
    root = _path(item.get("path"), base)
    if root is None or not root.is_dir():
        raise ClassmapError(f"{file}: [[data]] path {item.get('path')!r} is not a folder; give a "
                            "folder with one sub-folder per class")
    return root
