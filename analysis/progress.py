"""Progress reporting that the pipeline calls and each front end renders its own way.

The pipeline says ``with progress.step("top-k neighbours", total=C) as advance:``
and calls ``advance(n)``; the CLI draws a tqdm bar on stderr (only for steps that
last over a second), the web app forwards the fraction to a Dash progress bar, and
tests pass :class:`NullProgress`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

Advance = Callable[[int], None]


class NullProgress:
    """Reports nothing."""

    @contextlib.contextmanager
    def step(self, name: str, total: int | None = None) -> Iterator[Advance]:
        yield lambda n=1: None


class TqdmProgress(NullProgress):
    """A tqdm bar per step on stderr, shown only once a step has run for ``delay`` s."""

    def __init__(self, quiet: bool = False, delay: float = 1.0) -> None:
        self.quiet = quiet
        self.delay = delay

    @contextlib.contextmanager
    def step(self, name: str, total: int | None = None) -> Iterator[Advance]:
        from tqdm import tqdm

        with tqdm(
            total=total, desc=name, file=sys.stderr, disable=self.quiet, delay=self.delay,
            leave=False, dynamic_ncols=True,
        ) as bar:
            yield bar.update


class CallbackProgress(NullProgress):
    """Calls ``report(step_name, fraction_done)`` as work advances (for the web app)."""

    def __init__(self, report: Callable[[str, float], None]) -> None:
        self.report = report

    @contextlib.contextmanager
    def step(self, name: str, total: int | None = None) -> Iterator[Advance]:
        done = 0
        self.report(name, 0.0)

        def advance(n: int = 1) -> None:
            nonlocal done
            done += n
            if total:
                self.report(name, min(done / total, 1.0))

        yield advance
        self.report(name, 1.0)
