"""A trap for CUDA in a process (tests/e2e/test_web_never_inits_cuda.py): on ``PYTHONPATH``
with ``CLASSMAP_CUDA_TRAP=FILE``, Python imports this at start-up.

It makes the process look like a GPU host (``torch.cuda.is_available()`` is True, one
device), so code that picks CUDA "when present" picks it; and it replaces the functions
through which every CUDA use starts — ``torch.cuda._lazy_init`` (torch's C++ calls it before
the first CUDA tensor, kernel or stream) and ``torch.cuda.init`` — by one that appends
the process id and the Python stack to FILE and raises. Without the variable it does
nothing.
"""

import os

_TRAP = os.environ.get("CLASSMAP_CUDA_TRAP")

if _TRAP:
    import traceback

    import torch
    import torch.cuda

    def _trapped(*_args, **_kwargs):
        with open(_TRAP, "a", encoding="utf-8") as handle:
            handle.write(f"process {os.getpid()} initialised CUDA:\n"
                         + "".join(traceback.format_stack(limit=25)) + "\n")
        raise RuntimeError("CUDA initialised in a process that must not use it (test trap)")

    torch.cuda._lazy_init = _trapped
    torch.cuda.init = _trapped
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: 1
