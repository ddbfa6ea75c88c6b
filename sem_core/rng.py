"""Deterministic random-number generators derived from one project seed.

Every stage derives its own generator from ``(seed, stage name, item index, ...)``
so that adding or reordering items never changes another item's randomness.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["derive_rng", "derive_seed_sequence"]


def _key_to_int(key: object) -> int:
    """Map a key (int or string-like) to a stable 64-bit unsigned integer."""
    if isinstance(key, (int, np.integer)) and int(key) >= 0:
        return int(key)
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def derive_seed_sequence(seed: int, *keys: object) -> np.random.SeedSequence:
    """Return a ``SeedSequence`` for ``seed`` spawned along ``keys``.

    Parameters
    ----------
    seed : int
        The project seed (``params.yaml: seed``), non-negative.
    *keys : int or str
        Path of the stream, e.g. ``("synth_wafers", 17)``. Strings are hashed
        with BLAKE2b, so the mapping is stable across processes and platforms.
    """
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return np.random.SeedSequence(entropy=seed, spawn_key=tuple(_key_to_int(k) for k in keys))


def derive_rng(seed: int, *keys: object) -> np.random.Generator:
    """Return an independent ``np.random.Generator`` (PCG64) for ``(seed, *keys)``.

    Same ``seed`` and ``keys`` give a bit-identical stream in any process.
    """
    return np.random.Generator(np.random.PCG64(derive_seed_sequence(seed, *keys)))
