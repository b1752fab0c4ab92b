"""``--out`` is safe: nothing the user owns is deleted, concurrent exports end with one
complete export, interrupts leave the old or the new export and are cleaned up after,
and CSV cells a spreadsheet would run are neutralised (issue 15, items 1, 2 and 8)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from classmap.analysis.cli import main
from classmap.analysis.errors import ClassmapError
from classmap.analysis.exports import folder, weights
from classmap.analysis.exports.folder import spreadsheet_safe, write_export

TIMEOUT = 60  # seconds any child process may take before the test fails


def tagged_writer(tag: str, pause: float = 0.0):
    def write(staging: Path) -> dict:
        (staging / "data.txt").write_text(tag * 100)
        if pause:
            time.sleep(pause)
        return {"tag": tag}

    return write


def assert_complete_export(out: Path) -> dict:
    """``out`` is one whole export: its manifest lists exactly what is there."""
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tool"] == "classmap"
    assert folder._replace_problem(out) is None
    assert set(manifest["file_info"]) | {"manifest.json"} == {p.name for p in out.iterdir()}
    if "tag" in manifest:
        assert (out / "data.txt").read_text() == manifest["tag"] * 100
    return manifest


def assert_no_debris(parent: Path, *keep: str) -> None:
    assert sorted(p.name for p in parent.iterdir()) == sorted(keep)


@pytest.fixture
def small_head(tmp_path) -> Path:
    path = tmp_path / "head.npy"
    np.save(path, np.random.default_rng(0).normal(size=(6, 10)).astype(np.float32))
    return path


# ------------------------------------------------------------------------------------
# 1. data loss


def test_a_folder_with_a_stray_manifest_is_refused_and_nothing_is_deleted(
        tmp_path, capsys, small_head):
    """The reproduction from issue 15: this used to exit 0 with important.txt gone."""
    x = tmp_path / "x"
    x.mkdir()
    (x / "manifest.json").write_text("{}")
    (x / "important.txt").write_text("work")
    (x / "src").mkdir()
    (x / "src" / "main.py").write_text("print()")
    code = main(["export", "--head", str(small_head), "--out", str(x), "--quiet", "--top-k", "2"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "Classmap did not write" in err and "move the folder away" in err
    assert (x / "important.txt").read_text() == "work"
    assert (x / "src" / "main.py").read_text() == "print()"
    assert (x / "manifest.json").read_text() == "{}"
    assert_no_debris(tmp_path, "x", "head.npy")


def test_the_manifest_names_the_tool_and_every_file_with_size_and_checksum(
        tmp_path, capsys, small_head):
    out = tmp_path / "out"
    assert main(["export", "--head", str(small_head), "--out", str(out), "--quiet",
                 "--top-k", "2"]) == 0
    manifest = assert_complete_export(out)
    assert manifest["export_format"] == 1 and len(manifest["export_id"]) == 32
    import hashlib

    for name, info in manifest["file_info"].items():
        data = (out / name).read_bytes()
        assert info == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert "classes.csv" in manifest["files"]


def _spoil(out: Path, how: str) -> str:
    """Change a real export so it is no longer exactly what Classmap wrote."""
    manifest = json.loads((out / "manifest.json").read_text())
    if how == "extra file":
        (out / "important.txt").write_text("work")
        return "important.txt"
    if how == "extra folder":
        (out / "src").mkdir()
        (out / "src" / "a.py").write_text("x")
        return "src/"
    if how == "changed file":
        (out / "data.txt").write_text("edited by hand")
        return "data.txt was changed"
    if how == "missing file":
        (out / "data.txt").unlink()
        return "data.txt was changed or removed"
    if how == "other tool":
        manifest["tool"] = "othertool"
    elif how == "older manifest":
        del manifest["tool"], manifest["file_info"]
    elif how == "not json":
        (out / "manifest.json").write_text("{not json")
        return "Classmap did not write"
    (out / "manifest.json").write_text(json.dumps(manifest))
    return "Classmap did not write"


@pytest.mark.parametrize("how", ["extra file", "extra folder", "changed file", "missing file",
                                 "other tool", "older manifest", "not json"])
def test_anything_but_an_unchanged_classmap_export_is_refused(tmp_path, how):
    out = tmp_path / "out"
    write_export(out, [tagged_writer("a")], {})
    expected = _spoil(out, how)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ClassmapError) as raised:
        write_export(out, [tagged_writer("b")], {})
    message = str(raised.value)
    assert expected in message and "nothing was changed" in message
    assert "\n" not in message
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert_no_debris(tmp_path, "out")


def test_a_symbolic_link_as_out_is_refused(tmp_path):
    real = tmp_path / "real"
    write_export(real, [tagged_writer("a")], {})
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(ClassmapError, match="symbolic link"):
        write_export(tmp_path / "link", [tagged_writer("b")], {})
    assert json.loads((real / "manifest.json").read_text())["tag"] == "a"


def test_an_unchanged_export_and_an_empty_folder_are_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write_export(out, [tagged_writer("a")], {})
    write_export(out, [tagged_writer("b")], {})
    assert assert_complete_export(out)["tag"] == "b"
    assert_no_debris(tmp_path, "out")


def test_the_fallback_swap_without_renameat2_replaces_too(tmp_path, monkeypatch):
    monkeypatch.setattr(folder, "_exchange", lambda first, second: False)
    out = tmp_path / "out"
    write_export(out, [tagged_writer("a")], {})
    write_export(out, [tagged_writer("b")], {})
    assert assert_complete_export(out)["tag"] == "b"
    assert_no_debris(tmp_path, "out")


# ------------------------------------------------------------------------------------
# 2. concurrency


def test_concurrent_exports_in_threads_end_with_one_complete_export(tmp_path):
    out = tmp_path / "out"
    errors: list[BaseException] = []

    def export(tag: str) -> None:
        try:
            write_export(out, [tagged_writer(tag, pause=0.005)], {})
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=export, args=(f"t{i:02d}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert assert_complete_export(out)["tag"].startswith("t")
    assert_no_debris(tmp_path, "out")


LIGHT_CHILD = r"""
import os, sys, time
from pathlib import Path
from classmap.analysis.exports.folder import write_export
out, tag, pause, ready, go, rounds = sys.argv[1:7]
while go != "-" and not os.path.exists(go):
    time.sleep(0.001)
