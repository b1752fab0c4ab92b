"""The Compare page's links to the Classes page keep the app's URL prefix."""

from __future__ import annotations

import dash

from classmap.app.pages.compare.callbacks import classes_page_href


def test_links_to_the_classes_page_keep_the_url_prefix():
    dash.Dash(__name__, url_base_pathname="/team/classmap/")
    assert classes_page_href("model=m&focal=a") == "/team/classmap/?model=m&focal=a"
    dash.Dash(__name__)
    assert classes_page_href("model=m") == "/?model=m"
