"""A counter of password-hash checks in a process (tests/service/test_login_throttle.py):
on ``PYTHONPATH`` with ``CLASSMAP_HASH_TRAP=FILE``, Python imports this at start-up and
wraps ``werkzeug.security.check_password_hash`` (before the access guard imports it) so
each call appends the process id to FILE. Without the variable it does nothing."""

import os

_TRAP = os.environ.get("CLASSMAP_HASH_TRAP")

if _TRAP:
    import werkzeug.security as _security

    _real_check = _security.check_password_hash

    def _counted_check(pwhash, password):
        with open(_TRAP, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
        return _real_check(pwhash, password)

    _security.check_password_hash = _counted_check