def writer(folder):
    (folder / "data.txt").write_text(tag * 100)
    if ready != "-":
        Path(ready).write_text("ready")
    time.sleep(float(pause))
    return {"tag": tag}
for _ in range(int(rounds)):
    write_export(out, [writer], {})
"""


def light_child(out: Path, tag: str, pause: float, ready: Path | str = "-",
                go: Path | str = "-", rounds: int = 1) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", LIGHT_CHILD, str(out), tag, str(pause), str(ready), str(go),
         str(rounds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_concurrent_exports_in_processes_end_with_one_complete_export(tmp_path):
    """10 processes started together, 10 exports each, to one folder (before the lock:
    "No such file or directory", "Directory not empty" and .out.old-* folders left)."""
    parent = tmp_path / "exp"
    out = parent / "out"
    go = tmp_path / "go"
    children = [light_child(out, f"p{i:02d}", 0, go=go, rounds=10) for i in range(10)]
    time.sleep(0.5)
    go.write_text("go")
    results = [(child.wait(TIMEOUT), child.stderr.read()) for child in children]
    for child in children:
        child.stdout.close()
        child.stderr.close()
    assert [code for code, _ in results] == [0] * 10, results
    assert not any("Error" in err or "error" in err for _, err in results)
    assert assert_complete_export(out)["tag"].startswith("p")
    assert_no_debris(parent, "out")


# ------------------------------------------------------------------------------------
# 3. interruption


def wait_for(path: Path, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        if child.poll() is not None:
            pytest.fail(f"child ended early: {child.communicate()}")
        assert time.monotonic() < deadline, "child never reached the write"
        time.sleep(0.02)


def test_sigkill_leftovers_are_cleaned_by_the_next_export(tmp_path):
    parent = tmp_path / "exp"
    out = parent / "out"
    write_export(out, [tagged_writer("old")], {})
    ready = tmp_path / "ready"
    child = light_child(out, "killed", 120, ready)
    wait_for(ready, child)
    child.kill()
    child.communicate(timeout=TIMEOUT)
    assert any(p.name.startswith(".out.partial-") for p in parent.iterdir())
    assert assert_complete_export(out)["tag"] == "old"
    write_export(out, [tagged_writer("new")], {})
    assert assert_complete_export(out)["tag"] == "new"
    assert_no_debris(parent, "out")


def _crash_between_the_renames(parent: Path) -> Path:
    """What a process killed between the fallback's two renames leaves behind."""
    out = parent / "out"
    write_export(out, [tagged_writer("old")], {})
    aside = parent / ".out.old-k1ll3d"
    aside.mkdir()
    os.replace(out, aside / "old")
    (parent / ".out.partial-abc_123").mkdir()
    (parent / ".out.partial-abc_123" / "data.txt").write_text("half")
    return out


