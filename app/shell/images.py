"""Image-based analyses for the dashboard (issue 5): data sets, representations, results.

The browser names a data set by *id* among the configured ones (``digits`` always,
plus one per folder given to ``classmap serve --data`` or ``CLASSMAP_DATA_ROOTS``);
it never sends a path. :class:`ImageServices` turns (model id, data set id) into an
:class:`ImageResult` — the cached :class:`~analysis.image_pipeline.Representations`
and :class:`~analysis.image_pipeline.ImageAnalysis` — computing them on a miss. The
long first computation runs in a Dash background callback (another process); it
leaves its arrays in the :class:`~analysis.cache.ResultCache`, where the server
process then finds them by key in milliseconds (:meth:`ImageServices.ready`).

An image folder is read only by that job (:meth:`ImageServices.prepare`), never by
:meth:`ImageServices.ready` in a request thread: the job stores its scan (file list,
labels, digest, report) in the result cache, and the server process reads that back.
``ready`` accepts only a scan made since this :class:`ImageServices` started, so a
restarted server reads each folder again once, in the background.

Also registers the image pages' shareable selection keys (``data``, ``rep``,
``image``) with :func:`classmap.app.shell.selection.register_field`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from classmap.analysis.cache import make_key
from classmap.analysis.loading.data import (
    DIGITS,
    ImageDataset,
    load_dataset,
    pack_folder_dataset,
    resolve_data_root,
    unpack_folder_dataset,
)
from classmap.analysis.errors import ClassmapError
from classmap.analysis.pipelines.images import (
    ImageAnalysis,
    ImageParams,
    Representations,
    analyse_images,
    extract_representations,
    image_analysis_key,
    load_cached_analysis,
    load_cached_representations,
    representations_key,
    sample_cam,
    sample_summary,
    SampleSummary,
)
from classmap.analysis.loading.models import LoadedClassifier, load_classifier
from classmap.analysis.methods.representations import REPRESENTATIONS
from classmap.app.shell.image_render import cam_overlay_uri, image_uri
from classmap.app.shell.services import KeyedLocks, Services
from classmap.app.shell.selection import Field, parse_choice, parse_int_range, parse_text, register_field

log = logging.getLogger(__name__)

MAX_RESULTS = 4  # (model, data) results kept in memory
SCAN_CACHE_VERSION = "1"
REPRESENTATION_LABELS = {
    "features": "features (feature map averaged over space)",
    "softmax": "softmax (confidence vector)",
    "grad_weights": "Grad-CAM weights (α of the predicted class)",
}
_ID_CHARS = re.compile(r"[^a-z0-9._-]+")

# -- the image pages' shared-selection keys ------------------------------------------------
register_field(Field("data", parse_text, DIGITS))
register_field(Field("rep", parse_choice(REPRESENTATIONS), "features"))
register_field(Field("image", parse_int_range(0, 10**8), None, resets_on=("model", "data")))


@dataclass(frozen=True)
class DataSetEntry:
    """One data set the browser may pick.

    Attributes
    ----------
    id : URL key (``digits`` or the slug of the folder's name)
    label : what the picker shows
    source : ``"digits"`` or the resolved folder (one sub-folder per class)
    """

    id: str
    label: str
    source: str | Path


@dataclass(frozen=True)
class ImageResult:
    """Everything the image pages draw for one (model, data set).

    Attributes
    ----------
    model : model id
    data : data set id
    representations : per-image arrays (features [N, K], softmax [N, C], cams [N, H, W] …)
    analysis : the seed-002/003 analyses over the P classes with images
    """

    model: str
    data: str
    representations: Representations
    analysis: ImageAnalysis


def data_entries(roots: tuple[Path, ...]) -> tuple[DataSetEntry, ...]:
    """``digits`` plus one entry per configured root; ids are unique slugs of folder names."""
    entries = [DataSetEntry(DIGITS, "digits (scikit-learn, 360 held out)", DIGITS)]
    taken = {DIGITS}
    for root in roots:
        base = _ID_CHARS.sub("-", root.name.lower()).strip("-") or "data"
        slug, n = base, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug)
        entries.append(DataSetEntry(slug, root.name, root))  # no server path to the browser
    return tuple(entries)


class ImageServices:
    """Image data sets, networks and analyses of one server process.

    Parameters
    ----------
    services : the app's Services (settings, result cache, device)
    params : analysis parameters (seed, pairs per class, …)
    """

    def __init__(self, services: Services, params: ImageParams = ImageParams()) -> None:
        self.services = services
        self.settings = services.settings
        self.cache = services.cache
        self.params = params.validate()
        self.roots: tuple[Path, ...] = tuple(getattr(self.settings, "data_roots", ()) or ())
        self.data_sets = data_entries(self.roots)
        self._classifiers: dict[str, LoadedClassifier] = {}
        # (model, data) → (data set, Unix time its folder was read)
        self._datasets: dict[tuple[str, str], tuple[ImageDataset, float]] = {}
        self._results: OrderedDict[tuple[str, str], ImageResult] = OrderedDict()
        self._lock = threading.Lock()
        self._key_lock = KeyedLocks()
        self.started = time.time()  # scans stored before this are read again (by a job)

    # -- data sets -------------------------------------------------------------------------
    @property
    def data_ids(self) -> tuple[str, ...]:
        return tuple(entry.id for entry in self.data_sets)

    def data_entry(self, data_id: str) -> DataSetEntry:
        """The configured data set ``data_id``; anything else (a path, say) is refused."""
        for entry in self.data_sets:
            if entry.id == data_id:
                return entry
        raise ClassmapError(
            f"data set {str(data_id)[:80]!r} is not configured on this server; choose one of "
            f"{', '.join(self.data_ids)} (an administrator adds folders with "
            "'classmap serve --data DIR')"
        )

    def dataset(self, model_id: str, data_id: str) -> ImageDataset:
        """The data set read for ``model_id``'s classes and input channels.

        In memory, else the scan a background job stored in the result cache (any age),
        else — only when no job has read the folder yet — read here (bounded per file,
        see :func:`classmap.analysis.loading.data.load_image_folder`).
        """
        found = self.stored_dataset(model_id, data_id)
        return found if found is not None else self.scan_dataset(model_id, data_id)

    def stored_dataset(
        self, model_id: str, data_id: str, since: float | None = None
    ) -> ImageDataset | None:
        """The data set without reading its folder: in memory, the digits (from memory),
        or the scan stored in the result cache (made at or after ``since``, a Unix time);
        None when a job must read the folder first."""
        entry = self.data_entry(data_id)
        key = (model_id, data_id)
        with self._lock:
            held = self._datasets.get(key)
        # A scan held here that is too old may have been replaced by a job's since.
        if held is None or (since is not None and held[1] < since):
            classifier = self.classifier(model_id)
            channels = int(classifier.data_config["input_size"][0])
            if entry.source == DIGITS:
                held = (load_dataset(DIGITS, classifier.head.classes, channels=channels),
                        time.time())
            else:
                held = self._stored_scan(model_id, entry)
                if held is None:
                    return None
            with self._lock:
                self._datasets[key] = held
        dataset, scanned_at = held
        return dataset if since is None or scanned_at >= since else None

    def _stored_scan(
        self, model_id: str, entry: DataSetEntry
    ) -> tuple[ImageDataset, float] | None:
        stored = self.cache.get(self._scan_key(model_id, entry)) if self.cache else None
        if stored is None:
            return None
        try:
            return unpack_folder_dataset(*stored), float(stored[1].get("scanned_at", 0))
        except (KeyError, TypeError, ValueError) as error:  # another version's entry
            log.warning("stored scan of %s unusable (%s); a job reads it again", entry.id,
                        error)
            return None

    def scan_dataset(self, model_id: str, data_id: str) -> ImageDataset:
        """Read ``data_id``'s folder now (for the background job) and store the scan.

        A folder is opened only through :func:`resolve_data_root` with the configured
        roots, so nothing outside them is read, links included.
        """
        entry = self.data_entry(data_id)
        key = (model_id, data_id)
        with self._key_lock(("dataset",) + key):
            classifier = self.classifier(model_id)
            channels = int(classifier.data_config["input_size"][0])
            if entry.source == DIGITS:
                dataset = load_dataset(DIGITS, classifier.head.classes, channels=channels)
            else:
                root = resolve_data_root(entry.source, self.roots)
                dataset = load_dataset(root, classifier.head.classes, channels=channels,
                                       allowed_roots=self.roots)
                self._store_scan(self._scan_key(model_id, entry), dataset)
            with self._lock:
                self._datasets[key] = (dataset, time.time())
        return dataset

    def _scan_key(self, model_id: str, entry: DataSetEntry) -> str:
        classifier = self.classifier(model_id)
        classes = classifier.head.classes
        return make_key(
            "image-scan", SCAN_CACHE_VERSION, model=model_id, source=str(entry.source),
            roots=[str(root) for root in self.roots],
            channels=int(classifier.data_config["input_size"][0]),
            classes=hashlib.sha256("\0".join(classes.ids + classes.names).encode()).hexdigest(),
        )

    def _store_scan(self, key: str, dataset: ImageDataset) -> None:
        if self.cache is None:
            return
        arrays, meta = pack_folder_dataset(dataset)
        try:
            self.cache.put(key, arrays, {**meta, "scanned_at": time.time()})
        except OSError as error:  # a full disk: the server then reads the folder itself
            log.warning("could not store the scan of %s (%s)", dataset.source, error)

    # -- networks and results --------------------------------------------------------------
    def classifier(self, model_id: str) -> LoadedClassifier:
        """The whole network of ``model_id`` (loaded once per process)."""
        entry = self.services.model_entry(model_id)
        with self._key_lock(("classifier", model_id)):
            found = self._classifiers.get(model_id)
            if found is None:
                found = load_classifier(entry.spec, self.cache, device=self.settings.device)
                self._classifiers[model_id] = found
        return found

    def in_memory(self, model_id: str, data_id: str) -> bool:
        with self._lock:
            return (model_id, data_id) in self._results

    def ready(self, model_id: str, data_id: str) -> bool:
        """Whether :meth:`result` answers without computing (memory or result cache).

        Never reads an image folder: without a scan made since this service started
        (in memory or stored by a job) the answer is False and a job reads it. Loads
        the network (to know the cache keys); raises ClassmapError for unusable choices.
        """
        if self.in_memory(model_id, data_id):
            return True
        dataset = self.stored_dataset(model_id, data_id, since=self.started)
        return dataset is not None and self._from_cache(model_id, data_id, dataset) is not None

    def prepare(self, model_id: str, data_id: str, progress: Any = None) -> ImageResult:
        """The background job's work: read the data set afresh (storing the scan for the
        server process), then extract and analyse, or find the results cached."""
        self.scan_dataset(model_id, data_id)
        return self.result(model_id, data_id, progress=progress)

    def result(self, model_id: str, data_id: str, progress: Any = None) -> ImageResult:
        """Representations and analyses of ``data_id`` under ``model_id``; computed on a miss."""
        key = (model_id, data_id)
        with self._lock:
            found = self._results.get(key)
            if found is not None:
                self._results.move_to_end(key)
                return found
        with self._key_lock(("result",) + key):
            dataset = self.dataset(model_id, data_id)
            found = self._from_cache(model_id, data_id, dataset)
            if found is None:
                classifier = self.classifier(model_id)
                reps = extract_representations(classifier, dataset, cache=self.cache,
                                               progress=progress, device=self.settings.device)
                analysis = analyse_images(reps, self.params, cache=self.cache, progress=progress)
                found = ImageResult(model_id, data_id, reps, analysis)
            self._remember(found)
        return found

    def _from_cache(
        self, model_id: str, data_id: str, dataset: ImageDataset
    ) -> ImageResult | None:
        with self._lock:
            found = self._results.get((model_id, data_id))
        if found is not None:
            return found
        classifier = self.classifier(model_id)
        reps = load_cached_representations(self.cache, representations_key(classifier, dataset))
        if reps is None:
            return None
        analysis = load_cached_analysis(self.cache, image_analysis_key(reps, self.params))
        if analysis is None:
            return None
        found = ImageResult(model_id, data_id, reps, analysis)
        self._remember(found)
        return found

    def _remember(self, result: ImageResult) -> None:
        with self._lock:
            self._results[(result.model, result.data)] = result
            self._results.move_to_end((result.model, result.data))
            while len(self._results) > MAX_RESULTS:
                self._results.popitem(last=False)

    # -- one sample ------------------------------------------------------------------------
    def sample(self, result: ImageResult, index: int) -> "SampleView":
        """Picture, Grad-CAM overlay (PNG data URIs) and summary of image ``index``."""
        reps = result.representations
        if not 0 <= int(index) < reps.num_images:
            raise ClassmapError(
                f"sample {index} does not exist; this data set has {reps.num_images} images "
                f"(0 … {reps.num_images - 1})"
            )
        index = int(index)
        dataset = self.dataset(result.model, result.data)
        picture = dataset.load_image(index)
        cam = sample_cam(reps, index)
        crop = float(self.classifier(result.model).data_config.get("crop_pct") or 1.0)
        return SampleView(
            summary=sample_summary(reps, index),
            image_uri=image_uri(picture, cam.shape),
            cam_uri=cam_overlay_uri(picture, cam, crop_pct=crop),
        )


@dataclass(frozen=True)
class SampleView:
    """One image for the Samples page: ``summary`` plus two ``data:image/png`` URIs."""

    summary: SampleSummary
    image_uri: str
    cam_uri: str


def class_index(result: ImageResult, services: Services, focal: str | None) -> int | None:
    """Model class index of the focal class id (or name, or index text), or None."""
    if focal is None:
        return None
    head = services.head(result.model)
    text = str(focal)
    for table in (head.classes.ids, head.classes.names):
        if text in table:
            return table.index(text)
    return None


def image_services_for(services: Services) -> ImageServices:
    """The one ImageServices of ``services`` (so every page shares its loaded networks
    and data sets, whichever page's callbacks were registered first); owned by
    ``services``."""
    return services.owned("images", lambda: ImageServices(services))
