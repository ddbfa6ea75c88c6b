"""Gather a finished run's files into a registration bundle: a manifest plus the objects to upload.

Two kinds of runs:

* **pipeline** (``collect_pipeline``): the evaluate stage's tables under ``<reports>/metrics/`` (per-image,
  summary, defect metrics: the pandera tables, read back validated), its ``provenance.json``, the HTML report, the
  test images of each evaluated dataset (noisy + clean from the dataset store; the methods' outputs where the
  report kept them in ``panels.npz``) and every synthetic scan with its denoised outputs (OME-Zarr, copied file by
  file, never loaded whole).
* **batch** (``collect_batch``): one published ``<outputs>/<batch>/`` folder of the batch flow (``metrics.csv``,
  ``provenance.json``, ``<item>.<method>.ome.zarr``) and, where the inbox still holds it, each item's input.

The run id is a hash of the run's provenance record, so collecting the same results twice gives the same id
(registration is idempotent on it).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Bundle", "collect_pipeline", "collect_batch", "run_id_for", "safe_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(text: str) -> str:
    """A plain object/layer name: odd characters become ``_``, no leading dot, at most 128 characters."""
    out = _UNSAFE.sub("_", str(text)).lstrip(".-") or "_"
    return out[:128]


def run_id_for(kind: str, provenance: Mapping[str, Any]) -> str:
    """``<kind>-<24 hex>``: SHA-256 of the canonical provenance record (without per-item errors)."""
    record = {k: v for k, v in provenance.items() if k != "errors"}
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return f"{kind}-" + hashlib.sha256(f"{kind}\0{text}".encode()).hexdigest()[:24]


@dataclass
class Bundle:
    """What :func:`sem_review.client.register_bundle` uploads: ``files`` (object key -> local file), then the
    ``manifest``. ``workdir`` holds files written for the occasion and is removed by :meth:`cleanup`."""

    manifest: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    workdir: Path | None = None

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    def add_tree(self, key: str, folder: Path) -> None:
        """Every file under ``folder`` as ``key/<relative path>`` (hidden files skipped)."""
        for f in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            rel = f.relative_to(folder).as_posix()
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            self.files[f"{key}/{rel}"] = f

    def cleanup(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def strip_paths(obj: Any) -> Any:
    """Absolute filesystem paths in a provenance record become ``<abs>/<name>`` (reads never expose paths)."""
    if isinstance(obj, str):
        return f"<abs>/{Path(obj).name}" if obj.startswith("/") and len(obj) > 1 and "\n" not in obj else obj
    if isinstance(obj, Mapping):
        return {k: strip_paths(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strip_paths(v) for v in obj]
    return obj


def created_at(provenance: Mapping[str, Any], folder: Path, *records: str) -> str:
    """When the run was made (ISO 8601, UTC): ``provenance["created"]`` where an older output has it, else the
    ``started`` of a run record beside the outputs (``<stage>.run.json``; content-hashed outputs hold no time),
    else the provenance file's modification time."""
    import datetime as dt

    if provenance.get("created"):
        return str(provenance["created"])
    for name in records:
        rec = folder / name
        if rec.is_file():
            started = json.loads(rec.read_text()).get("started")
            if started:
                return str(started)
    mtime = (folder / "provenance.json").stat().st_mtime
    return dt.datetime.fromtimestamp(mtime, tz=dt.timezone.utc).isoformat(timespec="seconds")


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def _multiscale_info(path: Path, component: str = "") -> tuple[int, int, int]:
    """(height, width, levels) of an OME-Zarr multiscale group (levels counted from its NGFF metadata)."""
    import zarr

    group = zarr.open_group(path, mode="r")
    for part in [p for p in component.split("/") if p]:
        group = group[part]
    ms = group.attrs.get("ome", {}).get("multiscales") or group.attrs.get("multiscales")
    paths = [d["path"] for d in ms[0]["datasets"]] if ms else sorted(k for k in group.array_keys())
    shape = group[paths[0]].shape
    if [str(i) for i in range(len(paths))] != paths:
        raise ValueError(f"{path}/{component}: pyramid levels must be named 0..n-1, got {paths}")
    return int(shape[-2]), int(shape[-1]), len(paths)


