"""Defects of wafer layouts: random placement, pixel-exact application, per-window tables.

Each defect acts only inside its box (half-open global rows/cols, kept disjoint from every other
defect's box), by a rule evaluated per pixel from the layout's analytic geometry, so a defect looks
the same in any window. Its mask is the set of pixels whose pattern differs from the defect-free
pattern (a particle: its whole footprint):

- ``bridge``: material across the space between lines k and k+1 for v in [v0, v1);
- ``break``: line k removed for v in [v0, v1);
- ``pinch``: line k narrowed from both edges by ``depth * 4 t (1 - t)``, t = (v - v0) / (v1 - v0);
- ``particle``: a bright blob (rough disc) anywhere, drawn over the pattern;
- ``missing_contact``: hole (i, j) filled; ``merged_contact``: a channel joining two neighbouring holes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sem_core.schemas.defects import DEFECT_TYPES, make_defects_table

if TYPE_CHECKING:
    from sem_core.synth.wafers import WaferLayout

__all__ = ["Defect", "LINE_DEFECTS", "CONTACT_DEFECTS", "place_defects", "apply_defect", "measure_defect", "tabulate_window"]

LINE_DEFECTS = ("bridge", "break", "pinch", "particle")
CONTACT_DEFECTS = ("missing_contact", "merged_contact", "particle")


@dataclass(slots=True)
class Defect:
    """One defect: ``box`` = (r0, r1, c0, c1) where it acts; ``bbox`` = (r0, c0, r1, c1) of its mask in the image."""

    type: str
    box: tuple[int, int, int, int]
    params: dict[str, Any]
    defect_id: int = -1
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)
    size_px: int = 0
    code: int = field(init=False)

    def __post_init__(self) -> None:
        self.code = DEFECT_TYPES[self.type]

    def row(self) -> dict[str, Any]:
        r0, c0, r1, c1 = self.bbox
        return {"defect_id": self.defect_id, "type": self.type, "bbox_r0": r0, "bbox_c0": c0,
                "bbox_r1": r1, "bbox_c1": c1, "size_px": self.size_px}


def apply_defect(layout: WaferLayout, d: Defect, rows: np.ndarray, cols: np.ndarray,
                 material: np.ndarray, particle: np.ndarray, *, fields: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Apply ``d`` in place to ``material``/``particle`` (bool views of pixel centres ``rows x cols``).

    ``fields``: the layout's line or hole fields of exactly these pixels, if already computed.
    Returns the defect's mask pixels there (bool, same shape).
    """
    p = d.params
    if d.type == "particle":
        R, C = rows[:, None] - p["r"], cols[None, :] - p["c"]
        rho = np.sqrt(R * R + C * C)
        safe = np.where(rho > 0, rho, 1.0)
        c1, s1 = np.where(rho > 0, C / safe, 1.0), R / safe
        c2, s2 = c1 * c1 - s1 * s1, 2.0 * s1 * c1
        c3, s3 = c2 * c1 - s2 * s1, s2 * c1 + c2 * s1
        h = p["harmonics"]
        foot = rho < p["radius"] * (1.0 + h[0] * c2 + h[1] * s2 + h[2] * c3 + h[3] * s3)
        material |= foot
        particle |= foot
        return foot
    if d.type in ("bridge", "break", "pinch"):
        f = fields if fields is not None else layout.line_fields(rows, cols)
        v0, v1, k = p["v0"], p["v1"], p["k"]
        along = (f["v"] >= v0) & (f["v"] < v1)
        if d.type == "bridge":
            new = material | (along & (f["k"] == k))
        else:
            right_half = (f["k"] == k) & (f["u"] < f["right"])
            left_half = (f["k"] == k - 1) & (f["u"] >= f["left_next"])
            if d.type == "break":
                cut = along & (right_half | left_half)
            else:
                t = (f["v"] - v0) / (v1 - v0)
                bite = p["depth"] * 4.0 * t * (1.0 - t)
                cut = along & ((right_half & (f["right"] - f["u"] <= bite)) | (left_half & (f["u"] - f["left_next"] < bite)))
            new = material & ~cut
    elif d.type == "missing_contact":
        f = fields if fields is not None else layout.hole_fields(rows, cols)
        new = material | ((f["i"] == p["i"]) & (f["j"] == p["j"]) & f["inside"])
    else:  # merged_contact: channel of half-width hw along the segment between the two centres
        (ra, ca), (rb, cb) = layout.hole_centre(*p["a"]), layout.hole_centre(*p["b"])
        dr, dc = rb - ra, cb - ca
        R, C = rows[:, None] - ra, cols[None, :] - ca
        t = np.clip((R * dr + C * dc) / (dr * dr + dc * dc), 0.0, 1.0)
        er, ec = R - t * dr, C - t * dc
        new = material & ~(er * er + ec * ec < p["hw"] * p["hw"])
    foot = new != material
    material[...] = new
    return foot


