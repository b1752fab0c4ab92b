"""The only reader of environment variables in Classmap.

Every variable Classmap honours is read here, so one page lists them all and tests
can pass a mapping instead of patching ``os.environ``:

==========================  ================================================================
variable                    meaning
==========================  ================================================================
``CLASSMAP_CACHE_DIR``      the result cache folder (default below)
``XDG_CACHE_HOME``          base of the default cache folder (``$XDG_CACHE_HOME/classmap``)
``HF_HUB_OFFLINE``          ``1``: never probe the Hugging Face hub (offline machines)
``CLASSMAP_MEMORY_BUDGET``  memory the weight analysis may use for its working arrays, e.g.
                            ``8G`` or ``512M`` (default 4G); it picks the clustering routine
``CLASSMAP_SECRET_KEY``     the web app's Flask secret key (every web process must share it;
                            unset: a generated private file, see ``classmap.app.hosting``)
``CLASSMAP_*`` (others)     the web app's settings, parsed by ``classmap.app`` from
                            :func:`classmap_environment`
==========================  ================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CACHE_DIR_ENV = "CLASSMAP_CACHE_DIR"
HUB_OFFLINE_ENV = "HF_HUB_OFFLINE"
MEMORY_BUDGET_ENV = "CLASSMAP_MEMORY_BUDGET"
DEFAULT_MEMORY_BUDGET = 4 * 1024**3
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
SECRET_KEY_ENV = "CLASSMAP_SECRET_KEY"
PREFIX = "CLASSMAP_"
_TRUE = ("1", "true", "yes", "on")


def _environment(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def classmap_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every ``CLASSMAP_*`` variable, name → value (a copy; ``environ`` defaults to the
    process environment)."""
    return {k: v for k, v in _environment(environ).items() if k.startswith(PREFIX)}


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$CLASSMAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/classmap``, else ``~/.cache/classmap``."""
    env = _environment(environ)
    explicit = env.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = env.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "classmap"


def memory_budget(environ: Mapping[str, str] | None = None) -> int:
    """Bytes the weight analysis may allocate for its working arrays.

    ``$CLASSMAP_MEMORY_BUDGET`` as a number with an optional unit (``8G``, ``512M``,
    ``2.5GiB``, plain bytes; units are powers of 1024), else :data:`DEFAULT_MEMORY_BUDGET`.
    A value that is not a positive size raises ClassmapError.
    """
    import re

    from classmap.analysis.errors import ClassmapError

    text = _environment(environ).get(MEMORY_BUDGET_ENV, "").strip()
    if not text:
        return DEFAULT_MEMORY_BUDGET
    match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?", text.lower())
    if match is None or float(match.group(1)) <= 0:
        raise ClassmapError(f"{MEMORY_BUDGET_ENV}={text!r} is not a memory size; "
                            "give e.g. 8G, 512M or a number of bytes")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def hub_offline(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``HF_HUB_OFFLINE`` says the Hugging Face hub must not be contacted."""
    return _environment(environ).get(HUB_OFFLINE_ENV, "").lower() in _TRUE


def secret_key(environ: Mapping[str, str] | None = None) -> str | None:
    """``$CLASSMAP_SECRET_KEY`` (None when unset or empty)."""
    return _environment(environ).get(SECRET_KEY_ENV) or None
