"""Wafer-like specimens: line/space gratings and contact-hole arrays, rendered window by window.

A :class:`WaferLayout` is built once for a whole image or scan and holds O(rows + cols + defects)
numbers: the grating's offset and direction, the defect list, and a bounded cache of line-edge
profiles. Everything else is a pure function of the global pixel position:

- lines: pixel (r, c) has across-line coordinate ``u = sin θ·r + cos θ·c`` and along-line
  ``v = cos θ·r − sin θ·c`` (θ = ``orientation_deg``; 0 = vertical lines, 90 = horizontal; sin and
  cos are exact at multiples of 90°). Line k spans ``u_k ± cd/2`` plus its rough edges: Palasantzas
  profiles along v, made of blocks of ``B + T`` samples (block b from ``derive_rng(seed, "edge", k,
  side, b)``) joined by a variance-preserving cos/sin cross-fade over T samples, so any stretch of
  an edge costs O(its length), independent of the image size;
- contacts: hole (i, j) sits at ``(off_r + i·p_y, off_c + j·p_x)`` plus a small jitter, with a
  harmonically rough outline; the parameters of the 64 holes ``(i, 64·jb .. 64·jb + 63)`` come from
  ``derive_rng(seed, "holes", i, jb)``;
- defects (:mod:`sem_core.synth.defects`) change the pattern inside disjoint boxes.

The yield comes from the pattern through a clipped distance-to-outline (SE edge effect) computed on
the window plus a halo, so ``render`` of any tiling stitches bit-exactly to the full render.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd

from sem_core.rng import derive_rng
from sem_core.schemas.defects import make_defects_table
from sem_core.synth import defects as _defects
from sem_core.synth.roughness import make_roughness_filter
from sem_core.synth.specimen import Specimen, make_edge_lookup, measure_outline_distance

__all__ = ["WaferLayout", "make_wafer_layout", "render_wafer", "sample_wafer_kwargs"]

_HOLE_BLOCK = 64
_CACHE_BYTES = 48 * 2**20


def _exact_cos_sin(deg: float) -> tuple[float, float]:
    q, rem = divmod(float(deg), 90.0)
    if rem == 0.0:
        return [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)][int(q) % 4]
    rad = math.radians(deg)
    return math.cos(rad), math.sin(rad)


class WaferLayout:
    """Whole-image wafer layout; see the module docstring. Build it with :func:`make_wafer_layout`.

    All lengths are in pixels. ``render(rows, cols)`` is thread-safe.
    """

    def __init__(self, *, shape, seed, pattern, pixel_size_nm, pitch_px, pitch_y_px, cd_px, orientation_deg,
                 ler_sigma_px, ler_xi_px, ler_hurst, hole_roughness_px, hole_jitter_px, levels):
        self.shape = (int(shape[0]), int(shape[1]))
        self.seed, self.pattern, self.pixel_size_nm = int(seed), pattern, float(pixel_size_nm)
        self.pitch_px, self.pitch_y_px, self.cd_px = float(pitch_px), float(pitch_y_px), float(cd_px)
        self.orientation_deg = float(orientation_deg)
        self.ler = (float(ler_sigma_px), float(ler_xi_px), float(ler_hurst))
        self.hole_roughness_px, self.hole_jitter_px = float(hole_roughness_px), float(hole_jitter_px)
        self.levels = dict(levels)
        self.reach = max(2, int(math.ceil(5.0 * self.levels["edge_decay_px"])))
        self.halo = self.reach + 1
        self._edge_table = make_edge_lookup(decay_px=self.levels["edge_decay_px"], reach=self.reach)
        self._cos, self._sin = _exact_cos_sin(orientation_deg)
        layout_rng = derive_rng(self.seed, "layout")
        self.offset = (float(layout_rng.uniform(0, self.pitch_y_px)), float(layout_rng.uniform(0, self.pitch_px)))
        pad = self.halo + 4
        h, w = self.shape
        vs = [self._cos * r - self._sin * c for r in (-pad, h + pad) for c in (-pad, w + pad)]
        self._v_min = math.floor(min(vs)) - 1
        self._n_v = math.ceil(max(vs)) - self._v_min + 3
        self._edge_clip = 0.45 * min(self.cd_px, self.pitch_px - self.cd_px)
        self._block = max(512, 2 ** math.ceil(math.log2(16.0 * self.ler[1])))
        self._trans = self._block // 4
        angle = 0.5 * math.pi * (np.arange(self._trans) + 0.5) / self._trans
        self._fade = (np.cos(angle), np.sin(angle))
        self._filter = make_roughness_filter(
            self._block + self._trans, sigma_px=self.ler[0], xi_px=self.ler[1], hurst=self.ler[2]
        )
        self._cache: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._cache_max = max(256, _CACHE_BYTES // (4 * (self._block + self._trans)))
        self._table: pd.DataFrame | None = None
        self._lock = threading.Lock()
        self.defect_list: list[_defects.Defect] = []
        self._boxes = np.zeros((0, 4), dtype=np.int64)
        self._codes = np.zeros(0, dtype=np.uint8)

    # ---------------------------------------------------------------- lines
    def _edge_block(self, k: int, side: int, block: int) -> np.ndarray:
        key = (int(k), int(side), int(block))
        with self._lock:
            blk = self._cache.get(key)
            if blk is not None:
                self._cache.move_to_end(key)
                return blk
        n = self._block + self._trans
        white = derive_rng(self.seed, "edge", *key).standard_normal(n)
        rough = np.fft.irfft(np.fft.rfft(white) * self._filter, n=n)
        blk = np.clip(rough, -self._edge_clip, self._edge_clip).astype(np.float32)
        with self._lock:
            self._cache[key] = blk
            while len(self._cache) > self._cache_max:
                self._cache.popitem(last=False)
        return blk

    def edge_profile(self, k: int, side: int, start: int, stop: int) -> np.ndarray:
        """Displacement (float64, pixels) of edge ``side`` (0 left, 1 right) of line k at v-indices [start, stop)."""
        size, fade = self._block, self._trans
        out = np.empty(stop - start)
        for blk in range(start // size, (stop - 1) // size + 1):
            lo, hi = max(start, blk * size), min(stop, (blk + 1) * size)
            o = np.arange(lo - blk * size, hi - blk * size)
            seg = self._edge_block(k, side, blk)[o].astype(np.float64)
            head = o < fade
            if head.any():
                prev = self._edge_block(k, side, blk - 1)
                oh = o[head]
                seg[head] = self._fade[0][oh] * prev[size + oh].astype(np.float64) + self._fade[1][oh] * seg[head]
            out[lo - start : hi - start] = seg
        return out

    def line_fields(self, rows: np.ndarray, cols: np.ndarray) -> dict[str, np.ndarray]:
        """Per-pixel line geometry for pixel centres ``rows[:, None], cols[None, :]`` (float64 1-D inputs).

        Returns ``u``, ``v`` (float64), ``k`` (int64: the pixel lies between the centres of lines k
        and k+1), ``right`` (right edge of line k at v) and ``left_next`` (left edge of line k+1).
        """
        R, C = rows[:, None], cols[None, :]
        u = self._sin * R + self._cos * C
        v = self._cos * R - self._sin * C
        u_off, pitch = self.offset[1], self.pitch_px
        k = np.floor((u - u_off) / pitch).astype(np.int64)
        vi = v - self._v_min
        i0 = np.clip(np.floor(vi).astype(np.int64), 0, self._n_v - 2)
        frac = vi - i0
        k_lo, k_hi = int(k.min()), int(k.max()) + 1
        a, b = int(i0.min()), int(i0.max()) + 2
        right_tab = np.stack([self.edge_profile(kk, 1, a, b) for kk in range(k_lo, k_hi)])
        left_tab = np.stack([self.edge_profile(kk, 0, a, b) for kk in range(k_lo + 1, k_hi + 1)])

        flat = (k - k_lo) * (b - a) + (i0 - a)

        def interp(tab: np.ndarray) -> np.ndarray:
            tab = tab.ravel()
            return np.take(tab, flat) * (1.0 - frac) + np.take(tab, flat + 1) * frac

        half = 0.5 * self.cd_px
        right = u_off + k * pitch + half + interp(right_tab)
        left_next = u_off + (k + 1) * pitch - half + interp(left_tab)
        return {"u": u, "v": v, "k": k, "right": right, "left_next": left_next}

    def line_centre(self, k: int) -> float:
        """Nominal across-line coordinate u of line k's centre."""
        return self.offset[1] + k * self.pitch_px

    def uv_to_rc(self, u: float, v: float) -> tuple[float, float]:
        """Map (u, v) line coordinates back to (row, col)."""
        return self._sin * u + self._cos * v, self._cos * u - self._sin * v

    # ---------------------------------------------------------------- contacts
    def _hole_params(self, i_lo: int, i_hi: int, j_lo: int, j_hi: int) -> np.ndarray:
        """float64 (i_hi - i_lo, j_hi - j_lo, 9): jitter r, jitter c, a0, (a_m, b_m) for m = 1..3."""
        out = np.empty((i_hi - i_lo, j_hi - j_lo, 9))
        rel = self.hole_roughness_px / (0.5 * self.cd_px)
        for i in range(i_lo, i_hi):
            for jb in range(j_lo // _HOLE_BLOCK, (j_hi - 1) // _HOLE_BLOCK + 1):
                g = derive_rng(self.seed, "holes", i, jb).standard_normal((_HOLE_BLOCK, 9))
                g[:, :2] = np.clip(g[:, :2] * self.hole_jitter_px, -2 * self.hole_jitter_px, 2 * self.hole_jitter_px)
                g[:, 2] = np.clip(g[:, 2] * rel, -0.15, 0.15)
                g[:, 3:] = np.clip(g[:, 3:] * (rel / math.sqrt(6.0)), -0.08, 0.08)
                j0 = jb * _HOLE_BLOCK
                s0, s1 = max(j_lo, j0), min(j_hi, j0 + _HOLE_BLOCK)
                out[i - i_lo, s0 - j_lo : s1 - j_lo] = g[s0 - j0 : s1 - j0]
        return out

    def hole_centre(self, i: int, j: int) -> tuple[float, float]:
        """Centre (row, col) of hole (i, j), jitter included."""
        p = self._hole_params(i, i + 1, j, j + 1)[0, 0]
        return self.offset[0] + i * self.pitch_y_px + p[0], self.offset[1] + j * self.pitch_px + p[1]

    def hole_fields(self, rows: np.ndarray, cols: np.ndarray) -> dict[str, np.ndarray]:
        """Nearest hole ``i``, ``j`` (int64) and ``inside`` (bool) for pixel centres ``rows[:, None], cols[None, :]``."""
        R, C = rows[:, None], cols[None, :]
        i = np.floor((R - self.offset[0]) / self.pitch_y_px + 0.5).astype(np.int64)
        j = np.floor((C - self.offset[1]) / self.pitch_px + 0.5).astype(np.int64)
        i_lo, j_lo = int(i.min()), int(j.min())
        table = self._hole_params(i_lo, int(i.max()) + 1, j_lo, int(j.max()) + 1)
        flat = (i - i_lo) * table.shape[1] + (j - j_lo)
        p = [np.take(table[..., n].ravel(), flat) for n in range(9)]
        dr = R - (self.offset[0] + i * self.pitch_y_px + p[0])
        dc = C - (self.offset[1] + j * self.pitch_px + p[1])
        rho = np.sqrt(dr * dr + dc * dc)
        safe = np.where(rho > 0, rho, 1.0)
        c1, s1 = np.where(rho > 0, dc / safe, 1.0), dr / safe
        c2, s2 = c1 * c1 - s1 * s1, 2.0 * s1 * c1
        c3, s3 = c2 * c1 - s2 * s1, s2 * c1 + c2 * s1
        shape = 1.0 + p[2] + p[3] * c1 + p[4] * s1 + p[5] * c2 + p[6] * s2 + p[7] * c3 + p[8] * s3
        limit = 0.5 * min(self.pitch_px, self.pitch_y_px) - 1.0 - 2 * self.hole_jitter_px
        radius = np.minimum(0.5 * self.cd_px * shape, limit)
        return {"i": np.broadcast_to(i, rho.shape), "j": np.broadcast_to(j, rho.shape), "inside": rho < radius}

    # ---------------------------------------------------------------- rendering
    def render_base(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Defect-free pattern (bool, raised) of rows [r0, r1) x cols [c0, c1) and the geometry fields used."""
        rows = np.arange(r0, r1, dtype=np.float64)
        cols = np.arange(c0, c1, dtype=np.float64)
        if self.pattern == "lines":
            f = self.line_fields(rows, cols)
            material = (f["u"] < f["right"]) | (f["u"] >= f["left_next"])
        else:
            f = self.hole_fields(rows, cols)
            material = ~f["inside"]
        return np.ascontiguousarray(material), f

    def render_material(self, r0: int, r1: int, c0: int, c1: int, *, with_defects: bool = True):
        """Pattern of rows [r0, r1) x cols [c0, c1) (may extend past the image).

        Returns ``material`` (bool, raised), ``particle`` (bool) and ``mask`` (uint8 defect codes).
        """
        material, fields = self.render_base(r0, r1, c0, c1)
        particle = np.zeros(material.shape, dtype=bool)
        mask = np.zeros(material.shape, dtype=np.uint8)
        if with_defects and len(self.defect_list):
            rows = np.arange(r0, r1, dtype=np.float64)
            cols = np.arange(c0, c1, dtype=np.float64)
            b = self._boxes
            hit = np.nonzero((b[:, 0] < r1) & (b[:, 1] > r0) & (b[:, 2] < c1) & (b[:, 3] > c0))[0]
            for n in hit:
                d = self.defect_list[n]
                br0, br1 = max(r0, d.box[0]), min(r1, d.box[1])
                bc0, bc1 = max(c0, d.box[2]), min(c1, d.box[3])
                sl = (slice(br0 - r0, br1 - r0), slice(bc0 - c0, bc1 - c0))
                sub = {key: val[sl] for key, val in fields.items()}
                foot = _defects.apply_defect(self, d, rows[sl[0]], cols[sl[1]], material[sl], particle[sl], fields=sub)
                mask[sl][foot] = d.code
        return material, particle, mask

    def render(self, rows: slice, cols: slice) -> Specimen:
        """Render the window ``[rows, cols]`` (unit-step slices within the image).

        The window's defect table lists the defects with mask pixels inside it; its bboxes and
        ``size_px`` are in window coordinates, clipped to the window (``defect_id`` matches
        :attr:`defects`, whose bboxes are global).
        """
        h, w = self.shape
        r0, r1, rs = rows.indices(h)
        c0, c1, cs = cols.indices(w)
        if rs != 1 or cs != 1 or r1 <= r0 or c1 <= c0:
            raise ValueError(f"window {rows}, {cols} must be a non-empty unit-step part of the {h}x{w} layout")
        p = self.halo
        material, particle, mask = self.render_material(r0 - p, r1 + p, c0 - p, c1 + p)
        cls = material.astype(np.int8) + particle.astype(np.int8)
        edge = self._edge_table[measure_outline_distance(cls, reach=self.reach)]
        lv = self.levels
        top = np.where(cls == 2, lv["particle_level"], lv["top_level"]) + lv["edge_gain"] * edge
        trench = lv["trench_level"] * (1.0 - lv["trench_shadow"] * edge)
        core = (slice(p, p + r1 - r0), slice(p, p + c1 - c0))
        yield_map = np.clip(np.where(cls > 0, top, trench)[core], 0.0, 1.0).astype(np.float32)
        mask = np.ascontiguousarray(mask[core])
        table = _defects.tabulate_window(self, mask, r0, c0)
        return Specimen(yield_map=yield_map, mask=mask, pattern=material[core].astype(np.uint8), defects=table)

    @property
    def defects(self) -> pd.DataFrame:
        """Global defect table (``DEFECTS_SCHEMA``; bboxes in image coordinates, ``image`` = 0).

        Measured pixel-exactly on first access (about 1 ms per defect) and cached. Defects whose
        pattern change falls entirely outside the image (or is empty) are not listed.
        """
        with self._lock:
            table = self._table
        if table is None:
            table = make_defects_table(
                row for d in self.defect_list if (row := _defects.measure_defect(self, d)) is not None
            )
            with self._lock:
                self._table = table
        return table.copy()


def make_wafer_layout(
    *,
    shape: tuple[int, int],
    seed: int,
    pattern: str = "lines",
    pixel_size_nm: float = 4.0,
    pitch_nm: float = 80.0,
    cd_nm: float = 40.0,
    orientation_deg: float = 0.0,
    ler_sigma_nm: float = 1.5,
    ler_xi_nm: float = 20.0,
    ler_hurst: float = 0.6,
    pitch_y_nm: float | None = None,
    hole_roughness_nm: float = 1.0,
    hole_jitter_nm: float = 0.5,
    defect_density_per_um2: float = 2.0,
    defect_weights: dict[str, float] | None = None,
    top_level: float = 0.42,
    trench_level: float = 0.12,
    particle_level: float = 0.62,
    edge_gain: float = 0.4,
    edge_decay_nm: float = 6.0,
    trench_shadow: float = 0.4,
) -> WaferLayout:
    """Build a wafer layout (lines or contacts) with random defects for an image of ``shape``.

    Physical lengths are in nm and converted with ``pixel_size_nm``. ``pattern="lines"``: ``pitch_nm``
    and ``cd_nm`` (line width) across the lines, ``orientation_deg`` the line direction (0 =
    vertical lines, 90 = horizontal, any angle allowed), LER ``ler_sigma_nm, ler_xi_nm, ler_hurst``.
    ``pattern="contacts"``: hole pitch ``pitch_nm`` along x and ``pitch_y_nm`` (default: same) along
    y, hole diameter ``cd_nm``, outline roughness ``hole_roughness_nm``, placement jitter
    ``hole_jitter_nm`` (orientation is ignored). Defects: Poisson number with mean
    ``defect_density_per_um2 * area``, types drawn with ``defect_weights`` (default equal among the
    types of the pattern). Levels are relative SE yields; the edge term decays with ``edge_decay_nm``.
    Every random stream derives from ``seed``; the same arguments give the same layout.
    """
    if pattern not in ("lines", "contacts"):
        raise ValueError(f"pattern must be 'lines' or 'contacts', got {pattern!r}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be two positive ints, got {shape}")
    px = float(pixel_size_nm)
    pitch, cd = pitch_nm / px, cd_nm / px
    pitch_y = (pitch_y_nm if pitch_y_nm is not None else pitch_nm) / px
    if pitch < 4 or not 2.0 <= cd <= pitch - 2.0:
        raise ValueError(
            f"need pitch >= 4 px and 2 px <= cd <= pitch - 2 px; got pitch {pitch:.2f} px, cd {cd:.2f} px "
            f"(pitch_nm={pitch_nm}, cd_nm={cd_nm}, pixel_size_nm={pixel_size_nm})"
        )
    if pattern == "contacts" and not cd <= pitch_y - 2.0:
        raise ValueError(f"hole diameter {cd:.2f} px does not fit the y pitch {pitch_y:.2f} px")
    levels = dict(top_level=top_level, trench_level=trench_level, particle_level=particle_level,
                  edge_gain=edge_gain, edge_decay_px=edge_decay_nm / px, trench_shadow=trench_shadow)
    layout = WaferLayout(
        shape=shape, seed=seed, pattern=pattern, pixel_size_nm=px, pitch_px=pitch, pitch_y_px=pitch_y, cd_px=cd,
        orientation_deg=orientation_deg, ler_sigma_px=ler_sigma_nm / px, ler_xi_px=max(ler_xi_nm / px, 1e-3),
        ler_hurst=ler_hurst, hole_roughness_px=hole_roughness_nm / px, hole_jitter_px=hole_jitter_nm / px,
        levels=levels,
    )
    layout.defect_list = _defects.place_defects(
        layout, rng=derive_rng(int(seed), "defects"), density_per_um2=defect_density_per_um2, weights=defect_weights
    )
    layout._boxes = np.array([d.box for d in layout.defect_list], dtype=np.int64).reshape(-1, 4)
    layout._codes = np.array([d.code for d in layout.defect_list], dtype=np.uint8)
    return layout


def render_wafer(*, shape: tuple[int, int], rng: np.random.Generator, **layout_kwargs: Any) -> Specimen:
    """Render a whole wafer image: a layout seeded from ``rng`` (one draw), rendered in one window."""
    seed = int(rng.integers(0, 2**62))
    return make_wafer_layout(shape=shape, seed=seed, **layout_kwargs).render(slice(None), slice(None))


def sample_wafer_kwargs(
    rng: np.random.Generator,
    *,
    pixel_size_nm_range: tuple[float, float] = (2.0, 6.0),
    pitch_nm_range: tuple[float, float] = (60.0, 200.0),
    pitch_px_range: tuple[float, float] = (10.0, 48.0),
    duty_range: tuple[float, float] = (0.35, 0.6),
    contacts_fraction: float = 0.35,
    axis_aligned_fraction: float = 0.8,
    ler_sigma_nm_range: tuple[float, float] = (0.5, 2.5),
    ler_xi_nm_range: tuple[float, float] = (10.0, 40.0),
    ler_hurst_range: tuple[float, float] = (0.3, 0.9),
    defect_density_per_um2: float = 4.0,
) -> dict[str, Any]:
    """Draw keyword arguments of :func:`make_wafer_layout` for one diverse dataset image.

    The pitch is drawn in nm, then the pixel size is kept inside ``pixel_size_nm_range`` and such
    that the pitch spans ``pitch_px_range`` pixels; the CD is ``duty * pitch``; orientation is 0 or
    90 with probability ``axis_aligned_fraction``, else uniform in [0, 180).
    """
    pattern = "contacts" if rng.random() < contacts_fraction else "lines"
    pitch = float(rng.uniform(*pitch_nm_range))
    lo = max(pixel_size_nm_range[0], pitch / pitch_px_range[1])
    hi = min(pixel_size_nm_range[1], pitch / pitch_px_range[0])
    px = float(rng.uniform(lo, hi)) if hi > lo else float(np.clip(pitch / 16.0, *pixel_size_nm_range))
    duty = float(rng.uniform(*duty_range))
    cd = float(np.clip(duty * pitch, 2.5 * px, pitch - 2.5 * px))
    orientation = float(rng.choice([0.0, 90.0])) if rng.random() < axis_aligned_fraction else float(rng.uniform(0, 180))
    return {
        "pattern": pattern,
        "pixel_size_nm": px,
        "pitch_nm": pitch,
        "cd_nm": cd,
        "orientation_deg": orientation,
        "ler_sigma_nm": float(rng.uniform(*ler_sigma_nm_range)),
        "ler_xi_nm": float(rng.uniform(*ler_xi_nm_range)),
        "ler_hurst": float(rng.uniform(*ler_hurst_range)),
        "defect_density_per_um2": float(defect_density_per_um2),
    }
