"""Fault injection: every bad input of issue 15 (and the ones that already held), replayed.

One table, :data:`FAULTS`: each row builds one bad input in a fresh folder, runs it the
way a user would (``classmap export`` in-process, or the image-folder loader as the
server calls it, with the server's data roots), and checks the one outcome the row
names — never a traceback, never a hang:

- ``error``: exit code 2 and exactly one line on stderr, ``classmap: error: …``,
  matching the row's pattern;
- ``skipped``: the data set opens, and its report names the file with a reason
  matching the pattern;
- ``ok``: the run succeeds and a row-specific check of the result holds.

Every row runs under an alarm, so a hang fails the row instead of stalling the suite.
``docs/fault-injection.md`` lists the same rows; a test below keeps the two in step.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from classmap.analysis.cli import main as cli_main
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.data import ScanLimits, load_dataset

DOCS = Path(__file__).resolve().parents[2] / "docs" / "fault-injection.md"
ALARM_S = 90  # generous for a loaded 2-core machine; a hang never ends


@dataclass(frozen=True)
class Fault:
    """One row: ``make(tmp) -> run`` builds the input; ``run()`` returns what to check."""

    id: str
    make: Callable[[Path], Callable[[], object]]
    outcome: str  # "error" | "skipped" | "ok"
    expect: str = ""  # regex on the error line / the skip reason
    path: str = ""  # skipped: the relative path the report must name
    check: Callable[[Path, object], None] | None = None  # ok: extra check
    new: bool = True  # False: the case already held before issue 15


# -- builders ------------------------------------------------------------------------------


def _rgb(seed: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _folder(tmp: Path) -> Path:
    """``data/{cat,dog}/`` with two good PNGs each."""
    root = tmp / "data"
    for label, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(_rgb(10 * label + i)).save(root / name / f"{i}.png")
    return root


def folder(add: Callable[[Path], None], *, server: bool = False,
           limits: ScanLimits | None = None) -> Callable[[Path], Callable[[], object]]:
    """A row's ``make``: the two-class folder plus ``add(root)``; opened without a model
    (``classmap train``'s way), with the folder itself as the one data root when
    ``server`` (as ``classmap serve --data DIR`` opens it)."""
    def make(tmp: Path) -> Callable[[], object]:
        root = _folder(tmp)
        add(root)
        kwargs: dict = {"allowed_roots": [root]} if server else {}
        if limits is not None:
            from classmap.analysis.loading.data import load_image_folder

            return lambda: load_image_folder(root, None, limits=limits, **kwargs)
        return lambda: load_dataset(root, None, **kwargs)
    return make


def export(*flags: str, head: Callable[[Path], Path] | None = None,
           before: Callable[[Path, list[str]], None] | None = None):
    """A row's ``make``: ``classmap export --head FILE --out … FLAGS`` (``head(tmp)``
    writes the file; ``before(tmp, argv)`` runs first, e.g. to fill the cache)."""
    def make(tmp: Path) -> Callable[[], object]:
        argv = ["export", "--quiet", "--out", str(tmp / "out"), "--cache-dir", str(tmp / "cache")]
        if head is not None:
            argv += ["--head", str(head(tmp))]
        argv += [flag.replace("{tmp}", str(tmp)) for flag in flags]
        if before is not None:
            before(tmp, argv)
        return lambda: cli_main(argv)
    return make


def _weight(rows: int = 6, cols: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, cols)).astype(np.float32)


def npy(array_of: Callable[[], np.ndarray], name: str = "head.npy"):
    def write(tmp: Path) -> Path:
        np.save(tmp / name, array_of(), allow_pickle=False)
        return tmp / name
    return write


def pt(value_of: Callable[[], object], name: str = "head.pt"):
    def write(tmp: Path) -> Path:
        torch.save(value_of(), tmp / name)
        return tmp / name
    return write


def safetensors(tensors_of: Callable[[], dict], metadata: dict | None = None):
    def write(tmp: Path) -> Path:
        from safetensors.torch import save_file

        meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
        save_file(tensors_of(), str(tmp / "head.safetensors"), metadata=meta or None)
        return tmp / "head.safetensors"
    return write


def raw(content: bytes, name: str):
    def write(tmp: Path) -> Path:
        (tmp / name).write_bytes(content)
        return tmp / name
    return write


def classes_file(text: bytes):
    """``--classes {tmp}/classes.txt`` with ``text`` (for a 3-row head)."""
    def before(tmp: Path, argv: list[str]) -> None:
        (tmp / "classes.txt").write_bytes(text)
    return before


def _export_once(tmp: Path, argv: list[str]) -> None:
    """Fill the cache, so the next run is a cache hit."""
    assert cli_main([a for a in argv if a not in ("--device", "foo")]) == 0
    import shutil

    shutil.rmtree(tmp / "out")


def _non_utf8_file(root: Path) -> None:
    Image.fromarray(_rgb(7)).save(os.path.join(os.fsencode(root / "cat"), b"caf\xe9.png"))


def _non_utf8_folder(root: Path) -> None:
    folder_bytes = os.path.join(os.fsencode(root), b"ch\xe8vre")
    os.mkdir(folder_bytes)
    for i in range(2):
        Image.fromarray(_rgb(20 + i)).save(os.path.join(folder_bytes, f"{i}.png".encode()))


def _socket(root: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "cat" / "s.png"))
    except OSError as error:  # paths over ~108 bytes: a shorter working folder
        pytest.skip(f"cannot bind a Unix socket here ({errno.errorcode.get(error.errno)})")
    sock.close()  # the socket file stays


def _truncated_jpeg(root: Path) -> None:
    import io

    buffer = io.BytesIO()
    Image.fromarray(_rgb(3, 64)).save(buffer, format="JPEG")
    (root / "cat" / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def _link_outside(root: Path) -> None:
    Image.fromarray(_rgb(9)).save(root.parent / "out.png")
    os.symlink(root.parent / "out.png", root / "cat" / "out.png")


def _object_npy(tmp: Path) -> Path:
    np.save(tmp / "head.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return tmp / "head.npy"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


# -- checks of "ok" rows -------------------------------------------------------------------


def _ids_and_names(tmp: Path) -> list[tuple[str, str]]:
    with open(tmp / "out" / "classes.csv", encoding="utf-8", newline="") as handle:
        return [(row["id"], row["name"]) for row in csv.DictReader(handle)]


def _same_similarity_as_plain_head(tmp: Path, _: object) -> None:
    reference = np.corrcoef(_weight().astype(np.float64))  # Pearson = cosine of standardised
    np.testing.assert_allclose(np.load(tmp / "out" / "similarity.npy"), reference, atol=2e-6)


def _bom_dropped(tmp: Path, _: object) -> None:
    assert _ids_and_names(tmp)[0] == ("first", "first")


def _formula_quoted(tmp: Path, _: object) -> None:
    assert [name for _, name in _ids_and_names(tmp)] == ["'=1+1", "'@SUM(A1)", "plain"]


def _sample_id(expected: str, escaped: bool = True) -> Callable[[Path, object], None]:
    def check(tmp: Path, dataset: object) -> None:
        assert expected in dataset.sample_ids
        assert (expected in dataset.report.escaped_names) == escaped
        json.dumps(dataset.report.to_json(), ensure_ascii=False).encode("utf-8")
    return check


def _class_named(expected: str) -> Callable[[Path, object], None]:
    def check(tmp: Path, dataset: object) -> None:
        assert expected in dataset.class_names
    return check


# -- the table -----------------------------------------------------------------------------

HEAD3 = lambda: _weight(3)  # noqa: E731 - table cells
FAULTS: tuple[Fault, ...] = (
    # image folders (issue 15 #6)
    Fault("image: non-UTF-8 file name", folder(_non_utf8_file), "ok",
          check=_sample_id("cat/caf\\xe9.png")),
    Fault("image: non-UTF-8 class folder name", folder(_non_utf8_folder), "ok",
          check=_class_named("ch\\xe8vre")),
    Fault("image: newline in a file name",
          folder(lambda r: Image.fromarray(_rgb(8)).save(r / "cat" / "two\nlines.png")), "ok",
          check=_sample_id("cat/two\\x0alines.png")),
    Fault("image: symlink loop (file) in a server root",
          folder(lambda r: os.symlink("x.png", r / "cat" / "x.png"), server=True),
          "skipped", "symbolic link loop", path="cat/x.png"),
    Fault("image: symlink loop (folder link to its parent) in a server root",
          folder(lambda r: os.symlink("..", r / "cat" / "up"), server=True),
          "skipped", r"link to the data folder \(already scanned\)", path="cat/up"),
    Fault("image: FIFO named pipe.png", folder(lambda r: os.mkfifo(r / "cat" / "pipe.png")),
          "skipped", r"not a regular file \(a FIFO\)", path="cat/pipe.png"),
    Fault("image: FIFO named pipe.png in a server root",
          folder(lambda r: os.mkfifo(r / "cat" / "pipe.png"), server=True),
          "skipped", r"not a regular file \(a FIFO\)", path="cat/pipe.png"),
    Fault("image: symlink to /dev/zero",
          folder(lambda r: os.symlink("/dev/zero", r / "cat" / "zero.png")),
          "skipped", r"not a regular file \(a character device\)", path="cat/zero.png"),
    Fault("image: Unix socket named s.png", folder(_socket),
          "skipped", r"not a regular file \(a socket\)", path="cat/s.png", new=False),
    Fault("image: dangling symlink",
          folder(lambda r: os.symlink("gone.png", r / "cat" / "ghost.png")),
          "skipped", "dangling link", path="cat/ghost.png", new=False),
    Fault("image: file over the byte limit",
          folder(lambda r: (r / "cat" / "big.png").write_bytes(b"\0" * 4096),
                 limits=ScanLimits(max_bytes=2048)),
          "skipped", "larger than the limit", path="cat/big.png"),
    Fault("image: image over the pixel limit (header checked before decoding)",
          folder(lambda r: Image.new("L", (400, 300)).save(r / "cat" / "huge.png"),
                 limits=ScanLimits(max_pixels=100_000)),
          "skipped", r"400×300 pixels, more than the limit", path="cat/huge.png"),
    Fault("image: link leading outside the server's roots",
          folder(_link_outside, server=True), "skipped", "outside", path="cat/out.png",
          new=False),
    Fault("image: truncated JPEG", folder(_truncated_jpeg), "skipped", "OSError",
          path="cat/cut.jpg", new=False),
    Fault("image: text file named .png",
          folder(lambda r: (r / "dog" / "fake.png").write_text("not an image")),
          "skipped", "not an image format", path="dog/fake.png", new=False),
    Fault("image: data folder outside the server's roots",
          lambda tmp: (lambda: load_dataset(_folder(tmp), None, allowed_roots=[tmp / "other"])),
          "error", "outside the folders this server may open", new=False),
    Fault("image: data folder does not exist",
          lambda tmp: (lambda: load_dataset(tmp / "missing", None)),
          "error", "does not exist", new=False),
    # heads (issue 15 #7, #8)
    Fault("head: sparse tensor in a .pt file", export(head=pt(lambda: torch.from_numpy(
        _weight()).to_sparse())), "ok", check=_same_similarity_as_plain_head),
    Fault("head: finite weights near 1e38", export(head=npy(
        lambda: _weight() / np.abs(_weight()).max() * np.float32(3e38))),
        "ok", check=_same_similarity_as_plain_head),
    Fault("head: complex .npy", export(head=npy(lambda: _weight().astype(np.complex64))),
          "error", "dtype complex64, not real numbers"),
    Fault("head: complex .pt", export(head=pt(lambda: torch.from_numpy(_weight()).to(
        torch.complex64))), "error", "dtype complex64, not real numbers"),
    Fault("head: bool safetensors", export(head=safetensors(lambda: {
        "weight": torch.from_numpy(_weight() > 0)})), "error", "dtype bool, not real numbers"),
    Fault("head: bool .npy", export(head=npy(lambda: _weight() > 0)),
          "error", "dtype bool, not real numbers"),
    Fault("head: NaN weights", export(head=npy(lambda: np.where(
        np.eye(6, 16) > 0, np.nan, _weight()).astype(np.float32))), "error", "NaN or Inf",
        new=False),
    Fault("head: weights over float32's range (Inf once read)", export(head=npy(
        lambda: _weight().astype(np.float64) * 1e300)), "error", "NaN or Inf", new=False),
    Fault("head: a row of zero variance", export(head=npy(lambda: np.vstack(
        [_weight(5), np.ones((1, 16), np.float32)]))), "error", "zero variance", new=False),
    Fault("head: pickle that would run code", export(head=pt(lambda: {"w": _Evil()})),
          "error", "pickled code", new=False),
    Fault("head: empty file", export(head=raw(b"", "head.npy")), "error", "is empty",
          new=False),
    Fault("head: truncated torch file", export(head=raw(b"PK\x03\x04junk", "head.pt")),
          "error", "could not be read", new=False),
    Fault("head: unknown extension", export(head=raw(b"1,2\n3,4\n", "head.csv")),
          "error", "unknown extension", new=False),
    Fault("head: pickled object array in .npy", export(head=_object_npy), "error",
          "pickled Python objects", new=False),
    # --device (issue 15 #7)
    Fault("--device foo", export("--device", "foo", head=npy(_weight)), "error",
          "unknown --device 'foo'"),
    Fault("--device meta", export("--device", "meta", head=npy(_weight)), "error",
          "meta device, which Classmap does not run on"),
    Fault("--device cuda without a GPU", export("--device", "cuda", head=npy(_weight)),
          "error", "torch sees none on this machine"),
    Fault("--device foo on a cache hit", export("--device", "foo", head=npy(_weight),
                                                before=_export_once),
          "error", "unknown --device 'foo'"),
    # class names (issue 15 #8)
    Fault("names: duplicate names stored in a checkpoint", export(head=safetensors(
        lambda: {"weight": torch.from_numpy(_weight(3))}, {"class_names": ["a", "b", "a"]})),
        "error", r"class names stored in the checkpoint: class name 'a' appears twice"),
    Fault("names: empty name stored in a checkpoint", export(head=safetensors(
        lambda: {"weight": torch.from_numpy(_weight(3))}, {"class_names": ["a", " ", "c"]})),
        "error", "checkpoint: empty class name at row 1"),
    Fault("names: duplicate ids in id<TAB>name", export(
        "--classes", "{tmp}/classes.txt", head=npy(HEAD3),
        before=classes_file(b"n1\tone\nn1\ttwo\nn3\tthree\n")),
        "error", r"class id 'n1' appears twice \(lines 1 and 2\)"),
    Fault("names: UTF-8 BOM before the first name", export(
        "--classes", "{tmp}/classes.txt", head=npy(HEAD3),
        before=classes_file("\ufefffirst\nsecond\nthird\n".encode())), "ok", check=_bom_dropped),
    Fault("names: formula-like names go to CSV quoted", export(
        "--classes", "{tmp}/classes.txt", head=npy(HEAD3),
        before=classes_file(b"=1+1\n@SUM(A1)\nplain\n")), "ok", check=_formula_quoted,
        new=False),
    Fault("names: duplicate names in a --classes file", export(
        "--classes", "{tmp}/classes.txt", head=npy(HEAD3), before=classes_file(b"a\nb\na\n")),
        "error", r"class name 'a' appears twice \(lines 1 and 3\)", new=False),
    Fault("names: blank line in a --classes file", export(
        "--classes", "{tmp}/classes.txt", head=npy(HEAD3), before=classes_file(b"a\n\nb\nc\n")),
        "error", "blank line 2", new=False),
    Fault("names: --classes file not UTF-8", export(
        "--classes", "{tmp}/classes.txt", head=npy(HEAD3),
        before=classes_file(b"caf\xe9\nb\nc\n")), "error", "not UTF-8", new=False),
)


@pytest.fixture(scope="module", autouse=True)
def _imports_before_the_alarm():
    """The first export imports the analysis modules; that is not what the alarm times."""
    import classmap.analysis.exports.weights  # noqa: F401
    import classmap.analysis.pipelines.weights  # noqa: F401


@pytest.fixture(autouse=True)
def _alarm(_imports_before_the_alarm):
    """A hang fails the row (SIGALRM) instead of stalling the suite."""
    def hung(signum, frame):
        raise TimeoutError(f"the fault did not finish within {ALARM_S} s (a hang)")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(ALARM_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.id for fault in FAULTS])
def test_fault_has_its_one_line_outcome(fault, tmp_path, capsys, monkeypatch):
    if fault.id == "--device cuda without a GPU" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run = fault.make(tmp_path)
    capsys.readouterr()
    if fault.outcome == "error":
        try:
            code = run()
        except ClassmapError as error:  # loaders: the message the CLI would print
            line = f"classmap: error: {error}"
        else:
            assert code == 2, f"expected exit code 2, got {code}"
            line = capsys.readouterr().err
            assert line.endswith("\n") and line.count("\n") == 1, line
            line = line.rstrip("\n")
        assert line.startswith("classmap: error: ") and "Traceback" not in line
        assert re.search(fault.expect, line), line
        assert ";" in line, "the line names the fix after a semicolon"
        return
    result = run()
    if fault.outcome == "skipped":
        named = {skip.path: skip.reason for skip in result.report.unreadable}
        named.update({path: "outside the data roots" for path in result.report.links_outside})
        assert fault.path in named, named
        assert re.search(fault.expect, named[fault.path]), named[fault.path]
        assert fault.path not in result.sample_ids
        assert fault.path in json.dumps(result.report.to_json(), ensure_ascii=False)
        return
    assert fault.outcome == "ok"
    if isinstance(result, int):
        assert result == 0, capsys.readouterr().err
    assert fault.check is not None
    fault.check(tmp_path, result)


def test_the_other_faults_table_names_existing_tests():
    """Every test the docs' second table names (``path::name`` or ``::name`` after one)
    exists in that file."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Export folders, the cache", 1)[1].split("\n## ", 1)[0]
    named = 0
    for row in re.findall(r"^\| .*\|$", section, flags=re.MULTILINE)[2:]:
        path = None
        for found_path, name in re.findall(r"`([\w/.]*)::(\w+)`", row.split("|")[-2]):
            path = found_path or path
            assert path, row
            source = (DOCS.parent.parent / path).read_text(encoding="utf-8")
            assert f"def {name}(" in source, f"{path}::{name} named in the docs does not exist"
            named += 1
    assert named >= 25


def test_the_docs_table_lists_every_row():
    """docs/fault-injection.md names every row of FAULTS, and no row that is gone."""
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))
    assert documented == {fault.id for fault in FAULTS}
