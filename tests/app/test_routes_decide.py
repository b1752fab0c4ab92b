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


METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
# The hosting layer's routes that take POST (app/hosting/uploads.py): a GET to the
# POST-only one fell through to Dash's page route with 200 and the dashboard's page.
HOSTING_POST_ROUTES = {"/uploads": {"GET", "HEAD", "POST"}, "/uploads/delete": {"POST"}}


def test_the_hosting_routes_that_take_post_are_the_known_ones(app):
    taking_post = {rule.rule: set(rule.methods) - {"OPTIONS"} for rule in routes(app)
                   if "POST" in rule.methods and rule.endpoint.startswith("classmap_")}
    assert taking_post == HOSTING_POST_ROUTES


def test_a_method_a_fixed_route_does_not_take_is_405_with_allow_and_no_page(app):
    """Every route without parameters (Dash's POST-only callback route, the uploads'
    delete route …), every method it does not take, as a signed-in operator: 405, the
    route's methods in ``Allow``, a one-line body — never Dash's page."""
    client = app.server.test_client()
    headers = {"Authorization": "Basic YWxpY2U6YWxpY2Utc2VjcmV0LTE="}  # alice:alice-secret-1
    checked, wrong = 0, []
    for rule in routes(app):
        if rule.arguments or rule.rule == "/healthz":
            continue
        allowed = set(rule.methods) - {"OPTIONS"}
        for method in METHODS:
            if method in allowed:
                continue
            checked += 1
            response = client.open(rule.rule, method=method, headers=headers)
            if (response.status_code != 405
                    or set(response.headers.get("Allow", "").split(", ")) != allowed
                    or b"<" in response.data or len(response.data) > 100):
                wrong.append(f"{method} {rule.rule} → {response.status_code} "
                             f"Allow={response.headers.get('Allow')} {response.data[:60]!r}")
    assert checked >= 20 and not wrong, "\n".join(wrong)


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "PATCH"])
def test_uploads_delete_answers_only_post(app, method):
    client = app.server.test_client()
    response = client.open("/uploads/delete", method=method,
                           headers={"Authorization": "Basic YWxpY2U6YWxpY2Utc2VjcmV0LTE="})
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert b"html" not in response.data.lower() and b"_dash" not in response.data
    options = client.options("/uploads/delete",
                             headers={"Authorization": "Basic YWxpY2U6YWxpY2Utc2VjcmV0LTE="})
    assert options.status_code == 204 and options.headers["Allow"] == "POST"
    assert client.open("/uploads/delete", method=method).status_code == 401  # no credentials
