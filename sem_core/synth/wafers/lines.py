"""Line/space gratings: rough line edges (Palasantzas blocks with cross-fades) and per-pixel line geometry."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from sem_core.rng import derive_rng

if TYPE_CHECKING:
    import threading
    from collections import OrderedDict

__all__ = ["LineGeometry"]


def _exact_cos_sin(deg: float) -> tuple[float, float]:
    q, rem = divmod(float(deg), 90.0)
    if rem == 0.0:
        return [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)][int(q) % 4]
    rad = math.radians(deg)
    return math.cos(rad), math.sin(rad)


class LineGeometry:
    """Line-grating part of :class:`sem_core.synth.wafers.WaferLayout` (a mixin).

    Uses the layout attributes annotated below (the edge state is set up by ``WaferLayout.__init__``).
    """

    seed: int
    offset: tuple[float, float]
    pitch_px: float
    cd_px: float
    _cos: float
    _sin: float
    _v_min: int
    _n_v: int
    _edge_clip: float
    _block: int
    _trans: int
    _fade: tuple[np.ndarray, np.ndarray]
    _filter: np.ndarray
    _cache: OrderedDict[tuple[int, int, int], np.ndarray]
    _cache_max: int
    _lock: threading.Lock

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
