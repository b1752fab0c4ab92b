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


def imported_modules(path: Path) -> set[str]:
    """Top-level package names of every import in ``path`` (nested imports too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value).split(".")[0])
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
    sample.write_text("def f():\n    from dash import html\n    import plotly.express\n")
    assert {"dash", "plotly"} <= imported_modules(sample)


def test_importing_figures_loads_no_dash():
    code = "import sys, app.figures; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dash'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"
