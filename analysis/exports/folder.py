"""Writing results as files, atomically: all of them or none.

:func:`write_export` creates a temporary folder beside ``out``, lets each writer fill
it, and renames it into place only when every writer succeeded. An existing ``out``
folder is replaced only if it is empty or was itself written by Classmap (it has a
``manifest.json``), so a typo in ``--out`` cannot wipe someone's data.

Writers are plain functions ``writer(folder: Path) -> dict`` returning manifest
entries; other analyses (ALD fits, image-based results) add their own writers.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from classmap.analysis import __version__
from classmap.analysis.errors import ClassmapError

Writer = Callable[[Path], dict[str, Any]]
MANIFEST = "manifest.json"


def check_output_dir(out: str | Path) -> Path:
    """Validate ``--out`` before any work: its nearest existing ancestor must be a
    writable folder, and an existing ``out`` must be empty or a previous Classmap export."""
    target = Path(out).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise ClassmapError(f"--out {target} exists and is a file; give a folder path")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).exists():
        raise ClassmapError(
            f"--out {target} is a non-empty folder that is not a Classmap export; "
            "give a new or empty folder"
        )
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


def write_export(out: str | Path, writers: Iterable[Writer], manifest: dict[str, Any]) -> Path:
    """Run every writer into a temporary folder, add ``manifest.json``, move into place.

    Returns the final folder. On any error the temporary folder is removed and
    ``out`` is left exactly as it was.
    """
    target = check_output_dir(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as error:
        raise ClassmapError(f"--out {target} could not be created ({error.strerror}); "
                            "choose a folder you can write to") from None
    try:
        full_manifest = dict(manifest)
        for writer in writers:
            full_manifest.update(writer(staging))
        # The list of files is what is really there, whichever writers ran.
        full_manifest["files"] = sorted(path.name for path in staging.iterdir())
        (staging / MANIFEST).write_text(json.dumps(full_manifest, indent=2, default=str) + "\n")
        os.chmod(staging, 0o755)
        if target.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, backup / "old")
            os.replace(staging, target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ClassmapError(f"--out {target} could not be written ({error.strerror or error}); "
                            "check free space and permissions") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


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
