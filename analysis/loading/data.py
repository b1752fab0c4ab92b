"""Labelled image sets for the image-based analyses: an image folder, or scikit-learn's digits.

Two sources, one :class:`ImageDataset`:

- ``--data DIR`` — one sub-folder per class (``DIR/<class>/…/image.png``). Each folder
  is matched to one of the model's classes by id (``n01978287``), then by name, then
  by name ignoring case, ``_``/``-`` and repeated spaces, then — ImageNet names list
  synonyms, ``"Dungeness crab, Cancer magister"`` — by any one comma-separated part
  (``dungeness_crab``). A folder that matches nothing, a name that fits two classes
  (ImageNet has two "crane"s), or two folders for one class is a :class:`ClassmapError`
  that lists them. Without a model (``classmap train``) the sorted folder names are
  the classes.
- ``digits`` — the held-out 20 % of scikit-learn's bundled digits (the split of
  :func:`classmap.analysis.loading.lenet.load_digits_split`), in row order, kept in memory as grey
  values in [0, 1] (PIL mode ``F``) so LeNet sees exactly what it was evaluated on.

Every file is read once when the set is opened: decoded completely (a truncated JPEG
fails here, not half-way through an extraction) and hashed, so :attr:`ImageDataset.digest`
changes whenever any byte, file or label changes. Bad input never stops the run
silently and never crashes it:

- files without an image extension (``.txt``, ``.DS_Store`` …) are skipped and counted;
- unreadable images (truncated, corrupt, a decompression bomb) are skipped and named;
- grayscale, palette, CMYK, 16-bit and alpha images are converted to what the model
  takes (``RGB`` or ``L``): alpha is composited on white, 16-bit values are scaled by
  255/65535 (Pillow's own ``convert`` would clip them), EXIF orientation is applied;
- empty class folders and classes with a single image are reported (within-class
  similarity needs two images).

A hosted server opens only folders under the roots it was configured with
(:func:`resolve_data_root`); inside such a folder, links that lead outside the roots
are skipped and reported.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from classmap.analysis.loading.classnames import ClassNames
from classmap.analysis.errors import ClassmapError

log = logging.getLogger(__name__)

DIGITS = "digits"
DATA_VERSION = "1"
IMAGE_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
)
CHANNEL_MODES = {1: "L", 3: "RGB"}
# Decoding errors Pillow raises for damaged files (UnidentifiedImageError is an OSError;
# a truncated JPEG raises OSError on load; broken PNG chunks raise SyntaxError …).
_DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError,
    Image.DecompressionBombError,
)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_EXAMPLES = 10


@dataclass(frozen=True)
class SkippedImage:
    """A file that looked like an image but could not be used; ``path`` is relative."""

    path: str
    reason: str


@dataclass(frozen=True)
class DataReport:
    """What was found in a data source, and what was skipped or converted.

    Attributes
    ----------
    source : ``"digits"`` or the resolved folder
    num_images : images in the set
    class_counts : ``(class name, images)`` for every class folder used, in label order
    non_image_files : files skipped because their extension is not an image's
    non_image_examples : up to 10 of them (relative paths)
    unreadable : images that failed to decode, each named with the reason
    links_outside : links skipped because they lead outside the allowed roots
    conversions : ``(kind, count)`` — e.g. ``("grayscale → RGB", 3)``
    empty_classes : class folders without a usable image
    single_image_classes : classes with exactly one image (no within-class pair)
    """

    source: str
    num_images: int
    class_counts: tuple[tuple[str, int], ...]
    non_image_files: int = 0
    non_image_examples: tuple[str, ...] = ()
    unreadable: tuple[SkippedImage, ...] = ()
    links_outside: tuple[str, ...] = ()
    conversions: tuple[tuple[str, int], ...] = ()
    empty_classes: tuple[str, ...] = ()
    single_image_classes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (for the export manifest and the web page)."""
        return {
            "source": self.source,
            "num_images": self.num_images,
            "class_counts": {name: count for name, count in self.class_counts},
            "non_image_files": self.non_image_files,
            "non_image_examples": list(self.non_image_examples),
            "unreadable": [{"path": s.path, "reason": s.reason} for s in self.unreadable],
            "links_outside": list(self.links_outside),
            "conversions": {kind: count for kind, count in self.conversions},
            "empty_classes": list(self.empty_classes),
            "single_image_classes": list(self.single_image_classes),
        }

    def summary(self) -> str:
        """One line for the log: counts of everything skipped or noteworthy."""
        parts = [f"{self.num_images} images in {len(self.class_counts)} classes"]
        if self.non_image_files:
            parts.append(f"{self.non_image_files} non-image file(s) skipped")
        if self.unreadable:
            names = ", ".join(s.path for s in self.unreadable[:3])
            parts.append(f"{len(self.unreadable)} unreadable image(s) skipped ({names})")
        if self.links_outside:
            parts.append(f"{len(self.links_outside)} link(s) outside the data roots skipped")
        for kind, count in self.conversions:
            parts.append(f"{count} converted {kind}")
        if self.empty_classes:
            parts.append(f"empty classes: {', '.join(self.empty_classes[:5])}")
        if self.single_image_classes:
            parts.append(
                f"single-image classes (no within-class pair): "
                f"{', '.join(self.single_image_classes[:5])}"
            )
        return "; ".join(parts)


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality
class ImageDataset:
    """A labelled image set, ready to feed a classifier one image at a time.

    Attributes
    ----------
    source : ``"digits"`` or the resolved data folder
    labels : ndarray of shape (N,), int64 — index into ``class_names``
    class_names : tuple of C str — the model's classes (or the folders', for training)
    sample_ids : tuple of N str — ``"digits:<row of load_digits()>"`` or the path
        relative to the data folder (``"cat/001.png"``)
    paths : tuple of N Path (image folders) or None
    images : ndarray of shape (N, h, w), float32 in [0, 1] (digits), or None
    channels : 1 (``L``) or 3 (``RGB``) — what :meth:`load_image` returns
    report : DataReport
    digest : SHA-256 over the image bytes, labels, class names and channels
    """

    source: str
    labels: np.ndarray
    class_names: tuple[str, ...]
    sample_ids: tuple[str, ...]
    paths: tuple[Path, ...] | None
    images: np.ndarray | None
    channels: int
    report: DataReport
    digest: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def present_classes(self) -> np.ndarray:
        """Sorted class indices with at least one image; shape (P,), int64."""
        return np.unique(self.labels).astype(np.int64)

    def load_image(self, index: int) -> Image.Image:
        """Image ``index`` as a PIL image in mode ``L``/``RGB`` (digits with 1 channel: ``F``)."""
        if self.images is not None:
            grey = self.images[index]
            if self.channels == 1:
                return Image.fromarray(np.ascontiguousarray(grey, dtype=np.float32), mode="F")
            return Image.fromarray(np.round(grey * 255.0).astype(np.uint8), mode="L").convert("RGB")
        assert self.paths is not None
        path = self.paths[index]
        try:
            return open_image(path, CHANNEL_MODES[self.channels])
        except _DECODE_ERRORS as error:
            raise ClassmapError(
                f"image {self.sample_ids[index]} could not be read any more "
                f"({_first_line(error)}); it changed after the folder was scanned: run again"
            ) from None


