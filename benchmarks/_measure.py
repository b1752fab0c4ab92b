"""Helpers shared by the benchmark scripts: fresh-process runs and markdown tables."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence


def run_isolated(code: str, env: dict[str, str] | None = None, timeout: float = 900) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON object last.

    A fresh process per measurement makes peak-memory numbers (``ru_maxrss``) and
    cold-cache timings honest.
    """
    full_env = dict(os.environ, HF_HUB_OFFLINE="1", **(env or {}))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine_line() -> str:
    """One line naming the machine the numbers were measured on."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{device}, torch {torch.__version__}, Python {platform.python_version()}")


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a markdown table."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print()
