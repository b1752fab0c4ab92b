"""Server settings: which models the dashboard offers and where it keeps its files.

This is the only module of the app that reads environment variables:

``CLASSMAP_CACHE_DIR``
    result cache folder (default ``~/.cache/classmap``; ``--cache-dir`` wins).
``CLASSMAP_MODELS``
    extra models the browser may choose, besides the one named by the command-line
    flags and the embedded ones. Either a comma-separated list of model names
    (``lenet-digits,resnet50.a1_in1k``) or a JSON list of objects with the keys
    ``model``, ``weights``, ``head``, ``classes`` (paths on the server) and optional
    ``id`` / ``label`` / ``head_key`` (the head tensor's name when ``head`` holds a whole
    network, as ``--head-key``)::

        [{"id": "r18-mine", "model": "resnet18", "weights": "/models/r18.safetensors"}]

``CLASSMAP_JOBS_DIR``
    folder of the background-job store (Dash's DiskcacheManager); default
    ``<cache dir>/jobs``. It is created with mode 0700 and refused when other users
    can write to it: diskcache unpickles what it reads there.
``CLASSMAP_DEVICE``
    torch device for the analyses (``--device`` wins; default CUDA when present).
``CLASSMAP_PLOTLY_BUNDLE``
    ``partial`` (default when ``make install`` could build it) or ``full``: which
    plotly.js the pages load (see :mod:`classmap.app.browser_scripts`). ``full`` is slower to start
    and draws scatter plots of more than a few thousand points with WebGL.
``CLASSMAP_COMPRESS``
    ``1`` to compress responses (gzip/brotli, flask-compress) for browsers on other
    machines: a fresh page load then moves about half the bytes. Off by default: on
    the server's own machine it only costs CPU. The Docker image turns it on.
``CLASSMAP_BABEL_POLYFILL``
    ``drop`` (default when ``make install`` could fetch the regenerator runtime) or
    ``keep``: whether pages leave out Dash's babel polyfill, which slows plotly.js
    down in current browsers (see :mod:`classmap.app.browser_scripts`).

The browser only ever sends a model *id* from :attr:`Settings.models`; it never
names a file. Ids are derived from the spec (not random), so a shared URL keeps
its meaning across server restarts.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.models import EMBEDDED_MODELS, ModelSpec
from classmap.analysis.settings import classmap_environment, default_cache_dir
from classmap.app.browser_scripts import choose_bundle, choose_polyfill
from classmap.app.hosting.config import HostingConfig, load_config

MODELS_ENV = "CLASSMAP_MODELS"
CACHE_DIR_ENV = "CLASSMAP_CACHE_DIR"
JOBS_DIR_ENV = "CLASSMAP_JOBS_DIR"
DEVICE_ENV = "CLASSMAP_DEVICE"
PLOTLY_BUNDLE_ENV = "CLASSMAP_PLOTLY_BUNDLE"
POLYFILL_ENV = "CLASSMAP_BABEL_POLYFILL"
COMPRESS_ENV = "CLASSMAP_COMPRESS"
# Above this many classes the heatmap is a block-aggregated overview.
DENSE_HEATMAP_LIMIT = 2000
_ID_CHARS = re.compile(r"[^a-z0-9._-]+")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


@dataclass(frozen=True)
class ModelEntry:
    """One model the browser may pick.

    Attributes
    ----------
    id : URL key (lower-case letters, digits, ``.``, ``_``, ``-``), stable across restarts
    label : what the model picker shows
    spec : the ModelSpec the server loads for it
    """

    id: str
    label: str
    spec: ModelSpec


@dataclass(frozen=True)
class Settings:
    """Everything the server needs; build it with :meth:`from_args` or :meth:`create`.

    Attributes
    ----------
    models : the configured models, the default first
    cache_dir : folder of the result cache (arrays as .npy, JSON metadata)
    jobs_dir : private folder of the background-job store (mode 0700)
    device : torch device for analyses, or None for "CUDA when present"
    dense_heatmap_limit : up to this many classes the heatmap shows every cell
    warm_default : analyse the default model before the server accepts requests
    plotly_bundle : ``partial`` or ``full`` — the plotly.js the pages load
    babel_polyfill : ``drop`` or ``keep`` — whether pages load Dash's babel polyfill
    compress : compress responses (CLASSMAP_COMPRESS)
    hosting : the config file's users, proxy, Host names and limits (``serve --config``;
        the default: no users, loopback only)
    """

    models: tuple[ModelEntry, ...]
    cache_dir: Path
    jobs_dir: Path
    device: str | None = None
    dense_heatmap_limit: int = DENSE_HEATMAP_LIMIT
    warm_default: bool = True
    # -- image data sets (issue 5) ------------------------------------------------------
    data_roots: tuple[Path, ...] = ()  # folders the server may open images under
    # -- end image data sets ------------------------------------------------------------
    plotly_bundle: str = "full"
    babel_polyfill: str = "keep"
    compress: bool = False
    hosting: HostingConfig = HostingConfig()

    @property
    def webgl(self) -> bool:
        """Whether figures may use WebGL traces (only the full plotly.js has them)."""
        return self.plotly_bundle == "full"

    @property
    def default_model(self) -> str:
        """Id of the model a page shows when the URL names none."""
        return self.models[0].id

    def model(self, model_id: str) -> ModelEntry:
        """The entry for ``model_id``; raises naming the configured ids."""
        offered = self.offered_models
        for entry in offered:
            if entry.id == model_id:
                return entry
        raise ClassmapError(
            f"model {model_id!r} is not configured on this server; "
            f"choose one of {', '.join(entry.id for entry in offered)}"
        )

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(entry.id for entry in self.offered_models)

    @property
    def offered_models(self) -> tuple[ModelEntry, ...]:
        """:attr:`models` plus the heads operators uploaded to this instance, read from
        ``<cache dir>/uploads`` when ``[uploads] enabled`` (app/hosting/uploads.py)."""
        if not self.hosting.uploads.enabled:
            return self.models
        from classmap.app.hosting.uploads import uploaded_models

        return self.models + uploaded_models(self)

    @classmethod
    def from_args(cls, args: Any, environ: Mapping[str, str] | None = None) -> "Settings":
        """Settings from ``classmap serve``'s parsed flags plus the environment.

        ``args`` has ``model``, ``weights``, ``head``, ``classes``, ``cache_dir`` and
        ``device`` (the shared model flags), and may have ``config`` (a TOML file, see
        :mod:`classmap.app.hosting.config`) and ``data``.
        """
        config_file = getattr(args, "config", None)
        hosting = load_config(config_file) if config_file else HostingConfig()
        spec = ModelSpec(
            model=getattr(args, "model", None), weights=getattr(args, "weights", None),
            head=getattr(args, "head", None), classes=getattr(args, "classes", None),
            head_key=getattr(args, "head_key", None),
        )
        return cls.create(
            primary=spec, cache_dir=getattr(args, "cache_dir", None),
            device=getattr(args, "device", None), environ=environ,
            data_roots=getattr(args, "data", None),  # image data sets (issue 5)
            hosting=hosting,
        )

    @classmethod
    def create(
        cls,
        primary: ModelSpec | None = None,
        *,
        cache_dir: str | Path | None = None,
        jobs_dir: str | Path | None = None,
        device: str | None = None,
        extra_models: str | None = None,
        environ: Mapping[str, str] | None = None,
        warm_default: bool = True,
        dense_heatmap_limit: int = DENSE_HEATMAP_LIMIT,
        data_roots: "list[str | Path] | tuple[str | Path, ...] | None" = None,  # issue 5
        plotly_bundle: str | None = None,
        babel_polyfill: str | None = None,
        compress: bool | None = None,
        hosting: HostingConfig | None = None,
    ) -> "Settings":
        """Settings with ``primary`` as the default model (None: the embedded default).

        Explicit keyword arguments win over the config file (``hosting``), which wins over
        the environment; ``extra_models`` uses the ``CLASSMAP_MODELS`` syntax.
        """
        env = classmap_environment() if environ is None else environ
        hosting = hosting or HostingConfig()
        entries = [entry_from_spec(primary or ModelSpec())]
        entries.extend(_entry_from_json(dict(item), "config file") for item in hosting.models)
        extra = extra_models if extra_models is not None else env.get(MODELS_ENV, "")
        entries.extend(parse_models(extra))
        for name in EMBEDDED_MODELS:
            entries.append(entry_from_spec(ModelSpec(model=name)))
        models = _unique_entries(entries)
        cache = Path(cache_dir or hosting.cache_dir or env.get(CACHE_DIR_ENV)
                     or default_cache_dir()).expanduser()
        jobs = Path(jobs_dir or env.get(JOBS_DIR_ENV) or cache / "jobs").expanduser()
        from classmap.analysis.methods.matrix_pyramid import TILE as PYRAMID_TILE

        # Above the limit the heatmap is stitched from the tile pyramid, whose top level is
        # one tile: a limit below a tile's side would ask for levels above the top.
        if dense_heatmap_limit < PYRAMID_TILE:
            raise ClassmapError(
                f"dense heatmap limit {dense_heatmap_limit} is too small; use at least "
                f"{PYRAMID_TILE} (the side of a heatmap pyramid tile)"
            )
        return cls(
            models=models, cache_dir=cache, jobs_dir=jobs,
            device=device or env.get(DEVICE_ENV) or None,
            dense_heatmap_limit=dense_heatmap_limit, warm_default=warm_default,
            data_roots=parse_data_roots([*(data_roots or ()), *hosting.data_roots], env),
            plotly_bundle=choose_bundle(plotly_bundle or env.get(PLOTLY_BUNDLE_ENV) or None),
            babel_polyfill=choose_polyfill(babel_polyfill or env.get(POLYFILL_ENV) or None),
            compress=compress if compress is not None else parse_flag(env.get(COMPRESS_ENV),
                                                                      COMPRESS_ENV),
            hosting=hosting,
        )


def parse_flag(text: str | None, name: str) -> bool:
    """An on/off environment variable: 1/true/yes/on or 0/false/no/off (unset: off)."""
    value = (text or "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ClassmapError(f"{name}={text!r} is not on or off; use 1 or 0")


def entry_from_spec(spec: ModelSpec, model_id: str | None = None,
                    label: str | None = None) -> ModelEntry:
    """A ModelEntry whose id is derived from the spec (so it is stable across restarts)."""
    if model_id is None:
        if spec.head is not None:
            model_id = f"head-{Path(spec.head).stem}"
        elif spec.weights is not None:
            model_id = f"{spec.model_name}-{Path(spec.weights).stem}"
        else:
            model_id = spec.model_name
    slug = _ID_CHARS.sub("-", model_id.lower()).strip("-")
    if not slug:
        raise ClassmapError(
            f"model id {model_id!r} has no usable characters; use letters, digits, '.', '_', '-'"
        )
    return ModelEntry(slug, label or spec.label, spec)


def parse_models(text: str) -> list[ModelEntry]:
    """Entries from the ``CLASSMAP_MODELS`` syntax (see the module docstring)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise ClassmapError(
                f"{MODELS_ENV} is not valid JSON ({error.msg} at character {error.pos}); "
                'write a list like [{"model": "resnet18", "weights": "/path/r18.pth"}]'
            ) from None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ClassmapError(
                f"{MODELS_ENV} must be a JSON list of objects; "
                'write a list like [{"model": "resnet18", "weights": "/path/r18.pth"}]'
            )
        return [_entry_from_json(item) for item in items]
    names = [name for name in re.split(r"[,\s]+", text) if name]
    for name in names:
        if not _MODEL_NAME.fullmatch(name):
            raise ClassmapError(
                f"{MODELS_ENV} entry {name!r} is not a model name; list names separated by "
                'commas, or give a JSON list like [{"model": "resnet18"}]'
            )
    return [entry_from_spec(ModelSpec(model=name)) for name in names]


