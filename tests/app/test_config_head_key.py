"""``head_key`` in CLASSMAP_MODELS and in the config file's [[models]] (issue 13 item 5):
a file holding a whole network can be offered in the dashboard, with the head named."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.models import load_head
from classmap.app.config import Settings, parse_models
from classmap.app.hosting.config import load_config


@pytest.fixture
def network_file(tmp_path):
    """A whole network's state dict with two 2-D tensors named like heads."""
    rng = np.random.default_rng(0)
    state = {
        "features.0.weight": torch.tensor(rng.normal(size=(8, 3, 3, 3)), dtype=torch.float32),
        "fc.weight": torch.tensor(rng.normal(size=(5, 8)), dtype=torch.float32),
        "classifier.weight": torch.tensor(rng.normal(size=(7, 8)), dtype=torch.float32),
        "classifier.bias": torch.zeros(7),
    }
    path = tmp_path / "whole.pt"
    torch.save(state, path)
    return path, state


def test_json_head_key_picks_the_named_tensor(network_file, tmp_path):
    path, state = network_file
    text = json.dumps([{"id": "whole", "head": str(path), "head_key": "classifier"}])
    (entry,) = parse_models(text)
    assert entry.spec.head_key == "classifier"
    head = load_head(entry.spec, None)
    np.testing.assert_array_equal(np.asarray(head.weight), state["classifier.weight"].numpy())
    # Without the key the two candidates are refused, naming them.
    (plain,) = parse_models(json.dumps([{"id": "whole", "head": str(path)}]))
    with pytest.raises(ClassmapError, match="fc"):
        load_head(plain.spec, None)


def test_json_head_key_must_be_a_string():
    with pytest.raises(ClassmapError, match="'head_key' must be a string"):
        parse_models('[{"head": "/m/x.pt", "head_key": 3}]')


def test_config_file_head_key_offers_the_model(network_file, tmp_path):
    path, state = network_file
    config_file = tmp_path / "classmap.toml"
    config_file.write_text(f'[[models]]\nid = "whole"\nhead = "{path.name}"\nhead_key = '
                           '"fc.weight"\n')
    settings = Settings.create(hosting=load_config(config_file), environ={},
                               warm_default=False, cache_dir=str(tmp_path / "cache"))
    entry = settings.model("whole")
    assert entry.spec.head_key == "fc.weight"
    head = load_head(entry.spec, None)
    np.testing.assert_array_equal(np.asarray(head.weight), state["fc.weight"].numpy())
