"""The WSGI entry point for gunicorn (or any WSGI server).

``gunicorn 'classmap.app.hosting.wsgi:create_wsgi_app()'`` builds the app from the
environment: ``CLASSMAP_CONFIG`` (the TOML config file: users, models, allowed hosts —
:mod:`classmap.app.hosting.config`), ``CLASSMAP_BROKER`` (``redis://…``: background
callbacks on Celery workers, :mod:`classmap.app.hosting.celery_app`) and
``CLASSMAP_URL_PREFIX`` (the path behind a reverse proxy). ``classmap serve --workers N``
runs gunicorn with :func:`build_wsgi_app` directly (:mod:`classmap.app.hosting.gunicorn`).

The access guard is installed by ``create_app``, so every route is checked as in the
single-process server. The factory does not know the address gunicorn binds, so it fails
closed: without users in ``CLASSMAP_CONFIG`` it refuses to build the app unless
``CLASSMAP_INSECURE_NO_AUTH=1`` says serving without authentication is meant.
"""

from __future__ import annotations

from typing import Any

from classmap.analysis.settings import production_environment


def build_wsgi_app(settings: Any, broker: str | None = None,
                   url_prefix: str | None = None) -> Any:
    """The Flask server of the Dash app for ``settings`` (app/config.py Settings).

    ``broker``: Redis URL for Celery workers (None: jobs in this process's forkserver);
    ``url_prefix``: e.g. ``/classmap`` (None: served at ``/``).
    """
    if broker:
        from classmap.app.hosting.celery_app import build_celery_app

        _, app = build_celery_app(settings, broker, url_prefix)
    else:
        from classmap.app.server import create_app

        app = create_app(settings, url_prefix=url_prefix)
    register_scripts(app)
    return app.server


def register_scripts(app: Any) -> None:
    """Render the index page once, so this process knows every script path it serves.

    Dash records the component-suite paths it may serve while it renders a page; under
    gunicorn the page and its scripts can reach different processes, and one that had
    not rendered a page yet answered its scripts with an error.
    """
    with app.server.test_request_context(app.config.requests_pathname_prefix):
        app.index()


def settings_from_environment() -> Any:
    """Settings from ``CLASSMAP_CONFIG`` (when set) and the other ``CLASSMAP_*`` variables."""
    from classmap.app.config import Settings
    from classmap.app.hosting.config import HostingConfig, load_config

    env = production_environment()
    hosting = load_config(env.config) if env.config else HostingConfig()
    return Settings.create(hosting=hosting)


def create_wsgi_app() -> Any:
    """gunicorn's application factory: the app the environment describes.

    Raises ClassmapError (one line) when no users are configured and
    ``CLASSMAP_INSECURE_NO_AUTH=1`` is not set: gunicorn may bind any address, and without
    users every request would be served as the local operator.
    """
    from classmap.analysis.errors import ClassmapError

    env = production_environment()
    settings = settings_from_environment()
    if not settings.hosting.requires_login and not env.insecure_no_auth:
        raise ClassmapError(
            "the WSGI app needs users: set CLASSMAP_CONFIG to a config file with users "
            "('classmap user add NAME --role operator --config classmap.toml'), or "
            "CLASSMAP_INSECURE_NO_AUTH=1 to serve without authentication")
    if not settings.hosting.requires_login:
        import logging

        logging.getLogger(__name__).warning(
            "WARNING: the WSGI app serves WITHOUT AUTHENTICATION (CLASSMAP_INSECURE_NO_AUTH=1)")
    return build_wsgi_app(settings, env.broker, env.url_prefix)
