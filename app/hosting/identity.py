"""Who sent the request being served (set by the guard in :mod:`.access`).

Kept apart from the guard so callbacks can ask for the role without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import flask


@dataclass(frozen=True)
class Identity:
    """Who sent the request: a user name and a role (viewer|operator)."""

    name: str
    role: str

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


LOCAL_OPERATOR = Identity("local", "operator")  # loopback, no users configured


def current_identity() -> Identity:
    """The identity of the request being served (the local operator outside requests)."""
    if flask.has_request_context():
        return flask.g.get("classmap_identity", LOCAL_OPERATOR)
    return LOCAL_OPERATOR
