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

One bad file never hangs or crashes the scan (each skipped file is named in the report):

- only regular files are opened: FIFOs, sockets and devices (a link to ``/dev/zero``) are
  skipped by type, checked again on the open file so a file swapped meanwhile is caught;
- a file larger than :attr:`ScanLimits.max_bytes`, an image with more pixels than
  :attr:`ScanLimits.max_pixels` (checked from its header, before decoding) and a read
  slower than :attr:`ScanLimits.max_seconds` are skipped;
- linked folders are followed once: a link loop or a second link to a folder already
  scanned is skipped; broken links and link loops are named;
- file and folder names in any encoding are kept for opening and shown readably
  (undecodable bytes as ``\\xff``, control characters escaped).

A hosted server opens only folders under the roots it was configured with
(:func:`resolve_data_root`); inside such a folder, links that lead outside the roots
are skipped and reported.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import re
import stat
import struct
import time
from collections.abc import Iterator, Sequence
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
_CHUNK_BYTES = 1 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ScanLimits:
    """Per-file bounds of a folder scan (and of re-reading an image later).

    Attributes
    ----------
    max_bytes : larger files are skipped unread (default 256 MiB)
    max_pixels : images whose header declares more pixels are skipped undecoded
        (default Pillow's decompression-bomb warning limit, about 89 million), which
        bounds the decoding time of any one file
    max_seconds : a read that takes longer (a stalled network file system) is
        abandoned and the file skipped; checked between 1 MiB reads (default 30 s)
    """

    max_bytes: int = 256 << 20
    max_pixels: int = 89_478_485
    max_seconds: float = 30.0


DEFAULT_LIMITS = ScanLimits()


class UnusableFile(Exception):
    """A file the scan does not open or gives up on; the message says why (one line)."""


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
    non_image_examples : every one of them (relative paths; the name is historical)
    unreadable : every file or linked folder with an image name that was skipped, named
        with the reason: failed to decode, not a regular file (FIFO, socket, device),
        link loop or dangling link, over a :class:`ScanLimits` bound, a second link to
        a folder already scanned
    links_outside : links skipped because they lead outside the allowed roots
    conversions : ``(kind, count)`` — e.g. ``("grayscale → RGB", 3)``
    empty_classes : class folders without a usable image
    single_image_classes : classes with exactly one image (no within-class pair)
    escaped_names : names (relative paths) that are not UTF-8 or hold control
        characters, as shown (``\\xff`` escapes); the files themselves were used
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
    escaped_names: tuple[str, ...] = ()

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
            "escaped_names": list(self.escaped_names),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DataReport":
        """The report :meth:`to_json` wrote."""
        return cls(
            source=str(data["source"]),
            num_images=int(data["num_images"]),
            class_counts=tuple((str(k), int(v)) for k, v in data["class_counts"].items()),
            non_image_files=int(data["non_image_files"]),
            non_image_examples=tuple(data["non_image_examples"]),
            unreadable=tuple(SkippedImage(u["path"], u["reason"]) for u in data["unreadable"]),
            links_outside=tuple(data["links_outside"]),
            conversions=tuple((str(k), int(v)) for k, v in data["conversions"].items()),
            empty_classes=tuple(data["empty_classes"]),
            single_image_classes=tuple(data["single_image_classes"]),
            escaped_names=tuple(data.get("escaped_names", ())),
        )

    def summary(self) -> str:
        """One line for the log: counts of everything skipped or noteworthy."""
        parts = [f"{self.num_images} images in {len(self.class_counts)} classes"]
        if self.non_image_files:
            parts.append(f"{self.non_image_files} non-image file(s) skipped")
        if self.unreadable:
            names = ", ".join(s.path for s in self.unreadable[:3])
            parts.append(f"{len(self.unreadable)} unreadable or unusable file(s) skipped ({names})")
        if self.links_outside:
            parts.append(f"{len(self.links_outside)} link(s) outside the data roots skipped")
        if self.escaped_names:
            parts.append(f"{len(self.escaped_names)} name(s) not UTF-8 or with control "
                         "characters, shown with \\x escapes")
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
        except (UnusableFile, *_DECODE_ERRORS) as error:
            raise ClassmapError(
                f"image {self.sample_ids[index]} could not be read any more "
                f"({_first_line(error)}); it changed after the folder was scanned: run again"
            ) from None


