"""Heads uploaded by operators (issue 11 item 6): safetensors only, never unpickled.

Off by default (``[uploads] enabled = true`` in the config file turns it on). One route,
``<prefix>uploads``:

* ``GET``  — a small operator page: a plain HTML form (``multipart/form-data``) and the
  heads uploaded so far. A plain form, not ``dcc.Upload``: that one sends the file
  base64-encoded through a callback, which the callback body limit (a few MB) refuses.
* ``POST <prefix>uploads/delete`` with a form field ``id`` — removes that upload (the
  page's Delete buttons; same-origin form posts only, like the upload). Scripts:
  ``curl -u alice -d id=upload-0123456789ab https://host/uploads/delete``.
* ``POST`` — ``multipart/form-data`` with a ``file`` part (the ``.safetensors`` file) and
  optional text fields ``name`` (what the Model menu shows), ``head_key`` (the head
  tensor of a whole-network file, as ``--head-key``) and ``classes`` (one class name
  a line, as ``--classes``). Scripts: ``curl -u alice -F file=@head.safetensors
  -F name="my head" https://host/uploads``.

The access guard (:mod:`.access`) lets only operators reach the route (401 without
credentials, 403 for viewers) and allows its body up to ``[limits] upload_bytes``
(default 512 MiB) instead of the few MB every other route gets. Here, in order:

1. uploads off → 404; a cross-site form post (``Origin`` / ``Sec-Fetch-Site``) → 403;
2. ``Content-Length`` above the limit → 413 before a byte is read; the body is then read
   counted (a chunked body, or a file part that grows past the limit → 413), straight
   into ``<cache dir>/uploads/.incoming/`` — never the system temp folder;
3. the safetensors header is checked by hand (:func:`check_safetensors_header`: its
   8-byte length sane, a JSON object of known dtypes, shapes and in-bounds offsets) → 400;
4. the head is validated exactly as ``--head`` does (``load_head`` of a bare-head
   :class:`ModelSpec`: the head tensor picked by ``head_key`` or by name, rank 2, finite,
   at least 2 classes and features, class names checked) and against ``max_classes`` → 400;
5. stored: ``<cache>/uploads/<sha256 of the file>.safetensors``, then
   ``upload-<id>.classes.txt`` when names were given, then the sidecar
   ``upload-<id>.json`` (display name, head key, uploader, time, size) — each written to
   a temporary file and renamed into place, the sidecar last, so a half-stored upload is
   never offered. A refused upload leaves nothing behind.

Every refusal is one line of text with a 4xx status: no traceback, exception class, server
path or file content. The model's id is ``upload-`` + 12 hex digits of the SHA-256 of
(file digest, head key, class names), so the same upload gets the same id (and a shared
URL keeps working) in every web process and after a restart. Every web and worker
process reads the sidecars on demand (:func:`uploaded_models`, through
``Settings.offered_models``), so an upload is offered by all of them at once; the Model
menu refreshes its options on each page load and navigation.
"""

from __future__ import annotations

import datetime
import hashlib
import html
import json
import logging
import math
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any

import flask

from classmap.analysis.errors import ClassmapError
from classmap.app.hosting.identity import current_identity
from classmap.app.hosting.redact import redact_paths

log = logging.getLogger(__name__)

ROUTE = "uploads"  # under the app's routes prefix
ENDPOINT = "classmap_uploads"
DELETE_ROUTE = "uploads/delete"
DELETE_ENDPOINT = "classmap_uploads_delete"
LINK_ID = "shell-uploads-link"  # the header's link to the upload page (operators only)
INCOMING = ".incoming"
SUFFIX = ".safetensors"
ID_PREFIX = "upload-"
MAX_FORM_FIELD_BYTES = 2 * 2**20  # a text field (the class list of a 21k head is ~0.5 MB)
FORM_OVERHEAD_BYTES = 3 * MAX_FORM_FIELD_BYTES  # the text fields and multipart framing
MAX_FORM_PARTS = 8
MAX_HEADER_BYTES = 16 * 2**20  # safetensors' own cap is 100 MB; a checkpoint needs ~0.2 MB
MAX_NAME_CHARS = 80
STALE_INCOMING_SECONDS = 3600  # a part left by a process killed mid-upload
MAX_HEAD_KEY_CHARS = 200
# safetensors dtypes → bytes per element
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
_SIDECAR = re.compile(r"upload-[0-9a-f]{12}\.json")
_UPLOAD_ID = re.compile(r"upload-[0-9a-f]{12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONVERT_HINT = ("only safetensors files are accepted; convert a PyTorch file with "
                "safetensors.torch.save_file(state_dict, 'head.safetensors')")


