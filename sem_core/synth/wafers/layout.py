"""The wafer layout object: whole-image state, window rendering (pattern, defects, SE yield) and its defect table."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

from sem_core.rng import derive_rng
from sem_core.schemas.defects import make_defects_table
from sem_core.synth import defects as _defects
from sem_core.synth.roughness import make_roughness_filter
from sem_core.synth.specimen import Specimen, make_edge_lookup, measure_outline_distance

from .contacts import ContactGeometry
from .lines import LineGeometry, _exact_cos_sin

__all__ = ["WaferLayout"]

_CACHE_BYTES = 48 * 2**20


class WaferLayout(LineGeometry, ContactGeometry):
    """Whole-image wafer layout; see the docstring of :mod:`sem_core.synth.wafers`. Build it with
    :func:`make_wafer_layout`.

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