# --------------------------------------------------------------------------------------
# entry points


def load_dataset(
    source: str | Path,
    classes: ClassNames | None = None,
    *,
    channels: int = 3,
    allowed_roots: Sequence[str | Path] | None = None,
) -> ImageDataset:
    """Open ``--data``: ``"digits"`` or an image folder.

    Parameters
    ----------
    source : ``"digits"`` or a folder with one sub-folder per class
    classes : the model's classes to match folders against; None = the folders are
        the classes (training)
    channels : 1 or 3 — the model's input channels (``data_config["input_size"][0]``)
    allowed_roots : when given (a hosted server), the folder must lie under one of them

    Raises
    ------
    ClassmapError
        for a missing folder, a folder outside ``allowed_roots``, unmatched class
        folders, no readable image, or fewer than 2 classes with images.
    """
    if channels not in CHANNEL_MODES:
        raise ClassmapError(f"the model takes {channels}-channel images; Classmap reads 1 or 3")
    if str(source) == DIGITS:
        return load_digits_dataset(classes, channels=channels)
    if allowed_roots is not None:
        root = resolve_data_root(source, allowed_roots)
    else:
        root = _existing_folder(source)
    return load_image_folder(root, classes, channels=channels, allowed_roots=allowed_roots)


def resolve_data_root(path: str | Path, allowed_roots: Sequence[str | Path]) -> Path:
    """The real path of data folder ``path`` if it lies under one of ``allowed_roots``.

    Symlinks and ``..`` are resolved before the check, so neither can lead out of a
    root. The containment check comes first, so the answer for a path outside the
    roots never tells whether it exists.
    """
    roots = [Path(root).expanduser().resolve() for root in allowed_roots]
    if not roots:
        raise ClassmapError(
            "this server has no data folders configured; ask its administrator to add one"
        )
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, ValueError, RuntimeError):  # NUL bytes, symlink loops
        raise ClassmapError(
            f"data folder {str(path)!r} is not a valid path; choose a folder under the "
            "configured data roots"
        ) from None
    if not _inside(resolved, roots):
        raise ClassmapError(
            f"data folder {path} is outside the folders this server may open; choose a folder "
            f"under {', '.join(str(root) for root in roots)}"
        )
    return _existing_folder(resolved)


