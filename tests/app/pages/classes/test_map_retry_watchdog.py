"""After a Retry, the class map's new job is still watched: if it dies too, the page says
so instead of waiting forever."""

from __future__ import annotations

from dash import no_update

from classmap.app.pages.classes.callbacks import retry_embedding_logic, watch_embedding_logic
from classmap.app.shell.job_processes import JobVerdict
from classmap.app.shell.jobs import job_request


class DeadJobs:
    """A manager whose every job has died."""

    def check(self, job_id, requested):
        return JobVerdict("error", "the job stopped unexpectedly")


def test_a_retried_map_job_that_dies_again_is_reported():
    failed = {"model": "m", "method": "umap", "id": "old", "state": "error", "message": "x"}
    new_job, _key, pending = retry_embedding_logic(1, failed, {"requested": None, "shown": "pca"})
    assert pending["id"] == new_job["id"] and pending["state"] == "pending"
    done, _label, disabled = watch_embedding_logic(DeadJobs(), new_job, pending)
    assert done["state"] == "error" and done["id"] == new_job["id"] and disabled


def test_a_finished_map_job_is_no_longer_watched():
    job = job_request("m", method="umap")
    ready = {"model": "m", "method": "umap", "id": job["id"], "state": "ready", "message": ""}
    outcome, _label, disabled = watch_embedding_logic(DeadJobs(), job, ready)
    assert outcome is no_update and disabled  # not turned into an error after the fact
