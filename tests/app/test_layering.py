"""Layering rules (ARCHITECTURE.md): analysis/ never imports dash, plotly or app;
app/figures.py never imports dash. Checked on the source (every import statement,
also inside functions) and, for figures, on what importing it actually loads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _package(module: str) -> str:
    """The package a dotted module belongs to: ``classmap.app.x`` → ``app``, ``dash.html`` → ``dash``."""
    parts = module.split(".")
    return parts[1] if parts[0] == "classmap" and len(parts) > 1 else parts[0]


def imported_modules(path: Path) -> set[str]:
    """Package names of every import in ``path`` (nested imports too); Classmap's own
    sub-packages by their name under ``classmap`` (``app``, ``analysis``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(_package(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(_package(node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant):
                names.add(_package(str(node.args[0].value)))
    return names


ANALYSIS_FILES = sorted((ROOT / "analysis").rglob("*.py"))


@pytest.mark.parametrize("path", ANALYSIS_FILES, ids=lambda p: p.name)
def test_analysis_never_imports_dash_plotly_or_app(path):
    forbidden = imported_modules(path) & {"dash", "plotly", "app"}
    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_figures_never_imports_dash():
    assert "dash" not in imported_modules(ROOT / "app" / "figures.py")


def test_checker_sees_nested_imports(tmp_path):
    # The rule checker itself must catch an import hidden inside a function.
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from dash import html\n    import plotly.express\n"
                      "    from classmap.app import ids\n")
    assert {"dash", "plotly", "app"} <= imported_modules(sample)


def test_importing_figures_loads_no_dash():
    code = "import sys, classmap.app.figures; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dash'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"