class UploadRefused(Exception):
    """A refusal: HTTP ``status`` and the one-line ``message`` sent to the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- where uploads live ------------------------------------------------------------------------


def uploads_dir(settings: Any) -> Path:
    """``<cache dir>/uploads`` of the instance."""
    return Path(settings.cache_dir) / "uploads"


def upload_limit(config: Any) -> int:
    """The largest request body the upload route accepts: the file plus the form's fields."""
    return int(config.upload_bytes) + FORM_OVERHEAD_BYTES


def route_path(app: Any, route: str = ROUTE) -> str:
    """The upload route's path under the app's prefix (``/uploads``, ``/classmap/uploads``)."""
    prefix = getattr(getattr(app, "config", None), "routes_pathname_prefix", None) or "/"
    return prefix + route


# -- the registry: sidecars → model entries -----------------------------------------------------

_memo: dict[Path, tuple[tuple[str, ...], tuple[Any, ...]]] = {}
_memo_lock = threading.Lock()
_MEMO_DIRS = 16


def uploaded_models(settings: Any) -> tuple[Any, ...]:
    """The uploaded heads as ``ModelEntry`` objects (app/config.py), oldest first.

    Read from the sidecars in ``<cache dir>/uploads`` and re-read only when their set of
    names changes (one directory listing a call). A sidecar that cannot be read, names
    a missing file or an id a configured model already has is skipped with a warning.
    """
    folder = uploads_dir(settings)
    try:
        names = tuple(sorted(entry.name for entry in os.scandir(folder)
                             if _SIDECAR.fullmatch(entry.name)))
    except OSError:
        return ()
    with _memo_lock:
        known = _memo.get(folder)
        if known is not None and known[0] == names:
            return known[1]
    configured = {entry.id for entry in settings.models}
    entries = []
    for name in names:
        entry = _read_sidecar(folder, name)
        if entry is not None and entry[1].id not in configured:
            entries.append(entry)
    result = tuple(entry for _, entry in sorted(entries, key=lambda item: item[0]))
    with _memo_lock:
        if len(_memo) >= _MEMO_DIRS:
            _memo.pop(next(iter(_memo)))
        _memo[folder] = (names, result)
    return result


def _read_sidecar(folder: Path, name: str) -> tuple[str, Any] | None:
    from classmap.analysis.loading.classifier import ModelSpec
    from classmap.app.config import entry_from_spec

    try:
        record = json.loads((folder / name).read_text(encoding="utf-8"))
        file = folder / _plain_name(record["file"])
        classes = record.get("classes_file")
        spec = ModelSpec(head=str(file), head_key=record.get("head_key"),
                         classes=str(folder / _plain_name(classes)) if classes else None)
        if not file.is_file():
            raise ValueError("its file is missing")
        entry = entry_from_spec(spec, record["id"], f"{record['name']} (uploaded)")
        if entry.id != name[: -len(".json")]:
            raise ValueError("its id does not match its name")
        return str(record.get("uploaded", "")), entry
    except (OSError, ValueError, KeyError, TypeError, ClassmapError) as error:
        log.warning("skipped upload record %s: %s", name, str(error)[:200])
        return None


def _plain_name(value: Any) -> str:
    """A file name inside the uploads folder (no separators, no dot-names)."""
    if not isinstance(value, str) or not value or "/" in value or "\\" in value \
            or value.startswith("."):
        raise ValueError(f"bad file name {value!r}")
    return value


# -- the safetensors header --------------------------------------------------------------------


