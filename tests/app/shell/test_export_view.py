""""Export this view" (app/shell/export_view.py, app/pages/classes/export.py): the zip of
the Classes page's view, opened and checked against independent references — the CSV
and Newick files against ``classmap export`` run as the CLI for the same analysis, the
tree's distances against scipy's cophenetic distances, the selection against scipy's
tree, the images by decoding them, the URL by parsing it back."""

from __future__ import annotations

import base64
import csv
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from urllib.parse import parse_qsl, urlsplit

import pytest
from PIL import Image
from scipy.cluster.hierarchy import cophenet, to_tree

from classmap.analysis.cli import main
from classmap.analysis.errors import ClassmapError
from classmap.app.pages.classes import ids as class_ids
from classmap.app.pages.classes.export import view_export
from classmap.app.shell import figure_images
from classmap.app.shell.export_view import encode_query, export_view_logic, view_url
from classmap.app.shell.selection import default_selection, parse_query, update_selection
from classmap.app.shell.widgets import download_name, graph_view

KEY = ["small", "euclidean", "average"]
STATUS = {"key": KEY, "state": "ready", "message": ""}
PAGES = [{"type": "page-query", "page": "classes"}]
REGISTRY = {"classes": view_export}
HREF = "http://127.0.0.1:8050/?model=stale"
NODE = 115  # an internal node of the 60-leaf tree (leaves 0…59, merges 60…118)


def selection_for(view) -> dict:
    sel = update_selection(default_selection("small"), model="small", metric="euclidean",
                           linkage="average")
    return update_selection(sel, focal=view.ids[7], node=NODE, cut=3, k=5)


@pytest.fixture(scope="module")
def exported(services):
    """(selection, download payload, opened zip) of one export of the planted head."""
    view = services.view(tuple(KEY))
    selection = selection_for(view)
    payload = export_view_logic(services, REGISTRY, PAGES, selection, STATUS, HREF)
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(payload["content"])))
    return selection, payload, archive, view


@pytest.fixture(scope="module")
def cli_export(exported, planted_heads, tmp_path_factory):
    """``classmap export`` of the same head and analysis, in its own cache."""
    _, _, _, view = exported
    out = tmp_path_factory.mktemp("cli") / "export"
    code = main(["export", "--head", str(planted_heads["small"]), "--metric", "euclidean",
                 "--linkage", "average", "--top-k", str(view.analysis.params.top_k),
                 "--quiet", "--out", str(out),
                 "--cache-dir", str(tmp_path_factory.mktemp("cli-cache"))])
    assert code == 0
    return out


def test_archive_is_named_after_the_model_view_and_selection(exported):
    selection, payload, archive, view = exported
    assert payload["filename"] == (f"classmap-small-classes-metric-euclidean-linkage-average-"
                                   f"focal-{view.ids[7].replace(' ', '_')}-node-{NODE}-cut-3.zip")
    assert payload["type"] == "application/zip" and payload["base64"] is True
    assert archive.testzip() is None


def test_members_are_the_data_the_figures_the_url_and_the_manifest(exported):
    selection, _, archive, _ = exported
    stems = [download_name(graph_view(graph), selection, class_ids.DOWNLOAD_FIELDS[graph])
             for graph in (class_ids.HEATMAP, class_ids.DENDROGRAM, class_ids.NEIGHBOURS,
                           class_ids.CLASS_MAP)]
    figures = [f"{stem}.{fmt}" for stem in stems for fmt in ("svg", "png")]
    assert archive.namelist() == ["classes.csv", "neighbours.csv", "tree.nwk", "selection.csv",
                                  "focal-neighbours.csv", *figures, "view-url.txt",
                                  "manifest.json"]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["metric"] == "euclidean" and manifest["linkage"] == "average"
    assert manifest["selection"]["node"] == NODE


@pytest.mark.parametrize("name", ["classes.csv", "neighbours.csv", "tree.nwk"])
def test_data_files_equal_classmap_export(exported, cli_export, name):
    archive = exported[2]
    assert archive.read(name) == (cli_export / name).read_bytes()


