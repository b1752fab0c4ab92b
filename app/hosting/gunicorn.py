"""``classmap serve --workers N``: the app under gunicorn (several web processes).

:class:`ClassmapGunicorn` is gunicorn's documented custom-application hook (a
``BaseApplication`` whose ``load`` returns the WSGI app): each gunicorn worker builds its
own app after the fork (no ``preload``), so no worker shares the master's memory, locks
or a CUDA context. The default model is analysed before the workers start, in a
separate (spawned) process, so the first page of every worker is served from the cache.
With ``--broker`` the web processes never see a GPU (``CUDA_VISIBLE_DEVICES`` is emptied
for them): the model work happens in ``classmap worker`` processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from dataclasses import replace
from typing import Any

from gunicorn.app.base import BaseApplication

log = logging.getLogger(__name__)


def default_workers() -> int:
    """gunicorn's usual advice: 2 × cores + 1."""
    return 2 * (os.cpu_count() or 1) + 1


class ClassmapGunicorn(BaseApplication):
    """gunicorn running :func:`classmap.app.hosting.wsgi.build_wsgi_app` in each worker.

    ``settings``: app/config.py Settings (picklable); ``options``: gunicorn settings
    (``bind``, ``workers``, …); ``broker``, ``url_prefix``: as for build_wsgi_app.
    """

    def __init__(self, settings: Any, options: dict[str, Any], broker: str | None = None,
                 url_prefix: str | None = None) -> None:
        self.settings = settings
        self.options = options
        self.broker = broker
        self.url_prefix = url_prefix
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        from classmap.app.hosting.wsgi import build_wsgi_app

        return build_wsgi_app(self.settings, self.broker, self.url_prefix)


def _warm(settings: Any) -> None:
    from classmap.app.server import warm_up
    from classmap.app.shell.services import Services

    warm_up(Services(settings))


def serve_gunicorn(settings: Any, host: str, port: int, workers: int | None = None,
                   broker: str | None = None, url_prefix: str | None = None,
                   insecure_no_auth: bool = False, timeout: int = 120) -> None:
    """Check the exposure as ``serve`` does, warm the default model (without a broker),
    then run gunicorn on ``host:port`` with ``workers`` processes (blocking)."""
    from classmap.app.hosting.access import check_exposure, limit_log_lines

    check_exposure(host, settings.hosting, insecure_no_auth, False)
    limit_log_lines()
    if broker:
        # The web processes publish jobs; workers compute. Never a CUDA context here.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        settings = replace(settings, device="cpu", warm_default=False)
    elif settings.warm_default:
        process = multiprocessing.get_context("spawn").Process(target=_warm, args=(settings,))
        process.start()
        process.join()
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers or default_workers(),
        "worker_class": "gthread",  # a thread per request: Dash polls while jobs run
        "threads": 4,
        "timeout": timeout,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "proc_name": "classmap-web",
        "control_socket_disable": True,  # several servers on one machine: no shared socket
    }
    log.warning("Classmap dashboard on http://%s:%d%s (gunicorn, %d workers; jobs: %s)",
                host, port, url_prefix or "/", options["workers"],
                "Celery via Redis" if broker else "in-process forkserver")
    ClassmapGunicorn(settings, options, broker, url_prefix).run()
