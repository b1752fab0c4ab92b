"""Pipelines: cached orchestration of loading and methods (one get-or-compute helper)."""