def _box_of(points: list[tuple[float, float]], margin: float) -> tuple[int, int, int, int]:
    rs, cs = [q[0] for q in points], [q[1] for q in points]
    return (math.floor(min(rs) - margin), math.ceil(max(rs) + margin) + 1,
            math.floor(min(cs) - margin), math.ceil(max(cs) + margin) + 1)


def _draw_defect(layout: WaferLayout, kind: str, x: np.ndarray) -> Defect:
    """Defect of ``kind`` from 8 numbers ``x``: 3 uniforms in [0, 1), 4 particle harmonics, a uniform."""
    h, w = layout.shape
    r, c = float(x[0]) * h, float(x[1]) * w
    size, harmonics, coin = float(x[2]), x[3:7], float(x[7])
    cd, pitch = layout.cd_px, layout.pitch_px
    if kind == "particle":
        radius = max(1.5, (0.3 + 0.6 * size) * cd)
        return Defect(kind, _box_of([(r, c)], 1.45 * radius + 2), {"r": r, "c": c, "radius": radius, "harmonics": harmonics})
    if kind in ("bridge", "break", "pinch"):
        u = layout._sin * r + layout._cos * c
        v = layout._cos * r - layout._sin * c
        t = (u - layout.offset[1]) / pitch
        k = math.floor(t) if kind == "bridge" else math.floor(t + 0.5)
        lengths = {"bridge": (0.6, 1.5), "break": (0.5, 1.5), "pinch": (1.5, 3.0)}[kind]
        length = max(2.0 if kind != "pinch" else 4.0, (lengths[0] + (lengths[1] - lengths[0]) * size) * cd)
        v0, v1 = v - 0.5 * length, v + 0.5 * length
        if kind == "bridge":
            u0, u1 = layout.line_centre(k), layout.line_centre(k + 1)
        else:
            u0, u1 = layout.line_centre(k) - 0.5 * pitch, layout.line_centre(k) + 0.5 * pitch
        corners = [layout.uv_to_rc(uu, vv) for uu in (u0, u1) for vv in (v0, v1)]
        params = {"k": k, "v0": v0, "v1": v1, "depth": (0.2 + 0.15 * coin) * cd}
        return Defect(kind, _box_of(corners, 2.0), params)
    i = math.floor((r - layout.offset[0]) / layout.pitch_y_px + 0.5)
    j = math.floor((c - layout.offset[1]) / pitch + 0.5)
    reach = 0.5 * min(pitch, layout.pitch_y_px) + 2.0  # holes never reach past half a pitch from the nominal centre

    def nominal(ii: int, jj: int) -> tuple[float, float]:
        return layout.offset[0] + ii * layout.pitch_y_px, layout.offset[1] + jj * pitch

    if kind == "missing_contact":
        return Defect(kind, _box_of([nominal(i, j)], reach), {"i": i, "j": j})
    i2, j2 = (i, j + 1) if coin < 0.5 else (i + 1, j)
    params = {"a": (i, j), "b": (i2, j2), "hw": (0.25 + 0.15 * size) * cd}
    return Defect(kind, _box_of([nominal(i, j), nominal(i2, j2)], reach), params)


