""""Export this view": one zip archive of the page's view — its data files, its figures
(SVG and PNG, titled), the URL that reopens it — from a button in the header.

A page takes part by registering an exporter (:func:`register_view_export`, from its
``register``): ``exporter(services, selection, status) -> ViewExport``, which says
what the view holds. The shell knows the page being shown from its page-query store
(``{"type": PAGE_QUERY, "page": name}``), renders the figures
(:mod:`~classmap.app.shell.figure_images`) and packs everything with
:func:`classmap.analysis.exports.view_archive.build_archive`. The archive is sent only
when every member is ready; any problem is one line in the notice bar instead.

The archive is named like the graphs' downloads: ``classmap-<model>-<view>[-field-value…].zip``
(:func:`~classmap.app.shell.widgets.download_name`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

from dash import ALL, Input, Output, State, dcc
from dash.exceptions import PreventUpdate

from classmap.analysis.errors import ClassmapError
from classmap.analysis.exports.view_archive import build_archive
from classmap.app.shell import ids
from classmap.app.shell.figure_images import render_images, titled
from classmap.app.shell.selection import FIELDS, MAX_QUERY_CLASSES, coerce_selection
from classmap.app.shell.widgets import download_name

log = logging.getLogger(__name__)

# Component ids (the shell's, kept here with the feature; tests and bookmarks rely on them).
EXPORT_VIEW = "shell-export-view"  # the header's button
EXPORT_DOWNLOAD = "shell-export-download"  # its dcc.Download
BUTTON_LABEL = "Export this view"
BUSY_LABEL = "Exporting…"
_URL_SAFE = "-_.!~*'(),"  # what encodeURIComponent leaves as it is (plus "," as classmap.js)


@dataclass
class ExportFigure:
    """One figure of a view: the plotly figure, its title and a subtitle line."""

    figure: Any
    title: str
    subtitle: str = ""


@dataclass
class ViewExport:
    """What a page's view holds, for its archive.

    Attributes
    ----------
    view : the view's name in file names (``classes``)
    fields : selection fields named in the archive's file name (``download_name``)
    files : data files, ``{file name: bytes}`` (CSV, Newick…)
    figures : ``{file stem: ExportFigure}``; each becomes ``<stem>.svg`` and ``<stem>.png``
    about : extra manifest entries (what the view shows)
    """

    view: str
    fields: Sequence[str] = ()
    files: dict[str, bytes] = field(default_factory=dict)
    figures: dict[str, ExportFigure] = field(default_factory=dict)
    about: dict[str, Any] = field(default_factory=dict)


Exporter = Callable[[Any, dict, dict], ViewExport]


def register_view_export(app: Any, page: str, exporter: Exporter) -> None:
    """Let page ``page`` (its page-query store's name) be exported with ``exporter``."""
    app.__dict__.setdefault("_classmap_view_exports", {})[page] = exporter


def exporters(app: Any) -> dict[str, Exporter]:
    return dict(app.__dict__.get("_classmap_view_exports", {}))


# -- the URL ---------------------------------------------------------------------------------


def encode_query(selection: Mapping[str, Any]) -> str:
    """The selection as the URL query the browser writes (``classmap.encodeQuery``):
    fields in registry order, defaults left out unless always written, sets compacted
    (``3-7,12``) and left out above ``MAX_QUERY_CLASSES``, commas kept as they are."""
    parts = []
    for name, spec in FIELDS.items():
        value = selection.get(name, spec.default)
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        if value == spec.default and not spec.always_in_url:
            continue
        if spec.encode is not str:
            if isinstance(value, (list, tuple)) and len(value) > MAX_QUERY_CLASSES \
                    and name == "classes":
                continue
            text = spec.encode(value)
        elif isinstance(value, (list, tuple)):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        parts.append(f"{name}={quote(text, safe=_URL_SAFE)}")
    return "?" + "&".join(parts)


def view_url(href: str | None, selection: Mapping[str, Any]) -> str:
    """The address that reopens the view: the page's address as the browser has it
    (scheme, host, path) with the selection's query."""
    parts = urlsplit(href or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClassmapError("the page's address is unknown; reload the page and export again")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/",
                       encode_query(selection)[1:], ""))


# -- logic --------------------------------------------------------------------------------------


def export_view_logic(services: Any, registry: Mapping[str, Exporter], pages: Sequence[Any],
                      selection: dict | None, status: dict | None,
                      href: str | None) -> dict[str, Any]:
    """The button → a dcc.Download payload of the view's archive.

    ``pages``: the page-query stores' ids on the page (``{"type", "page"}``). Raises
    ClassmapError (shown in the notice bar) when the page has no export, the analysis
    is not ready, or a member cannot be made.
    """
    names = [item.get("page") for item in pages or () if isinstance(item, dict)]
    page = next((name for name in names if name in registry), None)
    if page is None:
        raise ClassmapError("this page has no view export; open the Classes page (or Weight "
                            "distributions, Samples, Clustering, Confidence) to export its view")
    selection = coerce_selection(selection, services.settings.default_model)
    started = time.perf_counter()
    export = registry[page](services, selection, status or {})
    figures = {stem: titled(item.figure, item.title, item.subtitle)
               for stem, item in export.figures.items()}
    images = render_images(figures)
    members = {**export.files, **images}
    url = view_url(href, selection)
    about = {"view": export.view, "selection": {k: v for k, v in selection.items()
                                                if v is not None}, **export.about}
    archive = build_archive(members, url, about)
    log.info("exported view %s of %s: %d files, %.1f kB in %.1f s", export.view,
             selection.get("model"), len(members) + 2, len(archive) / 1024,
             time.perf_counter() - started)
    name = download_name(export.view, selection, export.fields)
    return dcc.send_bytes(archive, f"{name}.zip", type="application/zip")


# -- wiring ---------------------------------------------------------------------------------------


def register(app: Any, services: Any) -> None:
    """The header's "Export this view" button → the archive (any role may export)."""

    @app.callback(
        Output(EXPORT_DOWNLOAD, "data"),
        Input(EXPORT_VIEW, "n_clicks"),
        State(ids.SELECTION, "data"), State(ids.STATUS, "data"),
        State({"type": ids.PAGE_QUERY, "page": ALL}, "id"),
        State("_pages_location", "href"),
        running=[(Output(EXPORT_VIEW, "disabled"), True, False),
                 (Output(EXPORT_VIEW, "children"), BUSY_LABEL, BUTTON_LABEL)],
        prevent_initial_call=True,
    )
    def export_view(n_clicks, selection, status, pages, href):
        if not n_clicks:
            raise PreventUpdate
        return export_view_logic(services, exporters(app), pages, selection, status, href)