def check_safetensors_header(path: Path, size: int) -> int:
    """Check the file at ``path`` (``size`` bytes) is a well-formed safetensors file;
    returns its tensor count.

    Format: 8 bytes little-endian header length N, N bytes of a JSON object
    ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``,
    then the tensor data; every tensor's bytes must lie within the data and match
    ``prod(shape) × dtype size``. Raises UploadRefused(400) naming the first problem.
    """
    if size < 8:
        raise UploadRefused(400, f"the file ({size} bytes) is not a safetensors file; "
                                 + CONVERT_HINT)
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if length < 2 or length > min(MAX_HEADER_BYTES, size - 8):
            raise UploadRefused(400, f"the file is not a safetensors file: its header length "
                                     f"{length} does not fit a {size}-byte file (at most "
                                     f"{MAX_HEADER_BYTES} bytes); " + CONVERT_HINT)
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UploadRefused(400, "the file is not a safetensors file: its header is not "
                                 "JSON; " + CONVERT_HINT) from None
    if not isinstance(header, dict):
        raise UploadRefused(400, "the file is not a safetensors file: its header is not a "
                                 "JSON object; " + CONVERT_HINT)
    data_bytes = size - 8 - length
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise UploadRefused(400, "the safetensors header's __metadata__ must map strings to "
                                 "strings; re-save the file with safetensors")
    if not header:
        raise UploadRefused(400, "the safetensors file holds no tensors; save the head's "
                                 "weight (and bias) in it")
    for name, info in header.items():
        _check_tensor_entry(name, info, data_bytes)
    return len(header)


def _check_tensor_entry(name: str, info: Any, data_bytes: int) -> None:
    shown = name[:60]
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise UploadRefused(400, f"the safetensors header entry {shown!r} is not "
                                 "{dtype, shape, data_offsets}; re-save the file with safetensors")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in DTYPE_BYTES:
        raise UploadRefused(400, f"tensor {shown!r} has an unknown dtype {str(dtype)[:20]!r}; "
                                 "save the head as float32, float16 or bfloat16")
    if (not isinstance(shape, list) or len(shape) > 8 or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**40 for n in shape)):
        raise UploadRefused(400, f"tensor {shown!r} has a malformed shape; re-save the file "
                                 "with safetensors")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
        raise UploadRefused(400, f"tensor {shown!r} points outside the file's data (the file "
                                 "is truncated or corrupt); re-save or re-upload it")
    if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise UploadRefused(400, f"tensor {shown!r} has {offsets[1] - offsets[0]} bytes, not "
                                 f"what its shape {tuple(shape)} and dtype {dtype} need; "
                                 "re-save the file with safetensors")


# -- receiving the body ------------------------------------------------------------------------


class _StagedFile:
    """The file part, written to the incoming folder as it arrives: counted (refused past
    ``limit`` bytes) and hashed (SHA-256). Werkzeug's form parser writes into it."""

    def __init__(self, folder: Path, limit: int) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = folder / f"{secrets.token_hex(16)}{SUFFIX}"
        self.limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.filename: str | None = None  # as the client named it (for a default name)
        self._file = open(self.path, "xb+")  # noqa: SIM115 — closed by the route

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise UploadRefused(413, f"the file is larger than this server's upload limit of "
                                     f"{self.limit:,} bytes; ask its operator to raise "
                                     "[limits] upload_bytes")
        self.sha256.update(data)
        return self._file.write(data)

    def __getattr__(self, name: str) -> Any:  # seek, read, flush, close … of the file
        return getattr(self._file, name)