def place_defects(layout: WaferLayout, *, rng: np.random.Generator, density_per_um2: float,
                  weights: dict[str, float] | None = None) -> list[Defect]:
    """Draw a Poisson number of defects (mean ``density_per_um2`` x image area) and keep those that fit.

    A candidate is dropped if its box meets an accepted one (1-pixel gap). Accepted defects get ids
    0.. in acceptance order; their exact bbox and size are measured later (:func:`measure_defect`),
    and one that changes no image pixel (e.g. a bridge across an already closed space) never
    appears in a table.
    """
    kinds = LINE_DEFECTS if layout.pattern == "lines" else CONTACT_DEFECTS
    weights = dict(weights or {})
    unknown = set(weights) - set(DEFECT_TYPES)
    if unknown:
        raise ValueError(f"unknown defect types in weights: {sorted(unknown)}; known: {list(DEFECT_TYPES)}")
    wts = np.array([float(weights.get(k, 1.0 if not weights else 0.0)) for k in kinds])
    if density_per_um2 < 0 or wts.sum() <= 0 or (wts < 0).any():
        raise ValueError(f"invalid defect density {density_per_um2} or weights {weights} for pattern {layout.pattern}")
    h, w = layout.shape
    n = int(rng.poisson(density_per_um2 * h * w * (layout.pixel_size_nm / 1000.0) ** 2))
    kind_idx = rng.choice(len(kinds), size=n, p=wts / wts.sum())
    numbers = np.concatenate([rng.random((n, 3)), np.clip(0.08 * rng.standard_normal((n, 4)), -0.15, 0.15),
                              rng.random((n, 1))], axis=1)
    candidates = [_draw_defect(layout, kinds[int(q)], x) for q, x in zip(kind_idx, numbers)]
    cell, grid, accepted = 64, {}, []
    for d in sorted(candidates, key=lambda d: (d.box[2], d.box[0])):  # ids run left to right
        r0, r1, c0, c1 = d.box
        cells = [(a, b) for a in range((r0 - 1) // cell, r1 // cell + 1) for b in range((c0 - 1) // cell, c1 // cell + 1)]
        near = {m for q in cells for m in grid.get(q, ())}
        if any(accepted[m].box[0] <= r1 and accepted[m].box[1] >= r0 and accepted[m].box[2] <= c1
               and accepted[m].box[3] >= c0 for m in near):
            continue
        d.defect_id = len(accepted)
        for q in cells:
            grid.setdefault(q, []).append(d.defect_id)
        accepted.append(d)
    return accepted


def measure_defect(layout: WaferLayout, d: Defect) -> dict[str, Any] | None:
    """Table row of ``d`` with its exact mask bbox (global) and size; None if it changes no image pixel."""
    h, w = layout.shape
    r0, r1, c0, c1 = d.box
    material, fields = layout.render_base(r0, r1, c0, c1)
    particle = np.zeros(material.shape, dtype=bool)
    foot = apply_defect(layout, d, np.arange(r0, r1, dtype=np.float64), np.arange(c0, c1, dtype=np.float64),
                        material, particle, fields=fields)
    ir0, ic0 = max(0, -r0), max(0, -c0)
    inside = foot[ir0 : max(ir0, h - r0), ic0 : max(ic0, w - c0)]
    if not inside.any():
        return None
    rs, cs = np.nonzero(inside.any(axis=1))[0], np.nonzero(inside.any(axis=0))[0]
    gr0, gc0 = r0 + ir0, c0 + ic0
    d.bbox = (gr0 + int(rs[0]), gc0 + int(cs[0]), gr0 + int(rs[-1]) + 1, gc0 + int(cs[-1]) + 1)
    d.size_px = int(np.count_nonzero(inside))
    return d.row()


def tabulate_window(layout: WaferLayout, mask: np.ndarray, r0: int, c0: int) -> pd.DataFrame:
    """Defect table of a window whose top-left global pixel is (r0, c0), from its rendered ``mask``.

    Bboxes and sizes are in window coordinates, clipped to the window.
    """
    h, w = mask.shape
    rows = []
    bb = layout._boxes  # (r0, r1, c0, c1) boxes where each defect acts
    hit = np.nonzero((bb[:, 0] < r0 + h) & (bb[:, 1] > r0) & (bb[:, 2] < c0 + w) & (bb[:, 3] > c0))[0]
    for n in hit:
        d = layout.defect_list[n]
        br0, br1, bc0, bc1 = d.box
        a0, a1 = max(br0, r0) - r0, min(br1, r0 + h) - r0
        b0, b1 = max(bc0, c0) - c0, min(bc1, c0 + w) - c0
        sub = mask[a0:a1, b0:b1] == d.code
        if not sub.any():
            continue
        rs, cs = np.nonzero(sub.any(axis=1))[0], np.nonzero(sub.any(axis=0))[0]
        rows.append({"defect_id": d.defect_id, "type": d.type, "bbox_r0": a0 + int(rs[0]), "bbox_c0": b0 + int(cs[0]),
                     "bbox_r1": a0 + int(rs[-1]) + 1, "bbox_c1": b0 + int(cs[-1]) + 1,
                     "size_px": int(np.count_nonzero(sub))})
    return make_defects_table(rows)
