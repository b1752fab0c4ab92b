"""Layering rules (ARCHITECTURE.md): analysis/ never imports dash, plotly or app; figure
modules (app/shell/figures.py, app/pages/*/figures.py) never import dash; the shell never
imports a page and a page never imports another page. Checked on the source (every
import statement, also inside functions) and, for figures, on what importing them
actually loads."""

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


FIGURE_FILES = [ROOT / "app" / "shell" / "figures.py", *sorted((ROOT / "app" / "pages").glob("*/figures.py"))]


def test_every_page_with_figures_is_checked():
    assert {p.parent.name for p in FIGURE_FILES} >= {"shell", "classes", "images", "weights"}


@pytest.mark.parametrize("path", FIGURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_figures_never_import_dash(path):
    assert "dash" not in imported_modules(path)


def app_imports(path: Path) -> set[str]:
    """Dotted ``classmap.app.…`` modules imported by ``path`` (nested imports too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("classmap.app"):
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("classmap.app"))
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "app" / "shell").glob("*.py")), ids=lambda p: p.name)
def test_shell_never_imports_a_page(path):
    pages = {name for name in app_imports(path) if name.startswith("classmap.app.pages")}
    assert not pages, f"{path.relative_to(ROOT)} imports {sorted(pages)}"


@pytest.mark.parametrize("path", sorted((ROOT / "app" / "pages").glob("*/*.py")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_page_never_imports_another_page(path):
    own = f"classmap.app.pages.{path.parent.name}"
    others = {name for name in app_imports(path)
              if name.startswith("classmap.app.pages.") and not name.startswith(own)}
    assert not others, f"{path.relative_to(ROOT)} imports {sorted(others)}"


def test_checker_sees_nested_imports(tmp_path):
    # The rule checker itself must catch an import hidden inside a function.
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from dash import html\n    import plotly.express\n"
                      "    from classmap.app import ids\n")
    assert {"dash", "plotly", "app"} <= imported_modules(sample)


@pytest.mark.parametrize("path", FIGURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_importing_figures_loads_no_dash(path):
    module = ".".join(("classmap",) + path.relative_to(ROOT).with_suffix("").parts)
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dash'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"
