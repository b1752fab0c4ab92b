"""The ``classmap`` console script: the headless commands plus ``serve``.

Only ``serve`` imports Dash, and only when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from classmap.analysis.cli import OneLineParser, add_model_flags, build_parser, run


def build_full_parser() -> argparse.ArgumentParser:
    """``classmap`` with ``export`` (and the other headless commands) and ``serve``."""
    parser = build_parser()
    commands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    serve = commands.add_parser(
        "serve", help="serve the interactive dashboard", description="Serve the Dash app.",
    )
    assert isinstance(serve, OneLineParser)
    add_model_flags(serve)
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    serve.add_argument("--debug", action="store_true", help="Dash debug mode (development)")
    serve.add_argument("--data", action="append", metavar="DIR",  # image data sets (issue 5)
                       help="a folder of labelled images (one sub-folder per class) the "
                            "image pages may analyse; repeatable ('digits' is always offered)")
    serve.set_defaults(handler=run_serve)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    """``classmap serve``: build the app for the configured model and run it."""
    from classmap.app.config import Settings
    from classmap.app.server import serve

    settings = Settings.from_args(args)
    serve(settings, host=args.host, port=args.port, debug=args.debug)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_full_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
