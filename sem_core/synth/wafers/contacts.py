"""Contact-hole arrays: per-hole jitter and harmonic outline roughness, per-pixel nearest hole and inside test."""

from __future__ import annotations

import math

import numpy as np

from sem_core.rng import derive_rng

__all__ = ["ContactGeometry"]

_HOLE_BLOCK = 64



class ContactGeometry:
    """Contact-hole part of :class:`sem_core.synth.wafers.WaferLayout` (a mixin).

    Uses the layout attributes annotated below (set by ``WaferLayout.__init__``).
    """

    seed: int
    offset: tuple[float, float]
    pitch_px: float
    pitch_y_px: float
    cd_px: float
    hole_roughness_px: float
    hole_jitter_px: float

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
