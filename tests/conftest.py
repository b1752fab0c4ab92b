"""Shared test set-up: offline hub, a private cache per session, the embedded heads.

``HF_HUB_OFFLINE`` must be set before timm (huggingface_hub) is first imported,
which is why it is set here at import time rather than in a fixture.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_SESSION_CACHE = Path(tempfile.mkdtemp(prefix="classmap-test-cache-"))
os.environ["CLASSMAP_CACHE_DIR"] = str(_SESSION_CACHE)

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def session_cache():
    """A ResultCache shared by the whole session (so lenet-digits trains once)."""
    from classmap.analysis.cache import ResultCache

    return ResultCache(_SESSION_CACHE)


@pytest.fixture(scope="session")
def lite0_head(session_cache):
    """The embedded ImageNet EfficientNet-Lite0 head: weight [1000, 1280]."""
    from classmap.analysis.loading.models import ModelSpec, load_head

    return load_head(ModelSpec(), session_cache)


@pytest.fixture(scope="session")
def lite0_classifier(session_cache):
    """The whole embedded EfficientNet-Lite0 network on the CPU."""
    from classmap.analysis.loading.models import ModelSpec, load_classifier

    return load_classifier(ModelSpec(), session_cache, device="cpu")


@pytest.fixture(scope="session")
def lenet_digits(session_cache):
    """LeNet-5 trained on scikit-learn's digits (trained once per session, then cached)."""
    from classmap.analysis.loading.models import LENET_DIGITS, ModelSpec, load_classifier

    return load_classifier(ModelSpec(model=LENET_DIGITS), session_cache, device="cpu")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """``test-artifacts/`` at the repo root (git-ignored): screenshots and logs."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per test process (Playwright's sync API allows one at a time
    in a process: every test that needs a browser uses this fixture)."""
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, missing_browser

    reason = missing_browser()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the browser tests cannot run: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def sleeper():
    """A live ``sleep 60`` process (a running job's pid), killed afterwards."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()
