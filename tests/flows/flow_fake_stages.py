"""Stand-in stage commands for the pipeline wiring test: same call signature as the real
``sem_cli`` commands, instant, and each output's content is a hash of exactly what the real
stage's output depends on (its inputs' content and its config section), so cache behaviour
downstream is realistic. Every call is logged to ``calls.log`` in the working directory.
"""

from __future__ import annotations

from pathlib import Path

from sem_core.config import load_params
from sem_core.provenance import hash_params
from tasks.caching import hash_content


def _log(name: str) -> None:
    with open("calls.log", "a") as fh:
        fh.write(name + "\n")


def _write(path: Path, *parts) -> None:
    path = Path(path)
    if path.suffix in (".zarr", "") or path.name.endswith(".ome.zarr"):
        path.mkdir(parents=True, exist_ok=True)
        path = path / "data"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(hash_params([str(p) for p in parts]))


def ingest(params, profile):
    cfg = load_params(params, profile=profile)
    _log("ingest")
    src = hash_content(cfg.paths.tin_balls_source)
    _write(cfg.paths.tin_balls_manifest, src, cfg.ingest.model_dump_json())
    _write(cfg.paths.tin_balls_ingest_report, src)


def noise_fit(params_path, profile):
    cfg = load_params(params_path, profile=profile)
    _log("noise_fit")
    _write(cfg.paths.noise_model, hash_content(cfg.paths.tin_balls_manifest), cfg.noise_fit.model_dump_json())
    _write(cfg.paths.noise_fit_report, "report")


def chunk(params, profile):
    cfg = load_params(params, profile=profile)
    _log("chunk")
    _write(cfg.paths.tin_balls_zarr, hash_content(cfg.paths.tin_balls_manifest), cfg.datasets.model_dump_json())


def synth_wafers(params, profile):
    cfg = load_params(params, profile=profile)
    _log("synth_wafers")
    _write(cfg.paths.wafers_zarr, hash_content(cfg.paths.noise_model), cfg.seed, cfg.datasets.model_dump_json(), cfg.imaging.model_dump_json())


def synth_scan(params, profile):
    cfg = load_params(params, profile=profile)
    _log("synth_scan")
    _write(Path(cfg.paths.scans_dir) / f"{cfg.scan.name}.ome.zarr", hash_content(cfg.paths.noise_model), cfg.seed, cfg.scan.model_dump_json())


def train(params, profile):
    cfg = load_params(params, profile=profile)
    _log("train")
    run = Path(cfg.paths.models_dir) / f"{cfg.train.experiment}_{cfg.train.dataset}"
    data = cfg.paths.tin_balls_zarr if cfg.train.dataset == "tin_balls" else cfg.paths.wafers_zarr
    _write(run / "best.ckpt", hash_content(data), cfg.train.model_dump_json())
    _write(run / "metrics.csv", "epoch")


def denoise(params, profile, input, output, method, model):
    cfg = load_params(params, profile=profile)
    _log(f"denoise:{method}")
    _write(output, hash_content(input), method, hash_content(model) if model else "",
           cfg.denoise.method_params(method))


def evaluate(params, profile, model):
    cfg = load_params(params, profile=profile)
    _log("evaluate")
    ckpts = [hash_content(m.partition("=")[2]) for m in model or []]
    _write(Path(cfg.paths.reports_dir) / "metrics" / "per_image.txt", *ckpts, cfg.evaluate.model_dump_json(),
           hash_content(cfg.paths.wafers_zarr))


def report(params, profile, curves):
    cfg = load_params(params, profile=profile)
    _log("report")
    _write(Path(cfg.paths.reports_dir) / "index.html", hash_content(Path(cfg.paths.reports_dir) / "metrics"))
