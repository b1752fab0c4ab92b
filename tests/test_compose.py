"""docker-compose.yml cannot be run here (no Docker engine), so check what it says: it
parses, has web / worker / redis (and a GPU worker behind a profile), and the commands
it runs are valid classmap invocations — the ones tests/service exercises."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    import yaml

    return yaml.safe_load(COMPOSE.read_text())


def test_has_web_worker_redis_and_a_gpu_worker_behind_a_profile(compose):
    services = compose["services"]
    assert {"web", "worker", "worker-gpu", "redis"} <= set(services)
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and len(devices[0]["device_ids"]) == 1
    assert "profiles" not in services["worker"] and "profiles" not in services["web"]


def _parsed(command: list[str]):
    from classmap.app.cli import build_full_parser

    assert command[0] == "classmap"
    return build_full_parser().parse_args(command[1:])


def test_web_runs_gunicorn_with_the_broker_and_the_config(compose):
    args = _parsed(compose["services"]["web"]["command"])
    assert args.command == "serve" and args.workers >= 1
    assert args.broker == "redis://redis:6379/0"
    assert args.config == "/etc/classmap/classmap.toml" and not args.insecure_no_auth
    assert args.host == "0.0.0.0" and args.port == 8050  # the Dockerfile's health check port


def test_workers_use_the_same_broker_one_device_each(compose):
    web = _parsed(compose["services"]["web"]["command"])
    for name, device in (("worker", "cpu"), ("worker-gpu", "cuda:0")):
        args = _parsed(compose["services"][name]["command"])
        assert args.command == "worker" and args.broker == web.broker
        assert args.device == device and args.concurrency == 1
        assert args.config == web.config


def test_web_and_workers_share_the_cache_and_config_volumes(compose):
    services = compose["services"]
    mounts = {name: set(services[name]["volumes"]) for name in ("web", "worker", "worker-gpu")}
    assert mounts["web"] == mounts["worker"] == mounts["worker-gpu"]
    targets = {volume.split(":")[1] for volume in mounts["web"]}
    assert {"/var/cache/classmap", "/etc/classmap"} <= targets
    assert "6379" not in str(services["redis"].get("ports", ""))  # Redis is not published


def test_redis_keeps_nothing_on_disk_and_is_health_checked(compose):
    redis = compose["services"]["redis"]
    assert redis["command"][:1] == ["redis-server"]
    assert "--save" in redis["command"] and "--appendonly" in redis["command"]
    assert redis["healthcheck"]["test"][-1] == "ping"
    for name in ("web", "worker"):
        assert compose["services"][name]["depends_on"]["redis"]["condition"] == \
            "service_healthy"


def test_the_service_tests_run_these_commands():
    """tests/service starts ``serve --workers --broker`` and ``worker --broker --device``."""
    conftest = (ROOT / "tests" / "service" / "conftest.py").read_text()
    for flag in ('"--workers"', '"--broker"', '"--device"', '"--concurrency"'):
        assert flag in conftest
    worker = (ROOT / "tests" / "service" / "counting_worker.py").read_text()
    assert 'main(["worker"' in worker