def load_digits_dataset(classes: ClassNames | None = None, *, channels: int = 1) -> ImageDataset:
    """The held-out digits of :func:`classmap.analysis.loading.lenet.load_digits_split`, in row order.

    Labels are matched to ``classes`` by id or name (``"0"`` … ``"9"``).
    """
    from sklearn.datasets import load_digits

    from classmap.analysis.cache import digest_arrays
    from classmap.analysis.loading.lenet import DIGITS_SEED, load_digits_split

    rows = np.sort(load_digits_split(DIGITS_SEED).test_indices).astype(np.int64)
    digits = load_digits()
    images = (digits.images[rows] / 16.0).astype(np.float32)
    digit_labels = digits.target[rows].astype(np.int64)
    folder_names = [str(d) for d in range(10)]
    if classes is None:
        class_names = tuple(folder_names)
        mapping = {name: index for index, name in enumerate(folder_names)}
    else:
        class_names = tuple(classes.names)
        mapping = match_class_folders(
            folder_names, classes, what="digit class",
            fix="the digits go with a digits model: use --model lenet-digits, or a lenet5 "
                "trained with 'classmap train --data digits'",
        )
    labels = np.array([mapping[str(d)] for d in digit_labels], dtype=np.int64)
    counts = tuple((class_names[mapping[name]], int((digit_labels == int(name)).sum()))
                   for name in folder_names)
    report = DataReport(source=DIGITS, num_images=len(rows), class_counts=counts)
    digest = _digest("digits", digest_arrays(images, labels, rows), class_names, channels)
    return ImageDataset(
        source=DIGITS,
        labels=labels,
        class_names=class_names,
        sample_ids=tuple(f"digits:{row}" for row in rows),
        paths=None,
        images=images,
        channels=channels,
        report=report,
        digest=digest,
    )


