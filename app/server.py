"""The Dash app factory and the ``classmap serve`` runner.

``create_app(settings)`` builds one app: the shell (``app/shell``: frame, shared
selection, background jobs) and every page package in ``app/pages`` (each registers
its URL, layout and callbacks with ``register(app, services)``), background callbacks
on a JobManager (``app/shell/job_processes.py``: forkserver processes with a heartbeat,
limits and a watchdog) whose folder is private (mode 0700), and a global error handler
that logs the traceback and tells the user in the page instead of leaving it stale.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dash

from classmap.analysis.errors import ClassmapError
from classmap.app.browser_scripts import (
    ASSETS_DIR,
    ASSETS_PATH_IGNORE,
    assets_ignore,
    without_polyfill,
)
from classmap.app.config import Settings
from classmap.app.hosting.access import (HEALTH_ENDPOINT, check_exposure, install_access,
                                         limit_log_lines)
from classmap.app.pages import register_pages
from classmap.analysis.settings import job_limits
from classmap.app.shell import callbacks as shell_callbacks
from classmap.app.shell.job_processes import DisabledJobs, JobManager, open_job_store
from classmap.app.shell.callbacks import report_callback_error
from classmap.app.shell.clientside import config_script
from classmap.app.shell.layout import build_shell
from classmap.app.shell.services import Services, current_services

__all__ = ["ClassmapDash", "create_app", "current_services", "report_callback_error", "serve",
           "serve_in_thread", "warm_up"]

log = logging.getLogger(__name__)

SERVICES_KEY = "CLASSMAP_SERVICES"


def create_app(settings: Settings, services: Services | None = None, *,
               manager: Any = None, url_prefix: str | None = None) -> dash.Dash:
    """A ready-to-run Dash app for ``settings`` (nothing is loaded or computed here).

    ``manager``: the background-callback manager (default: a JobManager on the jobs
    folder; production: app/hosting/celery_app.py's CeleryJobManager); ``url_prefix``:
    the path the app is served under behind a reverse proxy (``/classmap``).
    """
    services = services or Services(settings)
    if manager is None:
        # Jobs fork from a forkserver (no server locks, no listening socket), beat a
        # heartbeat and obey per-model / per-session / per-user limits
        # (app/shell/job_processes.py). A job store that cannot be opened (a full disk)
        # disables jobs after one warning; the server still serves what is computed.
        jobs = open_job_store(settings.jobs_dir)
        manager = JobManager(jobs, settings, job_limits()) if jobs is not None \
            else DisabledJobs()
    prefix = "/" + url_prefix.strip("/") + "/" if url_prefix and url_prefix.strip("/") else None
    app = ClassmapDash(
        __name__,
        url_base_pathname=prefix,
        use_pages=True,
        pages_folder="",  # pages are registered by their packages (app/pages), not scanned
        assets_folder=str(ASSETS_DIR),
        # Vendored scripts (assets/vendor) are left out when Dash's stock ones are chosen.
        assets_ignore=assets_ignore(settings.plotly_bundle, settings.babel_polyfill),
        assets_path_ignore=ASSETS_PATH_IGNORE,
        title="Classmap",
        update_title=None,
        background_callback_manager=manager,
        on_error=report_callback_error,
        suppress_callback_exceptions=False,
        compress=settings.compress,
        health_endpoint=HEALTH_ENDPOINT,  # the one public route (app/hosting/access.py)
    )
    app.drop_polyfill = settings.babel_polyfill == "drop"
    app.server.config[SERVICES_KEY] = services
    app._classmap_services = services  # type: ignore[attr-defined]
    app._classmap_jobs = manager  # type: ignore[attr-defined]
    shell_callbacks.register(app, services)
    register_pages(app, services)
    shell_callbacks.register_page_class(app)
    app.layout = build_shell(settings)  # after the pages: the header links to each
    install_access(app, settings)  # after every callback: the guard checks callback ids
    return app


class ClassmapDash(dash.Dash):
    """dash.Dash whose pages carry the browser config (shell/clientside.py) and can leave out
    Dash's babel polyfill (app/browser_scripts.py).

    ``interpolate_index`` is Dash's documented hook for customising the page's HTML.
    """

    drop_polyfill = False
    _validation_json: tuple[tuple[int, ...], str] | None = None

    def _generate_config_html(self) -> str:
        """Dash's ``_dash-config`` script (dash 4.4 ``Dash._generate_config_html``), with
        the validation layout's JSON encoded once, not on every page load: that layout
        (every page's components, ~100 kB) took ~50 ms of plotly's JSON encoder per page
        load, ~10 % of a full view (benchmarks/profile_full_view.py). The rest of the
        config (its signed ``end_id`` is new for each page load) is encoded as Dash does."""
        from dash._utils import to_json

        config = self._config()
        layout = config.pop("validation_layout", None)
        text = to_json(config)
        if layout is not None and text.endswith("}"):
            # The layout object is rebuilt around the same parts when Dash adds extra
            # components: key the cache by those parts.
            key = (id(self.validation_layout), *map(id, self._extra_components))
            cached = self._validation_json
            if cached is None or cached[0] != key:
                cached = self._validation_json = (key, to_json(layout))
            separator = ", " if text != "{}" else ""
            text = f'{text[:-1]}{separator}"validation_layout": {cached[1]}}}'
        return f'<script id="_dash-config" type="application/json">{text}</script>'

    def interpolate_index(self, **kwargs: Any) -> str:
        if self.drop_polyfill:
            kwargs["scripts"] = without_polyfill(kwargs["scripts"])
        # The selection schema and the clientside callbacks' constants, read by
        # assets/classmap.js (before any script, so it is there when they run).
        kwargs["scripts"] = config_script(self) + kwargs["scripts"]
        return super().interpolate_index(**kwargs)


def warm_up(services: Services) -> None:
    """Load and analyse the default model now, so the first page renders at once.

    A model that fails to load is logged; the page shows the message when asked.
    """
    settings = services.settings
    key = (settings.default_model, "cosine", "ward")
    try:
        view = services.view(key)
        services.embedding(settings.default_model, "pca")
    except ClassmapError as error:
        log.warning("default model %s is not usable: %s", settings.default_model, error)
        return
    log.info("warmed %s: %d classes", settings.default_model, view.num_classes)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8050,
          debug: bool = False, insecure_no_auth: bool = False,
          url_prefix: str | None = None) -> None:
    """Build the app and serve it (blocking) on ``host:port`` (under ``url_prefix``).

    Beyond loopback it refuses to start without users or a trusted proxy (unless
    ``insecure_no_auth``), without allowed Host names, or with ``debug``.
    """
    check_exposure(host, settings.hosting, insecure_no_auth, debug)
    limit_log_lines()
    services = Services(settings)
    app = create_app(settings, services, url_prefix=url_prefix)
    app._classmap_jobs.start()  # type: ignore[attr-defined]  # before any thread or socket
    if settings.warm_default:
        warm_up(services)
    log.warning("Classmap dashboard on http://%s:%d/ (models: %s; plotly.js: %s; babel "
                "polyfill: %s; compression: %s)", host, port, ", ".join(settings.model_ids),
                settings.plotly_bundle, settings.babel_polyfill,
                "on" if settings.compress else "off")
    # Never Werkzeug's interactive debugger: it runs code typed into the browser.
    app.run(host=host, port=port, debug=debug, use_reloader=False, threaded=True,
            use_debugger=False)


def serve_in_thread(app: dash.Dash, host: str, port: int) -> threading.Thread:
    """Serve ``app`` from a daemon thread (tests and benchmarks); returns the thread."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="classmap-server", daemon=True)
    thread._classmap_server = server  # type: ignore[attr-defined]
    thread.start()
    return thread
