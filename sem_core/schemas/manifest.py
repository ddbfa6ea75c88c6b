"""Schema of the ingest manifest: one row per good (noisy, clean) pair.

Written by ``sem-denoise ingest`` (``paths.tin_balls_manifest``, Parquet), read by the chunk stage.
Shifts follow :mod:`sem_core.registration`: ``(shift_dy, shift_dx)`` moves the *clean* image onto the *noisy*
one; ``brightness_offset = mean(noisy) - mean(clean)`` in grey levels. ``crop_rows`` is the number of
data-bar rows removed from the bottom of each file; ``height``/``width`` are after that crop.
"""

from __future__ import annotations

import pandera.pandas as pa

__all__ = ["MANIFEST_SCHEMA", "MANIFEST_COLUMNS"]

_SHA = pa.Check.str_matches(r"^[0-9a-f]{64}$")
_POSITIVE = pa.Check.gt(0)

MANIFEST_SCHEMA = pa.DataFrameSchema(
    {
        "pair_id": pa.Column(str, coerce=True, unique=True, description="Pair key, e.g. '001'."),
        "noisy_path": pa.Column(str, coerce=True, description="Noisy file, as given to ingest."),
        "clean_path": pa.Column(str, coerce=True, description="Clean file, as given to ingest."),
        "noisy_sha256": pa.Column(str, _SHA, coerce=True),
        "clean_sha256": pa.Column(str, _SHA, coerce=True),
        "height": pa.Column(int, _POSITIVE, coerce=True, description="Rows after the data bar is removed."),
        "width": pa.Column(int, _POSITIVE, coerce=True),
        "dtype": pa.Column(str, pa.Check.isin(["uint8", "uint16", "float32"]), coerce=True),
        "bit_depth": pa.Column(int, pa.Check.isin([8, 16, 32]), coerce=True),
        "channel": pa.Column(str, pa.Check.isin(["grey", "R", "G", "B", "mean"]), coerce=True),
        "pixel_size_nm": pa.Column(float, _POSITIVE, nullable=True, coerce=True),
        "dwell_noisy_s": pa.Column(float, _POSITIVE, nullable=True, coerce=True),
        "dwell_clean_s": pa.Column(float, _POSITIVE, nullable=True, coerce=True),
        "beam_kv": pa.Column(float, _POSITIVE, nullable=True, coerce=True),
        "detector": pa.Column(str, coerce=True, nullable=True),
        "shift_dy": pa.Column(float, pa.Check.in_range(-1e4, 1e4), coerce=True),
        "shift_dx": pa.Column(float, pa.Check.in_range(-1e4, 1e4), coerce=True),
        "brightness_offset": pa.Column(float, coerce=True),
        "crop_rows": pa.Column(int, pa.Check.ge(0), coerce=True),
    },
    strict=True,
    ordered=True,
    name="ingest_manifest",
)

MANIFEST_COLUMNS: list[str] = list(MANIFEST_SCHEMA.columns)
