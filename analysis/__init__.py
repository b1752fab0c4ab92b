"""Classmap's computing layer: loading models and data, and every analysis.

Importable without Dash or plotly (a test enforces it), so the CLI, the web app and
the tests all share one implementation.
"""

__version__ = "0.1.0"
