"""Layout builders and reusable widgets of the dashboard (no callbacks here)."""
