"""Writing results as files, atomically: all of them or none.

:func:`write_export` creates a temporary folder beside ``out`` (``.<name>.partial-*``),
lets each writer fill it, adds ``manifest.json`` and swaps it into place only when every
writer succeeded. The rules it keeps:

- **Nothing the user owns is deleted.** An existing ``out`` is replaced only when it is
  empty or holds exactly what a previous Classmap export wrote: its ``manifest.json``
  says ``"tool": "classmap"`` and lists every file with its size and SHA-256 under
  ``file_info``, and the folder holds those files, with those sizes, and nothing else.
  Anything else (another tool's ``manifest.json``, an extra file or folder, a changed
  file, a symbolic link as ``out``) is refused with one line; nothing is touched.
- **One export at a time per folder.** The whole write holds an exclusive ``flock`` on
  ``.<name>.lock`` beside ``out``; a second export to the same folder waits for the first
  and then replaces it (so each export that reports success was complete when written,
  and the folder ends with the last one). The holder removes the lock file before it
  releases the lock; a waiter that then finds the file gone or replaced takes the lock
  again on the new file, so no lock file is left behind.
- **Either the old export or the new one, never neither.** The swap is one
  ``renameat2(RENAME_EXCHANGE)`` call (Linux, glibc 2.28 and later) where the system has
  it. Elsewhere it is two renames, ``out`` to ``.<name>.old-*/old`` and the new folder to
  ``out``, with SIGINT/SIGTERM held back between them; a process killed between the two
  (SIGKILL, power loss) leaves the previous export in ``.<name>.old-*``, and the next
  export to that folder moves it back before doing anything else.
- **Leftovers are cleaned.** Only a lock holder creates ``.<name>.partial-*`` and
  ``.<name>.old-*`` folders, so the next export, once it holds the lock, removes any it
  finds: they belong to a process that died.

Writers are plain functions ``writer(folder: Path) -> dict`` returning manifest
entries; other analyses (ALD fits, image-based results) add their own writers.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import signal
import stat
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from classmap.analysis import __version__
from classmap.analysis.errors import ClassmapError

log = logging.getLogger("classmap")

Writer = Callable[[Path], dict[str, Any]]
MANIFEST = "manifest.json"
TOOL = "classmap"
EXPORT_FORMAT = 1
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SHOWN = 3  # names listed in a refusal before "and N more"


# ------------------------------------------------------------------------------------
# CSV cells


def spreadsheet_safe(cell: object) -> object:
    """A text cell a spreadsheet would run as a formula, prefixed with ``'`` (OWASP).

    Cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return; other
    cells, and everything that is not a string (numbers Classmap formats itself), are
    returned unchanged. Use it on every cell that comes from user data: class names and
    ids, image paths.
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


# ------------------------------------------------------------------------------------
# what may be replaced


