"""The shared selection: one small dict of keys that every view reads and writes.

It lives in the browser in ``dcc.Store(id=ids.SELECTION)`` and, encoded, in the URL
query, so a copied URL restores the same view — also after a server restart, because
it holds only stable keys (model id, class id, tree node number, counts), never
arrays or server-side session ids.

Fields are registered in :data:`FIELDS`. A field says how to parse its URL text,
how to write it back, its default, which other fields reset it when they change
(picking another model forgets the focal class) and which fields it clears (a
subtree selection replaces a lasso selection). A new page that needs its own
shareable key registers one more field with :func:`register_field` at import time.

Everything here is pure Python on dicts, so it is tested without Dash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.hierarchy import LINKAGES, tree_metric
from classmap.analysis.methods.similarity import METRICS

MAX_CUT = 60  # clusters the cut control offers at most
MAX_TOP_K = 25  # neighbours kept per class by the analysis (WeightParams.top_k)
MAX_QUERY_CLASSES = 5000  # lasso selections larger than this are not kept in the URL
_MAX_TEXT = 200


@dataclass(frozen=True)
class Field:
    """One key of the shared selection.

    Attributes
    ----------
    name : the key, in the store and in the URL query
    parse : URL text → value; raises ValueError with a short reason when malformed
    default : the value when absent (``None`` = nothing selected)
    encode : value → URL text
    resets_on : fields whose change puts this field back to its default
    clears : fields this field puts back to their defaults when it is set
    always_in_url : written to the URL even when it has its default value
    """

    name: str
    parse: Callable[[str], Any]
    default: Any = None
    encode: Callable[[Any], str] = str
    resets_on: tuple[str, ...] = ()
    clears: tuple[str, ...] = ()
    always_in_url: bool = False


FIELDS: dict[str, Field] = {}


def register_field(spec: Field) -> Field:
    """Add a shared-selection key (a page's own shareable state). Idempotent per name."""
    existing = FIELDS.get(spec.name)
    if existing is not None and existing != spec:
        raise ValueError(f"selection field {spec.name!r} is already registered differently")
    FIELDS[spec.name] = spec
    return spec


# -- parsers ---------------------------------------------------------------------------


def parse_choice(choices: Sequence[str]) -> Callable[[str], str]:
    """A parser accepting one of ``choices`` (case-insensitive)."""

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"choose one of {', '.join(choices)}")
        return value

    return parse


def parse_int_range(low: int, high: int) -> Callable[[str], int]:
    """A parser accepting a whole number in ``[low, high]``."""

    def parse(text: str) -> int:
        if not re.fullmatch(r"\s*-?\d{1,9}\s*", text):
            raise ValueError("expected a whole number")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"expected {low}…{high}")
        return value

    return parse


def parse_node(text: str) -> int:
    """A tree node number (scipy numbering; checked against the tree later)."""
    return parse_int_range(0, 10**8)(text)


def parse_text(text: str) -> str:
    """A short free text (a class id); checked against the model later."""
    value = text.strip()
    if not value or len(value) > _MAX_TEXT:
        raise ValueError(f"expected 1…{_MAX_TEXT} characters")
    return value


def parse_index_set(text: str) -> list[int]:
    """``"3-7,12"`` → ``[3, 4, 5, 6, 7, 12]`` (sorted, unique)."""
    values: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d{1,7})(?:-(\d{1,7}))?", part)
        if match is None:
            raise ValueError("expected class indices like 3-7,12")
        start = int(match.group(1))
        stop = int(match.group(2)) if match.group(2) else start
        if stop < start or stop - start > 10**6:
            raise ValueError(f"bad range {part!r}")
        values.update(range(start, stop + 1))
        if len(values) > 10**6:
            raise ValueError("too many classes")
    return sorted(values)


def encode_index_set(values: Iterable[int]) -> str:
    """``[3, 4, 5, 6, 7, 12]`` → ``"3-7,12"`` (the inverse of :func:`parse_index_set`)."""
    ordered = sorted(set(int(v) for v in values))
    parts: list[str] = []
    start = previous = None
    for value in ordered:
        if start is None:
            start = previous = value
        elif value == previous + 1:
            previous = value
        else:
            parts.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = previous = value
    if start is not None:
        parts.append(f"{start}" if start == previous else f"{start}-{previous}")
    return ",".join(parts)


def parse_leaf_range(text: str) -> list[int]:
    """``"120,250"`` (columns = rows) or ``"120,250,130,200"`` (columns, then rows) → the
    heatmap's zoomed leaf positions, each pair ordered; checked against the model later."""
    parts = text.split(",")
    if len(parts) not in (2, 4) or not all(re.fullmatch(r"\s*\d{1,7}\s*", p) for p in parts):
        raise ValueError("expected first,last leaf positions like 120,250")
    values = [int(p) for p in parts]
    pairs = [sorted(values[i:i + 2]) for i in range(0, len(values), 2)]
    flat = [v for pair in pairs for v in pair]
    return flat[:2] if flat[2:] == flat[:2] else flat