def test_an_export_moved_aside_by_a_crash_is_restored_if_the_next_export_fails(tmp_path):
    out = _crash_between_the_renames(tmp_path)

    def broken(staging: Path) -> dict:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_export(out, [broken], {})
    assert assert_complete_export(out)["tag"] == "old"
    assert_no_debris(tmp_path, "out")


def test_an_export_moved_aside_by_a_crash_is_replaced_by_the_next_export(tmp_path):
    out = _crash_between_the_renames(tmp_path)
    write_export(out, [tagged_writer("new")], {})
    assert assert_complete_export(out)["tag"] == "new"
    assert_no_debris(tmp_path, "out")


def test_signals_are_held_back_during_the_fallback_swap():
    # Python's own SIGINT handler, whatever the test process inherited (an xdist worker
    # may ignore SIGINT, and deferred_signals rightly acts as before: it would ignore it).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    reached_the_end_of_the_block = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with folder.deferred_signals():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                reached_the_end_of_the_block = True
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert reached_the_end_of_the_block


CLI_CHILD = r"""
import sys, time
from pathlib import Path
from classmap.analysis import cli
ready, where, light = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "light"
def block():
    ready.write_text("ready")
    time.sleep(120)
if where == "during" and not light:
    from classmap.analysis.exports import weights
    original = weights.write_neighbours_csv
    def slow(path, result):
        original(path, result)
        block()
    weights.write_neighbours_csv = slow
elif where == "after":
    original_info = cli.log.info
    def after(message, *args):
        if message.startswith("wrote"):
            block()
        original_info(message, *args)
    cli.log.info = after
if not light:
    sys.exit(cli.main(sys.argv[4:]))
# The same run() and write_export without torch and timm (seconds to import): the
# export's one writer blocks like the real one above.
import uuid
from classmap.analysis.exports.folder import write_export
def handler(args):
    args.export_id = uuid.uuid4().hex
    def writer(folder):
        (folder / "data.txt").write_text("new" * 100)
        if where == "during":
            block()
        return {"tag": "new"}
    with cli.signals_raise():
        out = write_export(args.out, [writer], {"export_id": args.export_id})
        cli.log.info("wrote %s", out)
    return 0
parser = cli.OneLineParser()
parser.add_argument("--out")
parser.set_defaults(handler=handler, verbose=False)
sys.exit(cli.run(parser, ["--out", sys.argv[-1]]))
"""