def write_layer(folder: Path, image: np.ndarray, *, name: str, pixel_size_nm: float = 1.0) -> tuple[int, int, int]:
    """Write one 2-D image as an OME-Zarr multiscale (levels down to ~128 px); returns (h, w, levels)."""
    from sem_core.io.ome_zarr import build_pyramid, create_multiscale, write_level0_block

    image = np.asarray(image)
    h, w = image.shape
    n_levels = max(1, min(6, int(np.log2(max(1, min(h, w) // 128))) + 1))
    group = create_multiscale(folder, shape=(h, w), dtype=image.dtype, chunks=(256, 256), n_levels=n_levels,
                              pixel_size_nm=pixel_size_nm, name=name)
    write_level0_block(group, image, row=0, col=0)
    build_pyramid(group, method="mean")
    return h, w, n_levels


# ---- pipeline --------------------------------------------------------------------------------------------------

def collect_pipeline(
    *,
    metrics_dir: Path,
    report: Path | None,
    datasets: Mapping[str, Path],
    scans_dir: Path | None = None,
    processed_dir: Path | None = None,
    max_images_per_dataset: int = 64,
) -> Bundle:
    """Bundle of an evaluated pipeline run (see the module docstring).

    Parameters
    ----------
    metrics_dir : Path
        The evaluate stage's output folder (``per_image.parquet``, ``summary.parquet``, ``provenance.json``, ...).
    report : Path, optional
        The HTML report (``reports/index.html``); registered when it exists.
    datasets : mapping name -> Path
        Dataset stores (``tin_balls.zarr``, ``wafers.zarr``) whose evaluated test images are registered.
    scans_dir, processed_dir : Path, optional
        Synthetic scans (``<name>.ome.zarr``) and their denoised outputs (``<name>.<method>.ome.zarr`` or
        ``<name>_<method>.ome.zarr``).

    Raises
    ------
    FileNotFoundError
        When ``metrics_dir`` lacks the evaluate stage's tables or provenance.
    """
    from sem_core.evaluate import metric_label, read_metrics
    from sem_core.io.zarr_store import open_dataset
    from sem_core.report import load_panels

    metrics_dir = Path(metrics_dir)
    prov_file = metrics_dir / "provenance.json"
    if not prov_file.is_file():
        raise FileNotFoundError(f"no provenance at {prov_file}: run `sem-denoise evaluate` first")
    provenance = json.loads(prov_file.read_text())
    frames = read_metrics(metrics_dir)
    run_id = run_id_for("pipeline", provenance)
    work = Path(tempfile.mkdtemp(prefix="sem-register-"))
    bundle = Bundle(manifest={}, workdir=work)
    try:
        summary = [
            {"dataset": r.dataset, "method": metric_label(r.method, r.experiment), "metric": r.metric,
             "mean": _finite(r.mean), "ci_low": _finite(r.ci_low), "ci_high": _finite(r.ci_high), "n": int(r.n)}
            for r in frames["summary"].itertuples(index=False)
        ]
        tables = {}
        for name in ("per_image", "summary", "defect_metrics", "dose"):
            f = metrics_dir / f"{name}.parquet"
            if f.is_file():
                tables[name] = f"tables/{name}.parquet"
                bundle.files[tables[name]] = f
        report_key = None
        if report is not None and Path(report).is_file():
            report_key = "report.html"
            bundle.files[report_key] = Path(report)
        panels = {}
        if (metrics_dir / "panels.npz").is_file():
            panels = {(p.dataset, str(p.image_id)): p for p in load_panels(metrics_dir / "panels.npz")}
        per_image = frames["per_image"]
        images, defects = [], []
        for ds_name, ds_path in datasets.items():
            rows = per_image[per_image["dataset"] == ds_name]
            if rows.empty or not Path(ds_path).exists():
                continue
            view = open_dataset(ds_path)
            pixel = float(view.attrs.get("pixel_size_nm") or 1.0)
            table_defects = view.defects
            for index in sorted(rows["image_index"].unique())[:max_images_per_dataset]:
                sel = rows[rows["image_index"] == index]
                raw_id = str(sel["image_id"].iloc[0])
                name = safe_name(raw_id)
                layers = {}
                for layer, arr in (("noisy", view.noisy[int(index)]), ("clean", view.clean[int(index)])):
                    h, w, levels = write_layer(work / ds_name / name / layer, np.asarray(arr), name=layer,
                                               pixel_size_nm=pixel)
                    layers[layer] = f"images/{ds_name}/{name}/{layer}"
                panel = panels.get((ds_name, raw_id))
                if panel is not None:
                    from sem_core.denoise.base import from_unit_float

                    for label, out in panel.outputs.items():
                        lname = safe_name(label)
                        write_layer(work / ds_name / name / lname, from_unit_float(out, view.noisy.dtype),
                                    name=lname, pixel_size_nm=pixel)
                        layers[lname] = f"images/{ds_name}/{name}/{lname}"
                metrics = {metric_label(r["method"], r["experiment"]): {
                    k: _finite(v) for k, v in r.items() if k not in
                    ("dataset", "split", "method", "experiment", "image_id", "image_index")}
                    for r in sel.to_dict("records")}
                images.append({"dataset": ds_name, "name": name, "kind": "image", "height": h, "width": w,
                               "levels": levels, "layers": layers, "metrics": metrics})
                defects += _pipeline_defects(frames.get("defect_metrics"), table_defects, ds_name, int(index), name)
        for ds_name in {i["dataset"] for i in images}:
            bundle.add_tree(f"images/{ds_name}", work / ds_name)
        scan_images = _collect_scans(bundle, scans_dir, processed_dir)
        images += scan_images
        methods = sorted({r["method"] for r in summary} | {k for i in scan_images for k in i["layers"]
                                                           if k not in ("noisy", "clean")})
        datasets_seen = sorted({r["dataset"] for r in summary} | {i["dataset"] for i in scan_images})
        input_hashes = {"inputs_hash": provenance.get("inputs_hash"), **dict(provenance.get("datasets") or {})}
        bundle.manifest = {
            "run_id": run_id, "kind": "pipeline", "created": created_at(provenance, metrics_dir, "evaluate.run.json"),
            "params_hash": provenance.get("params_hash", ""), "code_version": provenance.get("code_version", ""),
            "input_hashes": input_hashes, "provenance": strip_paths(provenance), "datasets": datasets_seen,
            "methods": methods,
            "summary": summary, "images": images, "defects": defects, "report_key": report_key, "tables": tables,
        }
    except BaseException:
        bundle.cleanup()
        raise
    return bundle


def _pipeline_defects(defect_metrics: Any, defect_table: Any, dataset: str, index: int, name: str) -> list[dict]:
    """Per-defect rows of one image: bbox from the dataset's defect table, retention per method label."""
    if defect_metrics is None or defect_table is None:
        return []
    from sem_core.evaluate import metric_label

    dm = defect_metrics[(defect_metrics["dataset"] == dataset) & (defect_metrics["image_index"] == index)]
    boxes = defect_table[defect_table["image"] == index].set_index("defect_id")
    out = []
    for defect_id, grp in dm.groupby("defect_id", sort=True):
        if defect_id not in boxes.index:
            continue
        b = boxes.loc[defect_id]
        out.append({"dataset": dataset, "image": name, "defect_id": int(defect_id), "type": str(grp["type"].iloc[0]),
                    "bbox": [int(b["bbox_r0"]), int(b["bbox_c0"]), int(b["bbox_r1"]), int(b["bbox_c1"])],
                    "retention": {metric_label(r.method, r.experiment): _finite(r.contrast_retention)
                                  for r in grp.itertuples(index=False)}})
    return out


def _collect_scans(bundle: Bundle, scans_dir: Path | None, processed_dir: Path | None) -> list[dict]:
    """Each ``<scans_dir>/<stem>.ome.zarr`` with its denoised outputs, copied file by file."""
    if scans_dir is None or not Path(scans_dir).is_dir():
        return []
    images = []
    for scan in sorted(Path(scans_dir).glob("*.ome.zarr")):
        stem = scan.name.removesuffix(".ome.zarr")
        name = safe_name(stem)
        h, w, levels = _multiscale_info(scan)
        base = f"scans/{name}"
        bundle.add_tree(f"{base}/noisy", scan)
        layers = {"noisy": f"{base}/noisy"}
        if (scan / "clean" / "zarr.json").is_file():
            layers["clean"] = f"{base}/noisy/clean"
        if processed_dir is not None and Path(processed_dir).is_dir():
            for out in sorted(Path(processed_dir).glob(f"{stem}[._]*.ome.zarr")):
                method = safe_name(out.name.removesuffix(".ome.zarr")[len(stem) + 1:])
                if not method or method in layers or _multiscale_info(out)[:2] != (h, w):
                    continue
                bundle.add_tree(f"{base}/{method}", out)
                layers[method] = f"{base}/{method}"
        images.append({"dataset": "scans", "name": name, "kind": "scan", "height": h, "width": w, "levels": levels,
                       "layers": layers, "metrics": {}})
    return images


# ---- batch -----------------------------------------------------------------------------------------------------

def collect_batch(output_dir: Path, *, inbox_dir: Path | None = None) -> Bundle:
    """Bundle of one published batch output folder (see the module docstring).

    Raises
    ------
    FileNotFoundError
        When ``output_dir`` is not a finished batch output (no ``provenance.json`` or ``metrics.csv``).
    """
    import pandas as pd
    from scipy import stats

    output_dir = Path(output_dir)
    for needed in ("provenance.json", "metrics.csv"):
        if not (output_dir / needed).is_file():
            raise FileNotFoundError(f"{output_dir} is not a finished batch output: no {needed}")
    provenance = json.loads((output_dir / "provenance.json").read_text())
    table = pd.read_csv(output_dir / "metrics.csv")
    batch = output_dir.name
    run_id = run_id_for("batch", provenance)
    work = Path(tempfile.mkdtemp(prefix="sem-register-"))
    bundle = Bundle(manifest={}, workdir=work)
    try:
        images = []
        metric_cols = ["sigma_in", "sigma_out", "mean_abs_change", "seconds"]
        for item, grp in table.groupby("item", sort=True):
            name = safe_name(item)
            layers, h, w, levels = {}, int(grp["height"].iloc[0]), int(grp["width"].iloc[0]), None
            for r in grp.itertuples(index=False):
                out = output_dir / r.output
                if not (out / "zarr.json").is_file():
                    continue
                method = safe_name(r.method)
                levels = _multiscale_info(out)[2] if levels is None else min(levels, _multiscale_info(out)[2])
                bundle.add_tree(f"items/{name}/{method}", out)
                layers[method] = f"items/{name}/{method}"
            src = Path(inbox_dir) / batch / item if inbox_dir else None
            if src is not None and src.exists():
                if src.is_dir():
                    bundle.add_tree(f"items/{name}/noisy", src)
                    levels = min(levels or 99, _multiscale_info(src)[2])
                else:
                    from sem_core.io.sem_tiff import read_sem_image

                    image = read_sem_image(src)
                    _, _, lv = write_layer(work / name / "noisy", image.data, name="noisy",
                                           pixel_size_nm=image.meta.pixel_size_nm or 1.0)
                    bundle.add_tree(f"items/{name}/noisy", work / name / "noisy")
                    levels = min(levels or 99, lv)
                layers["noisy"] = f"items/{name}/noisy"
            elif layers:  # no input left in the inbox: the first output stands in as the reference layer
                first = next(iter(layers))
                layers = {"noisy": layers[first], **layers}
            if not layers:
                continue
            metrics = {safe_name(r["method"]): {c: _finite(r[c]) for c in metric_cols} for r in grp.to_dict("records")}
            kind = "scan" if src is not None and src.is_dir() else "image"
            images.append({"dataset": safe_name(batch), "name": name, "kind": kind,
                           "height": h, "width": w, "levels": levels or 1, "layers": layers, "metrics": metrics})
        summary = []
        for method, grp in table.groupby("method", sort=True):
            for metric in metric_cols:
                v = grp[metric].to_numpy(float)
                v = v[np.isfinite(v)]
                n = int(v.size)
                mean = float(v.mean()) if n else None
                half = float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n)) if n > 1 else None
                summary.append({"dataset": safe_name(batch), "method": safe_name(method), "metric": metric, "n": n,
                                "mean": mean, "ci_low": None if half is None else mean - half,
                                "ci_high": None if half is None else mean + half})
        tables = {"metrics": "tables/metrics.csv"}
        bundle.files["tables/metrics.csv"] = output_dir / "metrics.csv"
        if (output_dir / "errors.json").is_file():
            provenance = {**provenance, "errors": json.loads((output_dir / "errors.json").read_text())}
        bundle.manifest = {
            "run_id": run_id, "kind": "batch", "created": created_at(provenance, output_dir),
            "params_hash": provenance.get("params_hash", ""), "code_version": provenance.get("code_version", ""),
            "input_hashes": {"batch": provenance.get("inputs_hash")}, "provenance": strip_paths(provenance),
            "datasets": [safe_name(batch)], "methods": sorted({safe_name(m) for m in table["method"]}),
            "summary": summary, "images": images, "defects": [], "report_key": None, "tables": tables,
        }
    except BaseException:
        bundle.cleanup()
        raise
    return bundle
