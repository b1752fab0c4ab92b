"""Dash Pages: one module per URL, each with ``register_page`` and ``layout(**query)``."""
