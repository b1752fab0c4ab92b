"""The only reader of environment variables in Classmap.

Every variable Classmap honours is read here, so one page lists them all and tests
can pass a mapping instead of patching ``os.environ``:

==========================  ================================================================
variable                    meaning
==========================  ================================================================
``CLASSMAP_CACHE_DIR``      the result cache folder (default below)
``XDG_CACHE_HOME``          base of the default cache folder (``$XDG_CACHE_HOME/classmap``)
``HF_HUB_OFFLINE``          ``1``: never probe the Hugging Face hub (offline machines)
``CLASSMAP_MEMORY_BUDGET``  peak memory of a weight analysis's process (interpreter, head and
                            working arrays), e.g. ``8G`` or ``512M`` (default 6G); it picks
                            the clustering routine
``CLASSMAP_SECRET_KEY``     the web app's Flask secret key (every web process must share it;
                            unset: a generated private file, see ``classmap.app.hosting``)
``CLASSMAP_JOBS_PER_MODEL`` background jobs that may compute at once for one model (2)
``CLASSMAP_JOBS_PER_SESSION`` background jobs that may compute at once for one browser
                            session (2); later ones wait, shown as "queued"
``CLASSMAP_JOBS_QUEUED``    jobs that may wait per session (4); more are refused
``CLASSMAP_JOB_TIME_LIMIT`` seconds a background job may run before it is stopped (1800)
``CLASSMAP_JOB_HEARTBEAT``  seconds without a heartbeat after which a job counts as dead (15)
``CLASSMAP_CONFIG``         the TOML config file of ``classmap serve --workers`` / gunicorn's
                            WSGI factory (``classmap.app.hosting.wsgi``) and ``classmap worker``
``CLASSMAP_BROKER``         ``redis://…``: background callbacks run on Celery workers
                            (unset: in the web process's own job processes)
``CLASSMAP_URL_PREFIX``     the path the app is served under behind a proxy (``/classmap``)
``CLASSMAP_*`` (others)     the web app's settings, parsed by ``classmap.app`` from
                            :func:`classmap_environment`
==========================  ================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR_ENV = "CLASSMAP_CACHE_DIR"
HUB_OFFLINE_ENV = "HF_HUB_OFFLINE"
MEMORY_BUDGET_ENV = "CLASSMAP_MEMORY_BUDGET"
# 6 GiB: a 50,000-class head's Ward (float32 chain, 5.6 GiB estimated with the
# interpreter) runs in minutes instead of linkage_vector's hour; a third of a 16 GB laptop.
# A server running several analyses at once sets its own (CLASSMAP_MEMORY_BUDGET).
DEFAULT_MEMORY_BUDGET = 6 * 1024**3
# What the budget's estimates count for the process itself before any array: the
# interpreter with numpy, scipy, fastcluster, torch and scikit-learn imported measured
# 0.62 GiB resident (torch alone 0.47 GiB; x86_64, torch 2.14, Python 3.11), plus slack
# for the allocator and small objects.
RUNTIME_BYTES = 768 * 1024**2
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
    """Bytes a weight analysis's process may hold at its peak (the interpreter, the head
    and the working arrays; see ``check_memory`` in ``classmap.analysis.pipelines.weights``).

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


@dataclass(frozen=True)
class JobLimits:
    """Limits on the web app's background jobs (see the table above for the variables).

    per_model, per_session : jobs computing at once for one model / one browser session
    queued : jobs that may wait for a slot per session (more are refused)
    time_limit : seconds a job may run (waiting included) before it is stopped
    heartbeat_timeout : seconds without a heartbeat after which a job counts as dead
    """

    per_model: int = 2
    per_session: int = 2
    queued: int = 4
    time_limit: float = 1800.0
    heartbeat_timeout: float = 15.0


_LIMIT_ENV = {"per_model": "CLASSMAP_JOBS_PER_MODEL", "per_session": "CLASSMAP_JOBS_PER_SESSION",
              "queued": "CLASSMAP_JOBS_QUEUED", "time_limit": "CLASSMAP_JOB_TIME_LIMIT",
              "heartbeat_timeout": "CLASSMAP_JOB_HEARTBEAT"}


def job_limits(environ: Mapping[str, str] | None = None) -> JobLimits:
    """The background-job limits from ``CLASSMAP_JOBS_*`` / ``CLASSMAP_JOB_*`` (defaults:
    :class:`JobLimits`). A value that is not a positive number raises ClassmapError."""
    from classmap.analysis.errors import ClassmapError

    env = _environment(environ)
    values: dict[str, float | int] = {}
    for field, name in _LIMIT_ENV.items():
        text = env.get(name, "").strip()
        if not text:
            continue
        kind = float if field in ("time_limit", "heartbeat_timeout") else int
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value < 0 or (value == 0 and field != "queued"):
            raise ClassmapError(f"{name}={text!r} is not a "
                                f"{'positive number' if kind is float else 'whole number ≥ 1'}; "
                                f"unset it or give e.g. {getattr(JobLimits, field)}")
        values[field] = value
    return JobLimits(**values)


def secret_key(environ: Mapping[str, str] | None = None) -> str | None:
    """``$CLASSMAP_SECRET_KEY`` (None when unset or empty)."""
    return _environment(environ).get(SECRET_KEY_ENV) or None


CONFIG_ENV = "CLASSMAP_CONFIG"
BROKER_ENV = "CLASSMAP_BROKER"
URL_PREFIX_ENV = "CLASSMAP_URL_PREFIX"
INSECURE_NO_AUTH_ENV = "CLASSMAP_INSECURE_NO_AUTH"


@dataclass(frozen=True)
class ProductionEnvironment:
    """What a gunicorn worker or a Celery worker reads at start (their command lines
    reach them through these variables): ``config`` file, ``broker`` URL, ``url_prefix``
    — each None when unset or empty; ``insecure_no_auth``: ``$CLASSMAP_INSECURE_NO_AUTH``
    is ``1`` (the WSGI factory then serves without users, as ``--insecure-no-auth``)."""

    config: str | None = None
    broker: str | None = None
    url_prefix: str | None = None
    insecure_no_auth: bool = False


def production_environment(environ: Mapping[str, str] | None = None) -> ProductionEnvironment:
    """``$CLASSMAP_CONFIG``, ``$CLASSMAP_BROKER``, ``$CLASSMAP_URL_PREFIX`` and
    ``$CLASSMAP_INSECURE_NO_AUTH``."""
    env = _environment(environ)
    return ProductionEnvironment(config=env.get(CONFIG_ENV) or None,
                                 broker=env.get(BROKER_ENV) or None,
                                 url_prefix=env.get(URL_PREFIX_ENV) or None,
                                 insecure_no_auth=env.get(INSECURE_NO_AUTH_ENV) == "1")