def pack_folder_dataset(dataset: ImageDataset) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A scanned image folder as cache arrays and JSON meta (see :func:`unpack_folder_dataset`),
    so another process can use the scan without reading the folder again."""
    if dataset.paths is None:
        raise ValueError("only image-folder data sets are stored; the digits load from memory")
    return {"labels": dataset.labels}, {
        "source": dataset.source,
        "class_names": list(dataset.class_names),
        "sample_ids": list(dataset.sample_ids),
        # Names that are not UTF-8 are kept exactly: os.fsencode's bytes, as hex.
        "paths": [os.fsencode(path).hex() for path in dataset.paths],
        "channels": dataset.channels,
        "report": dataset.report.to_json(),
        "digest": dataset.digest,
    }


def unpack_folder_dataset(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ImageDataset:
    """The :class:`ImageDataset` :func:`pack_folder_dataset` stored."""
    return ImageDataset(
        source=str(meta["source"]),
        labels=np.asarray(arrays["labels"], dtype=np.int64),
        class_names=tuple(meta["class_names"]),
        sample_ids=tuple(meta["sample_ids"]),
        paths=tuple(Path(os.fsdecode(bytes.fromhex(path))) for path in meta["paths"]),
        images=None,
        channels=int(meta["channels"]),
        report=DataReport.from_json(meta["report"]),
        digest=str(meta["digest"]),
    )


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
    limits: ScanLimits = DEFAULT_LIMITS,
) -> ImageDataset:
    """Scan ``root/<class>/…`` (recursively, sorted), decode and hash every image once.

    See the module docstring for matching, conversions, bounds and what is reported.
    """
    root = _existing_folder(root)
    roots = [Path(r).expanduser().resolve() for r in allowed_roots] if allowed_roots else None
    # Class folders by their shown (readable) name → their name on disk.
    try:
        entries = _sorted_entries(root)
    except OSError as error:
        raise ClassmapError(
            f"data folder {readable_name(str(root))} cannot be listed ({_os_reason(error)}); "
            "give a folder this user may read"
        ) from None
    on_disk = {
        readable_name(entry.name): entry.name for entry in entries
        if not entry.name.startswith(".") and _is_dir(entry)
    }
    folders = sorted(on_disk)
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

    scan = _FolderScan(root, roots, CHANNEL_MODES[channels], limits)
    scan.register_class_folders([(on_disk[folder], folder) for folder in folders])
    for folder in folders:
        scan.add_class_folder(on_disk[folder], folder, mapping[folder])
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
        escaped_names=tuple(scan.escaped_names),
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


def open_image(
    path: str | Path, mode: str = "RGB", limits: ScanLimits = DEFAULT_LIMITS
) -> Image.Image:
    """Decode an image file completely and convert it to ``mode`` (``"RGB"`` or ``"L"``).

    Only a regular file within ``limits`` is read (:func:`read_regular_file`).

    Raises
    ------
    UnusableFile
        for a FIFO, device, socket, link loop, or a file over the limits;
    Pillow's decoding errors (OSError for a truncated file …) unchanged.
    """
    return decode_image(read_regular_file(path, limits), mode, limits)[0]


def read_regular_file(path: str | Path, limits: ScanLimits = DEFAULT_LIMITS) -> bytes:
    """The bytes of ``path`` if it is a regular file within ``limits``.

    The type is checked before opening (a FIFO is never opened, so the read cannot
    block on it) and again on the open descriptor (a file swapped in between is
    caught); the file is opened non-blocking and read in 1 MiB chunks against
    ``limits.max_seconds`` and ``limits.max_bytes``.

    Raises
    ------
    UnusableFile
        naming why, in one line.
    """
    try:
        _check_regular(os.stat(path), limits)
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                             | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise UnusableFile(_os_reason(error)) from None
    try:
        _check_regular(os.fstat(descriptor), limits)
        deadline = time.monotonic() + limits.max_seconds
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(descriptor, _CHUNK_BYTES)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limits.max_bytes:
                raise UnusableFile(f"grew past {_mib(limits.max_bytes)} while being read")
            if time.monotonic() > deadline:
                raise UnusableFile(f"reading took over {limits.max_seconds:g} s")
            chunks.append(chunk)
    except OSError as error:
        raise UnusableFile(_os_reason(error)) from None
    finally:
        os.close(descriptor)


def decode_image(
    content: bytes, mode: str, limits: ScanLimits = DEFAULT_LIMITS
) -> tuple[Image.Image, str | None]:
    """Decode image bytes completely (pixel count checked from the header first) and
    convert to ``mode``; also return the kind of conversion (see :func:`convert_image`)."""
    with Image.open(io.BytesIO(content)) as image:
        width, height = image.size
        if width * height > limits.max_pixels:
            raise UnusableFile(
                f"{width}×{height} pixels, more than the limit of {limits.max_pixels:,}"
            )
        image.load()
        return convert_image(image, mode)


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

    def __init__(
        self, root: Path, roots: list[Path] | None, mode: str, limits: ScanLimits
    ) -> None:
        self.root = root
        self.roots = roots
        self.mode = mode
        self.limits = limits
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
        self.escaped_names: list[str] = []
        self._seen_folders: dict[tuple[int, int], str] = {}

    def register_class_folders(self, folders: Sequence[tuple[str, str]]) -> None:
        """Mark the data folder and its class folders (name on disk, shown name) as
        scanned up front, so a link to any of them from inside is skipped, not a rescan."""
        self._seen_folders[_identity(self.root)] = "the data folder"
        for name, folder in folders:
            if name != folder:
                self.escaped_names.append(folder)
            try:
                self._seen_folders.setdefault(_identity(self.root / name), f"folder {folder}")
            except OSError:
                pass  # named by add_class_folder

    def add_class_folder(self, name: str, folder: str, label: int) -> None:
        """Add every image under class folder ``name`` (shown as ``folder``)."""
        for path, relative in self._walk(self.root / name, folder):
            self._add_file(path, relative, folder, label)

    def count_loose_files(self) -> None:
        """Entries directly in the root that are not folders belong to no class: skipped."""
        for entry in _sorted_entries(self.root):
            if not _is_dir(entry):
                self._skip_non_image(self._shown("", entry.name))

    def _walk(self, top: Path, shown_top: str) -> Iterator[tuple[Path, str]]:
        """Files under ``top`` (pre-order: a folder's files by name, then its folders),
        following linked folders once each, within the roots."""
        if top.is_symlink() and not self._link_allowed(top, shown_top):
            return
        try:
            owner = self._seen_folders.get(_identity(top), f"folder {shown_top}")
        except OSError as error:
            self._skip(shown_top, _os_reason(error))
            return
        if owner != f"folder {shown_top}":
            self._skip(shown_top, f"link to {owner} (already scanned)")
            return
        stack: list[tuple[Path, str]] = [(top, shown_top)]
        while stack:
            directory, shown_dir = stack.pop()
            try:
                entries = _sorted_entries(directory)
            except OSError as error:
                self._skip(shown_dir, f"folder not readable ({_os_reason(error)})")
                continue
            subfolders: list[tuple[Path, str]] = []
            for entry in entries:
                path = Path(entry.path)
                relative = self._shown(f"{shown_dir}/", entry.name)
                if entry.name.startswith(".") and _is_dir(entry):
                    continue
                if _is_dir(entry):
                    if self._enter(path, relative):
                        subfolders.append((path, relative))
                else:
                    yield path, relative
            stack.extend(reversed(subfolders))

    def _enter(self, folder: Path, relative: str) -> bool:
        """Whether to scan ``folder``: inside the roots, and not scanned already (a link
        back to a parent, or a second link to one folder)."""
        if folder.is_symlink() and not self._link_allowed(folder, relative):
            return False
        try:
            identity = _identity(folder)
        except OSError as error:
            self._skip(relative, _os_reason(error))
            return False
        if identity in self._seen_folders:
            self._skip(relative, f"link to {self._seen_folders[identity]} (already scanned)")
            return False
        self._seen_folders[identity] = f"folder {relative}"
        return True

    def _link_allowed(self, path: Path, relative: str) -> bool:
        if self.roots is None:
            return True
        try:
            os.stat(path)  # a loop or a dangling link is named by _add_file / _enter
        except OSError:
            return True
        if _inside(Path(os.path.realpath(path)), self.roots):
            return True
        self.links_outside.append(relative)
        return False

    def _add_file(self, path: Path, relative: str, folder: str, label: int) -> None:
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            self._skip_non_image(relative)
            return
        if path.is_symlink() and not self._link_allowed(path, relative):
            return
        try:
            content = read_regular_file(path, self.limits)
            _, kind = decode_image(content, self.mode, self.limits)
        except UnusableFile as error:
            self._skip(relative, str(error))
            return
        except Image.UnidentifiedImageError:
            self._skip(relative, "not an image format Pillow can read")
            return
        except _DECODE_ERRORS as error:
            self._skip(relative, _first_line(error))
            return
        if kind is not None:
            self.conversions[kind] = self.conversions.get(kind, 0) + 1
        self.paths.append(path)
        self.sample_ids.append(relative)
        self.labels.append(label)
        self.file_digests.append(hashlib.sha256(content).hexdigest())
        self.folder_counts[folder] = self.folder_counts.get(folder, 0) + 1

    def _skip(self, relative: str, reason: str) -> None:
        self.unreadable.append(SkippedImage(relative, reason))
        log.warning("skipping %s (%s)", relative, reason)

    def _skip_non_image(self, relative: str) -> None:
        self.non_image_files += 1
        self.non_image_examples.append(relative)

    def _shown(self, parent: str, name: str) -> str:
        """``parent`` + the readable form of ``name``; escaped names are recorded."""
        shown = readable_name(name)
        if shown != name:
            self.escaped_names.append(parent + shown)
        return parent + shown


def readable_name(name: str) -> str:
    """A file name as text that prints, logs and encodes everywhere.

    Bytes that are not UTF-8 (kept by Python as surrogates) become ``\\xNN``; control
    characters (a newline in a name) become ``\\xNN`` too. UTF-8 names are unchanged.
    """
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _identity(folder: Path) -> tuple[int, int]:
    info = os.stat(folder)
    return info.st_dev, info.st_ino


def _sorted_entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _is_dir(entry: os.DirEntry) -> bool:
    """A folder, or a link to one (False for link loops and dangling links)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _check_regular(info: os.stat_result, limits: ScanLimits) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnusableFile(f"not a regular file ({_file_kind(info.st_mode)}); not opened")
    if info.st_size > limits.max_bytes:
        raise UnusableFile(
            f"{_mib(info.st_size)}, larger than the limit of {_mib(limits.max_bytes)}"
        )


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "not a file"


def _os_reason(error: OSError) -> str:
    """One readable line for an OSError, without the absolute path it carries."""
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    if error.errno == errno.ENOENT:
        return "dangling link or file removed"
    return error.strerror or type(error).__name__


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB" if size >= 1 << 20 else f"{size:,} bytes"


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
