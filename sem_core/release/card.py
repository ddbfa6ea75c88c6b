"""The release card: what the model was trained on, how, and how it scored on the held-out block."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["make_release_card"]

DATASET = "tin_balls (real SEM pairs, seoleuns/SEMdenoising, MIT, doi:10.1088/1361-6501/ad7e41)"


def make_release_card(*, candidate: str, seed: int, recipe: Mapping[str, Any], info: Mapping[str, Any],
                      image_ids: Sequence[str], split: Mapping[str, Sequence[int]], split_mode: str,
                      data_hash: str, metrics: Mapping[str, Any], name: str) -> dict[str, Any]:
    """JSON-ready card for :func:`sem_core.checkpoint.export_release` (architecture and date are added there).

    ``training_data`` lists store indices and image ids of the train/val/test blocks, so an evaluation can
    check that a held-out image was never trained on (:func:`sem_core.evaluate.heldout.check_overlap`).
    """
    ids = lambda key: [str(image_ids[i]) for i in split[key]]  # noqa: E731
    return {
        "name": name,
        "experiment": f"release candidate {candidate}, seed {seed}",
        "training_data": {
            "dataset": DATASET, "split_mode": split_mode, "data_hash": data_hash,
            "train_indices": list(map(int, split["train"])), "val_indices": list(map(int, split["val"])),
            "test_indices": list(map(int, split["test"])),
            "train_ids": ids("train"), "val_ids": ids("val"), "test_ids": ids("test"),
        },
        "input": "8-bit grey SEM image scaled to [0, 1] (data bar removed, G channel)",
        "recipe": dict(recipe),
        "training": dict(info),
        "metrics": dict(metrics),
        "device": "cpu",
        "script": "sem-denoise release",
    }
