"""The stage table: the only place that names each stage's command, dependencies, config sections and outputs.

``dvc.yaml`` is generated from it (:mod:`sem_pipeline.dvc_yaml`), and the Prefect pipeline flow is
composed from it (:mod:`flows.pipeline`); both key a stage on the same things (:mod:`sem_pipeline.keys`):

* its **data dependencies** (files/folders, by content),
* its **code**: the project modules its command imports (traced, :mod:`sem_pipeline.trace`),
* the **config sections** it reads (dotted keys of ``params.yaml``; values after the profile is applied),
* its **outputs** (paths; a missing output reruns the stage).

Both routes run a stage the same way (:func:`sem_pipeline.run.execute_stage`): the ``sem-denoise``
command function called with the stage's arguments, writing the files named here.

The table is built from a config (:func:`build_stages`) because some stages exist per dataset
(one training run per evaluated dataset) or per method (one denoised scan per method).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import DATASETS, METRIC_FILES, METRIC_FILES_GIT, pipeline_paths
from .trace import traced_files

__all__ = ["Stage", "build_stages", "stage_graph", "DENOISE_SHARED_KEYS"]

TRAIN_THREADS = 1
"""torch CPU threads of the training stages: float sums depend on the thread count, so the pipeline fixes it
(checkpoints are then byte-identical on any machine with the same CPU kernels, whatever its core count). One
thread: on a busy 2-core machine OpenMP's spinning threads made 2 threads several times slower than 1."""

