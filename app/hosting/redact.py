"""Server paths never reach the browser.

Two nets: :func:`redact_paths` shortens any absolute path in a message to its last part
(for error notices, whose text may quote a file the server tried); :class:`PathRedactor`
replaces the folders this instance knows (cache, data roots, model files' folders, the
home and install folders) in every callback response, whatever produced it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Iterable

_ABSOLUTE = re.compile(r"(?<![\w.:/~-])(?:~|[A-Za-z]:)?(?:[/\\][^\s'\"`,;()<>[\]{}|]+)+")
MIN_PREFIX_CHARS = 8  # shorter folders ('/tmp') could match inside base64 image data


def redact_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part (``/srv/m/r18.pth`` → ``r18.pth``).

    Relative names, URLs and fractions are left alone.
    """
    return _ABSOLUTE.sub(lambda m: re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1] or "…", text)


class PathRedactor:
    """Replaces known server folders in response bodies with ``…``.

    Parameters
    ----------
    folders : folders whose absolute paths must not be sent (resolved and as given);
        those shorter than MIN_PREFIX_CHARS are skipped
    """

    def __init__(self, folders: Iterable[str | Path]) -> None:
        found: set[str] = set()
        for folder in folders:
            for form in (str(folder), str(Path(folder).expanduser().resolve())):
                form = form.rstrip("/")
                if len(form) >= MIN_PREFIX_CHARS:
                    found.add(form)
        # Longest first, so a folder inside another is replaced whole.
        self.prefixes = tuple(sorted((p.encode() for p in found), key=len, reverse=True))

    def __call__(self, body: bytes) -> bytes:
        for prefix in self.prefixes:
            if prefix in body:
                body = body.replace(prefix + b"/", b"\xe2\x80\xa6/").replace(prefix, "…".encode())
        return body


def server_folders(settings: object) -> list[Path]:
    """The folders an instance must not reveal: cache and job store, data roots, the
    folders of configured model files, home, the Python prefix and the install folder."""
    folders: list[Path] = [Path.home(), Path(sys.prefix), Path(__file__).resolve().parents[2]]
    for name in ("cache_dir", "jobs_dir"):
        value = getattr(settings, name, None)
        if value is not None:
            folders.append(Path(value))
    folders.extend(getattr(settings, "data_roots", ()) or ())
    for entry in getattr(settings, "models", ()) or ():
        for key in ("weights", "head", "classes"):
            value = getattr(entry.spec, key, None)
            if value:
                folders.append(Path(value).expanduser().resolve().parent)
    return folders