def receive(environ: dict[str, Any], folder: Path, limit: int
            ) -> tuple[dict[str, str], _StagedFile | None, list[_StagedFile]]:
    """Parse the multipart body: (text fields, the ``file`` part, every staged part).

    Raises UploadRefused (400 malformed, 413 too large); the caller removes every
    staged part, whatever happens.
    """
    from werkzeug.exceptions import HTTPException
    from werkzeug.formparser import parse_form_data

    staged: list[_StagedFile] = []

    def stream_factory(filename: str | None = None, **_: Any) -> _StagedFile:
        if staged:
            raise UploadRefused(400, "send exactly one file part, named 'file'")
        staged.append(_StagedFile(folder, limit))
        staged[0].filename = filename
        return staged[0]

    try:
        _, form, files = parse_form_data(
            environ, stream_factory=stream_factory, max_form_memory_size=MAX_FORM_FIELD_BYTES,
            max_content_length=limit + FORM_OVERHEAD_BYTES, silent=False,
            max_form_parts=MAX_FORM_PARTS)
    except UploadRefused as refusal:
        return _fail(refusal, staged)
    except HTTPException as error:
        if error.code == 413:
            return _fail(UploadRefused(413, "the request is larger than this server's upload "
                                            f"limit of {limit:,} bytes"), staged)
        return _fail(UploadRefused(400, "the request body is not a complete multipart form; "
                                        "send it again"), staged)
    except (ValueError, OSError, EOFError):
        return _fail(UploadRefused(400, "the request body is not a well-formed multipart form; "
                                        "send the file as form field 'file' (curl -F "
                                        "file=@head.safetensors)"), staged)
    fields = {key: form.get(key, "") for key in form}
    file_part = files.get("file")
    if len(files) != 1 or file_part is None or not staged:
        return fields, None, staged
    return fields, staged[0], staged


def _fail(refusal: UploadRefused, staged: list[_StagedFile]) -> Any:
    _discard(staged)
    raise refusal


def _discard(staged: list[_StagedFile]) -> None:
    for part in staged:
        try:
            part.close()
        except OSError:
            pass
        part.path.unlink(missing_ok=True)


# -- validation and storage --------------------------------------------------------------------


def _text_field(fields: dict[str, str], key: str, limit: int) -> str | None:
    value = fields.get(key, "").strip()
    if not value:
        return None
    if len(value) > limit or _CONTROL.search(value):
        raise UploadRefused(400, f"field {key!r} must be one line of at most {limit} "
                                 "characters")
    return value


def _public(message: str, replacements: dict[str, str]) -> str:
    """A validation message as the client may see it: staged paths replaced, the CLI's
    flag names turned into the form's field names, any other path cut, one line."""
    for secret, shown in replacements.items():
        message = message.replace(secret, shown)
    message = (message.replace("--head file the upload", "the uploaded file")
               .replace("--classes file the class list", "the class list")
               .replace("--head-key", "head_key").replace("--classes FILE", "the classes field"))
    return " ".join(redact_paths(message).split())[:400]


def validate_head(settings: Any, staged: Path, head_key: str | None,
                  classes: Path | None) -> Any:
    """The head as ``--head FILE [--head-key K] [--classes F]`` loads it (the same
    code), checked against ``max_classes``; raises UploadRefused(400) with its message."""
    from classmap.analysis.loading.classifier import ModelSpec
    from classmap.analysis.loading.models import load_head

    spec = ModelSpec(head=str(staged), head_key=head_key,
                     classes=str(classes) if classes else None)
    replacements = {str(staged): "the upload", staged.name: "the upload"}
    if classes is not None:
        replacements.update({str(classes): "the class list", classes.name: "the class list"})
    try:
        head = load_head(spec, None)
    except ClassmapError as error:
        raise UploadRefused(400, _public(str(error), replacements)) from None
    limit = settings.hosting.limits.max_classes
    if limit is not None and head.num_classes > limit:
        raise UploadRefused(400, f"the head has {head.num_classes:,} classes, more than this "
                                 f"server's limit of {limit:,}; ask its operator to raise "
                                 "max_classes")
    return head