DENOISE_SHARED_KEYS = ("chunk_px", "calibration_corr_len_px", "calibration_run_px", "scheduler", "num_workers")
"""Keys of the ``denoise`` section every denoising stage reads besides its method's own parameters."""


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    Attributes
    ----------
    name : str
        Stage name (DVC stage, Prefect task ``stage-<name>``).
    command : str
        ``"module:function"`` of the ``sem-denoise`` command function it runs.
    call : mapping
        Keyword arguments of that call besides the params file and profile (as the typed CLI passes them).
    sections : tuple of str
        Dotted config keys it reads (``"seed"``, ``"train"``, ``"denoise.nlm"``).
    deps : tuple of Path
        Data it reads (files or folders).
    outs : tuple of Path
        Outputs cached by DVC (large data).
    outs_git : tuple of Path
        Small outputs kept in git (``cache: false``).
    metrics : tuple of Path
        DVC metric files (kept in git).
    plots : tuple of (Path, str, str)
        Plot data kept in git: (file, x column, y column).
    params_kw : str
        Name of the command's params-file argument.
    desc : str
        The equivalent ``sem-denoise`` command line (documentation in dvc.yaml).
    exclusive : bool
        Uses process-wide state (torch's global RNG and thread pool): never run concurrently with another
        exclusive stage in one process, or its result would depend on the interleaving.
    """

    name: str
    command: str
    call: Mapping[str, Any] = field(default_factory=dict)
    sections: tuple[str, ...] = ()
    deps: tuple[Path, ...] = ()
    outs: tuple[Path, ...] = ()
    outs_git: tuple[Path, ...] = ()
    metrics: tuple[Path, ...] = ()
    plots: tuple[tuple[Path, str, str], ...] = ()
    params_kw: str = "params"
    desc: str = ""
    exclusive: bool = False

    @property
    def module(self) -> str:
        """The command's module (its import closure is the stage's code)."""
        return self.command.partition(":")[0]

    @property
    def code(self) -> list[Path]:
        """Source files of the project modules the command imports (relative to the repository root)."""
        return traced_files(self.module)

    @property
    def definition_hash(self) -> str:
        """Short hash of what the table says about the stage beyond its deps and params (command, call, outputs).

        It is part of the stage's ``dvc.yaml`` command, so DVC reruns a stage whose definition changed.
        """
        from sem_core.provenance import hash_params

        return hash_params({"command": self.command, "call": dict(self.call), "params_kw": self.params_kw,
                            "outputs": [p.as_posix() for p in self.all_outputs]})[:12]

    @property
    def all_outputs(self) -> list[Path]:
        """Every output path, in table order (the first one anchors the run record)."""
        return [*self.outs, *self.outs_git, *self.metrics, *(p for p, _, _ in self.plots)]


def _denoise_sections(denoise: Any, method: str) -> tuple[str, ...]:
    own = [f"denoise.{method}"] if hasattr(denoise, method) else []
    cal = [f"denoise.calibration.{method}"] if method in denoise.calibration else []
    return (*own, *cal, *(f"denoise.{k}" for k in DENOISE_SHARED_KEYS))


def build_stages(params: Any, *, train: bool = True, real_data: bool = True) -> dict[str, Stage]:
    """The stage table of a validated config, in execution order.

    Parameters
    ----------
    params : sem_core.config.Params
        The config (profile applied).
    train : bool
        Include the U-Net: one training stage per evaluated dataset, the U-Net scan denoising and
        the U-Nets in the evaluation.
    real_data : bool
        Include the stages that read the real Tin-balls pairs (``paths.tin_balls_source``):
        ingest, noise fit, chunk, the sim2real pairs and the Tin-balls training. Without them the
        simulator uses its imaging section's noise (or an existing ``paths.noise_model``).

    Returns
    -------
    dict
        Stage name -> :class:`Stage`, upstream stages first.
    """
    p = pipeline_paths(params)
    stages: list[Stage] = []
    datasets = [d for d in params.evaluate.datasets if d in DATASETS and (real_data or d != "tin_balls")]
    if real_data:
        stages += [
            Stage("ingest", "sem_cli.ingest:ingest_cmd", sections=("ingest",), deps=(p.tin_balls_source,),
                  outs=(p.tin_balls_manifest, p.tin_balls_ingest_report),
                  desc="sem-denoise ingest"),
            Stage("noise_fit", "sem_cli.noise:fit_cmd", sections=("seed", "noise_fit"),
                  deps=(p.tin_balls_source, p.tin_balls_manifest), outs=(p.noise_model,),
                  metrics=(p.noise_fit_report,), params_kw="params_path", desc="sem-denoise noise fit"),
            Stage("chunk", "sem_cli.chunk:chunk_cmd", sections=("seed", "ingest", "datasets.tin_balls"),
                  deps=(p.tin_balls_source, p.tin_balls_manifest), outs=(p.tin_balls_zarr,),
                  desc="sem-denoise chunk"),
            Stage("synth_tin_balls_sim", "sem_cli.synth:tin_balls_sim_cmd", call={"copies": 2}, sections=("seed",),
                  deps=(p.tin_balls_zarr, p.noise_model), outs=(p.tin_balls_sim_zarr,),
                  desc="sem-denoise synth tin-balls-sim --copies 2"),
        ]
    noise = (p.noise_model,) if real_data or p.noise_model.is_file() else ()
    stages += [
        Stage("synth_wafers", "sem_cli.synth:wafers_cmd", sections=("seed", "datasets.wafers", "imaging", "specimen"),
              deps=noise, outs=(p.wafers_zarr,), desc="sem-denoise synth wafers"),
        Stage("synth_scan", "sem_cli.synth:scan_cmd", sections=("seed", "scan", "imaging", "specimen"),
              deps=noise, outs=(p.scan,), desc="sem-denoise synth scan"),
    ]
    checkpoints: dict[str, Path] = {}
    if train:
        exp = params.train.experiments[params.train.experiment]
        for dataset in datasets:
            files = p.training_files(dataset)
            data = [p.dataset_zarr(dataset)] + ([Path(exp.train_data)] if exp.train_data else [])
            if exp.init_from:
                data.append(Path(exp.init_from.format(seed=params.seed)))
            stages.append(Stage(
                f"train_{dataset}", "sem_cli.train:train_cmd", call={"dataset": dataset, "threads": TRAIN_THREADS}, sections=("seed", "train"),
                deps=tuple(data), outs=(files["best"], files["last"]), metrics=(files["metrics_json"],),
                plots=((files["curves"], "step", "val_psnr"),), desc=f"sem-denoise train --dataset {dataset} --threads {TRAIN_THREADS}",
                exclusive=True))
            checkpoints[dataset] = files["best"]
    methods = [params.denoise.method] + (["unet"] if "wafers" in checkpoints else [])
    for method in dict.fromkeys(methods):
        out = p.denoised(p.scan, method)
        model = checkpoints.get("wafers") if method == "unet" else None
        stages.append(Stage(
            f"denoise_{method}", "sem_cli.denoise:denoise_cmd",
            call={"input": p.scan, "output": out, "method": method, "model": model},
            sections=_denoise_sections(params.denoise, method), deps=(p.scan, *([model] if model else [])),
            outs=(out,), desc=f"sem-denoise denoise {p.scan} {out} --method {method}"
                              + (f" --model {model}" if model else "")))
    models = [f"{d}:{params.train.experiment}={c}" for d, c in checkpoints.items()]
    metrics_dir = p.metrics_dir
    stages.append(Stage(
        "evaluate", "sem_cli.evaluate:evaluate_cmd", call={"model": models or None},
        sections=("seed", "evaluate", "denoise", "imaging"),
        deps=(*(p.dataset_zarr(d) for d in datasets), *checkpoints.values()),
        outs=tuple(metrics_dir / f for f in METRIC_FILES), outs_git=tuple(metrics_dir / f for f in METRIC_FILES_GIT),
        metrics=(metrics_dir / "metrics.json",),
        desc="sem-denoise evaluate" + "".join(f" --model {m}" for m in models)))
    curves = [p.training_files(d)["curves"] for d in checkpoints]
    report_inputs = [metrics_dir / f for f in METRIC_FILES if f.endswith((".parquet", ".npz", ".json"))]
    stages.append(Stage(
        "report", "sem_cli.report:report_cmd", call={"curves": curves or None},
        # the committed MPix/s benchmark is optional (the report leaves the column out without it)
        deps=(*report_inputs, *curves, *([p.throughput] if Path(p.throughput).exists() else [])), outs=(p.report,),
        desc="sem-denoise report" + "".join(f" --curves {c}" for c in curves)))
    if params.release.in_pipeline and real_data:
        rel = params.release
        stages.append(Stage(
            "release", "sem_cli.release:release_cmd", sections=("seed", "release", "datasets.tin_balls"),
            deps=(p.tin_balls_zarr, p.noise_model), outs=(rel.out, rel.out.with_suffix(".json")),
            metrics=(rel.report,), desc="sem-denoise release", exclusive=True))
    return {s.name: s for s in stages}


def stage_graph(stages: Mapping[str, Stage]) -> dict[str, list[str]]:
    """Upstream stages of each stage: those writing one of its dependencies (or a file inside one)."""
    producers = {out: s.name for s in stages.values() for out in s.all_outputs}
    graph: dict[str, list[str]] = {}
    for s in stages.values():
        ups = []
        for dep in s.deps:
            for out, name in producers.items():
                if name != s.name and (dep == out or out in dep.parents or dep in out.parents) and name not in ups:
                    ups.append(name)
        graph[s.name] = ups
    return graph
