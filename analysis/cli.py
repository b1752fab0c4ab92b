"""The headless command line: ``classmap export`` (and the shared model flags).

``app/cli.py`` adds ``classmap serve`` on top of this parser, so the console script
lives in ``app`` while everything here stays importable without Dash.

Exit codes: 0 success, 2 bad input (one line on stderr naming the problem and the
fix), 1 an unexpected error (a bug: the traceback is printed), 130 interrupted by
SIGINT (Ctrl-C) and 143 by SIGTERM (one line saying whether ``--out`` holds the new
export or was left as it was).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from classmap.analysis import __version__
from classmap.analysis.errors import ClassmapError

log = logging.getLogger("classmap")


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; raised by :func:`run`'s signal handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"classmap: error: {message}; see '{self.prog} --help'\n")


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """The model vocabulary every command shares."""
    group = parser.add_argument_group("model (default: the embedded ImageNet EfficientNet-Lite0)")
    group.add_argument(
        "--model", metavar="NAME",
        help="lite0-imagenet (default), lenet-digits, or any timm model name "
             "(e.g. resnet50.a1_in1k; pretrained weights need the hub unless --weights)",
    )
    group.add_argument("--weights", metavar="FILE",
                       help="local checkpoint for --model (.safetensors, or .pth/.pt loaded "
                            "with weights_only=True)")
    group.add_argument("--head", metavar="FILE",
                       help="a bare head matrix [C, D] (.npy, .pt, .safetensors; optional bias)")
    group.add_argument("--head-key", metavar="KEY",
                       help="with --head: the head tensor's name in a file that holds a whole "
                            "network (e.g. _fc.weight or classifier); default: the one 2-D "
                            "tensor named like a head (fc, _fc, classifier, head, last_linear)")
    group.add_argument("--classes", metavar="FILE",
                       help="class names, one per line (or id<TAB>name), in the head's row order")
    group.add_argument("--cache-dir", metavar="DIR",
                       help="result cache folder (default $CLASSMAP_CACHE_DIR or ~/.cache/classmap)")
    group.add_argument("--device", metavar="DEV", help="torch device (default: cuda if present)")


def spec_from_args(args: argparse.Namespace):
    """A ModelSpec from the shared model flags."""
    from classmap.analysis.loading.models import ModelSpec

    return ModelSpec(model=args.model, weights=args.weights, head=args.head, classes=args.classes,
                     head_key=getattr(args, "head_key", None))


def check_device_flag(args: argparse.Namespace) -> None:
    """Refuse a ``--device`` this machine cannot use, before any load or cache hit."""
    from classmap.analysis.loading.classifier import resolve_device

    resolve_device(getattr(args, "device", None))


def cache_from_args(args: argparse.Namespace):
    """The ResultCache named by ``--cache-dir`` (or the default)."""
    from classmap.analysis.cache import ResultCache

    try:
        return ResultCache(args.cache_dir)
    except OSError as error:
        raise ClassmapError(
            f"cache folder {args.cache_dir or 'default'} cannot be used ({error.strerror}); "
            "pass --cache-dir DIR with a writable folder"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``classmap`` parser with every headless subcommand."""
    parser = OneLineParser(
        prog="classmap",
        description="See how a trained image classifier relates its classes.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument("--version", action="version", version=f"classmap {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    export = commands.add_parser(
        "export", help="compute the weight-space analyses and write them as files",
        description="Write classes.csv, neighbours.csv, similarity.npy, linkage.npy, tree.nwk "
                    "and manifest.json for a model's classifier head.",
    )
    add_model_flags(export)
    export.add_argument("--out", required=True, metavar="DIR", help="output folder")
    export.add_argument("--metric", default="cosine", choices=["cosine", "euclidean"],
                        help="of standardised head rows (cosine = Pearson correlation)")
    export.add_argument("--linkage", default="ward",
                        choices=["ward", "average", "complete", "single"])
    export.add_argument("--top-k", type=int, default=None, metavar="K",
                        help="nearest classes per class (default 25, or C − 1 if fewer classes)")
    export.add_argument("--quiet", action="store_true", help="no progress bars")
    for module in _modules(EXPORT_EXTENSIONS):
        module.add_export_flags(export)
    export.set_defaults(handler=run_export)
    for module in _modules(COMMAND_MODULES):
        module.register(commands)
    return parser


# Analyses that add files to ``export``: each module has
# ``add_export_flags(parser)`` and ``export_writers(args, head, cache, progress) -> [Writer]``.
EXPORT_EXTENSIONS: tuple[str, ...] = (
    "classmap.analysis.exports.ald",
    "classmap.analysis.exports.images",
)
# Modules that add subcommands: each has ``register(subparsers)``, whose parsers set
# ``handler=function(args) -> exit code``.
COMMAND_MODULES: tuple[str, ...] = (
    "classmap.analysis.loading.training",
    "classmap.analysis.exports.compare",
)


def _modules(names: Sequence[str]) -> list:
    import importlib

    return [importlib.import_module(name) for name in names]


def run_export(args: argparse.Namespace) -> int:
    """``classmap export``: load, analyse (cached), write atomically; SIGINT and SIGTERM
    raise :class:`Interrupted` meanwhile, so the clean-up runs and :func:`run` reports."""
    with signals_raise():
        return _export(args)


def _export(args: argparse.Namespace) -> int:
    from classmap.analysis.exports.folder import check_output_dir, versions, write_export
    from classmap.analysis.exports.weights import weight_writer
    from classmap.analysis.loading.models import load_head
    from classmap.analysis.pipelines.weights import DEFAULT_TOP_K, WeightParams, analyse_weights
    from classmap.analysis.progress import TqdmProgress

    check_output_dir(args.out)
    check_device_flag(args)
    progress = TqdmProgress(quiet=args.quiet)
    cache = cache_from_args(args)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with progress.step("load model", total=1) as advance:
        head = load_head(spec_from_args(args), cache)
        advance(1)
    seconds["load_head"] = time.perf_counter() - started
    top_k = args.top_k if args.top_k is not None else min(DEFAULT_TOP_K, head.num_classes - 1)
    params = WeightParams(metric=args.metric, linkage=args.linkage, top_k=top_k)
    result = analyse_weights(head, params, cache=cache, progress=progress, device=args.device)
    seconds.update(result.seconds)
    writers = [weight_writer(result), _wordnet_writer(result, cache)]
    for module in _modules(EXPORT_EXTENSIONS):
        writers.extend(module.export_writers(args, head, cache, progress))
    started = time.perf_counter()
    # The id tells an interrupt after the write (run() reads it back) from one before.
    args.export_id = uuid.uuid4().hex
    manifest = {"export_id": args.export_id, "versions": versions(), "seconds": seconds}
    out = write_export(args.out, writers, manifest)
    log.info("wrote %s in %.2f s", out, time.perf_counter() - started)
    if not args.quiet:
        source = "cache" if result.from_cache else "computed"
        print(f"classmap: wrote {out} ({head.num_classes} classes, {source})", file=sys.stderr)
    return 0


def _wordnet_writer(result, cache):
    """``wordnet_agreement.json`` of the export's tree (issue 13)."""
    from classmap.analysis.exports.compare import wordnet_writer
    from classmap.analysis.pipelines.compare import wordnet_for_tree

    view = wordnet_for_tree(tuple(result.head.classes.ids), result.linkage, cache)
    return wordnet_writer(view, result.head.num_classes)


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the chosen command, map errors to exit codes."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except ClassmapError as error:
        print(f"classmap: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        print(f"classmap: {_interrupt_message(args, signum)}", file=sys.stderr)
        return 128 + signum


@contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` inside the block (main thread only;
    the previous handlers come back after, so forked jobs and ``serve`` are unaffected)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt_message(args: argparse.Namespace, signum: int) -> str:
    name = signal.Signals(signum).name
    out = getattr(args, "out", None)
    if out is None:
        return f"interrupted by {name}; nothing was written"
    target = Path(out).expanduser().absolute()
    try:
        written = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        written = None
    export_id = getattr(args, "export_id", None)
    if export_id is not None and isinstance(written, dict) and written.get("export_id") == export_id:
        return f"interrupted by {name} after {target} was written; that export is complete"
    return f"interrupted by {name}; --out {target} was left as it was"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the headless commands (no ``serve``)."""
    return run(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
