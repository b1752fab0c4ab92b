"""Every route decides (issue 11 item 2): each route the server registers — Dash's own
included — answers 401 without credentials, unless it is in the reviewed public list."""

from __future__ import annotations

import re

import pytest

from classmap.app.config import Settings
from classmap.app.hosting import access
from classmap.app.hosting.config import add_user, load_config
from classmap.app.server import create_app

# The reviewed decision: only the health check is public. Changing this set is a
# security review, not a test fix.
REVIEWED_PUBLIC = {"/healthz"}
DASH_ROUTES = {"/_dash-layout", "/_dash-dependencies", "/_dash-update-component",
               "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>",
               "/assets/<path:filename>", "/_reload-hash", "/_favicon.ico", "/healthz", "/",
               "/<path:path>"}


@pytest.fixture(scope="module")
def settings(session_cache, tmp_path_factory):
    folder = tmp_path_factory.mktemp("routes")
    add_user(folder / "c.toml", "alice", "alice-secret-1", "operator")
    return Settings.create(cache_dir=session_cache.directory, jobs_dir=folder / "jobs",
                           environ={}, warm_default=False, hosting=load_config(folder / "c.toml"))


@pytest.fixture(scope="module")
def app(settings):
    return create_app(settings)


def filled(rule) -> str:
    """The rule's path with every parameter filled (``<path:x>`` → a real-looking path)."""
    samples = {"filename": "classmap.js", "package_name": "dash",
               "fingerprinted_path": "dash-renderer/build/dash_renderer.v4_4_1m1.min.js",
               "path": "classes"}
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: samples.get(m.group(1), "x"), rule.rule)


def routes(app):
    return list(app.server.url_map.iter_rules())


def test_the_public_list_is_the_reviewed_one():
    assert set(access.PUBLIC_PATHS) == REVIEWED_PUBLIC


def test_the_enumeration_sees_dash_s_own_routes(app):
    assert DASH_ROUTES <= {rule.rule for rule in routes(app)}


def test_every_route_is_authenticated_or_reviewed_public(app):
    client = app.server.test_client()
    undecided = []
    for rule in routes(app):
        path = filled(rule)
        for method in sorted(rule.methods):
            response = client.open(path, method=method, json={} if method == "POST" else None)
            public = rule.rule in REVIEWED_PUBLIC
            if (response.status_code == 401) == public:
                undecided.append(f"{method} {rule.rule} → {response.status_code}")
            if not public:
                assert b"<html" not in response.data.lower() and len(response.data) < 100
    assert not undecided, "routes without a decision:\n" + "\n".join(undecided)


def test_background_job_polls_need_credentials_too(app):
    client = app.server.test_client()
    response = client.post("/_dash-update-component?cacheKey=forged&job=1", json={"output": "x"})
    assert response.status_code == 401


def test_a_route_added_later_is_guarded_without_being_listed(settings):
    app = create_app(settings)
    app.server.add_url_rule("/added-later", "added_later", lambda: "secret content")
    response = app.server.test_client().get("/added-later")
    assert response.status_code == 401 and b"secret" not in response.data