def encode_leaf_range(value: Sequence[int]) -> str:
    """The inverse of :func:`parse_leaf_range` (the browser writes ``String(list)``, the same)."""
    return ",".join(str(int(v)) for v in value)


def _embedding_names() -> tuple[str, ...]:
    from classmap.analysis.methods.embedding import EMBEDDING_METHODS

    return tuple(EMBEDDING_METHODS)


# -- the core fields -------------------------------------------------------------------

_ANALYSIS = ("model", "metric", "linkage")
register_field(Field("model", parse_text, None, always_in_url=True))
register_field(Field("metric", parse_choice(METRICS), "cosine", always_in_url=True))
register_field(Field("linkage", parse_choice(LINKAGES), "ward", always_in_url=True))
register_field(Field("focal", parse_text, None, resets_on=("model",)))
register_field(Field("node", parse_node, None, resets_on=_ANALYSIS, clears=("classes",)))
register_field(Field("classes", parse_index_set, None, encode=encode_index_set,
                     resets_on=("model",), clears=("node",)))
register_field(Field("zoom", parse_node, None, resets_on=_ANALYSIS))
register_field(Field("cut", parse_int_range(0, MAX_CUT), 0, resets_on=("model",)))
# The heatmap's and dendrogram's drag-zoom: leaf positions [first, last] of the columns (and
# of the rows when they differ), in the dendrogram order of the analysis and zoomed subtree.
register_field(Field("range", parse_leaf_range, None, encode=encode_leaf_range,
                     resets_on=_ANALYSIS + ("zoom",)))
register_field(Field("embedding", lambda text: parse_choice(_embedding_names())(text), "pca"))
register_field(Field("k", parse_int_range(1, MAX_TOP_K), 10))


# -- dict operations -------------------------------------------------------------------


def default_selection(default_model: str) -> dict[str, Any]:
    """Every registered field at its default, with ``default_model``."""
    selection = {name: spec.default for name, spec in FIELDS.items()}
    selection["model"] = default_model
    return selection


