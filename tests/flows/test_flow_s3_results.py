"""Prefect's stage cache in S3-compatible object storage (a real SeaweedFS): shared between machines."""

from __future__ import annotations

import pytest

pytest.importorskip("s3fs")

from prefect import flow, task  # noqa: E402


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    from sem_stack import start_seaweedfs

    handle = start_seaweedfs(tmp_path_factory.mktemp("s3"), buckets=["sem-dvc"])
    yield handle
    handle.stop()


def test_stage_records_live_in_the_bucket_and_a_task_there_is_found_cached(s3, monkeypatch):
    from tasks.caching import _drop_stale_record
    from tasks.settings import results_storage
    from tasks.stages import record_stage_result, with_results_storage

    monkeypatch.setenv("SEM_PREFECT_RESULTS", "s3://sem-dvc/prefect-results/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    storage = results_storage()
    assert storage.basepath == "s3://sem-dvc/prefect-results" and "key" not in str(storage.settings)  # no secrets
    fs = storage.filesystem
    key = "stage-test-key-0123456789abcdef"
    record_stage_result(key, {"outputs": {"a.txt": "sha"}})  # what `sem-denoise stages run` (dvc repro) writes
    assert fs.exists(f"sem-dvc/prefect-results/{key}")

    calls = []

    def run_stage():
        calls.append(1)
        return {"outputs": "recomputed"}

    @flow
    def pipeline():  # the stage tasks' own wiring (tasks.stages.stage_task), on a toy function
        return with_results_storage(task(run_stage, persist_result=True, cache_key_fn=lambda *_: key))()

    assert pipeline() == {"outputs": {"a.txt": "sha"}} and calls == []  # found cached in the bucket: not run

    class Ctx:  # the task context's result store, as Prefect passes it to a cache_key_fn
        class result_store:  # noqa: N801
            result_storage = storage
            metadata_storage = None

    _drop_stale_record(Ctx, key)  # its outputs vanished: the record goes, the next run recomputes
    assert not fs.exists(f"sem-dvc/prefect-results/{key}")
    assert pipeline() == {"outputs": "recomputed"} and calls == [1]
