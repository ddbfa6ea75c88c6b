"""The ingest's files: the Parquet manifest (with provenance), the JSON report and what goes in it."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from sem_core.schemas.manifest import MANIFEST_SCHEMA

from .records import IngestError, IngestResult

__all__ = ["describe_dataset", "summarise_result", "write_ingest_outputs", "read_manifest"]

_META_KEY = b"sem_denoise"


def _none_if_nan(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def describe_dataset(source_dir: str | Path, *, licence: str, licence_file: str | None, citation: str,
                     repository: str) -> dict[str, Any]:
    """Dataset description for the report: licence (with its text when the file exists), citation, source."""
    source_dir = Path(source_dir)
    text = None
    if licence_file:
        path = source_dir / licence_file
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
    return {"source": str(source_dir), "repository": repository, "licence": licence,
            "licence_file": licence_file, "licence_text": text, "citation": citation}


def summarise_result(result: IngestResult) -> dict[str, Any]:
    """Counts, mean/std shift and offset, and the distinct acquisition metadata of the good pairs."""
    m = result.manifest

    def distinct(col: str) -> list:
        return sorted({_none_if_nan(v) for v in m[col].tolist()} - {None}, key=str)

    stats = {}
    for col in ("shift_dy", "shift_dx", "brightness_offset"):
        stats[col] = {"mean": float(m[col].mean()), "std": float(m[col].std(ddof=0))} if len(m) else None
    return {
        "n_pairs": int(len(m)), "n_bad_items": len(result.bad),
        "n_noisy_files": result.n_noisy_files, "n_clean_files": result.n_clean_files, **stats,
        "pixel_size_nm": distinct("pixel_size_nm"), "beam_kv": distinct("beam_kv"), "detector": distinct("detector"),
        "dwell_noisy_s": distinct("dwell_noisy_s"), "dwell_clean_s": distinct("dwell_clean_s"),
        "dtype": distinct("dtype"), "bit_depth": distinct("bit_depth"), "shape": sorted(
            {(int(h), int(w)) for h, w in zip(m["height"], m["width"])}),
    }


def _atomic_write(path: Path, writer) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_ingest_outputs(result: IngestResult, *, manifest_path: str | Path, report_path: str | Path,
                         provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Write the Parquet manifest (provenance in its key-value metadata) and the JSON report; return the report."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = MANIFEST_SCHEMA.validate(result.manifest)
    table = pa.Table.from_pandas(manifest, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_META_KEY] = json.dumps({"provenance": dict(provenance), "settings": result.settings}).encode()
    table = table.replace_schema_metadata(meta)
    _atomic_write(Path(manifest_path), lambda tmp: pq.write_table(table, tmp))
    report = {
        "summary": summarise_result(result),
        "bad_items": [asdict(b) for b in result.bad],
        "settings": result.settings,
        "dataset": result.dataset,
        "manifest": str(manifest_path),
        "provenance": dict(provenance),
    }
    text = json.dumps(report, indent=2, sort_keys=False, default=str)
    _atomic_write(Path(report_path), lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return report


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read and validate a manifest; ``df.attrs`` gets ``provenance`` and ``settings`` from its metadata."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise IngestError(f"cannot read manifest {path}: {exc}") from exc
    frame = MANIFEST_SCHEMA.validate(table.to_pandas())
    raw = (table.schema.metadata or {}).get(_META_KEY)
    frame.attrs.update(json.loads(raw) if raw else {})
    return frame
