"""Classmap's computing layer: loading models and data, and every analysis.

Importable without Dash or plotly (a test enforces it), so the CLI, the web app and
the tests all share one implementation.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the one version is pyproject.toml's, read from the installed distribution
    __version__ = version("classmap")
except PackageNotFoundError:  # pragma: no cover - run from a checkout that was never installed
    __version__ = "0+unknown"
