"""Wiring of the top-level pipeline: the stage table's order, content-keyed caching, partial recompute, and the
``dvc repro`` route (``sem-denoise stages run``) sharing the Prefect cache.

The stage commands are replaced by the instant stand-ins of ``flow_fake_stages``; the table, the cache keys, the
runner and the flow are the production ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import sem_pipeline.run as run
from flows.pipeline import pipeline
from sem_core.config import load_params
from sem_pipeline.stages import build_stages

ALL = sorted(["ingest", "noise_fit", "chunk", "synth_tin_balls_sim", "synth_wafers", "synth_scan", "train_tin_balls",
              "train_wafers", "denoise_nlm", "denoise_unet", "evaluate", "report"])


@pytest.fixture
def project(tmp_path, monkeypatch, results_dir):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from flow_fake_stages import make_fake

    monkeypatch.setattr(run, "resolve_command", make_fake)
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
    assert Path(result["report"]).is_file()
    assert set(result["stages"]) == set(ALL)

    pipeline(params_path="params.yaml")
    assert _calls(project) == []  # unchanged inputs: zero recomputation

    pipeline(params_path="params.yaml", overrides={"train": {"lr": 0.01}})
    assert _calls(project) == ["denoise_unet", "evaluate", "report", "train_tin_balls", "train_wafers"]

    pipeline(params_path="params.yaml", overrides={"train": {"lr": 0.01}, "denoise": {"nlm": {"h": 0.1}}})
    assert _calls(project) == ["denoise_nlm", "evaluate", "report"]  # evaluate scores nlm as denoise runs it

    pipeline(params_path="params.yaml", overrides={"train": {"lr": 0.01}, "denoise": {"nlm": {"h": 0.1}},
                                                   "paths": {"inbox_dir": "elsewhere"}})
    assert _calls(project) == []  # no stage reads it


def test_stages_run_by_the_dvc_route_are_found_cached_by_the_prefect_flow(project):
    from sem_cli.stages import run_stage_cmd

    for name in build_stages(load_params("params.yaml")):
        run_stage_cmd(name, params=Path("params.yaml"), profile=None, record=True)
    assert _calls(project) == ALL
    pipeline(params_path="params.yaml")
    assert _calls(project) == []  # every Prefect task found the result `sem-denoise stages run` recorded
