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
    for needed in ("pyproject.toml", "README.md", "analysis", "app", "assets"):
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
    run = " ".join(rest for keyword, rest in _instructions() if keyword == "RUN")
    assert "pip install --no-cache-dir -e ." in run  # editable: assets/ stay beside app/
    assert "python -m classmap.app.browser_scripts" in run


def test_command_is_a_valid_classmap_invocation():
    from classmap.app.cli import build_full_parser

    command = json.loads(next(rest for keyword, rest in _instructions() if keyword == "CMD"))
    assert command[0] == "classmap"
    args = build_full_parser().parse_args(command[1:])
    assert args.command == "serve" and args.port == 8050 and args.host == "0.0.0.0"
