"""The batch ledger and output publishing (pure Python, no Prefect run)."""

from __future__ import annotations

import pytest

from sem_cli.pipeline import parse_overrides
from tasks.ledger import (
    SUCCESS_MARKER,
    batch_content_hash,
    is_batch_done,
    publish_output,
    read_ledger,
    record_batch,
)


def test_batch_hash_depends_on_content_not_location(tmp_path):
    a, b = tmp_path / "x" / "b1", tmp_path / "y" / "b1"
    for folder in (a, b):
        folder.mkdir(parents=True)
        (folder / "img.tif").write_bytes(b"123")
    assert batch_content_hash(a) == batch_content_hash(b)
    (b / "img.tif").write_bytes(b"124")
    assert batch_content_hash(a) != batch_content_hash(b)
    with pytest.raises(ValueError, match="empty"):
        (tmp_path / "empty").mkdir()
        batch_content_hash(tmp_path / "empty")


def test_publish_output_marks_done_only_after_rename_and_replaces_old(tmp_path):
    staging, final = tmp_path / ".b1.tmp", tmp_path / "b1"
    staging.mkdir()
    (staging / "out.txt").write_text("new")
    final.mkdir()
    (final / "stale.txt").write_text("half-written, no marker")
    assert not is_batch_done(tmp_path, "b1", "h1")
    publish_output(staging, final, content_hash="h1", summary={"n_items": 1})
    assert not staging.exists() and not (final / "stale.txt").exists()
    assert is_batch_done(tmp_path, "b1", "h1") and not is_batch_done(tmp_path, "b1", "h2")
    (final / SUCCESS_MARKER).write_text('{"content_ha')  # marker cut off mid-write
    assert not is_batch_done(tmp_path, "b1", "h1")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_ledger_records_and_rejects_a_corrupt_file(tmp_path):
    assert read_ledger(tmp_path)["batches"] == {}
    record_batch(tmp_path, "b1", {"status": "failed", "content_hash": "h"})
    record_batch(tmp_path, "b2", {"status": "done", "content_hash": "k"})
    record_batch(tmp_path, "b1", {"status": "done", "content_hash": "h"})
    batches = read_ledger(tmp_path)["batches"]
    assert {k: v["status"] for k, v in batches.items()} == {"b1": "done", "b2": "done"}
    assert "finished" in batches["b1"]
    (tmp_path / "ledger.json").write_text("{not json")
    with pytest.raises(ValueError, match="ledger.json"):
        read_ledger(tmp_path)


def test_cli_overrides_are_nested_and_typed():
    assert parse_overrides(["train.lr=0.01", "train.steps=5", "denoise.method=tv", "seed=3"]) == {
        "train": {"lr": 0.01, "steps": 5}, "denoise": {"method": "tv"}, "seed": 3}
