"""Browser code lives in assets/*.js only, and every file there is valid JavaScript.

``node --check`` parses each asset where Node.js exists (no npm packages needed);
tests/e2e/test_selection_url.py parses them in Chromium too.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASSETS = sorted((ROOT / "assets").glob("*.js"))
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed (Chromium checks the syntax)")
@pytest.mark.parametrize("asset", ASSETS, ids=lambda p: p.name)
def test_asset_passes_node_check(asset):
    result = subprocess.run([NODE, "--check", str(asset)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_no_javascript_in_python_strings():
    # Every clientside callback is a dash.ClientsideFunction of assets/*.js.
    offenders = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "clientside_callback":
                first = node.args[0] if node.args else None
                if isinstance(first, (ast.Constant, ast.JoinedStr)):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    "function(" in node.value.replace(" ", "") and "{" in node.value:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
