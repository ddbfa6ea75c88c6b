"""Build a wafer layout from physical parameters (nm), and render a whole wafer image in one call."""

from __future__ import annotations

from typing import Any

import numpy as np

from sem_core.rng import derive_rng
from sem_core.synth import defects as _defects
from sem_core.synth.specimen import Specimen

from .layout import WaferLayout

__all__ = ["make_wafer_layout", "render_wafer"]


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