def load_image_folder(
    root: str | Path,
    classes: ClassNames | None = None,
    *,
    channels: int = 3,
    allowed_roots: Sequence[str | Path] | None = None,
) -> ImageDataset:
    """Scan ``root/<class>/…`` (recursively, sorted), decode and hash every image once.

    See the module docstring for matching, conversions and what is reported.
    """
    root = _existing_folder(root)
    roots = [Path(r).expanduser().resolve() for r in allowed_roots] if allowed_roots else None
    folders = sorted(
        entry.name for entry in os.scandir(root)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    if not folders:
        raise ClassmapError(
            f"data folder {root} has no class sub-folders; put each class's images in "
            "DIR/<class name>/"
        )
    if classes is None:
        mapping = {name: index for index, name in enumerate(folders)}
        class_names = tuple(folders)
    else:
        mapping = match_class_folders(folders, classes)
        class_names = tuple(classes.names)

    scan = _FolderScan(root, roots, CHANNEL_MODES[channels])
    for folder in folders:
        scan.add_class_folder(folder, mapping[folder])
    scan.count_loose_files()

    if not scan.paths:
        raise ClassmapError(
            f"data folder {root} has no readable image in its {len(folders)} class folder(s); "
            f"add images ({', '.join(IMAGE_SUFFIXES[:4])} …)"
        )
    labels = np.array(scan.labels, dtype=np.int64)
    per_folder = {folder: scan.folder_counts.get(folder, 0) for folder in folders}
    used = [folder for folder in folders if per_folder[folder] > 0]
    if classes is None:
        # Training: the classes are the folders with images, in sorted order.
        class_names = tuple(used)
        remap = {mapping[folder]: index for index, folder in enumerate(used)}
        labels = np.array([remap[label] for label in labels], dtype=np.int64)
        mapping = {folder: remap[mapping[folder]] for folder in used}
    report = DataReport(
        source=str(root),
        num_images=len(scan.paths),
        class_counts=tuple(
            (class_names[mapping[folder]], per_folder[folder])
            for folder in sorted(used, key=lambda f: mapping[f])
        ),
        non_image_files=scan.non_image_files,
        non_image_examples=tuple(scan.non_image_examples),
        unreadable=tuple(scan.unreadable),
        links_outside=tuple(scan.links_outside),
        conversions=tuple(sorted(scan.conversions.items())),
        empty_classes=tuple(folder for folder in folders if per_folder[folder] == 0),
        single_image_classes=tuple(folder for folder in folders if per_folder[folder] == 1),
    )
    if len(used) < 2:
        raise ClassmapError(
            f"data folder {root} has images for {len(used)} class(es) "
            f"({', '.join(used) or 'none'}); relationships need at least 2 classes with images"
        )
    log.info("data %s: %s", root, report.summary())
    sha = hashlib.sha256()
    for sample_id, label, file_digest in zip(scan.sample_ids, labels, scan.file_digests):
        sha.update(f"{sample_id}\0{int(label)}\0{file_digest}\n".encode())
    return ImageDataset(
        source=str(root),
        labels=labels,
        class_names=class_names,
        sample_ids=tuple(scan.sample_ids),
        paths=tuple(scan.paths),
        images=None,
        channels=channels,
        report=report,
        digest=_digest("folder", sha.hexdigest(), class_names, channels),
    )


def match_class_folders(
    folders: Sequence[str],
    classes: ClassNames,
    *,
    what: str = "class folder",
    fix: str | None = None,
) -> dict[str, int]:
    """Map each folder name to a class index: by id, name, loose name, then loose synonym.

    Raises
    ------
    ClassmapError
        listing every folder that matches no class, or that matches two classes, and
        naming two folders that match the same class.
    """
    by_id = _index_of(classes.ids)
    by_name = _index_of(classes.names)
    by_loose = _index_of(_loose(name) for name in classes.names)
    by_synonym: dict[str, list[int]] = {}
    for index, name in enumerate(classes.names):
        for part in {_loose(p) for p in name.split(",") if p.strip()}:
            by_synonym.setdefault(part, []).append(index)
    mapping: dict[str, int] = {}
    unmatched: list[str] = []
    ambiguous: list[str] = []
    for folder in folders:
        for table, key in (
            (by_id, folder), (by_name, folder), (by_loose, _loose(folder)),
            (by_synonym, _loose(folder)),
        ):
            found = table.get(key)
            if found is not None:
                break
        if found is None:
            unmatched.append(folder)
        elif len(found) > 1:
            ambiguous.append(f"{folder} ({', '.join(classes.ids[i] for i in found[:3])})")
        else:
            mapping[folder] = found[0]
    if unmatched:
        shown = ", ".join(unmatched[:_EXAMPLES]) + (" …" if len(unmatched) > _EXAMPLES else "")
        examples = ", ".join(repr(i) for i in list(classes.ids)[:2])
        raise ClassmapError(
            f"{len(unmatched)} {what}(s) match none of the model's {len(classes.names)} classes: "
            f"{shown}; {fix or f'name each folder by a class name or id (e.g. {examples})'}"
        )
    if ambiguous:
        raise ClassmapError(
            f"{what}(s) {'; '.join(ambiguous[:_EXAMPLES])} match more than one class by name; "
            "rename the folder to the class id"
        )
    seen: dict[int, str] = {}
    for folder, index in mapping.items():
        if index in seen:
            raise ClassmapError(
                f"{what}s {seen[index]!r} and {folder!r} both match class "
                f"{classes.names[index]!r}; merge them into one folder"
            )
        seen[index] = folder
    return mapping


def open_image(path: str | Path, mode: str = "RGB") -> Image.Image:
    """Decode an image file completely and convert it to ``mode`` (``"RGB"`` or ``"L"``).

    Raises Pillow's decoding errors (OSError for a truncated file …) unchanged.
    """
    with Image.open(path) as image:
        image.load()
        return convert_image(image, mode)[0]


def convert_image(image: Image.Image, mode: str) -> tuple[Image.Image, str | None]:
    """Convert a decoded image to ``mode``; also return what kind of conversion it was.

    EXIF orientation is applied; 16-bit grey is scaled by 255/65535 (values above
    65535 in a 32-bit ``I`` image are clipped); alpha is composited on white; a float
    ``F`` image is taken as grey in [0, 1].
    """
    kind: str | None = None
    image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.round(np.clip(values, 0, 65535) * (255.0 / 65535.0))
                                .astype(np.uint8), mode="L")
        kind = "16-bit"
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8),
                                mode="L")
        kind = "float"
    if image.mode == "P":
        kind = kind or "palette"
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in _ALPHA_MODES:
        kind = "alpha" if kind in (None, "palette") else kind
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "CMYK":
        kind = kind or "CMYK"
    if image.mode in ("1", "L") and mode == "RGB":
        kind = kind or "grayscale"
    elif image.mode not in ("1", "L") and mode == "L":
        kind = kind or "colour"
    elif image.mode not in ("1", "L", "RGB"):
        kind = kind or image.mode
    if image.mode != mode:
        image = image.convert(mode)
    return image, (f"{kind} → {mode}" if kind else None)