@pytest.mark.parametrize("signum, where, code, light", [
    (signal.SIGTERM, "during", 143, False),  # a real export process
    (signal.SIGINT, "during", 130, True),
    (signal.SIGINT, "after", 130, True),
    (signal.SIGTERM, "after", 143, True),
])
def test_sigterm_and_sigint_give_one_line_and_the_conventional_exit_code(
        tmp_path, small_head, signum, where, code, light):
    """An export process blocked at a known point, then signalled: during the write
    (the previous export stays) or just after it (the new export stays)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", CLASSMAP_CACHE_DIR=str(tmp_path / "cache"))
    parent = tmp_path / "exp"
    out = parent / "out"
    write_export(out, [tagged_writer("old")], {})
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", CLI_CHILD, str(ready), where, "light" if light else "real",
         "export", "--head", str(small_head), "--quiet", "--top-k", "2", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    wait_for(ready, child)
    child.send_signal(signum)
    _, err = child.communicate(timeout=TIMEOUT)
    assert child.returncode == code, err
    assert len(err.strip().splitlines()) == 1, err
    manifest = assert_complete_export(out)
    signame = signal.Signals(signum).name
    if where == "during":
        assert f"interrupted by {signame}; --out {out} was left as it was" in err
        assert manifest["tag"] == "old"
    else:
        assert f"interrupted by {signame} after {out} was written" in err
        assert manifest["tag"] == "new"
    assert_no_debris(parent, "out")


# ------------------------------------------------------------------------------------
# 8. CSV injection

FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_spreadsheet_safe_prefixes_formulas_only():
    assert [spreadsheet_safe(cell) for cell in FORMULAS] == ["'" + cell for cell in FORMULAS]
    for cell in ["tench", "a=b", "", "'quoted", 3, -1.5, None]:
        assert spreadsheet_safe(cell) == cell


def test_class_names_and_ids_are_neutralised_in_classes_csv(tmp_path, capsys):
    typed = FORMULAS[:4]  # a tab or CR cannot be typed into a --classes line
    head = tmp_path / "head.npy"
    np.save(head, np.random.default_rng(1).normal(size=(len(typed) + 1, 6)))
    classes = tmp_path / "classes.txt"
    classes.write_text("".join(f"id{i}\t{name}\n" for i, name in enumerate(typed))
                       + "-id\tplain\n")
    out = tmp_path / "out"
    code = main(["export", "--head", str(head), "--classes", str(classes), "--out", str(out),
                 "--quiet", "--top-k", "2"])
    assert code == 0, capsys.readouterr().err
    with open(out / "classes.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    assert [row[2] for row in rows[:-1]] == ["'" + name for name in typed]
    assert rows[-1][1:] == ["'-id", "plain"]
    assert "'" not in (out / "neighbours.csv").read_text()
    weights.write_classes_csv(tmp_path / "direct.csv", ["a", "b"], FORMULAS[4:])
    with open(tmp_path / "direct.csv", newline="", encoding="utf-8") as handle:
        assert [row[2] for row in csv.reader(handle)][1:] == ["'\tx", "'\rx"]


def test_image_csvs_neutralise_paths_and_class_names(tmp_path):
    from classmap.analysis.exports import images

    names = ("=HYPERLINK(1)", "@x")
    analysis = SimpleNamespace(class_names=names, confusion_columns=names,
                               confusion=np.array([[1, 0], [0, 1]]))
    images.write_confusion_csv(tmp_path / "confusion.csv", analysis)
    with open(tmp_path / "confusion.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["true\\pred", "'=HYPERLINK(1)", "'@x"], ["'=HYPERLINK(1)", "1", "0"],
                    ["'@x", "0", "1"]]
    reps = SimpleNamespace(sample_ids=["-rm.png", "ok.png"], labels=np.array([0, 1]),
                           preds=np.array([0, 1]), confidence=np.array([0.5, -0.25]))
    images.write_samples_csv(tmp_path / "samples.csv", reps)
    with open(tmp_path / "samples.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert [row[1] for row in rows[1:]] == ["'-rm.png", "ok.png"]
    assert rows[2][4] == "-0.25"
