"""Every path the pipeline reads or writes, derived from the config in one place.

The base folders and files are the ``paths`` section of ``params.yaml``; everything else (a
training run's folder, a checkpoint, a denoised scan, the metric files, the report, a stage's run
record) is derived here, so the CLI defaults, the stage table, ``dvc.yaml`` and the Prefect flow
agree on every name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DATASETS", "METRIC_FILES", "METRIC_FILES_GIT", "PipelinePaths", "pipeline_paths", "run_record", "scan_stem"]

DATASETS = ("tin_balls", "wafers")
"""The pair datasets the pipeline can build, train on and evaluate."""

METRIC_FILES = ("per_image.parquet", "per_image.csv", "summary.parquet", "summary.csv", "defect_metrics.parquet",
                "defect_metrics.csv", "dose.parquet", "dose.csv", "provenance.json", "panels.npz")
"""Files ``evaluate`` writes into the metrics folder that DVC caches."""
METRIC_FILES_GIT = ("dose_psnr.csv", "dose_retention.csv")
"""Small plot-data files of ``evaluate`` kept in git (``cache: false``); ``metrics.json`` is the DVC metric."""


def scan_stem(path: str | Path) -> str:
    """``data/interim/scans/wafer_scan.ome.zarr`` -> ``wafer_scan`` (also strips ``.zarr``)."""
    return Path(path).name.removesuffix(".ome.zarr").removesuffix(".zarr")


@dataclass(frozen=True)
class PipelinePaths:
    """Paths of one config (``params.paths`` plus the names derived from it). All relative to the repo root."""

    paths: Any
    scan_name: str
    experiment: str

    def dataset_zarr(self, dataset: str) -> Path:
        """The pair store of ``dataset`` (``tin_balls`` or ``wafers``)."""
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
        return Path(getattr(self.paths, f"{dataset}_zarr"))

    def run_dir(self, dataset: str, *, experiment: str | None = None, seed: int | None = None) -> Path:
        """``<models_dir>/<experiment>_<dataset>[_s<seed>]`` (the seed suffix only for an explicit seed)."""
        name = f"{experiment or self.experiment}_{dataset}" + (f"_s{seed}" if seed is not None else "")
        return Path(self.paths.models_dir) / name

    def checkpoint(self, dataset: str) -> Path:
        """The best checkpoint of the pipeline's training run on ``dataset``."""
        return self.run_dir(dataset) / "best.ckpt"

    def training_files(self, dataset: str) -> dict[str, Path]:
        """``best``/``last`` checkpoints, ``metrics_json`` and ``curves`` (CSV) of the training run on ``dataset``."""
        run = self.run_dir(dataset)
        return {"best": run / "best.ckpt", "last": run / "last.ckpt", "metrics_json": run / "metrics.json",
                "curves": run / "metrics.csv"}

    @property
    def scan(self) -> Path:
        """The synthetic wafer scan (OME-Zarr)."""
        return Path(self.paths.scans_dir) / f"{self.scan_name}.ome.zarr"

    def denoised(self, source: str | Path, method: str) -> Path:
        """Where ``source`` denoised with ``method`` goes: ``<processed_dir>/<stem>.<method>.ome.zarr``."""
        return Path(self.paths.processed_dir) / f"{scan_stem(source)}.{method}.ome.zarr"

    @property
    def metrics_dir(self) -> Path:
        """Folder of the evaluation tables."""
        return Path(self.paths.reports_dir) / "metrics"

    @property
    def report(self) -> Path:
        """The HTML report."""
        return Path(self.paths.reports_dir) / "index.html"

    def __getattr__(self, name: str) -> Path:
        # the base paths (``tin_balls_manifest``, ``noise_model``, ...) straight from the config
        if name.startswith("_") or name in ("paths", "scan_name", "experiment"):
            raise AttributeError(name)
        return Path(getattr(self.paths, name))


def run_record(first_output: str | Path, stage: str) -> Path:
    """The run record of ``stage`` (time, host, duration: what changes run to run), beside its first output."""
    return Path(first_output).parent / f"{stage}.run.json"


def pipeline_paths(params: Any) -> PipelinePaths:
    """The :class:`PipelinePaths` of a validated config (``sem_core.config.Params``)."""
    return PipelinePaths(paths=params.paths, scan_name=params.scan.name, experiment=params.train.experiment)
