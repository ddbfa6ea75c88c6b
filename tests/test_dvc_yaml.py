"""dvc.yaml is generated from the stage table: the committed file must be what the table gives now."""

from __future__ import annotations

from pathlib import Path

import yaml

from sem_core.config import load_params
from sem_pipeline.dvc_yaml import render_dvc_yaml
from sem_pipeline.stages import build_stages

ROOT = Path(__file__).resolve().parents[1]


def test_committed_dvc_yaml_is_generated_from_the_stage_table():
    params = load_params(ROOT / "params.yaml")
    expected = render_dvc_yaml(params)
    assert (ROOT / "dvc.yaml").read_text() == expected, "dvc.yaml is stale: run `sem-denoise stages dvc-yaml --write`"


def test_every_stage_runs_the_shared_runner_and_writes_the_table_outputs():
    params = load_params(ROOT / "params.yaml")
    doc = yaml.safe_load(render_dvc_yaml(params))
    stages = build_stages(params)
    assert list(doc["stages"]) == list(stages)
    for name, entry in doc["stages"].items():
        assert entry["cmd"] == f"sem-denoise stages run {name} --definition {stages[name].definition_hash}"
        outs = [o if isinstance(o, str) else next(iter(o)) for key in ("outs", "metrics", "plots")
                for o in entry.get(key, [])]
        assert outs == [p.as_posix() for p in stages[name].all_outputs]


def test_default_pipeline_trains_and_scores_one_unet_per_dataset():
    params = load_params(ROOT / "params.yaml")
    stages = build_stages(params)
    assert {"train_tin_balls", "train_wafers"} <= set(stages)
    models = stages["evaluate"].call["model"]
    assert sorted(m.partition(":")[0] for m in models) == ["tin_balls", "wafers"]
    assert stages["denoise_unet"].call["model"] == stages["train_wafers"].outs[0]


def test_flows_import_nothing_from_sem_cli_and_the_table_needs_no_prefect_or_dvc():
    import subprocess
    import sys

    from sem_pipeline.trace import trace_imports

    for flow in ("flows.pipeline", "flows.batch"):
        assert not [m for m in trace_imports(flow) if m.startswith("sem_cli")], flow
    code = ("import sys, sem_pipeline.stages, sem_pipeline.keys, sem_pipeline.run, sem_pipeline.dvc_yaml, "
            "sem_pipeline.paths; print(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'dvc'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_release_stage_joins_both_routes_only_when_asked():
    """release.in_pipeline adds `release` after the real data it reads (chunk, noise fit), with its outputs."""
    off = build_stages(load_params(ROOT / "params.yaml"))
    assert "release" not in off
    params = load_params(ROOT / "params.yaml", overrides={"release": {"in_pipeline": True}})
    stages = build_stages(params)
    rel = stages["release"]
    assert rel.command == "sem_cli.release:release_cmd" and "release" in rel.sections
    assert rel.outs[0] == params.release.out and rel.metrics == (params.release.report,)
    from sem_pipeline.stages import stage_graph

    assert sorted(stage_graph(stages)["release"]) == ["chunk", "noise_fit"]
    doc = yaml.safe_load(render_dvc_yaml(params))
    assert doc["stages"]["release"]["cmd"].startswith("sem-denoise stages run release")
    assert "release" not in build_stages(params, real_data=False)


def test_only_stages_whose_outputs_are_merely_missing_from_the_cache_are_adopted():
    from sem_pipeline.adopt import adoptable_stages

    status = {
        "train": [{"changed outs": {"models/a/best.ckpt": "not in cache", "models/a/last.ckpt": "not in cache"}}],
        "evaluate": [{"changed deps": {"models/a/best.ckpt": "modified"}}],
        "report": [{"changed outs": {"reports/index.html": "modified"}}],
        "denoise": [{"changed outs": {"x.zarr": "not in cache"}}, {"changed deps": {"scan.zarr": "modified"}}],
    }
    assert adoptable_stages(status) == ["train"]
