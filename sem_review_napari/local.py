"""Offline source: local pipeline outputs shown as if they came from the review service.

``sem-denoise review PATH`` where PATH is a repository checkout (``reports/metrics``, ``data/interim/scans``,
``data/processed``), a metrics folder (``summary.parquet``, ``per_image.parquet``, ``defect_metrics.parquet``,
``panels.npz``, ``provenance.json`` as written by ``sem-denoise evaluate``), one ``.ome.zarr`` or a folder of
them. Each metrics folder becomes one run (its images are the evaluated images; pixels exist for the images
kept in ``panels.npz``); OME-Zarr scans form a run ``local:scans`` whose denoised outputs
``<scan>_<method>.ome.zarr`` are the methods.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

from .model import compute_deltas, multiscale_levels

__all__ = ["LocalSource"]

NOISY_LABEL = "noisy_input"
_ID_METRICS = ("dataset", "split", "method", "experiment", "image_id", "image_index", "seconds", "mpix_per_s")


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _label(method: str, experiment: str) -> str:
    from sem_core.evaluate.summary import metric_label

    return metric_label(method, experiment)


def _is_ome_zarr(p: Path) -> bool:
    return p.is_dir() and p.name.endswith(".ome.zarr") and (p / "zarr.json").exists()


class LocalSource:
    """Runs, images, defects and pixels read from local files (see module docstring)."""

    def __init__(self, path: str | Path) -> None:
        root = Path(path)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder to review")
        self.root = root
        self.label = str(root)
        if _is_ome_zarr(root):
            zarrs = [root]
            metric_dirs: list[Path] = []
        else:
            cands = [root, root / "metrics", root / "reports" / "metrics"]
            cands += sorted(p for p in (root / "reports").glob("*") if p.is_dir()) if (root / "reports").is_dir() else []
            metric_dirs = list(dict.fromkeys(d for d in cands if (d / "summary.parquet").is_file()))
            zarrs = sorted({p for d in (root, root / "data" / "interim" / "scans", root / "data" / "processed")
                            for p in (d.glob("*.ome.zarr") if d.is_dir() else []) if _is_ome_zarr(p)})
        if not metric_dirs and not zarrs:
            raise FileNotFoundError(f"{root}: no metric tables (summary.parquet) and no .ome.zarr images found")
        self._runs: dict[str, dict[str, Any]] = {}
        self._images: dict[str, list[dict[str, Any]]] = {}
        self._defects: dict[str, list[dict[str, Any]]] = {}
        self._pixels: dict[str, dict[str, Any]] = {}  # image id -> {method: levels or a callable giving them}
        for d in metric_dirs:
            self._add_metrics_run(d)
        if zarrs:
            self._add_scans_run(zarrs)

    # --- Source protocol --------------------------------------------------------------------------
    def runs(self, *, kind: str | None = None, dataset: str | None = None) -> list[dict[str, Any]]:
        runs = [r for r in self._runs.values() if (not kind or r["kind"] == kind)
                and (not dataset or dataset in r["datasets"])]
        return sorted(runs, key=lambda r: r["created"], reverse=True)

    def run(self, run_id: str) -> dict[str, Any]:
        try:
            return self._runs[run_id]
        except KeyError:
            raise KeyError(f"no local run {run_id!r} under {self.root}") from None

    def compare(self, a: str, b: str) -> list[dict[str, Any]]:
        return compute_deltas(self.run(a), self.run(b))

    def images(self, run_id: str) -> list[dict[str, Any]]:
        self.run(run_id)
        return self._images[run_id]

    def defects(self, run_id: str) -> list[dict[str, Any]]:
        self.run(run_id)
        return self._defects[run_id]

    def levels(self, image: dict[str, Any], method: str) -> list[Any]:
        layers = self._pixels.get(str(image["id"]), {})
        if method not in layers:
            raise KeyError(f"{image['id']}: no local pixels for {method!r} (only images kept in panels.npz "
                           f"and OME-Zarr scans have them)")
        return layers[method]

    # --- discovery --------------------------------------------------------------------------------
    def _add_metrics_run(self, folder: Path) -> None:
        import pandas as pd

        run_id = f"local:{folder.relative_to(self.root) if folder != self.root else folder.name}"
        summary = pd.read_parquet(folder / "summary.parquet")
        per_image = pd.read_parquet(folder / "per_image.parquet") if (folder / "per_image.parquet").exists() else None
        prov = {}
        if (folder / "provenance.json").exists():
            prov = json.loads((folder / "provenance.json").read_text())
        created = prov.get("created") or _dt.datetime.fromtimestamp(
            (folder / "summary.parquet").stat().st_mtime, _dt.timezone.utc).isoformat(timespec="seconds")
        rows = [{"dataset": r.dataset, "method": _label(r.method, r.experiment), "metric": r.metric,
                 "mean": _num(r.mean), "ci_low": _num(r.ci_low), "ci_high": _num(r.ci_high), "n": int(r.n)}
                for r in summary.itertuples(index=False)]
        methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != NOISY_LABEL))
        self._runs[run_id] = {
            "id": run_id, "kind": "pipeline", "created": created, "params_hash": prov.get("params_hash", ""),
            "code_version": prov.get("code_version", ""), "datasets": sorted({r["dataset"] for r in rows}),
            "methods": methods, "summary": rows, "provenance": prov, "input_hashes": prov.get("datasets", {}),
        }
        panels = self._read_panels(folder / "panels.npz")
        images: dict[str, dict[str, Any]] = {}
        index_of: dict[str, tuple[str, int]] = {}
        if per_image is not None:
            metric_cols = [c for c in per_image.columns if c not in _ID_METRICS]
            for r in per_image.to_dict("records"):
                iid = f"{r['dataset']}/{r['image_id']}"
                im = images.setdefault(iid, {"id": iid, "run_id": run_id, "dataset": r["dataset"],
                                             "name": str(r["image_id"]), "kind": "image", "height": None,
                                             "width": None, "levels": 1, "methods": [], "has_clean": True,
                                             "metrics": {}})
                index_of[iid] = (r["dataset"], int(r["image_index"]))
                label = _label(r["method"], r["experiment"])
                if label != NOISY_LABEL:  # the scored noisy input is the noisy panel, not a method layer
                    im["methods"].append(label)
                im["metrics"][label] = {c: _num(r[c]) for c in metric_cols}
        for p in panels:
            iid = f"{p.dataset}/{p.image_id}"
            im = images.setdefault(iid, {"id": iid, "run_id": run_id, "dataset": p.dataset, "name": p.image_id,
                                         "kind": "image", "levels": 1,
                                         "methods": [m for m in p.outputs if m != NOISY_LABEL],
                                         "has_clean": True, "metrics": {}})
            im["height"], im["width"] = (int(s) for s in p.noisy.shape)
            self._pixels[iid] = {"noisy": [p.noisy], "clean": [p.clean],
                                 **{k: [v] for k, v in p.outputs.items() if k != NOISY_LABEL}}
        self._images[run_id] = list(images.values())
        self._defects[run_id] = self._read_defects(folder, index_of, panels)

    @staticmethod
    def _read_panels(file: Path) -> list[Any]:
        if not file.exists():
            return []
        from sem_core.report import load_panels

        return load_panels(file)

    def _read_defects(self, folder: Path, index_of: dict[str, tuple[str, int]], panels: list[Any]) -> list[dict]:
        import pandas as pd

        file = folder / "defect_metrics.parquet"
        if not file.exists():
            return []
        table = pd.read_parquet(file)
        boxes = self._dataset_boxes(sorted({d for d, _ in index_of.values()}))
        panel_boxes = {f"{p.dataset}/{p.image_id}": list(p.boxes) for p in panels}
        out: dict[tuple[str, int], dict[str, Any]] = {}
        for r in table.to_dict("records"):
            iid = f"{r['dataset']}/{r['image_id']}"
            key = (iid, int(r["defect_id"]))
            d = out.setdefault(key, {"image_id": iid, "defect_id": int(r["defect_id"]), "type": r["type"],
                                     "bbox": None, "retention": {}})
            d["retention"][_label(r["method"], r["experiment"])] = _num(r["contrast_retention"])
            d["bbox"] = boxes.get((r["dataset"], int(r["image_index"]), int(r["defect_id"])))
        by_image: dict[str, list[dict[str, Any]]] = {}
        for d in sorted(out.values(), key=lambda d: (d["image_id"], d["defect_id"])):
            by_image.setdefault(d["image_id"], []).append(d)
        for iid, ds in by_image.items():  # no dataset store: the report panels' boxes are the same defects
            pb = panel_boxes.get(iid, [])
            if any(d["bbox"] is None for d in ds) and len(pb) == len(ds):
                for d, b in zip(ds, pb):
                    d["bbox"] = [int(v) for v in b]
        return [d for ds in by_image.values() for d in ds if d["bbox"] is not None]

    def _dataset_boxes(self, datasets: list[str]) -> dict[tuple[str, int, int], list[int]]:
        boxes: dict[tuple[str, int, int], list[int]] = {}
        for name in datasets:
            store = self.root / "data" / "interim" / f"{name}.zarr"
            if not (store / "defects.parquet").exists():
                continue
            from sem_core.io.zarr_store import open_dataset

            table = open_dataset(store).defects
            for r in table.itertuples(index=False):
                boxes[(name, int(r.image), int(r.defect_id))] = [int(r.bbox_r0), int(r.bbox_c0), int(r.bbox_r1),
                                                                  int(r.bbox_c1)]
        return boxes

    def _add_scans_run(self, zarrs: list[Path]) -> None:
        import pandas as pd
        import zarr

        stems = {p.name[: -len(".ome.zarr")]: p for p in zarrs}
        outputs: dict[str, dict[str, Path]] = {}
        bases = []
        for stem, p in stems.items():
            base = next((s for s in stems if s != stem and stem.startswith(s + "_")), None)
            if base is None:
                bases.append(stem)
            else:
                outputs.setdefault(base, {})[stem[len(base) + 1:]] = p
        run_id = "local:scans"
        images, defects, latest = [], [], 0.0
        for stem in bases:
            p = stems[stem]
            group = zarr.open_group(p, mode="r")
            levels = multiscale_levels(group)
            layers: dict[str, Any] = {"noisy": levels}
            has_clean = "clean" in group and "ome" in dict(group["clean"].attrs)
            if has_clean:
                layers["clean"] = multiscale_levels(group["clean"])
            for method, q in sorted(outputs.get(stem, {}).items()):
                layers[method] = multiscale_levels(zarr.open_group(q, mode="r"))
            iid = f"scans/{stem}"
            self._pixels[iid] = layers
            images.append({"id": iid, "run_id": run_id, "dataset": "scans", "name": stem, "kind": "scan",
                           "height": int(levels[0].shape[0]), "width": int(levels[0].shape[1]),
                           "levels": len(levels), "methods": sorted(outputs.get(stem, {})),
                           "has_clean": has_clean, "metrics": {}})
            latest = max(latest, (p / "zarr.json").stat().st_mtime)
            if (p / "defects.parquet").exists():
                table = pd.read_parquet(p / "defects.parquet")
                defects += [{"image_id": iid, "defect_id": int(r.defect_id), "type": str(r.type),
                             "bbox": [int(r.bbox_r0), int(r.bbox_c0), int(r.bbox_r1), int(r.bbox_c1)],
                             "retention": {}} for r in table.itertuples(index=False)]
        methods = sorted({m for im in images for m in im["methods"]})
        self._runs[run_id] = {
            "id": run_id, "kind": "pipeline", "created": _dt.datetime.fromtimestamp(latest, _dt.timezone.utc)
            .isoformat(timespec="seconds"), "params_hash": "", "code_version": "", "datasets": ["scans"] if images
            else [], "methods": methods, "summary": [], "provenance": {}, "input_hashes": {},
        }
        self._images[run_id] = images
        self._defects[run_id] = defects


