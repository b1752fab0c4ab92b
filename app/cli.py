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
    serve.add_argument("--debug", action="store_true",
                       help="Dash debug mode (development; refused beyond 127.0.0.1)")
    serve.add_argument("--config", metavar="FILE",
                       help="the instance's TOML config: models, data roots, cache, limits, "
                            "users, proxy and Host names (see docs/operator-guide.md)")
    serve.add_argument("--insecure-no-auth", action="store_true",
                       help="serve beyond loopback without users (warns; anyone on the "
                            "network can then use it)")
    serve.add_argument("--data", action="append", metavar="DIR",  # image data sets (issue 5)
                       help="a folder of labelled images (one sub-folder per class) the "
                            "image pages may analyse; repeatable ('digits' is always offered)")
    serve.set_defaults(handler=run_serve)
    add_user_commands(commands)
    return parser


def add_user_commands(commands: argparse._SubParsersAction) -> None:
    """``classmap user add|remove|list --config FILE``."""
    user = commands.add_parser("user", help="manage the dashboard's users",
                               description="Add, remove or list the users of a config file.")
    actions = user.add_subparsers(dest="user_action", required=True, metavar="ACTION")
    for name, text in (("add", "add a user or set its password and role"),
                       ("remove", "remove a user"), ("list", "list users and roles")):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("--config", metavar="FILE", required=True,
                            help="the TOML config file (created, mode 0600, when missing)")
        if name != "list":
            action.add_argument("name", help="user name (letters, digits, . _ @ -)")
        if name == "add":
            action.add_argument("--role", choices=("viewer", "operator"), default="viewer",
                                help="viewer: browse and export; operator: also start "
                                     "t-SNE/UMAP and image jobs (default viewer)")
        action.set_defaults(handler=run_user)


def run_user(args: argparse.Namespace) -> int:
    """``classmap user``: the password comes from a prompt, or from standard input (its
    first line) when that is not a terminal."""
    from classmap.analysis.errors import ClassmapError
    from classmap.app.hosting.config import add_user, list_users, remove_user

    if args.user_action == "list":
        for user in list_users(args.config):
            print(f"{user.name}\t{user.role}")
        return 0
    if args.user_action == "remove":
        remove_user(args.config, args.name)
        print(f"classmap: removed {args.name} from {args.config}", file=sys.stderr)
        return 0
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ClassmapError("the passwords differ; run the command again")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    add_user(args.config, args.name, password, args.role)
    print(f"classmap: {args.name} ({args.role}) saved in {args.config}", file=sys.stderr)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """``classmap serve``: build the app for the configured model and run it."""
    from classmap.analysis.loading.classifier import resolve_device
    from classmap.app.config import Settings
    from classmap.app.server import serve

    settings = Settings.from_args(args)
    resolve_device(settings.device)  # --device or CLASSMAP_DEVICE: refused before serving
    serve(settings, host=args.host, port=args.port, debug=args.debug,
          insecure_no_auth=args.insecure_no_auth)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_full_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
