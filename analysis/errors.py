"""The one exception type that carries a user-facing message.

Every bad input a researcher can give (a missing file, an unknown model name, a
head of the wrong shape …) is raised as :class:`ClassmapError` with a single line
that names the problem and the fix. The CLI prints that line and exits with code 2;
the web app shows it in the page. Anything else that escapes is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable


class ClassmapError(Exception):
    """A problem with the user's input, worded as ``<what is wrong>; <how to fix it>``."""

    def __init__(self, message: str) -> None:
        # One line, always: the CLI prints it as-is on stderr.
        super().__init__(" ".join(str(message).split()))


def check_choice(value: str, choices: Iterable[str], what: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise
    ``unknown <what> '<value>'; choose one of <choices>``."""
    names = tuple(choices)
    if value not in names:
        raise ClassmapError(f"unknown {what} {value!r}; choose one of {', '.join(names)}")
    return value