def check_output_dir(out: str | Path) -> Path:
    """Validate ``--out`` before any work: its nearest existing ancestor must be a
    writable folder, and an existing ``out`` must be empty or exactly a previous
    Classmap export (see the module's docstring)."""
    target = Path(out).expanduser().absolute()
    problem = _replace_problem(target)
    if problem is not None and _lockable(target):
        # A concurrent export may have been between its renames: look again while no
        # export to this folder is running.
        with export_lock(target):
            problem = _replace_problem(target)
    if problem is not None:
        raise ClassmapError(problem)
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ClassmapError(
            f"--out {target} cannot be created because {ancestor} is a file; choose another path"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ClassmapError(f"--out {target} is not writable (no permission on {ancestor}); "
                            "choose a folder you can write to")
    return target


def _replace_problem(target: Path) -> str | None:
    """Why ``target`` may not be replaced (one line naming the fix), or None if it may."""
    try:
        mode = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        return f"--out {target} cannot be read ({error.strerror}); choose another folder"
    if stat.S_ISLNK(mode):
        return (f"--out {target} is a symbolic link; give the folder it points to, "
                "or a new folder")
    if not stat.S_ISDIR(mode):
        return f"--out {target} exists and is a file; give a folder path"
    try:
        names = os.listdir(target)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"--out {target} cannot be read ({error.strerror}); choose another folder"
    if not names:
        return None
    if MANIFEST not in names:
        return (f"--out {target} is a non-empty folder that is not a Classmap export; "
                "give a new or empty folder")
    listed = _listed_files(target / MANIFEST)
    if listed is None:
        return (f"--out {target} has a {MANIFEST} that Classmap did not write (or one from "
                "an older Classmap that did not list its files); nothing was changed: move "
                "the folder away or give a new or empty folder")
    found = _files_below(target, listed)
    extra = sorted(name for name in found if name not in listed and name != MANIFEST)
    if extra:
        return (f"--out {target} holds {_names(extra)}, which the Classmap export there did "
                "not write; nothing was changed: move them out of the folder or give a new "
                "or empty folder")
    changed = sorted(name for name, size in listed.items() if found.get(name) != size)
    if changed:
        return (f"--out {target} is a Classmap export whose {_names(changed)} was changed or "
                "removed since; nothing was changed: move the folder away or give a new or "
                "empty folder")
    return None


def _listed_files(manifest: Path) -> dict[str, int] | None:
    """``relative path -> bytes`` from a Classmap manifest, or None if it is not one."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != TOOL:
        return None
    info = data.get("file_info")
    if not isinstance(info, dict):
        return None
    listed = {}
    for name, entry in info.items():
        size = entry.get("bytes") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not isinstance(size, int) or name == MANIFEST:
            return None
        listed[name] = size
    return listed


def _files_below(folder: Path, listed: dict[str, int]) -> dict[str, int]:
    """Every entry below ``folder`` as ``relative path -> bytes``; a folder that holds no
    listed file is one entry ``name/`` and a link or special file has size -1."""
    parents = {str(Path(name).parent) for name in listed} | {
        str(parent) for name in listed for parent in Path(name).parents
    }
    found: dict[str, int] = {}

    def walk(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                name = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    if name in parents:
                        walk(Path(entry.path), name + "/")
                    else:
                        found[name + "/"] = -1
                elif entry.is_file(follow_symlinks=False):
                    found[name] = entry.stat(follow_symlinks=False).st_size
                else:
                    found[name] = -1

    try:
        walk(folder, "")
    except OSError:
        found[""] = -1  # unreadable: nothing matches, so it is refused
    return found


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown if len(names) <= _SHOWN else f"{shown} and {len(names) - _SHOWN} more"


def _lockable(target: Path) -> bool:
    return target.parent.is_dir() and os.access(target.parent, os.W_OK | os.X_OK)


# ------------------------------------------------------------------------------------
# one export at a time


@contextmanager
def export_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``.<name>.lock`` beside ``target``.

    The file is removed before the lock is released; whoever then gets the lock on the
    removed file sees that the path no longer names it and tries again.
    """
    path = target.parent / f".{target.name}.lock"
    waited = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not waited:
                    log.warning("another export to %s is being written; waiting for it", target)
                    waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                current = os.stat(path)
                same = (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino)
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block ends (main thread only; in other
    threads Python runs no signal handlers anyway), then act on them as before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in received[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


# ------------------------------------------------------------------------------------
# writing


def write_export(out: str | Path, writers: Iterable[Writer], manifest: dict[str, Any]) -> Path:
    """Run every writer into a temporary folder, add ``manifest.json``, swap into place.

    Returns the final folder. On any error or interrupt the temporary folder is removed
    and ``out`` is left exactly as it was.
    """
    target = check_output_dir(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ClassmapError(f"--out {target} could not be created ({error.strerror}); "
                            "choose a folder you can write to") from None
    with export_lock(target):
        _recover_and_clean(target)
        problem = _replace_problem(target)
        if problem is not None:
            raise ClassmapError(problem)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-",
                                            dir=target.parent))
        except OSError as error:
            raise ClassmapError(f"--out {target} could not be created ({error.strerror}); "
                                "choose a folder you can write to") from None
        try:
            full_manifest = dict(manifest)
            for writer in writers:
                full_manifest.update(writer(staging))
            # The list of files is what is really there, whichever writers ran.
            full_manifest["files"] = sorted(path.name for path in staging.iterdir())
            full_manifest["file_info"] = _file_info(staging)
            full_manifest["tool"] = TOOL
            full_manifest["export_format"] = EXPORT_FORMAT
            full_manifest.setdefault("export_id", uuid.uuid4().hex)
            (staging / MANIFEST).write_text(
                json.dumps(full_manifest, indent=2, default=str) + "\n", encoding="utf-8")
            os.chmod(staging, 0o755)
            _swap_into_place(staging, target)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise ClassmapError(f"--out {target} could not be written "
                                f"({error.strerror or error}); check free space and "
                                "permissions") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def _file_info(folder: Path) -> dict[str, dict[str, Any]]:
    """``relative path -> {"bytes", "sha256"}`` of every file below ``folder``."""
    info = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            info[path.relative_to(folder).as_posix()] = {
                "bytes": path.stat().st_size, "sha256": digest.hexdigest()}
    return info


def _swap_into_place(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; the previous ``target`` (if any) is removed."""
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now the previous export
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    with deferred_signals():
        os.replace(target, backup / "old")
        os.replace(staging, target)
    shutil.rmtree(backup, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with ``renameat2(RENAME_EXCHANGE)``; False where the
    C library or the file system lacks it."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                       _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code))


def _recover_and_clean(target: Path) -> None:
    """With the lock held: put back a previous export left in ``.<name>.old-*`` by a
    process killed between its two renames, then remove every leftover of a dead export."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(partial|old)-[A-Za-z0-9_]+")
    leftovers = [path for path in target.parent.iterdir() if pattern.fullmatch(path.name)]
    if not leftovers:
        return
    if not os.path.lexists(target):
        olds = [path / "old" for path in leftovers if ".old-" in path.name]
        for old in sorted(olds, key=_mtime, reverse=True):
            if (old / MANIFEST).is_file() and _replace_problem(old) is None:
                os.replace(old, target)
                log.warning("restored %s, the previous export an interrupted export had "
                            "moved aside", target)
                break
    for path in leftovers:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.unlink()
            except OSError:
                pass


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def versions() -> dict[str, str]:
    """Versions that determine the numbers: classmap, torch, timm, numpy, scipy, python."""
    import scipy
    import timm
    import torch

    return {
        "classmap": __version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }
