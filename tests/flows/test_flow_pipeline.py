"""Wiring of the top-level pipeline: stage order, content-keyed caching, partial recompute.

The stage commands are replaced by the instant stand-ins of ``flow_fake_stages`` (same signatures);
the flow, subflows, cache keys and Dask task runner are the production ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import tasks.stages as stages
from flows.pipeline import pipeline

ALL = ["chunk", "denoise:nlm", "denoise:unet", "evaluate", "ingest", "noise_fit", "report", "synth_scan",
       "synth_wafers", "train"]


@pytest.fixture
def project(tmp_path, monkeypatch, results_dir):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    for name in stages.STAGES:
        spec = stages.STAGES[name]
        monkeypatch.setitem(stages.STAGES, name, dataclasses.replace(spec, command=f"flow_fake_stages:{name}"))
    (tmp_path / "tin").mkdir()
    (tmp_path / "tin" / "pair_001.tif").write_bytes(b"not read by the stand-in")
    (tmp_path / "params.yaml").write_text(f"paths:\n  tin_balls_source: {tmp_path / 'tin'}\n"
                                          "denoise:\n  method: nlm\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEM_PROFILE", raising=False)
    return tmp_path


def _calls(root: Path) -> list[str]:
    log = root / "calls.log"
    calls = sorted(log.read_text().split()) if log.exists() else []
    log.unlink(missing_ok=True)
    return calls


def test_pipeline_runs_every_stage_once_then_recomputes_only_what_a_change_touches(project):
    result = pipeline(params_path="params.yaml")
    assert _calls(project) == ALL
    assert Path(result["evaluation"]["report"]).is_file()
    assert result["checkpoint"].endswith("best.ckpt")
    assert set(result["denoised"]) == {"wafer_scan.nlm", "wafer_scan.unet"}

    pipeline(params_path="params.yaml")
    assert _calls(project) == []  # unchanged inputs: zero recomputation

    pipeline(params_path="params.yaml", overrides={"train": {"lr": 0.01}})
    assert _calls(project) == ["denoise:unet", "evaluate", "report", "train"]  # training and what follows

    pipeline(params_path="params.yaml", overrides={"train": {"lr": 0.01}, "denoise": {"nlm": {"h": 0.1}}})
    assert _calls(project) == ["denoise:nlm"]  # evaluate/report do not read the denoise section

