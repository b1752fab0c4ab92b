"""The instance's config file (issue 11 item 3) and the path filters (item 8)."""

from __future__ import annotations

import numpy as np
import pytest

from classmap.analysis.errors import ClassmapError
from classmap.app.config import Settings
from classmap.app.hosting.config import load_config
from classmap.app.hosting.redact import PathRedactor, redact_paths, server_folders


def write(folder, text):
    path = folder / "classmap.toml"
    path.write_text(text)
    return path


def test_paths_resolve_against_the_config_folder_and_models_are_offered_by_id(tmp_path):
    (tmp_path / "models").mkdir()
    np.save(tmp_path / "models" / "mine.npy", np.eye(4, 3, dtype=np.float32))
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    config = load_config(write(tmp_path, """
[cache]
dir = "cache"
[limits]
max_classes = 10
[[models]]
id = "mine"
head = "models/../models/mine.npy"
[[data]]
path = "pets"
[[data]]
path = "link"
"""))
    assert config.cache_dir == tmp_path / "cache"
    assert config.models[0]["head"] == str(tmp_path / "models" / "mine.npy")
    assert config.data_roots == (tmp_path / "pets", tmp_path / "elsewhere")  # link followed
    assert config.limits.max_classes == 10
    settings = Settings.create(hosting=config, environ={}, warm_default=False)
    assert "mine" in settings.model_ids and settings.cache_dir == tmp_path / "cache"


@pytest.mark.parametrize("text, message", [
    ("[serverr]\n", "unknown section"),
    ("[server]\nallowed_host = []\n", "unknown key"),
    ("[server]\nallowed_hosts = [\"http://x.org/\"]\n", "not a host name"),
    ("[server]\ntrusted_proxies = [\"ten\"]\n", "not an address"),
    ("[server]\nmax_request_bytes = -1\n", "positive integer"),
    ("[[models]]\nmodel = \"resnet18\"\nweights = \"missing.pth\"\n", "is not a file"),
    ("[[data]]\npath = \"nowhere\"\n", "is not a folder"),
    ("[users.eve]\nrole = \"admin\"\npassword_hash = \"x$y\"\n", "not a role"),
    ("[users.eve]\npassword = \"plain\"\n", "may only hold"),
    ("[users.eve]\npassword_hash = \"plaintext\"\n", "not a werkzeug hash"),
    ("not toml at all [", "not valid TOML"),
    # A proxy half configured would be silently ignored; one trusting every address
    # would let anyone name any user.
    ("[server]\nproxy_user_header = \"X-Forwarded-User\"\n", "add trusted_proxies"),
    ("[server]\ntrusted_proxies = [\"10.0.0.5\"]\n", "add proxy_user_header"),
    ("[server]\ntrusted_proxies = [\"0.0.0.0/0\"]\nproxy_user_header = \"X-User\"\n",
     "every address"),
    ("[server]\ntrusted_proxies = [\"10.0.0.5\", \"::/0\"]\nproxy_user_header = \"X-User\"\n",
     "every address"),
    ("[workers]\nmode = \"embedded\"\n", "not supported.*classmap serve --workers"),
])
def test_bad_config_files_stop_with_one_line_saying_what_to_fix(tmp_path, text, message):
    with pytest.raises(ClassmapError, match=message) as error:
        load_config(write(tmp_path, text))
    assert "\n" not in str(error.value)


def test_a_missing_config_file_says_how_to_create_one(tmp_path):
    with pytest.raises(ClassmapError, match="classmap user add"):
        load_config(tmp_path / "absent.toml")


def test_redact_paths_keeps_file_names_only():
    text = "weights from /srv/models/r18.pth; see http://a.org/b/c and 3/4 or rel/path"
    assert redact_paths(text) == "weights from r18.pth; see http://a.org/b/c and 3/4 or rel/path"


def test_known_server_folders_are_cut_from_response_bodies(tmp_path):
    np.save(tmp_path / "head.npy", np.eye(3, 2, dtype=np.float32))
    settings = Settings.create(cache_dir=tmp_path / "cache", environ={}, warm_default=False,
                               extra_models=f'[{{"id": "h", "head": "{tmp_path}/head.npy"}}]')
    redactor = PathRedactor(server_folders(settings))
    body = f'{{"source": "{tmp_path}/head.npy", "cache": "{tmp_path}/cache/x"}}'.encode()
    cleaned = redactor(body)
    assert str(tmp_path).encode() not in cleaned and b"head.npy" in cleaned
    untouched = b'{"image": "data:image/png;base64,iVBORw0KGgo/tmp/AAAA"}'
    assert redactor(untouched) is untouched  # short folders ('/tmp') are never cut


def test_a_trusted_proxy_with_its_header_and_narrow_networks_is_accepted(tmp_path):
    config = load_config(write(tmp_path, "[server]\ntrusted_proxies = [\"10.0.0.5\", "
                                         "\"10.0.0.0/24\", \"fd00::/8\"]\n"
                                         "proxy_user_header = \"X-Forwarded-User\"\n"))
    assert [str(n) for n in config.trusted_proxies] == ["10.0.0.5/32", "10.0.0.0/24", "fd00::/8"]
    assert config.proxy_user_header == "X-Forwarded-User" and config.requires_login
