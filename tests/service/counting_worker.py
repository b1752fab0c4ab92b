"""``classmap worker`` that appends every result-cache write's key to the file named by
``CLASSMAP_TEST_PUT_LOG`` (a test hook: the service tests count computations with it)."""

from __future__ import annotations

import os
import sys

from classmap.analysis import cache as cache_module

_put = cache_module.ResultCache.put


def _counted_put(self, key, arrays, meta=None):  # noqa: ANN001 - ResultCache.put's signature
    with open(os.environ["CLASSMAP_TEST_PUT_LOG"], "a") as log:
        log.write(f"{os.getpid()} {key}\n")
    return _put(self, key, arrays, meta)


cache_module.ResultCache.put = _counted_put

if __name__ == "__main__":
    from classmap.app.cli import main

    sys.exit(main(["worker", *sys.argv[1:]]))
