"""Patch sampling for training: random augmented patches and fixed validation crops.

Images are held in memory as uint8/uint16 stacks (N, H, W) and converted to float32
in [0, 1] per batch. All randomness comes from the ``np.random.Generator`` passed in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["AUGMENT_CODES", "PatchSampler", "resolve_augment", "apply_dihedral", "crop_validation_images", "to_unit_float"]

AUGMENT_CODES: dict[str, tuple[int, ...]] = {
    "dihedral": tuple(range(8)),
    "scan": (0, 6),
    "none": (0,),
}
"""Dihedral codes (see :func:`apply_dihedral`) each augmentation mode draws from. ``scan`` keeps the
fast-scan axis and its direction (identity and the up-down flip): SEM noise is filtered causally
along the fast axis (left to right), so left-right flips and transposes make patches the microscope
cannot produce."""


def resolve_augment(augment: bool | str) -> str:
    """The mode name of ``augment``: a key of ``AUGMENT_CODES``, or True (``"dihedral"``) / False (``"none"``)."""
    mode = ({True: "dihedral", False: "none"}[augment] if isinstance(augment, bool) else augment)
    if mode not in AUGMENT_CODES:
        raise ValueError(f"augment must be one of {sorted(AUGMENT_CODES)} or a bool, got {augment!r}")
    return mode


def to_unit_float(stack: np.ndarray, *, max_value: float | None = None) -> np.ndarray:
    """Scale an integer stack to float32 in [0, 1] (by ``max_value``, default the dtype's maximum).

    Float input is returned as float32 unchanged.
    """
    if np.issubdtype(stack.dtype, np.floating):
        return stack.astype(np.float32, copy=False)
    scale = float(max_value if max_value is not None else np.iinfo(stack.dtype).max)
    return stack.astype(np.float32) / np.float32(scale)


def apply_dihedral(patch: np.ndarray, code: int) -> np.ndarray:
    """Apply one of the 8 flips/rotations to the last two axes.

    ``rot90`` by ``code % 4``, then a left-right flip if ``code >= 4``.
    """
    out = np.rot90(patch, k=code % 4, axes=(-2, -1))
    if code >= 4:
        out = out[..., ::-1]
    return out


class PatchSampler:
    """Draws (noisy, clean) training patches with random position and flip/rot90.

    Parameters
    ----------
    noisy, clean : ndarray, shape (N, H, W), integer or float
        Training images (already restricted to the training split).
    patch_size : int
        Side P of the square patches.
    max_value : float, optional
        Grey value that maps to 1.0 (default: the dtype's maximum).
    shifts : sequence of (int, int), optional
        Per-image integer shift (dy, dx) of the clean image relative to the noisy one:
        the clean patch is cut at (r + dy, c + dx) when the noisy patch is cut at (r, c).
    augment : {"dihedral", "scan", "none"} or bool
        Random transform per patch (the same for noisy and clean), drawn from ``AUGMENT_CODES[augment]``;
        ``True`` means ``"dihedral"``, ``False`` ``"none"``.
    focus_boxes : ndarray, shape (K, 5), int, optional
        Regions to oversample, one row ``(image, r0, c0, r1, c1)`` per box (``image`` indexes the
        stacks; half-open pixel ranges), e.g. the defects of the training wafers.
    focus_fraction : float
        Probability that a patch is placed on a random focus box (its centre at least P/4 from the
        patch border, where the image allows); the others are uniform. 0 draws exactly as without boxes.
    """

    def __init__(
        self,
        noisy: np.ndarray,
        clean: np.ndarray,
        *,
        patch_size: int,
        max_value: float | None = None,
        shifts: Sequence[tuple[int, int]] | None = None,
        augment: bool | str = True,
        focus_boxes: np.ndarray | None = None,
        focus_fraction: float = 0.0,
    ) -> None:
        if noisy.shape != clean.shape or noisy.ndim != 3:
            raise ValueError(f"noisy {noisy.shape} and clean {clean.shape} must be equal (N, H, W) stacks")
        n, h, w = noisy.shape
        self.shifts = np.zeros((n, 2), dtype=np.int64) if shifts is None else np.asarray(shifts, dtype=np.int64)
        if self.shifts.shape != (n, 2):
            raise ValueError(f"shifts must have shape ({n}, 2), got {self.shifts.shape}")
        max_dy, max_dx = np.abs(self.shifts).max(axis=0)
        if patch_size + 2 * max_dy > h or patch_size + 2 * max_dx > w:
            raise ValueError(f"patch_size {patch_size} (+ shifts) does not fit images of {h}x{w}")
        self.noisy, self.clean = noisy, clean
        self.patch_size, self.max_value = patch_size, max_value
        self.codes = np.asarray(AUGMENT_CODES[resolve_augment(augment)], dtype=np.int64)
        if not 0.0 <= focus_fraction < 1.0:
            raise ValueError(f"focus_fraction must be in [0, 1), got {focus_fraction}")
        boxes = np.zeros((0, 5), np.int64) if focus_boxes is None else np.asarray(focus_boxes, dtype=np.int64)
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            raise ValueError(f"focus_boxes must have shape (K, 5) (image, r0, c0, r1, c1), got {boxes.shape}")
        if len(boxes) and (boxes[:, 0].min() < 0 or boxes[:, 0].max() >= n):
            raise ValueError(f"focus_boxes reference images outside 0..{n - 1}")
        if focus_fraction > 0 and not len(boxes):
            raise ValueError("focus_fraction > 0 needs at least one focus box")
        self.focus_boxes, self.focus_fraction = boxes, float(focus_fraction)

    def sample(self, batch_size: int, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw a batch.

        Returns
        -------
        noisy, clean : ndarray, float32, shape (batch_size, 1, P, P), in [0, 1]
        """
        n, h, w = self.noisy.shape
        p = self.patch_size
        idx = rng.integers(0, n, size=batch_size)
        if len(self.codes) == 8:  # the stream of earlier versions, so old seeds give the same patches
            codes = rng.integers(0, 8, size=batch_size)
        elif len(self.codes) == 1:
            codes = np.zeros(batch_size, dtype=np.int64)
        else:
            codes = self.codes[rng.integers(0, len(self.codes), size=batch_size)]
        focus = None
        if self.focus_fraction > 0:
            on_box = rng.random(batch_size) < self.focus_fraction
            focus = np.where(on_box, rng.integers(0, len(self.focus_boxes), size=batch_size), -1)
            idx = np.where(on_box, self.focus_boxes[np.maximum(focus, 0), 0], idx)
        out_n = np.empty((batch_size, 1, p, p), dtype=np.float32)
        out_c = np.empty_like(out_n)
        for b, i in enumerate(idx):
            dy, dx = self.shifts[i]
            r_lo, r_hi = max(0, -dy), min(h - p, h - p - dy)
            c_lo, c_hi = max(0, -dx), min(w - p, w - p - dx)
            if focus is not None and focus[b] >= 0:
                _, r0, c0, r1, c1 = self.focus_boxes[focus[b]]
                m = p // 4
                r = int(np.clip((r0 + r1) // 2 - rng.integers(m, p - m), r_lo, r_hi))
                c = int(np.clip((c0 + c1) // 2 - rng.integers(m, p - m), c_lo, c_hi))
            else:
                r = rng.integers(r_lo, r_hi + 1)
                c = rng.integers(c_lo, c_hi + 1)
            pn = to_unit_float(self.noisy[i, r : r + p, c : c + p], max_value=self.max_value)
            pc = to_unit_float(self.clean[i, r + dy : r + dy + p, c + dx : c + dx + p], max_value=self.max_value)
            out_n[b, 0] = apply_dihedral(pn, int(codes[b]))
            out_c[b, 0] = apply_dihedral(pc, int(codes[b]))
        return out_n, out_c


def crop_validation_images(
    noisy: np.ndarray, clean: np.ndarray, *, size: int, multiple: int, max_value: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed validation set: each image centre-cropped to ``min(side, size)`` rounded down to ``multiple``.

    Parameters
    ----------
    noisy, clean : ndarray, shape (N, H, W)
    size : int
        Largest crop side (keeps CPU validation cheap); use a large value for whole images.
    multiple : int
        The network's input multiple (2**depth).

    Returns
    -------
    noisy, clean : ndarray, float32, shape (N, 1, Hc, Wc), in [0, 1]
    """
    _, h, w = noisy.shape
    hc, wc = (min(h, size) // multiple) * multiple, (min(w, size) // multiple) * multiple
    if hc == 0 or wc == 0:
        raise ValueError(f"validation images of {h}x{w} are smaller than the input multiple {multiple}")
    r0, c0 = (h - hc) // 2, (w - wc) // 2
    sl = (slice(None), slice(r0, r0 + hc), slice(c0, c0 + wc))
    return (to_unit_float(noisy[sl], max_value=max_value)[:, None],
            to_unit_float(clean[sl], max_value=max_value)[:, None])