def test_newick_parses_with_unique_leaves_and_the_linkage_distances(exported):
    import skbio

    _, _, archive, view = exported
    tree = skbio.TreeNode.read(io.StringIO(archive.read("tree.nwk").decode()), format="newick")
    tips = [tip.name for tip in tree.tips()]
    assert len(tips) == len(set(tips)) == view.num_classes
    # Tip-to-tip path length = 2 × the cophenetic (merge) height of the two leaves.
    coph = cophenet(view.analysis.linkage)
    names = list(view.names)
    n = view.num_classes
    for a, b in [(0, 1), (3, 41), (7, 59), (12, 30)]:
        condensed = n * a - a * (a + 1) // 2 + (b - a - 1)
        found = tree.find(names[a]).distance(tree.find(names[b]))
        assert found == pytest.approx(2 * coph[condensed], rel=1e-5)


def test_selection_csv_lists_the_node_s_leaves(exported):
    _, _, archive, view = exported
    rows = list(csv.DictReader(io.StringIO(archive.read("selection.csv").decode())))
    root, nodes = to_tree(view.analysis.linkage, rd=True)
    expected = set(nodes[NODE].pre_order())
    assert {int(row["index"]) for row in rows} == expected
    assert all(row["cluster"] != "" for row in rows)  # cut=3: each class has its cluster


def test_focal_neighbours_csv_is_the_focal_row_of_neighbours_csv(exported):
    _, _, archive, view = exported
    focal = list(csv.DictReader(io.StringIO(archive.read("focal-neighbours.csv").decode())))
    every = [row for row in csv.DictReader(io.StringIO(archive.read("neighbours.csv").decode()))
             if row["class_index"] == "7"]
    assert [int(r["index"]) for r in focal] == [int(r["neighbour_index"]) for r in every]
    assert all(r["focal_id"] == view.ids[7] for r in focal)


def test_figures_are_valid_images_with_their_titles(exported):
    selection, _, archive, view = exported
    titles = {"heatmap": "Class similarity", "dendrogram": "Hierarchy of the classes",
              "neighbours": f"Nearest classes to {view.names[7]}", "class-map": "Class map (PCA)"}
    for name in archive.namelist():
        if name.endswith(".png"):
            image = Image.open(io.BytesIO(archive.read(name)))
            image.verify()
            assert image.format == "PNG" and image.size[0] >= 1000, name
        elif name.endswith(".svg"):
            root = ET.fromstring(archive.read(name))
            assert root.tag.endswith("svg"), name
            text = " ".join("".join(node.itertext()) for node in root.iter()
                            if node.tag.endswith("text"))
            view_name = next(v for v in titles if f"-{v}-" in name)
            assert titles[view_name] in text, (name, text[:200])
            assert view.entry.label in text, name


def test_url_reopens_the_same_selection(exported):
    selection, _, archive, _ = exported
    url = archive.read("view-url.txt").decode().splitlines()[0]
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:8050", "/")
    parsed, problems = parse_query(dict(parse_qsl(parts.query)), ["lite0-imagenet", "small"])
    assert not problems
    assert {k: parsed[k] for k in selection} == selection


def test_encode_query_writes_the_browser_s_form():
    sel = update_selection(default_selection("m"), model="m", classes=[3, 4, 5, 6, 7, 12],
                           focal="a b,c")
    assert encode_query(sel) == "?model=m&metric=cosine&linkage=ward&focal=a%20b,c&classes=3-7,12"
    assert view_url("https://h.example/prefix/?x=1#frag", sel).startswith(
        "https://h.example/prefix/?model=m&")


def test_not_ready_analysis_is_refused_in_one_line(services):
    selection = update_selection(default_selection("small"), model="small")
    pending = {"key": ["small", "cosine", "ward"], "state": "pending"}
    with pytest.raises(ClassmapError) as error:
        export_view_logic(services, REGISTRY, PAGES, selection, pending, HREF)
    assert "wait for the views" in str(error.value) and "\n" not in str(error.value)


def test_page_without_an_export_is_refused(services):
    with pytest.raises(ClassmapError, match="open the Classes page"):
        export_view_logic(services, REGISTRY, [{"type": "page-query", "page": "weights"}],
                          default_selection("small"), STATUS, HREF)


def test_missing_renderer_gives_a_message_and_no_archive(services, monkeypatch):
    monkeypatch.setattr(figure_images.shutil, "which", lambda name: None)
    view = services.view(tuple(KEY))
    with pytest.raises(ClassmapError, match="no Chromium found; install it"):
        export_view_logic(services, REGISTRY, PAGES, selection_for(view), STATUS, HREF)


def test_bad_page_address_is_refused(services):
    view = services.view(tuple(KEY))
    with pytest.raises(ClassmapError, match="address is unknown"):
        view_url("javascript:alert(1)", selection_for(view))
