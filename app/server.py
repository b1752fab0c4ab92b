"""The Dash app factory and the ``classmap serve`` runner.

``create_app(settings)`` builds one app: Dash Pages from ``app/pages`` (one module
per URL), the shell from ``app/components/shell.py``, callbacks from every module in
``app/callbacks`` (each has ``register(app, services)``), background callbacks on a
DiskcacheManager whose folder is private (mode 0700), and a global error handler that
logs the traceback and tells the user in the page instead of leaving it stale.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from pathlib import Path
from typing import Any

import dash
import diskcache
from dash import DiskcacheManager

from classmap.analysis.errors import ClassmapError
from classmap.app import ids
from classmap.app.config import Settings, ensure_private_dir
from classmap.app.browser_scripts import ASSETS_DIR, assets_ignore, without_polyfill
from classmap.app.services import Services

log = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parent
PAGES_DIR = APP_DIR / "pages"
SERVICES_KEY = "CLASSMAP_SERVICES"


def create_app(settings: Settings, services: Services | None = None) -> dash.Dash:
    """A ready-to-run Dash app for ``settings`` (nothing is loaded or computed here)."""
    services = services or Services(settings)
    jobs = diskcache.Cache(str(ensure_private_dir(settings.jobs_dir)))
    app = ClassmapDash(
        __name__,
        use_pages=True,
        pages_folder=str(PAGES_DIR),
        assets_folder=str(ASSETS_DIR),
        # Vendored scripts (assets/vendor) are left out when Dash's stock ones are chosen.
        assets_ignore=assets_ignore(settings.plotly_bundle, settings.babel_polyfill),
        title="Classmap",
        update_title=None,
        background_callback_manager=DiskcacheManager(jobs),
        on_error=report_callback_error,
        suppress_callback_exceptions=False,
        compress=settings.compress,
    )
    app.drop_polyfill = settings.babel_polyfill == "drop"
    app.server.config[SERVICES_KEY] = services
    app._classmap_services = services  # type: ignore[attr-defined]
    from classmap.app.components.shell import build_shell

    app.layout = build_shell(settings)
    for module in callback_modules():
        module.register(app, services)
    return app


class ClassmapDash(dash.Dash):
    """dash.Dash whose pages can leave out Dash's babel polyfill (app/browser_scripts.py).

    ``interpolate_index`` is Dash's documented hook for customising the page's HTML.
    """

    drop_polyfill = False

    def interpolate_index(self, **kwargs: Any) -> str:
        if self.drop_polyfill:
            kwargs["scripts"] = without_polyfill(kwargs["scripts"])
        return super().interpolate_index(**kwargs)


def callback_modules() -> list[Any]:
    """Every module in ``app/callbacks`` (each provides ``register(app, services)``)."""
    import classmap.app.callbacks as package

    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__)
                   if not info.name.startswith("_"))
    return [importlib.import_module(f"{package.__name__}.{name}") for name in names]


def current_services() -> Services:
    """The Services of the app serving the current request (for pages' ``layout()``)."""
    app = dash.get_app()
    return app._classmap_services  # type: ignore[attr-defined]


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
          debug: bool = False) -> None:
    """Build the app and serve it (blocking) on ``host:port``."""
    services = Services(settings)
    app = create_app(settings, services)
    if settings.warm_default:
        warm_up(services)
    log.warning("Classmap dashboard on http://%s:%d/ (models: %s; plotly.js: %s; babel "
                "polyfill: %s; compression: %s)", host, port, ", ".join(settings.model_ids),
                settings.plotly_bundle, settings.babel_polyfill,
                "on" if settings.compress else "off")
    app.run(host=host, port=port, debug=debug, use_reloader=False, threaded=True)


def serve_in_thread(app: dash.Dash, host: str, port: int) -> threading.Thread:
    """Serve ``app`` from a daemon thread (tests and benchmarks); returns the thread."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="classmap-server", daemon=True)
    thread._classmap_server = server  # type: ignore[attr-defined]
    thread.start()
    return thread


def report_callback_error(error: Exception) -> None:
    """Global callback error handler: log it, tell the user, keep the page as it was."""
    if isinstance(error, ClassmapError):
        log.warning("callback refused input: %s", error)
        text = str(error)
    else:
        log.error("callback failed", exc_info=error)
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        text = (f"Something went wrong ({type(error).__name__}{': ' + first[:160] if first else ''}); "
                "the view keeps its previous state — the server log has the details")
    dash.set_props(ids.NOTICE_TEXT, {"children": text})
    dash.set_props(ids.NOTICE, {"className": "cm-notice cm-notice-error"})
    return None
