"""The ``classmap`` console script: the headless commands plus ``serve``.

Only ``serve`` imports Dash, and only when it runs.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Callable, Sequence

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
    serve.add_argument("--url-prefix", metavar="PATH",
                       help="serve under this path behind a reverse proxy (e.g. /classmap)")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="run N gunicorn web processes (default without --broker: one "
                            "development server; with it: 2 x cores + 1)")
    serve.add_argument("--broker", metavar="URL",
                       help="redis://host:port/db: background analyses run on 'classmap "
                            "worker' processes via Celery (the web never loads a model)")
    serve.set_defaults(handler=stops_on_signals(run_serve))
    worker = commands.add_parser(
        "worker", help="run a background worker (Celery) for 'classmap serve --broker'",
        description="Run the model work of 'classmap serve --broker' (one process per GPU).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_model_flags(worker)
    worker.add_argument("--broker", metavar="URL", required=True,
                        help="the Redis the web processes use (redis://host:port/db)")
    worker.add_argument("--config", metavar="FILE", help="the TOML config file (its models)")
    worker.add_argument("--data", action="append", metavar="DIR",
                        help="image data set folder the jobs may read (repeatable)")
    worker.add_argument("--concurrency", type=int, default=1,
                        help="jobs at once (keep 1 per GPU; start one worker per GPU)")
    worker.set_defaults(handler=run_worker)
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
    from classmap.analysis.errors import ClassmapError
    from classmap.analysis.loading.classifier import resolve_device
    from classmap.app.config import Settings
    from classmap.app.server import serve

    settings = Settings.from_args(args)
    if args.workers is not None or args.broker:
        from classmap.app.hosting.gunicorn import serve_gunicorn

        if args.debug:
            raise ClassmapError("--debug is for the development server; drop it or drop "
                                "--workers/--broker")
        if args.workers is not None and args.workers < 1:
            raise ClassmapError(f"--workers {args.workers} is not a number of processes; "
                                "give 1 or more")
        serve_gunicorn(settings, args.host, args.port, args.workers, args.broker,
                       args.url_prefix, args.insecure_no_auth)
        return 0
    resolve_device(settings.device)  # --device or CLASSMAP_DEVICE: refused before serving
    serve(settings, host=args.host, port=args.port, debug=args.debug,
          insecure_no_auth=args.insecure_no_auth, url_prefix=args.url_prefix)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    """``classmap worker``: a Celery worker that runs the app's background callbacks."""
    from classmap.analysis.loading.classifier import resolve_device
    from classmap.app.config import Settings
    from classmap.app.hosting.celery_app import build_celery_app

    settings = Settings.from_args(args)
    resolve_device(settings.device)  # --device cuda:1: refused before any job
    celery_app, _ = build_celery_app(settings, args.broker)
    celery_app.worker_main(["worker", "--pool=prefork", f"--concurrency={args.concurrency}",
                            "--loglevel=INFO", "--without-gossip", "--without-mingle",
                            "-n", f"classmap-{settings.device or 'auto'}@%h"])
    return 0


def stops_on_signals(command: Callable[[argparse.Namespace], int]
                     ) -> Callable[[argparse.Namespace], int]:
    """``command`` (a blocking server) stopped by SIGINT or SIGTERM: one line on stderr and
    the conventional exit code 128 + the signal's number (130, 143), no traceback.

    The server's loop swallows the ``KeyboardInterrupt`` the handler raises (Werkzeug
    returns normally), so the signal is recorded; a second signal during the shutdown is
    only recorded, so the clean-up (jobs, sockets) runs to its end."""
    from classmap.analysis.cli import Interrupted

    def run_until_signalled(args: argparse.Namespace) -> int:
        received: list[int] = []

        def stop(signum: int, frame: object) -> None:
            received.append(signum)
            if len(received) == 1:
                raise Interrupted(signum)

        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        for signum in previous:
            signal.signal(signum, stop)
        try:
            code = command(args)
        except KeyboardInterrupt as error:
            received.append(getattr(error, "signum", signal.SIGINT))
            code = 0
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if not received:
            return code
        name = signal.Signals(received[0]).name
        print(f"classmap: stopped by {name}; the server and its jobs have ended", file=sys.stderr)
        return 128 + received[0]

    return run_until_signalled


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(build_full_parser(), argv)
    except KeyboardInterrupt:  # Ctrl-C in the instant after a command ended: no traceback
        print("classmap: interrupted by SIGINT", file=sys.stderr)
        return 128 + signal.SIGINT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
