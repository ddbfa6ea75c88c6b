"""The batch ledger: which inbox batches were processed, with which content, and how it went.

``<outputs_dir>/ledger.json``::

    {"version": 1,
     "batches": {"<batch>": {"status": "done" | "failed", "content_hash": "...", "finished": "...",
                             "output": "<outputs_dir>/<batch>", "n_items": 3, "n_failed": 1,
                             "errors": [{"item": "...", "error": "..."}], "run": "..."}}}

A batch's outputs are written into a hidden temporary folder which is renamed into place only
after the ``_SUCCESS`` marker (JSON holding the batch's content hash) is written inside it; the
ledger entry is written last. So a half-written output never has a marker under the final
name, and a finished output whose ledger entry was lost (crash between rename and ledger) is
recognised by its marker. Every file write is atomic (temporary file + ``os.replace``).

Pure Python (no Prefect): the flows call these functions from tasks.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sem_core.provenance import hash_tree

__all__ = [
    "LEDGER_NAME",
    "SUCCESS_MARKER",
    "batch_content_hash",
    "read_ledger",
    "record_batch",
    "is_batch_done",
    "write_json_atomic",
    "publish_output",
]

LEDGER_NAME = "ledger.json"
SUCCESS_MARKER = "_SUCCESS"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (a reader sees the old or the new file, never half)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def batch_content_hash(batch_dir: Path) -> str:
    """Content hash of a batch folder (every file's relative name and bytes; independent of its location)."""
    batch_dir = Path(batch_dir)
    items = sorted(p for p in batch_dir.iterdir() if not p.name.startswith("."))
    if not items:
        raise ValueError(f"batch folder {batch_dir} is empty")
    return hash_tree(items)


def read_ledger(outputs_dir: Path) -> dict[str, Any]:
    """The ledger in ``outputs_dir`` (an empty one if there is none yet).

    Raises
    ------
    ValueError
        The ledger file exists but is not valid JSON of the expected shape (named, cause chained).
    """
    path = Path(outputs_dir) / LEDGER_NAME
    if not path.exists():
        return {"version": 1, "batches": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the batch ledger {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("batches"), dict):
        raise ValueError(f"batch ledger {path} has no 'batches' mapping")
    return data


def record_batch(outputs_dir: Path, batch: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Add or replace the ledger entry of ``batch`` (atomic rewrite); returns the stored entry."""
    ledger = read_ledger(outputs_dir)
    stored = {"finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **dict(entry)}
    ledger["batches"][batch] = stored
    write_json_atomic(Path(outputs_dir) / LEDGER_NAME, ledger)
    return stored


def _marker_hash(output_dir: Path) -> str | None:
    marker = Path(output_dir) / SUCCESS_MARKER
    try:
        return json.loads(marker.read_text()).get("content_hash")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None  # no marker, or one cut off mid-write: the output is not finished


def is_batch_done(outputs_dir: Path, batch: str, content_hash: str) -> bool:
    """True when ``batch`` with this content has a finished output (marker present and matching).

    A ``done`` ledger entry counts only if the output folder still carries its marker; a marker
    without a ledger entry (the run died after the rename) counts too.
    """
    return _marker_hash(Path(outputs_dir) / batch) == content_hash


def publish_output(staging: Path, final: Path, *, content_hash: str, summary: Mapping[str, Any]) -> Path:
    """Write the ``_SUCCESS`` marker into ``staging``, then rename it to ``final`` (replacing an old one).

    Parameters
    ----------
    staging : Path
        Fully written temporary output folder (same file system as ``final``).
    final : Path
        The published folder name, e.g. ``<outputs_dir>/<batch>``.
    content_hash : str
        The batch's content hash, stored in the marker.
    summary : mapping
        More JSON fields for the marker (item counts, provenance).
    """
    staging, final = Path(staging), Path(final)
    write_json_atomic(staging / SUCCESS_MARKER, {"content_hash": content_hash, **dict(summary)})
    if final.exists():  # an older or unfinished output: move it aside, then drop it
        trash = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, trash)
        os.replace(staging, final)
        shutil.rmtree(trash)
    else:
        os.replace(staging, final)
    return final
