"""The store's defect table: ``defects.parquet`` beside the arrays, validated by ``DEFECTS_SCHEMA``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .layout import DatasetError

__all__ = ["DEFECTS_FILE", "write_defects", "read_defects"]

DEFECTS_FILE = "defects.parquet"


def _defects_schema():
    from sem_core.schemas.defects import DEFECTS_SCHEMA

    return DEFECTS_SCHEMA


def write_defects(path: str | Path, df: pd.DataFrame) -> Path:
    """Validate ``df`` with ``DEFECTS_SCHEMA`` and write it as ``defects.parquet`` in the store folder ``path``."""
    path = Path(path)
    validated = _defects_schema().validate(df.reset_index(drop=True))
    out = path / DEFECTS_FILE
    validated.to_parquet(out, index=False)
    return out


def read_defects(path: str | Path) -> pd.DataFrame:
    """Read and validate ``defects.parquet`` from the store folder ``path``."""
    file = Path(path) / DEFECTS_FILE
    try:
        df = pd.read_parquet(file)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read defect table {file}") from exc
    return _defects_schema().validate(df)
