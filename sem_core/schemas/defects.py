"""Schema of the wafer defect table: one row per defect of a synthetic wafer image or scan.

Written with ``wafers.zarr`` (``defects.parquet``) and with scans; bounding boxes are half-open pixel
ranges ``[bbox_r0, bbox_r1) x [bbox_c0, bbox_c1)`` and ``size_px`` counts the defect's mask pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

__all__ = ["DEFECT_TYPES", "DEFECTS_SCHEMA", "DEFECTS_COLUMNS", "make_defects_table"]

DEFECT_TYPES: dict[str, int] = {
    "bridge": 1,
    "break": 2,
    "pinch": 3,
    "particle": 4,
    "missing_contact": 5,
    "merged_contact": 6,
}
"""Defect type name -> mask code (0 = no defect)."""


def _codes_match_types(df: pd.DataFrame) -> pd.Series:
    expected = df["type"].map(DEFECT_TYPES)
    return expected.astype("float64") == df["type_code"].astype("float64")


_NONNEG = pa.Check.ge(0)

DEFECTS_SCHEMA = pa.DataFrameSchema(
    {
        "image": pa.Column("int64", _NONNEG, description="Image index in the dataset (0 for a scan)."),
        "defect_id": pa.Column("int64", _NONNEG, description="Defect number within its image/layout."),
        "type": pa.Column(str, pa.Check.isin(list(DEFECT_TYPES))),
        "type_code": pa.Column("uint8", pa.Check.isin(list(DEFECT_TYPES.values()))),
        "bbox_r0": pa.Column("int64", _NONNEG),
        "bbox_c0": pa.Column("int64", _NONNEG),
        "bbox_r1": pa.Column("int64"),
        "bbox_c1": pa.Column("int64"),
        "size_px": pa.Column("int64", pa.Check.gt(0)),
    },
    checks=[
        pa.Check(lambda df: df["bbox_r1"] > df["bbox_r0"], name="bbox_r1_gt_r0"),
        pa.Check(lambda df: df["bbox_c1"] > df["bbox_c0"], name="bbox_c1_gt_c0"),
        pa.Check(
            lambda df: df["size_px"] <= (df["bbox_r1"] - df["bbox_r0"]) * (df["bbox_c1"] - df["bbox_c0"]),
            name="size_fits_bbox",
        ),
        pa.Check(_codes_match_types, name="type_code_matches_type"),
    ],
    unique=["image", "defect_id"],
    strict=True,
    ordered=True,
    coerce=True,
    name="wafer_defects",
)

DEFECTS_COLUMNS: list[str] = list(DEFECTS_SCHEMA.columns)


def make_defects_table(rows: Iterable[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """Build a validated defect table (possibly empty) from row mappings.

    Each row needs ``defect_id, type, bbox_r0, bbox_c0, bbox_r1, bbox_c1, size_px``; ``image``
    defaults to 0 and ``type_code`` is derived from ``type``.
    """
    records = []
    for row in rows:
        rec = {"image": 0, **row}
        rec.setdefault("type_code", DEFECT_TYPES.get(rec.get("type"), 0))
        records.append({col: rec[col] for col in DEFECTS_COLUMNS})
    if not records:
        df = pd.DataFrame({col: pd.Series(dtype=_empty_dtype(col)) for col in DEFECTS_COLUMNS})
    else:
        df = pd.DataFrame.from_records(records, columns=DEFECTS_COLUMNS)
    return DEFECTS_SCHEMA.validate(df)


def _empty_dtype(col: str) -> Any:
    if col == "type":
        return object
    if col == "type_code":
        return np.uint8
    return np.int64
