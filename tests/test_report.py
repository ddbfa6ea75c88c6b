"""The self-contained HTML report, its markdown summary, panels, and the evaluate/report CLI."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import yaml
import zarr
from typer.testing import CliRunner

from sem_core.evaluate import summarize_metrics
from sem_core.report import Panel, format_benchmark, load_panels, save_panels, summary_markdown, write_report
from sem_core.schemas.metrics import METRIC_COLUMNS, METRICS_SCHEMA



def _write_wafers(path) -> None:
    """A 3-image uint8 'wafers' store (lines, one particle defect each), test split = images 1, 2."""
    rng = np.random.default_rng(2)
    clean = np.full((3, 64, 64), 60, np.uint8)
    clean[:, :, 4:14] = clean[:, :, 28:38] = 160
    mask = np.zeros_like(clean)
    clean[:, 20:25, 18:23], mask[:, 20:25, 18:23] = 230, 4
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    g = zarr.open_group(path, mode="w", zarr_format=3)
    for name, arr in (("noisy", noisy), ("clean", clean), ("mask", mask)):
        g.create_array(name, data=arr, chunks=(1, 64, 64))
    g.attrs.update({"dataset": "wafers", "bit_depth": 8, "complete": True,
                    "split": {"train": [0], "val": [], "test": [1, 2]}, "image_ids": ["a", "b", "c"]})
    pd.DataFrame({"image": [0, 1, 2], "defect_id": [0, 0, 0], "type": ["particle"] * 3, "type_code": [4] * 3,
                  "bbox_r0": [20] * 3, "bbox_c0": [18] * 3, "bbox_r1": [25] * 3, "bbox_c1": [23] * 3,
                  "size_px": [25] * 3}).astype({"type_code": "uint8"}).to_parquet(path / "defects.parquet")


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for method, experiment, base in (("noisy", "classical", 20.0), ("gaussian", "classical", 25.0),
                                     ("unet", "baseline", 27.4), ("unet", "charbonnier", 30.7)):
        for i in range(3):
            row = {"dataset": "tin_balls", "split": "test", "method": method, "experiment": experiment,
                   "image_id": f"im{i}", "image_index": i, **{k: float(rng.uniform(0.3, 0.9)) for k in METRIC_COLUMNS},
                   "n_defects": 0, "psnr": base + rng.normal(0, 0.5), "cnr": 3.0, "seconds": 0.2,
                   "mpix_per_s": 1.3}
            rows.append(row)
    return METRICS_SCHEMA.validate(pd.DataFrame(rows))


def _panel() -> Panel:
    rng = np.random.default_rng(1)
    clean = np.zeros((64, 64), np.float32)
    clean[20:40, 10:50] = 0.8
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    return Panel(dataset="wafers", image_id="w0", noisy=noisy, clean=clean,
                 outputs={"gaussian": clean * 0.9, "unet-full": clean}, boxes=[(25, 25, 30, 30)])


def test_report_is_self_contained_and_has_every_section(tmp_path):
    table = _table()
    summary = summarize_metrics(table)
    dose = pd.DataFrame({"dose": [10.0, 100.0] * 2, "method": ["noisy"] * 2 + ["gaussian"] * 2,
                         "image_index": [0] * 4, "psnr": [15.0, 25.0, 22.0, 28.0], "ssim": [0.3, 0.6, 0.5, 0.7],
                         "defect_retention": [1.0, 1.0, 0.7, 0.8], "seconds": [0.0, 0.0, 0.1, 0.1]})
    curves = pd.DataFrame({"experiment": ["a"] * 3, "epoch": [0, 1, 2], "val_psnr": [20.0, 24.0, 26.0]})
    defects = pd.DataFrame({"dataset": "wafers", "split": "test", "method": ["gaussian", "gaussian", "noisy"],
                            "experiment": "classical", "image_id": "w0", "image_index": 0, "defect_id": [0, 1, 0],
                            "type": ["bridge", "particle", "bridge"], "contrast_clean": 0.5,
                            "contrast_output": [0.4, 0.2, 0.5], "contrast_retention": [0.8, 0.4, 1.0],
                            "psnr": 30.0, "ssim": 0.9})
    path = write_report(tmp_path / "reports", metrics_table=table, summary=summary, dose_table=dose,
                        panels=[_panel()], training_curves=curves, defect_table=defects,
                        provenance={"code_version": "abc"})
    html = path.read_text()
    assert path.name == "index.html"
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert len(refs) == 4  # bar chart, dose curves, training curves, one panel
    for text in ("<table>", "Benchmark", "unet-charbonnier", "Quality vs dose", "Training curves", "wafers / w0",
                 "Defect preservation by type", "<td>0.40 (1)</td>", "<td>0.80 (1)</td>"):
        assert text in html


def test_benchmark_orders_classical_before_unet_and_markdown_lists_rows():
    summary = summarize_metrics(_table())
    wide = format_benchmark(summary)
    assert list(wide["label"]) == ["gaussian", "noisy", "unet-baseline", "unet-charbonnier"]
    assert wide.loc[wide["label"] == "unet-charbonnier", "psnr"].iloc[0].startswith("30.")
    assert "±" in wide.loc[0, "psnr"] and "psnr_aligned" in wide.columns
    md = summary_markdown(summary)
    lines = md.strip().splitlines()
    assert lines[0].startswith("| dataset | kind | label | n | psnr") and len(lines) == 2 + 4


def test_panels_round_trip(tmp_path):
    panel = _panel()
    back = load_panels(save_panels(tmp_path / "p.npz", [panel, panel]))
    assert len(back) == 2 and back[1].boxes == [(25, 25, 30, 30)]
    assert list(back[0].outputs) == ["gaussian", "unet-full"]
    np.testing.assert_array_equal(back[0].noisy, panel.noisy)


def test_cli_evaluate_then_report(tmp_path, monkeypatch):
    from sem_cli.main import app

    _write_wafers(tmp_path / "wafers.zarr")
    params = {"paths": {"tin_balls_zarr": str(tmp_path / "none.zarr"), "wafers_zarr": str(tmp_path / "wafers.zarr"),
                        "reports_dir": str(tmp_path / "reports")},
              "evaluate": {"methods": ["gaussian"], "max_images": 2, "panels_per_dataset": 0, "doses": []}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--params", str(tmp_path / "params.yaml")])
    assert res.exit_code == 0, res.output
    metrics = tmp_path / "reports" / "metrics"
    per_image = pd.read_parquet(metrics / "per_image.parquet")
    assert sorted(per_image["method"].unique()) == ["gaussian", "noisy"] and len(per_image) == 4
    assert (metrics / "metrics.json").exists() and (metrics / "panels.npz").exists()
    assert len(pd.read_parquet(metrics / "defect_metrics.parquet")) == 4  # 2 images x (noisy, gaussian)
    curves = tmp_path / "models" / "charbonnier" / "metrics.csv"  # as training writes it
    curves.parent.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2], "step": [50, 100], "train_loss": [0.2, 0.1], "val_loss": [0.3, 0.2],
                  "val_psnr": [25.0, 27.0], "lr": [1e-3, 5e-4], "seconds": [3.0, 6.0]}).to_csv(curves, index=False)
    res = runner.invoke(app, ["report", "--params", str(tmp_path / "params.yaml"), "--curves", str(curves)])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "reports" / "index.html").read_text()
    assert "gaussian" in html and "Training curves" in html
    assert html.count("data:image/png;base64,") == 2  # the bar chart and the training curves
    bad = runner.invoke(app, ["evaluate", "--params", str(tmp_path / "params.yaml"), "--model", "oops"])
    assert bad.exit_code == 2


def test_the_mpix_column_comes_from_the_committed_benchmark_file_not_this_runs_clock(tmp_path):
    import pytest

    from sem_core.denoise.throughput import add_throughput_rows, read_throughput, write_throughput

    summary = summarize_metrics(_table())
    summary = summary[~summary["metric"].isin(["seconds", "mpix_per_s"])]  # as the hashed summary.parquet is
    path = write_throughput(tmp_path / "throughput.json", {"gaussian": 4.0}, setup={"scan_px": 2048})
    write_throughput(path, {"unet": 0.6}, setup={"scan_px": 2048})  # merged, the first method kept
    assert read_throughput(path) == {"gaussian": 4.0, "unet": 0.6}
    wide = format_benchmark(add_throughput_rows(summary, read_throughput(path)))
    cells = dict(zip(wide["label"], wide["mpix_per_s"], strict=True))
    assert cells == {"gaussian": "4", "noisy": "–", "unet-baseline": "0.6", "unet-charbonnier": "0.6"}
    again = add_throughput_rows(add_throughput_rows(summary, {"gaussian": 1.0}), {"gaussian": 2.0})
    assert list(again.loc[again["metric"] == "mpix_per_s", "mean"]) == [2.0]  # replaced, not duplicated
    (tmp_path / "bad.json").write_text('{"setup": {}}')
    with pytest.raises(ValueError, match="bad.json: not a throughput file"):
        read_throughput(tmp_path / "bad.json")
