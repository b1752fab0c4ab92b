"""The only reader of environment variables in Classmap.

Every variable Classmap honours is read here, so one page lists them all and tests
can pass a mapping instead of patching ``os.environ``:

==========================  ================================================================
variable                    meaning
==========================  ================================================================
``CLASSMAP_CACHE_DIR``      the result cache folder (default below)
``XDG_CACHE_HOME``          base of the default cache folder (``$XDG_CACHE_HOME/classmap``)
``HF_HUB_OFFLINE``          ``1``: never probe the Hugging Face hub (offline machines)
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


def hub_offline(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``HF_HUB_OFFLINE`` says the Hugging Face hub must not be contacted."""
    return _environment(environ).get(HUB_OFFLINE_ENV, "").lower() in _TRUE


def secret_key(environ: Mapping[str, str] | None = None) -> str | None:
    """``$CLASSMAP_SECRET_KEY`` (None when unset or empty)."""
    return _environment(environ).get(SECRET_KEY_ENV) or None
