"""Train/val/test splits of dataset indices: random (fixed by a generator) or contiguous blocks.

``"contiguous"`` cuts the items, taken in acquisition order, into three consecutive blocks
(train, then val, then the held-out test block), optionally with ``gap`` dropped items between
blocks, so no training frame neighbours a test frame: the honest protocol for generalisation to a
later session. ``"random"`` permutes the items first (neighbouring frames land on both sides).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["make_split", "SPLIT_NAMES", "SplitMode"]

SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")
SplitMode = Literal["random", "contiguous"]


def _split_sizes(n: int, fractions: Sequence[float]) -> tuple[int, int]:
    fr = np.asarray(list(fractions), dtype=float)
    if fr.shape != (3,) or np.any(fr < 0) or abs(fr.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {list(fractions)}")
    n_val = int(round(fr[1] * n))
    n_test = int(round(fr[2] * n))
    if n >= 3:
        n_val = max(n_val, 1 if fr[1] > 0 else 0)
        n_test = max(n_test, 1 if fr[2] > 0 else 0)
    # train keeps at least one item
    while n >= 1 and n_val + n_test > n - 1:
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        elif n_test > 0:
            n_test -= 1
    return n_val, n_test


def make_split(
    n: int,
    *,
    rng: np.random.Generator | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    mode: SplitMode = "random",
    gap: int = 0,
) -> dict[str, list[int]]:
    """Split the indices ``0..n-1`` into disjoint train/val/test lists.

    Parameters
    ----------
    n : int
        Number of items (>= 0), indexed in acquisition order.
    rng : np.random.Generator, optional
        Source of the permutation for ``mode="random"`` (required there; unused for contiguous).
    fractions : sequence of 3 floats
        Fractions for train, val, test; non-negative, summing to 1 (within 1e-6).
    mode : {"random", "contiguous"}
        ``"contiguous"``: train = the first block, val = the next, test = the last.
    gap : int
        Contiguous mode only: items dropped (in no split) between train and val and between val
        and test; the fractions apply to the ``n - 2·gap`` items kept.

    Returns
    -------
    dict[str, list[int]]
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted ascending. With ``gap=0`` they
        cover ``range(n)`` exactly once. When ``n >= 3``, val and test each get at least one item if
        their fraction is positive; train always keeps at least one item when ``n >= 1``.

    Raises
    ------
    ValueError
        If ``n`` or ``gap`` is negative, ``fractions`` is malformed, the mode is unknown, ``rng`` is
        missing for random mode, or the gaps leave no item.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if mode == "random":
        if rng is None:
            raise ValueError("make_split(mode='random') needs an rng")
        n_val, n_test = _split_sizes(n, fractions)
        perm = rng.permutation(n)
        val, test, train = perm[:n_val], perm[n_val : n_val + n_test], perm[n_val + n_test :]
    elif mode == "contiguous":
        if gap < 0:
            raise ValueError(f"gap must be non-negative, got {gap}")
        kept = n - 2 * gap
        if n > 0 and kept < 1:
            raise ValueError(f"gap {gap} leaves no item of {n}")
        n_val, n_test = _split_sizes(max(kept, 0), fractions)
        n_train = max(kept, 0) - n_val - n_test
        train = np.arange(n_train)
        val = np.arange(n_train + gap, n_train + gap + n_val)
        test = np.arange(n - n_test, n)
    else:
        raise ValueError(f"unknown split mode {mode!r}; use 'random' or 'contiguous'")
    return {
        "train": sorted(int(i) for i in train),
        "val": sorted(int(i) for i in val),
        "test": sorted(int(i) for i in test),
    }
