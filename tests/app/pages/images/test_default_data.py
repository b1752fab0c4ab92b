"""The image pages open on a data set the model can use (issue 14, defect 9): the digits
for a digits model, otherwise a configured image folder; and when the digits meet a model
that cannot read them, the page says what to do in its own terms (the Model menu, the
Data set picker), not with command-line flags."""

from __future__ import annotations

from classmap.app.config import Settings
from classmap.app.pages.images.layout import default_data, digits_mismatch
from classmap.app.shell.images import DIGITS, data_entries


def settings_with(tmp_path, folders: bool) -> Settings:
    roots = []
    if folders:
        (tmp_path / "photos" / "n01981276").mkdir(parents=True)
        roots.append(tmp_path / "photos")
    return Settings.create(cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs",
                           environ={}, warm_default=False, data_roots=roots)


def test_imagenet_model_opens_on_the_configured_folder(tmp_path):
    settings = settings_with(tmp_path, folders=True)
    entries = data_entries(settings.data_roots)
    folder = [entry.id for entry in entries if entry.id != DIGITS][0]
    assert default_data(settings, "lite0-imagenet", entries) == folder
    assert default_data(settings, "lenet-digits", entries) == DIGITS
    assert digits_mismatch(settings, "lite0-imagenet", folder) is None
    assert digits_mismatch(settings, "lenet-digits", DIGITS) is None
    message = digits_mismatch(settings, "lite0-imagenet", DIGITS)
    assert "Model menu" in message and "Data set" in message and "photos" in message
    assert "--model" not in message


def test_without_a_folder_the_digits_stay_and_the_message_names_the_menu(tmp_path):
    settings = settings_with(tmp_path, folders=False)
    entries = data_entries(settings.data_roots)
    assert default_data(settings, "lite0-imagenet", entries) == DIGITS
    message = digits_mismatch(settings, "lite0-imagenet", None)
    assert "pick lenet-digits in the Model menu" in message and "--model" not in message
