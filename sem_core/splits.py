"""Train/val/test splits of dataset indices, fixed by a generator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["make_split", "SPLIT_NAMES"]

SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")


def make_split(
    n: int,
    *,
    rng: np.random.Generator,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
) -> dict[str, list[int]]:
    """Split the indices ``0..n-1`` into disjoint train/val/test lists.

    Parameters
    ----------
    n : int
        Number of items (>= 0).
    rng : np.random.Generator
        Source of the permutation; the same generator state gives the same split.
    fractions : sequence of 3 floats
        Fractions for train, val, test; non-negative, summing to 1 (within 1e-6).

    Returns
    -------
    dict[str, list[int]]
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted ascending. Together they cover
        ``range(n)`` exactly once. When ``n >= 3``, val and test each get at least one item if their
        fraction is positive; train always keeps at least one item when ``n >= 1``.

    Raises
    ------
    ValueError
        If ``n`` is negative or ``fractions`` is malformed.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
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
    perm = rng.permutation(n)
    val = perm[:n_val]
    test = perm[n_val : n_val + n_test]
    train = perm[n_val + n_test :]
    return {
        "train": sorted(int(i) for i in train),
        "val": sorted(int(i) for i in val),
        "test": sorted(int(i) for i in test),
    }
