"""The header's page links keep the URL prefix: the browser writes each link's href from
its id's ``path`` plus the selection's query (classmap.js syncUrl), so the id must carry
the prefixed path, not the page's bare one."""

from __future__ import annotations

from classmap.app.config import Settings
from classmap.app.server import create_app
from classmap.app.shell import ids
from classmap.app.shell.layout import build_shell


def nav_links(component) -> list:
    found = []
    if isinstance(getattr(component, "id", None), dict) \
            and component.id.get("type") == ids.NAV_LINK:
        found.append(component)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            found.extend(nav_links(child))
    return found


def test_nav_link_ids_carry_the_url_prefix(tmp_path):
    settings = Settings.create(cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs",
                               environ={}, warm_default=False)
    create_app(settings, url_prefix="/team/classmap")
    links = nav_links(build_shell(settings))
    assert len(links) >= 6
    for link in links:
        assert link.id["path"].startswith("/team/classmap/"), link.id
        assert link.id["path"] == link.href
