"""The server reads an image folder only in the background job, never in a request thread.

A folder with a FIFO named ``pipe.png`` and two digit classes, served to lenet-digits:
``ready()`` (what the request thread asks) must answer without touching the folder; the
job (:meth:`ImageServices.prepare`) reads it, skipping the FIFO, and stores its scan; a
second service (another server process) then answers from that scan without reading
the folder either. A scan stored before a service started does not count as ready.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from PIL import Image

import classmap.app.shell.images as shell_images
from classmap.app.config import Settings
from classmap.app.shell.images import ImageServices
from classmap.app.shell.services import Services

MODEL = "lenet-digits"


@pytest.fixture
def digits_folder(tmp_path):
    root = tmp_path / "root" / "scans"
    rng = np.random.default_rng(0)
    for digit in ("0", "1"):
        (root / digit).mkdir(parents=True)
        for i in range(3):
            grey = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(grey, mode="L").save(root / digit / f"{i}.png")
    os.mkfifo(root / "0" / "pipe.png")
    return root


@pytest.fixture
def reads(monkeypatch):
    """Every folder read by the image services, as (process label, folder)."""
    seen: list[str] = []
    real = shell_images.load_dataset

    def counting(source, *args, **kwargs):
        if str(source) != "digits":
            seen.append(str(source))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(shell_images, "load_dataset", counting)
    return seen


def _service(digits_folder, tmp_path, cache_dir) -> ImageServices:
    settings = Settings.create(cache_dir=cache_dir, jobs_dir=tmp_path / "jobs", environ={},
                               warm_default=False, data_roots=[digits_folder])
    return ImageServices(Services(settings))


def test_ready_never_reads_the_folder_the_job_does(digits_folder, tmp_path, reads,
                                                   lenet_digits, session_cache):
    cache_dir = session_cache.directory  # where lenet-digits is already trained
    server = _service(digits_folder, tmp_path, cache_dir)
    assert not server.ready(MODEL, "scans")
    assert reads == []  # the request thread did not open the folder

    job = _service(digits_folder, tmp_path, cache_dir)
    result = job.prepare(MODEL, "scans")
    assert reads == [str(digits_folder)]
    assert result.representations.num_images == 6
    report = job.dataset(MODEL, "scans").report
    assert [(s.path, s.reason) for s in report.unreadable] == [
        ("0/pipe.png", "not a regular file (a FIFO); not opened")]

    # The server process now finds the job's scan and results without reading the folder.
    assert server.ready(MODEL, "scans")
    again = server.result(MODEL, "scans")
    np.testing.assert_array_equal(again.representations.softmax,
                                  result.representations.softmax)
    assert reads == [str(digits_folder)]

    # A server started after that scan reads the folder again (in a job) before it is ready.
    time.sleep(0.01)
    restarted = _service(digits_folder, tmp_path, cache_dir)
    # Other pages may use the old scan meanwhile (it is now held in memory) ...
    assert len(restarted.dataset(MODEL, "scans")) == 6
    assert not restarted.ready(MODEL, "scans")
    assert reads == [str(digits_folder)]
    # ... and is ready once a job has read it again, though it held the old scan.
    _service(digits_folder, tmp_path, cache_dir).prepare(MODEL, "scans")
    assert reads == [str(digits_folder)] * 2
    assert restarted.ready(MODEL, "scans")