def _write_atomic(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    try:
        with open(temp, "xb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def store(settings: Any, fields: dict[str, str], part: _StagedFile,
          filename: str | None) -> tuple[dict[str, Any], bool]:
    """Check, validate and store one staged upload; returns (its record, whether new)."""
    folder = uploads_dir(settings)
    name = _text_field(fields, "name", MAX_NAME_CHARS) or _default_name(filename)
    head_key = _text_field(fields, "head_key", MAX_HEAD_KEY_CHARS)
    classes_text = fields.get("classes", "").strip("\ufeff\r\n ") or None
    if classes_text is not None and "\0" in classes_text:
        raise UploadRefused(400, "field 'classes' must be text, one class name a line")
    part.flush()
    check_safetensors_header(part.path, part.size)
    file_digest = part.sha256.hexdigest()
    model_id = ID_PREFIX + hashlib.sha256(
        "\0".join([file_digest, head_key or "", classes_text or ""]).encode()).hexdigest()[:12]
    staged_classes = None
    if classes_text is not None:
        staged_classes = part.path.with_suffix(".classes.txt")
        staged_classes.write_text(classes_text + "\n", encoding="utf-8")
    try:
        head = validate_head(settings, part.path, head_key, staged_classes)
        sidecar = folder / f"{model_id}.json"
        if sidecar.is_file():
            return json.loads(sidecar.read_text(encoding="utf-8")), False
        record = {
            "id": model_id, "name": name, "file": f"{file_digest}{SUFFIX}",
            "head_key": head_key,
            "classes_file": f"{model_id}.classes.txt" if staged_classes else None,
            "num_classes": head.num_classes, "num_features": int(head.weight.shape[1]),
            "bytes": part.size, "sha256": file_digest, "uploader": current_identity().name,
            "uploaded": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
        }
        part.close()
        target = folder / record["file"]
        if not target.exists():
            os.replace(part.path, target)
        if staged_classes is not None:
            os.replace(staged_classes, folder / record["classes_file"])
        _write_atomic(sidecar, json.dumps(record, indent=1).encode())  # last: now offered
        return record, True
    finally:
        if staged_classes is not None:
            staged_classes.unlink(missing_ok=True)


def _default_name(filename: str | None) -> str:
    stem = Path(filename or "head").name.rsplit(".", 1)[0]
    stem = _CONTROL.sub("", stem).strip()[:MAX_NAME_CHARS]
    return stem or "head"


def remove_stale_parts(incoming: Path, now: float | None = None) -> int:
    """Delete parts older than :data:`STALE_INCOMING_SECONDS` from the incoming folder
    (left by a process killed mid-upload); returns how many."""
    import time

    cutoff = (time.time() if now is None else now) - STALE_INCOMING_SECONDS
    removed = 0
    try:
        entries = list(os.scandir(incoming))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass  # another process removed it
    return removed


def count_uploads(settings: Any) -> int:
    try:
        return sum(1 for entry in os.scandir(uploads_dir(settings))
                   if _SIDECAR.fullmatch(entry.name))
    except OSError:
        return 0


def delete_upload(settings: Any, model_id: Any) -> dict[str, Any]:
    """Remove the upload ``model_id`` (``upload-`` + 12 hex digits; anything else → 400,
    unknown → 404): its sidecar first (from then on no process offers it: the Model menu
    of every process re-reads the sidecars), then its class list, then its safetensors
    file unless another upload (the same file with another head key or class list) still
    names it. Returns its record (``{}`` when the sidecar was unreadable)."""
    if not isinstance(model_id, str) or not _UPLOAD_ID.fullmatch(model_id):
        raise UploadRefused(400, "name the upload to delete by its id (upload- and 12 hex "
                                 "digits), as the upload page lists it")
    folder = uploads_dir(settings)
    sidecar = folder / f"{model_id}.json"
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UploadRefused(404, f"there is no upload {model_id} on this server; the upload "
                                 "page lists them") from None
    except (OSError, ValueError, RecursionError):
        record = {}  # unreadable: delete what can be found
    if not isinstance(record, dict):
        record = {}
    sidecar.unlink(missing_ok=True)
    still_named = set()
    for name in os.listdir(folder):
        if _SIDECAR.fullmatch(name):
            try:
                still_named.add(json.loads((folder / name).read_text(encoding="utf-8"))["file"])
            except (OSError, ValueError, KeyError, TypeError, RecursionError):
                continue
    for key in ("classes_file", "file"):
        try:
            name = _plain_name(record.get(key))
        except ValueError:
            continue
        if key == "file" and name in still_named:
            continue
        (folder / name).unlink(missing_ok=True)
    return record


# -- the route ---------------------------------------------------------------------------------


def install_uploads(app: Any, settings: Any) -> None:
    """Register the upload route on ``app`` (always, so its decision is tested; it
    answers 404 while uploads are off) and, when uploads are on, the callback that
    refreshes the Model menu's options on each page load and navigation."""
    server = app.server
    server.add_url_rule(route_path(app), ENDPOINT, lambda: _route(app, settings),
                        methods=["GET", "POST"])
    server.add_url_rule(route_path(app, DELETE_ROUTE), DELETE_ENDPOINT,
                        lambda: _delete_route(app, settings), methods=["POST"])
    if settings.hosting.uploads.enabled:
        from dash import Input, Output

        from classmap.app.shell import ids

        @app.callback(Output(ids.MODEL_PICKER, "options"), Output(LINK_ID, "hidden"),
                      Input("_pages_location", "pathname"))
        def offered_models(_pathname: Any) -> tuple[list[dict[str, str]], bool]:
            """The Model menu (uploads come and go) and, for operators only, the header's
            link to the upload page (the route itself refuses viewers: 403)."""
            options = [{"label": entry.label, "value": entry.id}
                       for entry in settings.offered_models]
            return options, not current_identity().is_operator


def header_link(settings: Any) -> list[Any]:
    """The header's link to the upload page when uploads are on (hidden until the
    Model-menu callback finds the user is an operator), else nothing."""
    if not settings.hosting.uploads.enabled:
        return []
    import dash
    from dash import html

    return [html.A("Uploads", href=dash.get_relative_path("/" + ROUTE), id=LINK_ID,
                   className="cm-nav-link", hidden=True,
                   title="upload a classifier head (operators)")]


def _route(app: Any, settings: Any) -> flask.Response:
    request = flask.request
    if not settings.hosting.uploads.enabled:
        return _text(404, "uploads are off on this server; an operator can turn them on with "
                          "[uploads] enabled = true in the config file")
    if request.method in ("GET", "HEAD"):  # HEAD: Flask sends the GET answer's headers
        return _page(app, settings)
    try:
        return _accept(app, settings)
    except UploadRefused as refusal:
        log.warning("refused upload from %s: %s", current_identity().name, refusal.message)
        return _text(refusal.status, refusal.message)


def _accept(app: Any, settings: Any) -> flask.Response:
    request = flask.request
    if _cross_site(request):
        raise UploadRefused(403, "cross-site upload refused; upload from this server's own "
                                 "page")
    if request.mimetype != "multipart/form-data":
        raise UploadRefused(400, "send the head as multipart/form-data with a 'file' field "
                                 "(curl -F file=@head.safetensors)")
    limit = settings.hosting.upload_bytes
    length = request.content_length
    if length is not None and length > upload_limit(settings.hosting):
        raise UploadRefused(413, f"the request is larger than this server's upload limit of "
                                 f"{limit:,} bytes; ask its operator to raise [limits] "
                                 "upload_bytes")
    most = settings.hosting.uploads.max_files
    if count_uploads(settings) >= most:
        raise UploadRefused(409, f"this server keeps at most {most} uploads; ask its operator "
                                 "to remove some or raise [uploads] max_files")
    incoming = uploads_dir(settings) / INCOMING
    remove_stale_parts(incoming)
    fields, part, staged = receive(request.environ, incoming, limit)
    try:
        if part is None:
            raise UploadRefused(400, "send exactly one file part, named 'file' (curl -F "
                                     "file=@head.safetensors)")
        record, new = store(settings, fields, part, part.filename)
    finally:
        _discard(staged)
    log.info("upload %s (%s, %d bytes) %s by %s", record["id"], record["name"], record["bytes"],
             "stored" if new else "already stored", current_identity().name)
    return _accepted(app, record, new)


def _delete_route(app: Any, settings: Any) -> flask.Response:
    """``POST <prefix>uploads/delete`` with a form field ``id``: same-origin form posts
    only (like the upload), operators only (the access guard: 403)."""
    request = flask.request
    if not settings.hosting.uploads.enabled:
        return _text(404, "uploads are off on this server; an operator can turn them on with "
                          "[uploads] enabled = true in the config file")
    try:
        if _cross_site(request):
            raise UploadRefused(403, "cross-site request refused; delete from this server's "
                                     "own upload page")
        if request.mimetype not in ("application/x-www-form-urlencoded",
                                    "multipart/form-data"):
            raise UploadRefused(400, "send the upload's id as a form field 'id' (curl -d "
                                     "id=upload-…)")
        model_id = request.form.get("id", "")
        record = delete_upload(settings, model_id)
    except UploadRefused as refusal:
        log.warning("refused deleting an upload for %s: %s", current_identity().name,
                    refusal.message)
        return _text(refusal.status, refusal.message)
    log.info("upload %s (%s) deleted by %s", model_id, str(record.get("name", "?"))[:80],
             current_identity().name)
    if _wants_html():
        return flask.redirect(route_path(app), 303)
    return flask.Response(json.dumps({"id": model_id, "deleted": True}) + "\n", 200,
                          mimetype="application/json")


def _cross_site(request: Any) -> bool:
    """A browser's form post from another site (Basic credentials would ride along)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    from urllib.parse import urlsplit

    return origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower()


def _accepted(app: Any, record: dict[str, Any], new: bool) -> flask.Response:
    summary = {key: record[key] for key in ("id", "name", "num_classes", "num_features",
                                            "bytes", "sha256")}
    summary["new"] = new
    status = 201 if new else 200
    if _wants_html():
        href = f"{app.config.requests_pathname_prefix}?model={record['id']}"
        body = (f"<p>{'Uploaded' if new else 'Already uploaded'}: "
                f"<b>{html.escape(record['name'])}</b> as <code>{record['id']}</code> "
                f"({record['num_classes']:,} classes × {record['num_features']:,} features). "
                f"<a href=\"{html.escape(href)}\">Open it</a> — every user of this instance "
                f"now finds it in the Model menu.</p>")
        return _html(status, "Head uploaded", body)
    return flask.Response(json.dumps(summary) + "\n", status, mimetype="application/json")


def _wants_html() -> bool:
    accept = flask.request.accept_mimetypes
    return accept.best_match(["application/json", "text/html"]) == "text/html"


def _text(status: int, message: str) -> flask.Response:
    return flask.Response(message + "\n", status, mimetype="text/plain")


def _html(status: int, title: str, body: str) -> flask.Response:
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
            f"{html.escape(title)} · Classmap</title></head><body style=\"font-family:"
            f"sans-serif;max-width:46rem;margin:2rem auto\"><h1>{html.escape(title)}</h1>"
            f"{body}</body></html>")
    return flask.Response(page, status, mimetype="text/html")


def _page(app: Any, settings: Any) -> flask.Response:
    """The operator's upload form and the heads uploaded so far."""
    delete_action = html.escape(route_path(app, DELETE_ROUTE))
    rows = "".join(
        f"<li><code>{html.escape(entry.id)}</code> — {html.escape(entry.label)} "
        f"<form method=\"post\" action=\"{delete_action}\" style=\"display:inline\">"
        f"<input type=\"hidden\" name=\"id\" value=\"{html.escape(entry.id)}\">"
        f"<button type=\"submit\" title=\"remove it from the Model menu of every user\">"
        f"Delete</button></form></li>"
        for entry in uploaded_models(settings)) or "<li>none yet</li>"
    limit = settings.hosting.upload_bytes
    body = (
        f"<p>A classifier head (a <code>[classes, features]</code> weight, optionally a bias) "
        f"or a whole network's weights, as <b>safetensors</b> only, up to {limit:,} bytes. "
        f"It is checked as <code>classmap export --head FILE</code> checks it and offered to "
        f"every user of this instance in the Model menu.</p>"
        f"<form method=\"post\" enctype=\"multipart/form-data\" action=\""
        f"{html.escape(route_path(app))}\">"
        f"<p><label>File <input type=\"file\" name=\"file\" accept=\".safetensors\" required>"
        f"</label></p><p><label>Name in the Model menu <input name=\"name\" maxlength=\""
        f"{MAX_NAME_CHARS}\"></label></p><p><label>Head tensor (only for a whole network "
        f"with several 2-D tensors) <input name=\"head_key\" placeholder=\"fc.weight\" "
        f"maxlength=\"{MAX_HEAD_KEY_CHARS}\"></label></p><p><label>Class names, one a line "
        f"(optional)<br><textarea name=\"classes\" rows=\"6\" cols=\"60\"></textarea></label>"
        f"</p><p><button type=\"submit\">Upload</button></p></form>"
        f"<h2>Uploaded heads</h2><ul>{rows}</ul>"
        f"<p><a href=\"{html.escape(app.config.requests_pathname_prefix)}\">Back to "
        f"Classmap</a></p>")
    return _html(200, "Upload a head", body)
