"""Put one image's panels into a napari viewer: noisy, each method, clean, difference maps, defect boxes.

Panels sit in napari's grid mode (one viewbox per panel, all driven by the viewer's single camera, so zoom
and pan are linked). Every intensity panel shares one contrast range (linked ``contrast_limits``), the
difference maps another, symmetric one. Multiscale images (OME-Zarr scans) become multiscale layers over
lazy zarr/dask levels: napari reads only the chunks of the level it draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .model import contrast_range, defect_boxes

__all__ = ["Panels", "show_image", "MAX_SHAPES"]

MAX_SHAPES = 1000
"""Above this many defects an image's boxes are drawn as unlabelled square points (a Shapes layer gets slow)."""

DEFECT_COLOURS = {"bridge": "red", "break": "orange", "pinch": "yellow", "particle": "cyan",
                  "missing_contact": "magenta", "merged_contact": "lime"}


@dataclass
class Panels:
    """What :func:`show_image` added: layer names per role and the shared ranges."""

    image_id: str
    intensity: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    boxes: list[str] = field(default_factory=list)
    contrast: tuple[float, float] = (0.0, 1.0)
    difference_range: tuple[float, float] = (-1.0, 1.0)
    missing: dict[str, str] = field(default_factory=dict)


def _lazy(levels: Sequence[Any]) -> list[Any]:
    import dask.array as da

    out = []
    for a in levels:
        if isinstance(a, np.ndarray):
            out.append(da.from_array(a, chunks=a.shape))
        else:
            out.append(da.from_zarr(a))
    return out


def _diff_levels(out: Sequence[Any], ref: Sequence[Any]) -> list[Any]:
    return [o.astype(np.float32) - r.astype(np.float32) for o, r in zip(_lazy(out), _lazy(ref))]


def _data(levels: Sequence[Any]) -> tuple[Any, bool]:
    return (list(levels), True) if len(levels) > 1 else (levels[0], False)


def _add_boxes(viewer: Any, boxes: Mapping[str, Any], name: str) -> Any:
    colours, features = _box_style(boxes)
    text = {"string": "{label}", "size": 8, "color": "white", "anchor": "upper_left"}
    if len(boxes["data"]) > MAX_SHAPES:
        corners = np.stack(boxes["data"])
        centres = corners.mean(axis=1)
        sizes = np.ptp(corners, axis=1).max(axis=1) + 2.0
        # no text labels here: thousands of strings slow every redraw; hovering shows a point's features
        return viewer.add_points(centres, name=name, symbol="square", size=sizes, face_color="transparent",
                                 border_color=colours, border_width=0.15, features=features)
    return viewer.add_shapes(boxes["data"], shape_type="rectangle", name=name, edge_color=colours or "white",
                             edge_width=1.5, face_color="transparent", features=features, text=text)


def show_image(viewer: Any, source: Any, image: Mapping[str, Any], defects: Sequence[Mapping[str, Any]], *,
               difference: bool = True, boxes: bool = True) -> Panels:
    """Replace the viewer's layers with the panels of ``image`` in grid mode.

    Parameters
    ----------
    viewer : napari.Viewer
    source : Source
        Gives the levels of each layer (``noisy``, ``clean``, method names).
    image : dict
        A contract ``Image`` (``id``, ``methods``, ``has_clean``).
    defects : list of dict
        The run's defects (filtered to this image here).
    difference : bool
        Add ``method - clean`` maps (``method - noisy`` without a clean reference).
    boxes : bool
        Add a defect layer above every panel (grid stride 2) when the image has defects.

    Returns
    -------
    Panels
    """
    grid = viewer.canvas.grid
    iid = str(image["id"])
    panels = Panels(image_id=iid)
    roles = ["noisy", *image.get("methods", []), *(["clean"] if image.get("has_clean") else [])]
    levels: dict[str, list[Any]] = {}
    for role in roles:
        try:
            levels[role] = list(source.levels(image, role))
        except (KeyError, FileNotFoundError, OSError, ValueError, RuntimeError) as exc:
            panels.missing[role] = str(exc)
    if not levels:
        grid.enabled = False
        viewer.layers.clear()
        return panels
    ref_role = "clean" if "clean" in levels else "noisy"
    ref_panels = [levels[r][-1] for r in ("noisy", "clean") if r in levels] or [next(iter(levels.values()))[-1]]
    panels.contrast = contrast_range(ref_panels)
    has_boxes = boxes and any(str(d.get("image_id")) == iid for d in defects)
    methods = [r for r in levels if r not in ("noisy", "clean")]
    diffs: dict[str, list[Any]] = {}
    if difference:
        for m in methods:
            if m != ref_role:
                diffs[m] = _diff_levels(levels[m], levels[ref_role])
    if diffs:
        sample = np.concatenate([np.abs(np.asarray(d[-1], dtype=np.float32)).ravel() for d in diffs.values()])
        bound = float(np.percentile(sample, 99.5)) or 1.0
        panels.difference_range = (-bound, bound)
    plan = _plan(levels, diffs, ref_role, defects if has_boxes else None, iid)
    reuse = _reusable(viewer, plan)
    if reuse:  # same panels as shown (next/previous image): swap the data, keep the visuals and the view
        _update_panels(viewer, panels, plan)
    else:
        grid.enabled = False
        with viewer.layers.batched_update():  # one scene-graph update for all panels, not one per layer
            _add_panels(viewer, panels, plan)
        grid.stride = 2 if has_boxes else 1
        grid.spacing = 0.02  # a thin gap between panels
    for lay in viewer.layers:
        lay.visible = True
    grid.enabled = True
    if not reuse:
        viewer.reset_view()
    viewer.layers.selection.active = viewer.layers[panels.intensity[0]]
    return panels


