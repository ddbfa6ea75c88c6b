"""Every pandera schema refuses a bad table: one valid row passes, each targeted break is refused.

The list below must cover every ``DataFrameSchema`` of ``sem_core.schemas`` (checked), plus the
schemas defined next to their writers (training curves, batch metrics).
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

import sem_core.schemas
from sem_core.schemas.defects import DEFECTS_SCHEMA
from sem_core.schemas.manifest import MANIFEST_SCHEMA
from sem_core.schemas.metrics import DEFECT_METRICS_SCHEMA, DOSE_SCHEMA, METRIC_COLUMNS, METRICS_SCHEMA, SUMMARY_SCHEMA
from sem_core.schemas.noise_stats import NOISE_STATS_SCHEMA

_IDS = dict(dataset="tin_balls", split="test", method="nlm", experiment="classical", image_id="001", image_index=0)


def _metrics_row() -> dict:
    row = {**_IDS, **{c: 0.5 for c in METRIC_COLUMNS}, "n_defects": 0, "seconds": 0.1, "mpix_per_s": 2.0}
    return {**row, "psnr": 30.0}


VALID = {
    "METRICS_SCHEMA": (METRICS_SCHEMA, _metrics_row()),
    "SUMMARY_SCHEMA": (SUMMARY_SCHEMA, dict(dataset="d", method="m", experiment="e", metric="psnr", n=3, mean=30.0,
                                            std=1.0, ci_low=28.0, ci_high=32.0)),
    "DEFECT_METRICS_SCHEMA": (DEFECT_METRICS_SCHEMA, {**_IDS, "defect_id": 0, "type": "bridge", "contrast_clean": 0.4,
                                                      "contrast_output": 0.3, "contrast_retention": 0.75,
                                                      "psnr": 25.0, "ssim": 0.8}),
    "DOSE_SCHEMA": (DOSE_SCHEMA, dict(dose=0.5, method="nlm", image_index=0, psnr=28.0, ssim=0.7,
                                      defect_retention=0.9, seconds=0.2)),
    "NOISE_STATS_SCHEMA": (NOISE_STATS_SCHEMA, dict(pair_id="001", split="train", slope=3.5, intercept=16.0,
                                                    acf_x1=0.5, acf_x2=0.2, acf_x3=0.05, acf_y1=0.01, skew=0.1,
                                                    clip_high=0.0, clip_low=0.001, edge_sigma=None,
                                                    asym_x1=0.015, grad_corr_x=0.07)),
    "DEFECTS_SCHEMA": (DEFECTS_SCHEMA, dict(image=0, defect_id=0, type="particle", type_code=4, bbox_r0=2, bbox_c0=3,
                                            bbox_r1=6, bbox_c1=8, size_px=12)),
    "MANIFEST_SCHEMA": (MANIFEST_SCHEMA, dict(pair_id="001", noisy_path="low/1.tif", clean_path="high/1.tif",
                                              noisy_sha256="a" * 64, clean_sha256="b" * 64, height=442, width=512,
                                              dtype="uint8", bit_depth=8, channel="grey", pixel_size_nm=None,
                                              dwell_noisy_s=None, dwell_clean_s=None, beam_kv=None, detector=None,
                                              shift_dy=0.5, shift_dx=-1.0, brightness_offset=2.0, crop_rows=70)),
}

# schema name -> (what is broken, row overrides or a callable frame -> frame)
BREAKS = {
    "METRICS_SCHEMA": [("ssim above 1", {"ssim": 1.5}), ("psnr NaN", {"psnr": float("nan")}),
                       ("ms_ssim negative", {"ms_ssim": -0.1}), ("empty method", {"method": ""})],
    "SUMMARY_SCHEMA": [("unknown metric", {"metric": "nope"}), ("ci reversed", {"ci_low": 33.0}),
                       ("negative std", {"std": -1.0})],
    "DEFECT_METRICS_SCHEMA": [("ssim below -1", {"ssim": -1.5}), ("negative defect id", {"defect_id": -1}),
                              ("psnr -inf", {"psnr": float("-inf")}), ("duplicate defect", "duplicate")],
    "DOSE_SCHEMA": [("zero dose", {"dose": 0.0}), ("ssim above 1", {"ssim": 1.2}),
                    ("negative seconds", {"seconds": -0.1}), ("duplicate row", "duplicate")],
    "NOISE_STATS_SCHEMA": [("correlation above 1", {"acf_x1": 1.5}), ("unknown split", {"split": "val"}),
                           ("clip fraction above 1", {"clip_high": 2.0}), ("negative edge sigma", {"edge_sigma": -1.0}),
                           ("duplicate pair", "duplicate")],
    "DEFECTS_SCHEMA": [("empty box", {"bbox_r1": 2}), ("code of another type", {"type_code": 1}),
                       ("mask larger than its box", {"size_px": 100}), ("unknown type", {"type": "crack"})],
    "MANIFEST_SCHEMA": [("bad hash", {"noisy_sha256": "xyz"}), ("zero height", {"height": 0}),
                        ("unknown dtype", {"dtype": "int8"}), ("duplicate pair", "duplicate")],
}
COMMON = [("extra column", lambda df: df.assign(surprise=1)), ("missing column", lambda df: df.iloc[:, 1:])]


def _frame(name: str, change) -> pd.DataFrame:
    _, row = VALID[name]
    if change == "duplicate":
        return pd.DataFrame([row, row])
    if callable(change):
        return change(pd.DataFrame([row]))
    return pd.DataFrame([{**row, **change}])


def test_every_schema_of_sem_core_schemas_is_listed_here():
    found = set()
    for mod in pkgutil.iter_modules(sem_core.schemas.__path__):
        module = importlib.import_module(f"sem_core.schemas.{mod.name}")
        found |= {k for k, v in vars(module).items() if isinstance(v, pa.DataFrameSchema)}
    assert found == set(VALID) == set(BREAKS)


@pytest.mark.parametrize("name", sorted(VALID))
def test_schema_accepts_a_valid_row_and_refuses_each_break(name):
    schema, _ = VALID[name]
    schema.validate(_frame(name, {}))
    for what, change in BREAKS[name] + COMMON:
        with pytest.raises((pa.errors.SchemaError, pa.errors.SchemaErrors)):
            schema.validate(_frame(name, change))
            pytest.fail(f"{name} accepted a table with {what}")


def test_training_curve_schema_refuses_bad_rows():
    from sem_core.train import METRICS_SCHEMA as CURVES

    row = dict(epoch=1, step=10, train_loss=0.1, val_loss=0.2, val_psnr=30.0, lr=1e-3)
    CURVES.validate(pd.DataFrame([row]))
    # wall time is not part of the curves (it changes run to run; it goes to timing.csv)
    for bad in ({"step": 0}, {"lr": -1e-3}, {"seconds": 1.0}):
        with pytest.raises((pa.errors.SchemaError, pa.errors.SchemaErrors)):
            CURVES.validate(pd.DataFrame([{**row, **bad}]))


def test_batch_metrics_schema_refuses_bad_rows():
    from tasks.batch import BATCH_METRICS_SCHEMA

    row = dict(item="a.tif", method="nlm", output="a.nlm.ome.zarr", height=64, width=80, sigma_in=0.1,
               sigma_out=0.05, mean_abs_change=0.02, seconds=0.3)
    BATCH_METRICS_SCHEMA.validate(pd.DataFrame([row]))
    for bad in ({"height": 0}, {"sigma_out": -0.1}, {"seconds": np.nan}):
        with pytest.raises(pa.errors.SchemaError):
            BATCH_METRICS_SCHEMA.validate(pd.DataFrame([{**row, **bad}]))
