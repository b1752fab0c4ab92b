"""Class ids and names for a head of C classes.

Order of precedence (first that applies wins):

1. an explicit ``--classes`` file (one name per line; ``id<TAB>name`` also accepted) —
   the user said so, so it beats any guess;
2. names stored in the checkpoint itself (``class_names`` in a safetensors header or
   a checkpoint dict, as ``classmap train`` writes);
3. ImageNet subsets recognised by class count through timm's offline metadata
   (1,000 → ImageNet-1k; 11,221 / 11,821 / 21,841 / 21,842 / 21,843 → the 21k variants);
4. ``class_0 … class_{C-1}``.

The same rules hold for names from every source (:func:`check_class_names`): no empty
name or id, no name or id twice, and a UTF-8 byte-order mark before the first name is
dropped (Windows editors write one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classmap.analysis.loading.checkpoints import check_readable_file
from classmap.analysis.errors import ClassmapError


@dataclass(frozen=True)
class ClassNames:
    """Ids and human names of C classes, plus where they came from.

    Attributes
    ----------
    ids : tuple of C str — stable identifiers (WordNet ids for ImageNet, else names)
    names : tuple of C str — human-readable names
    source : str — ``"classes-file"``, ``"checkpoint"``, ``"imagenet-1k"`` …, ``"generic"``
    """

    ids: tuple[str, ...]
    names: tuple[str, ...]
    source: str


def resolve_class_names(
    num_classes: int,
    classes_file: str | Path | None = None,
    checkpoint_names: Sequence[str] | None = None,
) -> ClassNames:
    """Pick class ids and names for a head with ``num_classes`` rows (see module doc)."""
    if classes_file is not None:
        ids, names = read_classes_file(classes_file)
        if len(names) != num_classes:
            raise ClassmapError(
                f"--classes file {classes_file} lists {len(names)} classes but the head has "
                f"{num_classes} rows; give one line per class, in the head's row order"
            )
        return ClassNames(tuple(ids), tuple(names), "classes-file")
    if checkpoint_names is not None and len(checkpoint_names) == num_classes:
        ids, names = check_class_names(
            [str(n) for n in checkpoint_names], [str(n) for n in checkpoint_names],
            "the class names stored in the checkpoint",
            "fix them in the checkpoint, or pass --classes FILE to name the rows",
        )
        return ClassNames(tuple(ids), tuple(names), "checkpoint")
    imagenet = _imagenet_names(num_classes)
    if imagenet is not None:
        return imagenet
    names = tuple(f"class_{i}" for i in range(num_classes))
    return ClassNames(names, names, "generic")


def read_classes_file(path: str | Path) -> tuple[list[str], list[str]]:
    """Read a class list: one name per line, or ``id<TAB>name`` per line.

    Blank lines are an error (they would shift every class after them); duplicate
    names are an error (neighbour lists and trees would be ambiguous).
    """
    resolved = check_readable_file(path, "--classes")
    try:
        text = resolved.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ClassmapError(
            f"--classes file {resolved} is not UTF-8 text; save it as UTF-8, one name per line"
        ) from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    ids: list[str] = []
    names: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ClassmapError(
                f"--classes file {resolved} has a blank line {number}; one class per line, no gaps"
            )
        if "\t" in line:
            class_id, name = (part.strip() for part in line.split("\t", 1))
        else:
            class_id = name = line.strip()
        ids.append(class_id)
        names.append(name)
    return check_class_names(
        ids, names, f"--classes file {resolved}", "fix the file: one class per line, in the "
        "head's row order", first="line",
    )


def check_class_names(
    ids: Sequence[str], names: Sequence[str], where: str, fix: str, *, first: str = "row"
) -> tuple[list[str], list[str]]:
    """The ids and names of C classes after the checks every source shares.

    A byte-order mark (U+FEFF) before the first id or name is dropped; surrounding
    white space is stripped.

    Parameters
    ----------
    ids, names : C strings each, in the head's row order
    where : how the message names the source (``"--classes file F"``)
    fix : what the user should do, appended to every message
    first : what a position is called in messages (``row``, 0-based, or ``line``, 1-based)

    Raises
    ------
    ClassmapError
        for an empty id or name, or an id or name given twice (naming both positions).
    """
    base = 1 if first == "line" else 0
    ids = [str(i).strip() for i in ids]
    names = [str(n).strip() for n in names]
    if ids:
        ids[0] = ids[0].lstrip("\ufeff").strip()
        names[0] = names[0].lstrip("\ufeff").strip()
    for kind, values in (("name", names), ("id", ids)):
        seen: dict[str, int] = {}
        for position, value in enumerate(values, start=base):
            if not value:
                raise ClassmapError(f"{where}: empty class {kind} at {first} {position}; {fix}")
            if value in seen:
                raise ClassmapError(
                    f"{where}: class {kind} {value!r} appears twice ({first}s {seen[value]} and "
                    f"{position}); class {kind}s must be unique: {fix}"
                )
            seen[value] = position
    return ids, names


def checkpoint_class_names(metadata: dict[str, Any]) -> list[str] | None:
    """Class names stored in checkpoint metadata under ``class_names``/``classes``, if any."""
    for key in ("class_names", "classes"):
        value = metadata.get(key)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
    return None


def _imagenet_names(num_classes: int) -> ClassNames | None:
    from timm.data import ImageNetInfo
    from timm.data.imagenet_info import _NUM_CLASSES_TO_SUBSET

    subset = _NUM_CLASSES_TO_SUBSET.get(num_classes)
    if subset is None:
        return None
    info = ImageNetInfo(subset)
    ids = tuple(info.label_names())
    names = tuple(info.label_descriptions())
    return ClassNames(ids, names, subset)
