"""Tin-balls-like specimen: tin spheres on carbon, seen by the SE detector.

Geometry: spheres resting on the substrate with log-normal diameters, placed at random (overlap
limited) until the projected coverage reaches the target; a height buffer decides which sphere is
seen where they overlap. Yield (relative SE yield in [0, 1]):

- ball pixels: ``ball_level * min(sec θ, sec θ_max) ** secant_exponent + edge_gain * exp(-d / edge_decay_px)``
  with θ the local tilt of the sphere surface (secant law, capped at ``tilt_deg``) and ``d`` the
  distance inwards from the outline (SE edge effect, I(d) = c + a e^(−b d));
- carbon: ``background_level * (1 + background_roughness * f)`` with ``f`` a smooth unit-variance field.

Defaults follow the real Tin-balls pairs (5.83 nm/px): diameter median ≈ 22 px, σ_ln ≈ 0.9,
coverage ≈ 0.5, carbon ≈ 30/255, ball interiors ≈ 175/255 (median over ball pixels).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from sem_core.schemas.defects import make_defects_table
from sem_core.synth.specimen import Specimen, make_edge_lookup, measure_outline_distance

__all__ = ["render_tin_balls", "place_tin_balls"]


def place_tin_balls(
    *,
    shape: tuple[int, int],
    rng: np.random.Generator,
    median_diameter_px: float = 22.0,
    sigma_ln: float = 0.9,
    coverage: float = 0.5,
    max_overlap: float = 0.15,
    min_diameter_px: float = 3.0,
    max_diameter_fraction: float = 0.45,
    attempts: int = 30,
) -> np.ndarray:
    """Draw ball centres and radii until the projected coverage reaches ``coverage``.

    Diameters are log-normal (median ``median_diameter_px``, log-std ``sigma_ln``), clipped to
    ``[min_diameter_px, max_diameter_fraction * min(shape)]``; centres are uniform in the image. A
    ball is accepted if its centre distance to every placed ball is at least
    ``(r_i + r_j) * (1 - max_overlap)``; otherwise up to ``attempts`` new centres are tried, then the
    diameter is dropped.

    Returns
    -------
    np.ndarray
        float64 (N, 3): centre row, centre col, radius (pixels), in placement order.
    """
    h, w = shape
    if not 0.0 < coverage < 0.95:
        raise ValueError(f"coverage must be in (0, 0.95), got {coverage}")
    target = coverage * h * w
    covered = np.zeros(shape, dtype=bool)
    n_covered = 0
    balls: list[tuple[float, float, float]] = []
    arr = np.empty((0, 3))
    d_max = max(min_diameter_px, max_diameter_fraction * min(h, w))

    def draw() -> float:
        return 0.5 * float(np.clip(rng.lognormal(math.log(median_diameter_px), sigma_ln), min_diameter_px, d_max))

    # first a batch whose nominal disc area equals the target, placed largest first so that big balls
    # still find room; then single balls until the visible coverage reaches the target
    batch: list[float] = []
    while math.pi * sum(x * x for x in batch) < target:
        batch.append(draw())
    queue = sorted(batch, reverse=True)
    for step in range(len(queue) + 20 * int(target / (math.pi / 4 * median_diameter_px**2) + 10)):
        if step >= len(queue) and n_covered >= target:
            break
        radius = queue[step] if step < len(queue) else draw()
        for _ in range(attempts):
            r, c = rng.uniform(0, h), rng.uniform(0, w)
            if len(balls):
                dist = np.hypot(arr[:, 0] - r, arr[:, 1] - c)
                if np.any(dist < (arr[:, 2] + radius) * (1.0 - max_overlap)):
                    continue
            balls.append((r, c, radius))
            arr = np.asarray(balls)
            sl, disc = _disc(shape, r, c, radius)
            n_covered += int(np.count_nonzero(disc & ~covered[sl]))
            covered[sl] |= disc
            break
    return arr.reshape(-1, 3)


def _disc(shape: tuple[int, int], r: float, c: float, radius: float) -> tuple[tuple[slice, slice], np.ndarray]:
    r0, r1 = max(0, int(math.floor(r - radius))), min(shape[0], int(math.ceil(r + radius)) + 1)
    c0, c1 = max(0, int(math.floor(c - radius))), min(shape[1], int(math.ceil(c + radius)) + 1)
    rr = np.arange(r0, r1)[:, None] - r
    cc = np.arange(c0, c1)[None, :] - c
    return (slice(r0, r1), slice(c0, c1)), rr * rr + cc * cc < radius * radius


def render_tin_balls(
    *,
    shape: tuple[int, int] = (442, 512),
    rng: np.random.Generator,
    median_diameter_px: float = 22.0,
    sigma_ln: float = 0.9,
    coverage: float = 0.5,
    max_overlap: float = 0.15,
    edge_gain: float = 0.12,
    edge_decay_px: float = 3.0,
    tilt_deg: float = 60.0,
    secant_exponent: float = 0.5,
    background_level: float = 30.0 / 255.0,
    ball_level: float = 0.575,
    background_roughness: float = 0.25,
    background_scale_px: float = 20.0,
) -> Specimen:
    """Render a Tin-balls-like specimen.

    Parameters
    ----------
    shape : (int, int)
        Image (H, W).
    rng : np.random.Generator
        The only source of randomness (placement, then background).
    median_diameter_px, sigma_ln, coverage, max_overlap
        Ball statistics, see :func:`place_tin_balls`.
    edge_gain, edge_decay_px : float
        SE edge brightening ``a * exp(-d / decay)`` inside each ball outline.
    tilt_deg : float
        Local surface tilt at which the secant shading saturates (0 < tilt_deg < 90).
    secant_exponent : float
        Shading ``(sec θ) ** secant_exponent`` (1 = the pure secant law).
    background_level : float
        Mean carbon yield (default 30/255).
    ball_level : float
        Yield of a ball at normal incidence (its top); the default puts the median over ball
        pixels near 175/255.
    background_roughness, background_scale_px : float
        Relative standard deviation and Gaussian length scale of the smooth carbon variation.

    Returns
    -------
    Specimen
        ``yield_map`` float32 (H, W) in [0, 1], ``mask`` = ``pattern`` = uint8 1 on balls, empty
        defect table.
    """
    if not 0.0 < tilt_deg < 90.0:
        raise ValueError(f"tilt_deg must be in (0, 90), got {tilt_deg}")
    balls = place_tin_balls(
        shape=shape, rng=rng, median_diameter_px=median_diameter_px, sigma_ln=sigma_ln,
        coverage=coverage, max_overlap=max_overlap,
    )
    height = np.full(shape, -np.inf)
    cos_t = np.ones(shape)
    label = np.zeros(shape, dtype=np.int32)
    for i, (r, c, radius) in enumerate(balls, start=1):
        sl, disc = _disc(shape, r, c, radius)
        rr = np.arange(sl[0].start, sl[0].stop)[:, None] - r
        cc = np.arange(sl[1].start, sl[1].stop)[None, :] - c
        depth = np.sqrt(np.clip(radius * radius - rr * rr - cc * cc, 0.0, None))
        top = radius + depth  # the sphere rests on the substrate
        win = disc & (top > height[sl])
        height[sl][win] = top[win]
        cos_t[sl][win] = depth[win] / radius
        label[sl][win] = i
    on_ball = label > 0
    reach = max(2, int(math.ceil(6 * edge_decay_px)))
    edge = make_edge_lookup(decay_px=edge_decay_px, reach=reach)[measure_outline_distance(label, reach=reach)]
    sec = np.minimum(1.0 / np.maximum(cos_t, 1e-9), 1.0 / math.cos(math.radians(tilt_deg)))
    ball_yield = ball_level * sec**secant_exponent + edge_gain * edge
    field = ndi.gaussian_filter(rng.standard_normal(shape), background_scale_px, mode="wrap")
    field /= max(float(field.std()), 1e-12)
    carbon = background_level * (1.0 + background_roughness * field)
    yield_map = np.clip(np.where(on_ball, ball_yield, carbon), 0.0, 1.0).astype(np.float32)
    mask = on_ball.astype(np.uint8)
    return Specimen(yield_map=yield_map, mask=mask, pattern=mask.copy(), defects=make_defects_table())
