"""The view archive (analysis/exports/view_archive.py): its analysis files are byte for
byte those of ``classmap export`` (run here as the CLI, into its own cache), the archive
lists every member in a manifest with the right SHA-256, and bad members are refused
with one line before anything is returned."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from classmap.analysis.cache import ResultCache
from classmap.analysis.cli import main
from classmap.analysis.errors import ClassmapError
from classmap.analysis.exports.view_archive import (MANIFEST, URL_FILE, WEIGHT_FILES,
                                                    build_archive, weight_view_files)
from classmap.analysis.loading.classifier import ModelSpec
from classmap.analysis.loading.models import load_head
from classmap.analysis.pipelines.weights import WeightParams, analyse_weights


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("view-archive")
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 16))
    rows = np.concatenate([c + 0.3 * rng.normal(size=(6, 16)) for c in centres])
    head_path = folder / "head.npy"
    np.save(head_path, rows.astype(np.float32))
    return folder, head_path


@pytest.mark.parametrize("metric,linkage", [("cosine", "ward"), ("euclidean", "average")])
def test_weight_files_equal_classmap_export(planted, metric, linkage, capsys):
    folder, head_path = planted
    out = folder / f"export-{metric}-{linkage}"
    code = main(["export", "--head", str(head_path), "--metric", metric, "--linkage", linkage,
                 "--top-k", "7", "--quiet", "--out", str(out),
                 "--cache-dir", str(folder / "cli-cache")])
    assert code == 0, capsys.readouterr().err
    cache = ResultCache(folder / f"app-cache-{metric}")  # computed apart from the CLI's
    head = load_head(ModelSpec(head=str(head_path)), cache)
    result = analyse_weights(head, WeightParams(metric=metric, linkage=linkage, top_k=7),
                             cache=cache)
    files = weight_view_files(result)
    assert list(files) == list(WEIGHT_FILES)
    for name in WEIGHT_FILES:
        assert files[name] == (out / name).read_bytes(), name


def test_archive_lists_every_member_with_its_digest():
    members = {"a.csv": b"x,y\n1,2\n", "tree.nwk": b"('a':1,'b':1);\n", "f.png": b"\x89PNG"}
    data = build_archive(members, "http://host:8050/?model=m&node=12", {"view": "classes"})
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert archive.namelist() == ["a.csv", "tree.nwk", "f.png", URL_FILE, MANIFEST]
    manifest = json.loads(archive.read(MANIFEST))
    assert manifest["tool"] == "classmap" and manifest["view"] == "classes"
    assert manifest["url"] == "http://host:8050/?model=m&node=12"
    assert manifest["files"] == ["a.csv", "tree.nwk", "f.png", URL_FILE]
    for name in manifest["files"]:
        body = archive.read(name)
        assert manifest["file_info"][name] == {"bytes": len(body),
                                               "sha256": hashlib.sha256(body).hexdigest()}
    assert archive.read("a.csv") == members["a.csv"]
    assert archive.read(URL_FILE).decode().splitlines()[0] == "http://host:8050/?model=m&node=12"


@pytest.mark.parametrize("members,url,fragment", [
    ({}, "http://h/", "nothing to put"),
    ({"../evil.csv": b""}, "http://h/", "not a plain file name"),
    ({"sub/a.csv": b""}, "http://h/", "not a plain file name"),
    ({MANIFEST: b"{}"}, "http://h/", "reserved"),
    ({URL_FILE: b""}, "http://h/", "reserved"),
    ({"a.csv": "text"}, "http://h/", "not bytes"),
    ({"a.csv": b""}, "javascript:alert(1)", "not an http(s) address"),
])
def test_bad_members_are_refused_in_one_line(members, url, fragment):
    with pytest.raises(ClassmapError) as error:
        build_archive(members, url)
    assert fragment in str(error.value) and "\n" not in str(error.value)