def parse_query(
    query: Mapping[str, Any], model_ids: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """Selection from a URL query (Dash Pages' ``layout(**query)`` keyword arguments).

    Every malformed or unknown key falls back to its default and adds a problem line;
    the model must be one of ``model_ids`` (the first is the default). Class ids and
    tree nodes are checked later against the model (:func:`check_against_model`).

    Returns
    -------
    (selection dict, list of one-line problems for the page's notice)
    """
    selection = default_selection(model_ids[0])
    problems: list[str] = []
    for name, raw in query.items():
        spec = FIELDS.get(name)
        if spec is None:
            problems.append(f"ignored unknown URL key {_clip(name)!r}")
            continue
        if isinstance(raw, (list, tuple)):
            problems.append(f"URL key {name!r} appears {len(raw)} times; used the first")
            raw = raw[0] if raw else ""
        text = str(raw)
        if text == "":
            continue
        try:
            value = spec.parse(text)
        except ValueError as error:
            problems.append(f"URL {name}={_clip(text)!r} is not valid ({error}); using the default")
            continue
        selection[name] = value
    if selection["model"] not in model_ids:
        problems.append(
            f"model {_clip(str(selection['model']))!r} is not configured on this server; "
            f"showing {model_ids[0]}"
        )
        selection["model"] = model_ids[0]
        for name, spec in FIELDS.items():
            if "model" in spec.resets_on:
                selection[name] = spec.default
    return selection, problems


def coerce_selection(data: Mapping[str, Any] | None, default_model: str) -> dict[str, Any]:
    """A complete selection dict from store data (missing keys get their defaults)."""
    selection = default_selection(default_model)
    if data is not None and not isinstance(data, Mapping):  # a hostile or stale client
        raise ClassmapError("the page's selection is not an object; reload the page")
    if data:
        selection.update({k: v for k, v in data.items() if k in FIELDS})
    return selection


def update_selection(current: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """``current`` with ``changes`` applied, plus the resets and clears they imply.

    A change to a field resets every field that lists it in ``resets_on``; setting a
    field to a non-default value clears the fields in its ``clears``. Fields given
    explicitly in ``changes`` are never reset by the others.
    """
    updated = dict(current)
    changed = {name for name, value in changes.items() if current.get(name) != value}
    updated.update(changes)
    for name, spec in FIELDS.items():
        if name in changes:
            continue
        if changed.intersection(spec.resets_on):
            updated[name] = spec.default
    for name in changes:
        spec = FIELDS.get(name)
        if spec is not None and changes[name] not in (None, spec.default, [], ()):
            for cleared in spec.clears:
                if cleared not in changes:
                    updated[cleared] = FIELDS[cleared].default
    return updated


class ClassLookup(Protocol):
    """What :func:`check_against_model` needs to know about a model's classes."""

    num_classes: int

    def find_class(self, key: str) -> int | None: ...

    def class_id(self, index: int) -> str: ...


def check_against_model(
    selection: Mapping[str, Any], lookup: ClassLookup
) -> tuple[dict[str, Any], list[str]]:
    """Drop class ids and tree nodes the model does not have, saying which.

    A focal class given by name or index is rewritten to its id (the canonical key).
    """
    checked = dict(selection)
    problems: list[str] = []
    count = lookup.num_classes
    focal = checked.get("focal")
    if focal is not None:
        index = lookup.find_class(str(focal))
        if index is None:
            problems.append(f"class {_clip(str(focal))!r} is not a class of {checked['model']}; "
                            "no focal class is selected")
            checked["focal"] = None
        else:
            checked["focal"] = lookup.class_id(index)
    for name in ("node", "zoom"):
        node = checked.get(name)
        if node is not None and not count <= node <= 2 * count - 2:
            problems.append(f"tree node {node} does not exist in {checked['model']} "
                            f"(internal nodes are {count}…{2 * count - 2}); {name} is cleared")
            checked[name] = None
    classes = checked.get("classes")
    if classes:
        kept = [i for i in classes if 0 <= int(i) < count]
        if len(kept) < len(classes):
            problems.append(f"{len(classes) - len(kept)} selected class index(es) are beyond "
                            f"the model's {count} classes and were dropped")
        checked["classes"] = kept or None
    leaf_range = checked.get("range")
    if leaf_range:
        clamped = [min(max(int(v), 0), count - 1) for v in leaf_range]
        if clamped != list(leaf_range):
            problems.append(f"zoom range {encode_leaf_range(leaf_range)} goes beyond the "
                            f"model's leaf positions 0…{count - 1}; clamped")
        if any(clamped[i] == clamped[i + 1] and leaf_range[i] != leaf_range[i + 1]
               for i in range(0, len(clamped), 2)):
            problems.append("zoom range lies outside the model's leaves; showing everything")
            clamped = None
        checked["range"] = clamped
    cut = checked.get("cut") or 0
    if cut > count:
        problems.append(f"cannot cut {count} classes into {cut} clusters; the cut is off")
        checked["cut"] = 0
    return checked, problems


@dataclass(frozen=True)
class Selection:
    """Typed, read-only view of the core fields of a selection dict (for callbacks)."""

    model: str
    metric: str = "cosine"
    linkage: str = "ward"
    focal: str | None = None
    node: int | None = None
    classes: tuple[int, ...] = ()
    zoom: int | None = None
    cut: int = 0
    embedding: str = "pca"
    k: int = 10
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_store(cls, data: Mapping[str, Any] | None, default_model: str) -> "Selection":
        full = coerce_selection(data, default_model)
        core = {name: full[name] for name in _CORE}
        core["classes"] = tuple(int(i) for i in (core["classes"] or ()))
        core["cut"] = int(core["cut"] or 0)
        core["k"] = int(core["k"] or FIELDS["k"].default)
        extra = {name: value for name, value in full.items() if name not in _CORE}
        return cls(**core, extra=extra)

    @property
    def analysis_key(self) -> tuple[str, str, str]:
        """(model, metric, linkage): what the weight analysis depends on."""
        return (self.model, self.metric, self.linkage)

    @property
    def tree_key(self) -> tuple[str, str | None, str]:
        """(model, metric or None, linkage): what the class tree depends on — Ward's tree
        is the same for both metrics (``tree_metric``), so a metric switch leaves it be."""
        return (self.model, tree_metric(self.metric, self.linkage), self.linkage)


_CORE = ("model", "metric", "linkage", "focal", "node", "classes", "zoom", "cut", "embedding",
         "k")


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def selection_schema() -> dict[str, Any]:
    """The field registry as JSON for the browser (``assets/classmap.js``): the one
    definition of the selection's rules that both sides use.

    The browser applies the same defaults, resets and clears as :func:`update_selection`
    and writes the URL (``encodeQuery``) in the form :func:`parse_query` reads: fields in
    registry order, defaults left out unless ``always``, ``set`` fields compacted like
    :func:`encode_index_set`, lasso sets above ``max_query_classes`` left out.
    """
    return {
        "order": list(FIELDS),
        "max_query_classes": MAX_QUERY_CLASSES,
        "fields": {
            name: {"default": spec.default, "resets_on": list(spec.resets_on),
                   "clears": list(spec.clears), "always": spec.always_in_url,
                   "set": spec.encode is encode_index_set}
            for name, spec in FIELDS.items()
        },
    }