_JSON_KEYS = {"id", "label", "model", "weights", "head", "head_key", "classes"}


def _entry_from_json(item: dict[str, Any], where: str = MODELS_ENV) -> ModelEntry:
    unknown = sorted(set(item) - _JSON_KEYS)
    if unknown:
        raise ClassmapError(
            f"{where} entry has unknown key(s) {', '.join(unknown)}; "
            f"use {', '.join(sorted(_JSON_KEYS))}"
        )
    values = {key: item.get(key) for key in _JSON_KEYS}
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise ClassmapError(f"{where} entry key {key!r} must be a string; quote it")
    spec = ModelSpec(model=values["model"], weights=values["weights"], head=values["head"],
                     classes=values["classes"], head_key=values["head_key"])
    return entry_from_spec(spec, values["id"], values["label"])


def _unique_entries(entries: list[ModelEntry]) -> tuple[ModelEntry, ...]:
    """Drop exact repeats (same id and spec); refuse one id naming two specs."""
    seen: dict[str, ModelEntry] = {}
    for entry in entries:
        previous = seen.get(entry.id)
        if previous is None:
            seen[entry.id] = entry
        elif previous.spec.to_json() != entry.spec.to_json():
            raise ClassmapError(
                f"two configured models share the id {entry.id!r}; give one an explicit "
                f'"id" in {MODELS_ENV}'
            )
    return tuple(seen.values())


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` with mode 0700 (or check an existing one) and return it.

    Raises when the folder is writable by others or owned by another user: the
    background-job store unpickles what it reads there, so whoever can write into it
    could run code in the server.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ClassmapError(
            f"job folder {path} belongs to another user; set {JOBS_DIR_ENV} to a folder of yours"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ClassmapError(
            f"job folder {path} is writable by other users; run 'chmod 700 {path}' or set "
            f"{JOBS_DIR_ENV} to a private folder"
        )
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


# -- image data sets (issue 5) ------------------------------------------------------------
DATA_ROOTS_ENV = "CLASSMAP_DATA_ROOTS"


def parse_data_roots(given: Any, environ: Mapping[str, str]) -> tuple[Path, ...]:
    """Data roots from ``classmap serve --data DIR`` (repeatable) plus ``CLASSMAP_DATA_ROOTS``.

    ``CLASSMAP_DATA_ROOTS`` lists folders separated by ``os.pathsep``. Each root is one
    data set (a folder with one sub-folder per class) the browser may pick by id; the
    embedded ``digits`` set is always offered. Roots are resolved (symlinks, ``..``)
    here, once.
    """
    texts = [str(item) for item in (given or ())]
    texts += [part for part in environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if part.strip()]
    roots: list[Path] = []
    for text in texts:
        root = Path(text.strip()).expanduser().resolve()
        if not root.is_dir():
            raise ClassmapError(
                f"data root {text} is not a folder; pass a folder with one sub-folder per "
                f"class to --data or {DATA_ROOTS_ENV}"
            )
        if root not in roots:
            roots.append(root)
    return tuple(roots)
# -- end image data sets ------------------------------------------------------------------
