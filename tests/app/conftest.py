"""Fixtures for the app's plain-function tests: Services over the session cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classmap.app.config import Settings
from classmap.app.shell.services import Services


def write_planted_head(path: Path, groups: int, per_group: int, dim: int = 32,
                       seed: int = 0) -> Path:
    """A head ``[groups · per_group, dim]`` whose rows form ``groups`` tight clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, dim))
    rows = np.concatenate([c + 0.35 * rng.normal(size=(per_group, dim)) for c in centres])
    np.save(path, rows.astype(np.float32))
    return path


@pytest.fixture(scope="session")
def planted_heads(tmp_path_factory):
    """Bare head files: ``small`` (6 × 10 classes), ``wide`` (2,500 classes), ``broken``."""
    folder = tmp_path_factory.mktemp("heads")
    broken = folder / "broken.npy"
    np.save(broken, np.zeros(7, dtype=np.float32))  # rank 1: not a head
    return {
        "small": write_planted_head(folder / "small.npy", 6, 10),
        "wide": write_planted_head(folder / "wide.npy", 50, 50, seed=1),
        "broken": broken,
    }


@pytest.fixture(scope="session")
def app_settings(session_cache, planted_heads, tmp_path_factory):
    """Settings offering the embedded models plus the planted heads."""
    extra = json.dumps([
        {"id": "small", "head": str(planted_heads["small"])},
        {"id": "wide", "head": str(planted_heads["wide"])},
        {"id": "broken", "head": str(planted_heads["broken"])},
    ])
    return Settings.create(cache_dir=session_cache.directory,
                           jobs_dir=tmp_path_factory.mktemp("jobs"), extra_models=extra,
                           environ={}, warm_default=False)


@pytest.fixture(scope="session")
def services(app_settings, session_cache):
    return Services(app_settings, cache=session_cache)


@pytest.fixture(scope="session")
def lite0_view(services):
    return services.view(("lite0-imagenet", "cosine", "ward"))


@pytest.fixture(scope="session")
def lite0_pearson(lite0_head):
    """Independent reference: Pearson correlation of the raw head rows, [1000, 1000]."""
    return np.corrcoef(lite0_head.weight.astype(np.float64))