# --------------------------------------------------------------------------------------
# helpers


class _FolderScan:
    """Accumulates the files of one data folder (one pass, sorted, deterministic)."""

    def __init__(self, root: Path, roots: list[Path] | None, mode: str) -> None:
        self.root = root
        self.roots = roots
        self.mode = mode
        self.paths: list[Path] = []
        self.sample_ids: list[str] = []
        self.labels: list[int] = []
        self.file_digests: list[str] = []
        self.folder_counts: dict[str, int] = {}
        self.non_image_files = 0
        self.non_image_examples: list[str] = []
        self.unreadable: list[SkippedImage] = []
        self.links_outside: list[str] = []
        self.conversions: dict[str, int] = {}

    def add_class_folder(self, folder: str, label: int) -> None:
        top = self.root / folder
        if self.roots is not None and not _inside(top.resolve(), self.roots):
            self.links_outside.append(folder)
            return
        for directory, subdirs, files in os.walk(top):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in sorted(files):
                self._add_file(Path(directory) / name, folder, label)

    def count_loose_files(self) -> None:
        """Files directly in the root belong to no class: counted as skipped."""
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.is_file():
                self._skip_non_image(entry.name)

    def _add_file(self, path: Path, folder: str, label: int) -> None:
        relative = path.relative_to(self.root).as_posix()
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            self._skip_non_image(relative)
            return
        if self.roots is not None and path.is_symlink() and not _inside(path.resolve(), self.roots):
            self.links_outside.append(relative)
            return
        try:
            content = path.read_bytes()
            with Image.open(io.BytesIO(content)) as image:
                image.load()
                _, kind = convert_image(image, self.mode)
        except _DECODE_ERRORS as error:
            self.unreadable.append(SkippedImage(relative, _first_line(error)))
            log.warning("skipping unreadable image %s (%s)", relative, _first_line(error))
            return
        if kind is not None:
            self.conversions[kind] = self.conversions.get(kind, 0) + 1
        self.paths.append(path)
        self.sample_ids.append(relative)
        self.labels.append(label)
        self.file_digests.append(hashlib.sha256(content).hexdigest())
        self.folder_counts[folder] = self.folder_counts.get(folder, 0) + 1

    def _skip_non_image(self, relative: str) -> None:
        self.non_image_files += 1
        if len(self.non_image_examples) < _EXAMPLES:
            self.non_image_examples.append(relative)


def _existing_folder(path: str | Path) -> Path:
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ClassmapError(
            f"data folder {folder} does not exist; give a folder with one sub-folder per class, "
            f"or '{DIGITS}'"
        )
    if not folder.is_dir():
        raise ClassmapError(
            f"--data {folder} is a file; give a folder with one sub-folder per class, "
            f"or '{DIGITS}'"
        )
    return folder.resolve()


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _index_of(keys: Any) -> dict[str, list[int]]:
    table: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        table.setdefault(key, []).append(index)
    return table


def _loose(name: str) -> str:
    """Case-folded, with ``_``/``-`` as spaces and runs of spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]", " ", name)).strip().casefold()


def _digest(kind: str, content: str, class_names: Sequence[str], channels: int) -> str:
    sha = hashlib.sha256()
    sha.update(f"{kind}\0{DATA_VERSION}\0{content}\0{channels}\0".encode())
    sha.update("\n".join(class_names).encode())
    return sha.hexdigest()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:160]}" if text else type(error).__name__
