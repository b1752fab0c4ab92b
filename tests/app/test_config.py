"""Settings: configured models, ids stable across restarts, private job folder."""

from __future__ import annotations

import argparse
import os
import stat

import pytest

from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.models import ModelSpec
from classmap.app.config import Settings, ensure_private_dir, entry_from_spec, parse_models


def args(**values):
    base = dict(model=None, weights=None, head=None, classes=None, cache_dir=None, device=None)
    base.update(values)
    return argparse.Namespace(**base)


def test_defaults_offer_the_embedded_models(tmp_path):
    settings = Settings.from_args(args(cache_dir=str(tmp_path)), environ={})
    assert settings.model_ids == ("lite0-imagenet", "lenet-digits")
    assert settings.default_model == "lite0-imagenet"
    assert settings.cache_dir == tmp_path and settings.jobs_dir == tmp_path / "jobs"


def test_flags_put_their_model_first_and_env_adds_more(tmp_path):
    env = {"CLASSMAP_MODELS": "resnet18, lenet-digits", "CLASSMAP_CACHE_DIR": str(tmp_path)}
    settings = Settings.from_args(args(model="lenet-digits"), environ=env)
    assert settings.model_ids == ("lenet-digits", "resnet18", "lite0-imagenet")
    assert settings.cache_dir == tmp_path


def test_json_models_with_paths_get_derived_ids(tmp_path):
    text = ('[{"model": "resnet18", "weights": "/m/r18-final.safetensors"},'
            ' {"id": "Mine!", "head": "/m/h.npy", "label": "my head"}]')
    first, second = parse_models(text)
    assert first.id == "resnet18-r18-final" and first.spec.weights == "/m/r18-final.safetensors"
    assert second.id == "mine" and second.label == "my head"
    # Same spec → same id on every start (URLs keep their meaning).
    assert entry_from_spec(ModelSpec(head="/m/h.npy")).id == "head-h"


@pytest.mark.parametrize("text, fragment", [
    ("[{", "not valid JSON"),
    ('{"model": "x"}', "not a model name"),
    ('[{"model": "x", "path": "/etc"}]', "unknown key"),
    ('[{"model": 3}]', "must be a string"),
    ('[{"id": "a", "model": "resnet18"}, {"id": "a", "model": "resnet50"}]', "share the id"),
])
def test_bad_model_config_is_one_clear_line(text, fragment, tmp_path):
    with pytest.raises(ClassmapError) as error:
        Settings.create(extra_models=text, cache_dir=tmp_path, environ={})
    assert fragment in str(error.value)


def test_unknown_model_id_lists_the_configured_ones(tmp_path):
    settings = Settings.create(cache_dir=tmp_path, environ={})
    with pytest.raises(ClassmapError, match="lite0-imagenet, lenet-digits"):
        settings.model("../../etc")


def test_job_folder_is_private(tmp_path):
    folder = ensure_private_dir(tmp_path / "jobs")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o755)
    assert stat.S_IMODE(ensure_private_dir(loose).stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(ClassmapError, match="writable by other users"):
        ensure_private_dir(shared)
