"""WordNet agreement and source comparison as files, and ``classmap compare``.

``classmap export`` always adds (:func:`wordnet_writer`):

- ``wordnet_agreement.json`` — ``available``; ``spearman``, ``nn_wordnet_distance``,
  ``baseline_wordnet_distance``, ``mean_purity``, ``pairs`` and the distance used; or
  ``reason`` when the class set has no WordNet ids;
- ``wordnet_nodes.csv`` — per internal node (``node`` = C + linkage row): size, WordNet
  name, synset id, fraction of its classes under that name, purity and purest synset.

``classmap compare A B --out DIR`` (:func:`run_compare`) writes ``comparison.json``
(every scalar measure, and ``classes_compared``: how many classes both sources cover),
``fowlkes_mallows.csv`` (k, B_k, E[B_k]),
``disagreeing_pairs.csv``, ``classes.csv`` (each class's nearest-neighbour overlap
between the sources) and ``tanglegram.csv`` (each tree's leaf order after
untangling) through the same atomic folder writer as ``export``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from classmap.analysis.exports.folder import Writer, spreadsheet_safe
from classmap.analysis.methods.compare import DEFAULT_PERMUTATIONS, DEFAULT_TOP_PAIRS, Comparison
from classmap.analysis.pipelines.compare import WordNetView

WORDNET_JSON = "wordnet_agreement.json"
WORDNET_NODES_CSV = "wordnet_nodes.csv"


def wordnet_writer(view: WordNetView, num_classes: int) -> Writer:
    """Writer of ``wordnet_agreement.json`` (+ ``wordnet_nodes.csv`` when available)."""

    def write(folder: Path) -> dict[str, Any]:
        (folder / WORDNET_JSON).write_text(json.dumps(view.to_json(), indent=2) + "\n",
                                           encoding="utf-8")
        names = view.names
        if names is not None:
            with open(folder / WORDNET_NODES_CSV, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["node", "size", "wordnet_name", "synset", "fraction",
                                 "purity", "purest_synset"])
                for r in range(len(names.size)):
                    writer.writerow([
                        num_classes + r, int(names.size[r]), spreadsheet_safe(names.name[r]),
                        f"n{names.synset[r]}" if names.synset[r] else "",
                        f"{names.fraction[r]:.4f}", f"{names.purity[r]:.4f}",
                        spreadsheet_safe(names.purity_synset[r]),
                    ])
        return {"wordnet": {"available": view.available,
                            "spearman": None if view.agreement is None
                            else view.agreement.spearman}}

    return write


def comparison_writer(result: Comparison, ids: tuple[str, ...], names: tuple[str, ...],
                      coverage: str = "") -> Writer:
    """Writer of ``classmap compare``'s five files; ``coverage`` (which classes were
    compared) goes into ``comparison.json`` as ``classes_compared``."""

    def write(folder: Path) -> dict[str, Any]:
        summary = result.summary()
        if coverage:
            summary["classes_compared"] = coverage
        summary["seconds"] = result.seconds
        (folder / "comparison.json").write_text(json.dumps(summary, indent=2) + "\n",
                                                encoding="utf-8")
        with open(folder / "fowlkes_mallows.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["k", "B_k", "expected_B_k"])
            for k, bk, ek in zip(result.cut_levels, result.fowlkes_mallows,
                                 result.expected_fowlkes_mallows):
                writer.writerow([int(k), f"{bk:.6f}", f"{ek:.6f}"])
        with open(folder / "disagreeing_pairs.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["class_a", "class_b", "id_a", "id_b", "name_a", "name_b",
                             "rank_in_a", "rank_in_b"])
            for (i, j), (ra, rb) in zip(result.pairs, result.pair_ranks):
                writer.writerow([int(i), int(j), spreadsheet_safe(ids[i]), spreadsheet_safe(ids[j]),
                                 spreadsheet_safe(names[i]), spreadsheet_safe(names[j]),
                                 f"{ra:.4f}", f"{rb:.4f}"])
        with open(folder / "classes.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["index", "id", "name", "neighbour_overlap"])
            for c, overlap in enumerate(result.neighbour_overlap):
                writer.writerow([c, spreadsheet_safe(ids[c]), spreadsheet_safe(names[c]),
                                 f"{overlap:.4f}"])
        with open(folder / "tanglegram.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["position", "class_in_a", "class_in_b"])
            for position, (i, j) in enumerate(zip(result.order_a, result.order_b)):
                writer.writerow([position, int(i), int(j)])
        return {"compare": {"a": result.a, "b": result.b}}

    return write


def register(subparsers: Any) -> None:
    """Add ``classmap compare`` (``classmap.analysis.cli.COMMAND_MODULES``)."""
    parser = subparsers.add_parser(
        "compare", help="compare two class-relationship sources over one class set",
        description="Spearman and Mantel statistics of two sources' distance matrices, the "
                    "cophenetic correlation of their trees, the Fowlkes-Mallows B_k curve, a "
                    "tanglegram order and the most disagreeing class pairs. A source is "
                    "MODEL[:RELATION[:LINKAGE]][@DATA]: MODEL lite0-imagenet (or 'default'), "
                    "lite1-imagenet, lite2-imagenet, lenet-digits, any model name; RELATION "
                    "cosine (default), euclidean or wordnet (of the head), or from the "
                    "images of DATA (digits or a folder with one sub-folder per class): "
                    "confidence (JS divergence of class-mean softmax), features or gradcam "
                    "(cosine of class means); LINKAGE ward (default; average for wordnet "
                    "and confidence), average, complete, single. Sources over different "
                    "classes are compared over the classes both cover.",
    )
    parser.add_argument("a", metavar="A", help="first source, e.g. lite0-imagenet:cosine:ward")
    parser.add_argument("b", metavar="B", help="second source, e.g. lite0-imagenet:wordnet or "
                             "lenet-digits:confidence@digits")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--permutations", type=int, default=DEFAULT_PERMUTATIONS, metavar="N",
                        help=f"Mantel test permutations (default {DEFAULT_PERMUTATIONS})")
    parser.add_argument("--top-pairs", type=int, default=DEFAULT_TOP_PAIRS, metavar="N",
                        help=f"most disagreeing pairs to list (default {DEFAULT_TOP_PAIRS})")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="result cache folder (default $CLASSMAP_CACHE_DIR or "
                             "~/.cache/classmap)")
    parser.add_argument("--device", metavar="DEV", help="torch device (default: cuda if present)")
    parser.add_argument("--quiet", action="store_true", help="no summary line")
    parser.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    """``classmap compare``: both sources (cached), every measure, files written atomically."""
    from classmap.analysis.cli import cache_from_args, signals_raise
    from classmap.analysis.errors import ClassmapError
    from classmap.analysis.exports.folder import check_output_dir, versions, write_export
    from classmap.analysis.pipelines.compare import compare_sources, relation_from_spec

    if args.permutations < 0 or args.top_pairs < 1:
        raise ClassmapError("--permutations must be ≥ 0 and --top-pairs ≥ 1; e.g. "
                            "--permutations 999 --top-pairs 50")
    with signals_raise():
        check_output_dir(args.out)
        cache = cache_from_args(args)
        started = time.perf_counter()
        a = relation_from_spec(args.a, cache, args.device)
        b = relation_from_spec(args.b, cache, args.device)
        compared = compare_sources(a, b, args.permutations, args.top_pairs)
        result = compared.result
        args.export_id = uuid.uuid4().hex
        manifest = {"export_id": args.export_id, "versions": versions(),
                    "seconds_total": time.perf_counter() - started}
        out = write_export(args.out, [comparison_writer(
            result, compared.class_ids, compared.class_names, compared.coverage)], manifest)
    if not args.quiet:
        print(f"classmap: wrote {out} (Spearman {result.spearman:.3f}, Mantel p "
              f"{result.mantel_p_value:.3g}, cophenetic r {result.cophenetic_pearson:.3f})",
              file=sys.stderr)
    return 0
