"""Per-image tables, schemas, summaries, files and the dose sweep (sem_core.evaluate)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
import zarr
from scipy import ndimage

from sem_core.evaluate import (
    evaluate_dataset,
    evaluate_method,
    identity_denoiser,
    read_metrics,
    summarize_metrics,
    sweep_dose,
    write_metrics,
)
from sem_core.schemas.metrics import METRIC_COLUMNS, METRICS_SCHEMA, SUMMARY_SCHEMA


def _smooth(img: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(img, 1.0)


def _stack(n: int = 3, size: int = 64, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """uint8 noisy/clean stacks of lines with one bright particle defect per image, its mask and table."""
    rng = np.random.default_rng(seed)
    clean = np.full((n, size, size), 60, np.uint8)
    for c0 in range(4, size, 24):
        clean[:, :, c0:c0 + 10] = 160
    mask = np.zeros_like(clean)
    rows = []
    for i in range(n):
        r, c = 20 + 5 * i, 18
        clean[i, r:r + 5, c:c + 5] = 230
        mask[i, r:r + 5, c:c + 5] = 4
        rows.append({"image": i, "defect_id": 0, "type": "particle", "type_code": 4,
                     "bbox_r0": r, "bbox_c0": c, "bbox_r1": r + 5, "bbox_c1": c + 5, "size_px": 25})
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    return noisy, clean, mask, pd.DataFrame(rows)


def _row(**overrides):
    base = {"dataset": "toy", "split": "test", "method": "m", "experiment": "classical", "image_id": "a",
            "image_index": 0, **{k: 0.5 for k in METRIC_COLUMNS}, "n_defects": 0, "psnr": 30.0,
            "seconds": 0.1, "mpix_per_s": 1.0}
    base.update(overrides)
    return base


def test_schema_accepts_a_good_row_and_rejects_bad_tables():
    good = pd.DataFrame([_row()])
    METRICS_SCHEMA.validate(good)
    with pytest.raises(pa.errors.SchemaError):
        METRICS_SCHEMA.validate(good.drop(columns=["fsim"]))
    with pytest.raises(pa.errors.SchemaError):
        METRICS_SCHEMA.validate(pd.DataFrame([_row(psnr=float("nan"))]))
    with pytest.raises(pa.errors.SchemaError):
        METRICS_SCHEMA.validate(pd.DataFrame([_row(seconds=-1.0)]))
    with pytest.raises(pa.errors.SchemaError):
        METRICS_SCHEMA.validate(pd.DataFrame([_row(), _row()]))  # duplicate image
    METRICS_SCHEMA.validate(pd.DataFrame([_row(psnr=float("inf"), fsim=float("nan"))]))


def test_evaluate_method_scores_every_image_and_ranks_methods():
    noisy, clean, mask, defects = _stack()
    kwargs = dict(dataset="toy", indices=[0, 1, 2], masks=mask, defects=defects)
    ident = evaluate_method(noisy, clean, denoiser=identity_denoiser, method="noisy", **kwargs).table
    smooth = evaluate_method(noisy, clean, denoiser=_smooth, method="smooth", keep_outputs=1, **kwargs)
    assert list(ident["image_index"]) == [0, 1, 2] and smooth.errors == []
    assert (smooth.table["psnr"].to_numpy() > ident["psnr"].to_numpy()).all()
    assert (ident["residual_structure"] == 0).all()  # identity removes nothing
    assert (smooth.table["n_defects"] == 1).all()
    assert (ident["defect_retention"].between(0.8, 1.2)).all()
    assert ident["psnr_aligned"].isna().all()
    assert (smooth.table["mpix_per_s"] > 0).all()
    assert list(smooth.outputs) == [("smooth", "classical", 0)]


def test_evaluate_method_records_a_failing_image_and_carries_on():
    noisy, clean, _, _ = _stack()

    def flaky(img):
        flaky.calls += 1
        if flaky.calls == 2:
            raise RuntimeError("boom")
        return img
    flaky.calls = 0
    res = evaluate_method(noisy, clean, denoiser=flaky, method="flaky", dataset="toy", indices=[0, 1, 2],
                          warmup=False)
    assert len(res.table) == 2 and len(res.errors) == 1
    assert res.errors[0]["image_index"] == 1 and "boom" in res.errors[0]["error"]


def _write_store(path, noisy, clean, mask, defects):
    g = zarr.open_group(path, mode="w", zarr_format=3)
    for name, arr in (("noisy", noisy), ("clean", clean), ("mask", mask)):
        g.create_array(name, data=arr, chunks=(1, *arr.shape[1:]))
    g.attrs.update({"dataset": "wafers", "bit_depth": 8, "complete": True,
                    "split": {"train": [0], "val": [], "test": [1, 2]},
                    "image_ids": [f"img{i}" for i in range(len(noisy))]})
    defects.to_parquet(path / "defects.parquet", index=False)


def test_evaluate_dataset_on_a_tiny_zarr(tmp_path):
    noisy, clean, mask, defects = _stack()
    store = tmp_path / "wafers.zarr"
    _write_store(store, noisy, clean, mask, defects)
    res = evaluate_dataset(store, methods={"noisy": identity_denoiser, "smooth": _smooth}, align=True,
                           keep_outputs=1)
    t = res.table
    assert set(t["image_id"]) == {"img1", "img2"} and set(t["method"]) == {"noisy", "smooth"}
    assert (t["dataset"] == "wafers").all() and (t["split"] == "test").all()
    assert t["psnr_aligned"].notna().all() and (t["n_defects"] == 1).all()
    assert ("noisy_input", "", 1) in res.outputs and ("smooth", "classical", 1) in res.outputs
    d = res.defects  # one particle per image, 2 test images x 2 methods
    assert len(d) == 4 and set(d["type"]) == {"particle"} and set(d["image_id"]) == {"img1", "img2"}
    smooth_ret = d.loc[d["method"] == "smooth", "contrast_retention"]
    assert (smooth_ret < d.loc[d["method"] == "noisy", "contrast_retention"].to_numpy()).all()  # blur lowers it
    # a trained model: its own method name and experiment, labelled method-experiment in metrics.json
    exp = evaluate_dataset(store, methods={"unet-a": _smooth}, experiments={"unet-a": "a"},
                           method_names={"unet-a": "unet"}, max_images=1).table
    assert list(exp["method"]) == ["unet"] and list(exp["experiment"]) == ["a"]
    write_metrics(tmp_path / "m", table=exp, summary=summarize_metrics(exp), provenance={})
    assert "wafers/unet-a/psnr" in json.loads((tmp_path / "m" / "metrics.json").read_text())
    with pytest.raises(ValueError, match="no split"):
        evaluate_dataset(store, methods={"noisy": identity_denoiser}, split="holdout")


def test_summary_statistics_and_files(tmp_path):
    rows = [_row(image_index=i, image_id=str(i), psnr=p) for i, p in enumerate([30.0, 32.0, 34.0, math.inf])]
    table = METRICS_SCHEMA.validate(pd.DataFrame(rows))
    summary = summarize_metrics(table)
    psnr = summary[summary["metric"] == "psnr"].iloc[0]
    assert psnr["n"] == 3 and psnr["mean"] == pytest.approx(32.0)  # inf left out
    assert psnr["std"] == pytest.approx(2.0)
    # t(0.975, 2) = 4.3027 -> half-width 4.3027 * 2 / sqrt(3)
    assert psnr["ci_high"] - psnr["mean"] == pytest.approx(4.302653 * 2 / math.sqrt(3), rel=1e-5)
    written = write_metrics(tmp_path, table=table, summary=summary, provenance={"params_hash": "x"})
    assert {p.name for p in written.values()} >= {"per_image.parquet", "summary.csv", "metrics.json"}
    flat = json.loads((tmp_path / "metrics.json").read_text())
    assert flat["toy/m/psnr"] == pytest.approx(32.0)
    back = read_metrics(tmp_path)
    assert len(back["per_image"]) == 4 and "dose" not in back and "defect_metrics" not in back
    import pyarrow.parquet as pq

    meta = pq.read_schema(tmp_path / "summary.parquet").metadata
    assert json.loads(meta[b"sem_denoise"])["params_hash"] == "x"
    with pytest.raises(pa.errors.SchemaError):
        SUMMARY_SCHEMA.validate(summary.assign(ci_low=summary["ci_high"] + 1))


def test_sweep_dose_is_deterministic_and_psnr_rises_with_dose(tmp_path):
    def make_specimen(rng):
        y = np.full((48, 48), 0.3)
        y[:, 20:28] = 0.7
        r = int(rng.integers(5, 30))
        y[r:r + 4, 5:9] = 0.9
        return y, [(r, 5, r + 4, 9)]

    def image_fn(yield_map, *, dose, rng):
        noisy = yield_map + rng.normal(0, 1.0 / math.sqrt(dose), yield_map.shape)
        return noisy.astype(np.float32), yield_map.astype(np.float32)

    kwargs = dict(make_specimen=make_specimen, image_fn=image_fn, doses=[10, 100, 1000],
                  methods={"noisy": identity_denoiser, "smooth": _smooth}, n_images=2, seed=7)
    a, b = sweep_dose(**kwargs), sweep_dose(**kwargs)
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    mean = a[a["method"] == "noisy"].groupby("dose")["psnr"].mean()
    assert mean.is_monotonic_increasing and mean.iloc[-1] - mean.iloc[0] > 15  # 10 dB per decade
    assert a["defect_retention"].notna().all()
    table = METRICS_SCHEMA.validate(pd.DataFrame([_row()]))
    write_metrics(tmp_path, table=table, summary=summarize_metrics(table), provenance={}, dose_table=a)
    wide = pd.read_csv(tmp_path / "dose_psnr.csv")
    assert list(wide.columns) == ["dose", "noisy", "smooth"] and list(wide["dose"]) == [10, 100, 1000]
    assert wide["noisy"].to_numpy() == pytest.approx(mean.to_numpy())
    assert len(read_metrics(tmp_path)["dose"]) == len(a)
