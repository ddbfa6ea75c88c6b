"""Retries with backoff on I/O tasks; per-item work on the Dask task runner survives a failing item."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from tasks.runners import io_retry_options, make_task_runner
from tasks.settings import io_retry_backoff_s


@task(**io_retry_options(retries=2))
def flaky_read(path: Path, counter: Path) -> str:
    """Fails on its first call (an injected transient I/O fault), then reads the file."""
    attempts = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempts))
    if attempts == 1:
        raise OSError(f"injected transient fault reading {path}")
    return path.read_text()


@flow
def read_with_retry(path: Path, counter: Path) -> str:
    return flaky_read(path, counter)


def test_task_failing_once_then_succeeding_does_not_fail_the_flow(tmp_path):
    assert io_retry_backoff_s() < 0.1  # the test setting keeps backoff delays tiny
    src = tmp_path / "payload.txt"
    src.write_text("hello")
    counter = tmp_path / "attempts"
    assert read_with_retry(src, counter) == "hello"
    assert counter.read_text() == "2"


def test_retry_delays_grow_exponentially():
    delays = flaky_read.retry_delay_seconds
    assert len(delays) == 2 and delays[1] == 2 * delays[0] > 0


@task
def square(x: int) -> int:
    if x == 3:
        raise ValueError("item 3 is corrupt")
    return x * x


@flow(task_runner=make_task_runner())
def square_all(items: list[int]) -> dict:
    futures = {x: square.submit(x) for x in items}
    done, failed = {}, {}
    for x, future in futures.items():
        future.wait()
        state = future.state
        if state.is_completed():
            done[x] = future.result()
        else:
            failed[x] = str(future.result(raise_on_failure=False))
    return {"done": done, "failed": failed}


def test_dask_runner_reports_a_failing_item_and_keeps_the_others():
    out = square_all([1, 2, 3, 4])
    assert out["done"] == {1: 1, 2: 4, 4: 16}
    assert list(out["failed"]) == [3] and "corrupt" in out["failed"][3]


def test_runner_uses_threads_locally_and_an_address_when_given(monkeypatch):
    local = make_task_runner()
    assert local.cluster_kwargs["processes"] is False
    monkeypatch.setenv("SEM_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    assert make_task_runner().address == "tcp://127.0.0.1:8786"