def _plan(levels: Mapping[str, list[Any]], diffs: Mapping[str, list[Any]], ref_role: str,
          defects: Sequence[Mapping[str, Any]] | None, iid: str) -> list[dict[str, Any]]:
    """The layers to show, in order: ``{name, kind: image|diff|boxes, data, multiscale, boxes}``."""
    order = [(r, levels[r], "image") for r in levels] + [(f"{m} - {ref_role}", d, "diff") for m, d in diffs.items()]
    plan = []
    for name, lv, kind in order:
        data, multiscale = _data(lv)
        plan.append({"name": name, "kind": kind, "data": data, "multiscale": multiscale})
        if defects is not None:
            method = name if kind == "image" else name.split(" - ")[0]
            boxes = defect_boxes(defects, iid, method if method not in ("noisy", "clean") else None)
            plan.append({"name": f"defects: {name}", "kind": "boxes", "boxes": boxes,
                         "points": len(boxes["data"]) > MAX_SHAPES})
    return plan


def _reusable(viewer: Any, plan: Sequence[Mapping[str, Any]]) -> bool:
    from napari.layers import Points

    layers = list(viewer.layers)
    if [lay.name for lay in layers] != [p["name"] for p in plan]:
        return False
    for lay, p in zip(layers, plan):
        if p["kind"] == "boxes":
            if isinstance(lay, Points) != p["points"] or p["points"]:
                return False
        elif lay.multiscale != p["multiscale"] or _shape0(lay.data) != _shape0(p["data"]):
            return False
    return True


def _shape0(data: Any) -> tuple[int, ...]:
    return tuple((data[0] if isinstance(data, (list, tuple)) else data).shape)


def _box_style(boxes: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    colours = [DEFECT_COLOURS.get(t, "white") for t in boxes["type"]]
    return colours, {"type": boxes["type"], "retention": boxes["retention"], "label": boxes["text"]}


def _update_panels(viewer: Any, panels: Panels, plan: Sequence[Mapping[str, Any]]) -> None:
    import pandas as pd

    for p in plan:
        layer = viewer.layers[p["name"]]
        if p["kind"] == "boxes":
            colours, features = _box_style(p["boxes"])
            layer.data = p["boxes"]["data"]
            layer.features = pd.DataFrame(features)
            if colours:
                layer.edge_color = colours
            layer.refresh_text()
            panels.boxes.append(p["name"])
            continue
        layer.data = p["data"]
        _record(panels, p)
    for name in panels.intensity + panels.differences:
        rng = panels.contrast if name in panels.intensity else panels.difference_range
        viewer.layers[name].contrast_limits = rng


def _record(panels: Panels, p: Mapping[str, Any]) -> None:
    if p["kind"] == "image":
        panels.intensity.append(p["name"])
        if p["name"] not in ("noisy", "clean"):
            panels.methods.append(p["name"])
    else:
        panels.differences.append(p["name"])


def _add_panels(viewer: Any, panels: Panels, plan: Sequence[Mapping[str, Any]]) -> None:
    from napari.experimental import link_layers

    viewer.layers.clear()
    intensity_layers, diff_layers = [], []
    for p in plan:
        if p["kind"] == "boxes":
            panels.boxes.append(_add_boxes(viewer, p["boxes"], p["name"]).name)
            continue
        image = p["kind"] == "image"
        layer = viewer.add_image(p["data"], multiscale=p["multiscale"], name=p["name"],
                                 colormap="gray" if image else "PiYG",
                                 contrast_limits=panels.contrast if image else panels.difference_range)
        layer.name_overlay.visible = True  # the panel's title in its grid cell
        (intensity_layers if image else diff_layers).append(layer)
        _record(panels, p)
    for group in (intensity_layers, diff_layers):
        if len(group) > 1:
            link_layers(group, ("contrast_limits", "gamma"))
