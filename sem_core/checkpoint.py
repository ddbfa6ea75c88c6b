"""Training checkpoints (safe to load) and small fp16 release files.

A training checkpoint is a ``torch.save`` dict of tensors and plain Python types only,
so it loads with ``torch.load(..., weights_only=True)``:
``{"format", "model", "optimizer", "scheduler", "rng", "step", "epoch", "config",
"data_hash", "val_metrics", "state", "provenance"}``.
A release is ``<name>.safetensors`` (float16 weights, the card in its metadata) plus
``<name>.json`` (the card: architecture, training data, experiment, metrics, date).
"""

from __future__ import annotations

import datetime as _dt
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .models.unet import UNet

__all__ = [
    "CHECKPOINT_FORMAT", "MAX_RELEASE_BYTES", "export_release", "load_checkpoint", "load_model", "save_checkpoint",
]

CHECKPOINT_FORMAT = "sem-denoise-ckpt-1"
MAX_RELEASE_BYTES = 20 * 1024 * 1024


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` (tensors and plain types only) atomically to ``path``.

    The file is written to ``path.tmp`` and renamed, so an interrupted save never
    leaves a truncated checkpoint. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint with ``weights_only=True`` (no arbitrary code is unpickled).

    Raises
    ------
    ValueError
        If the file cannot be read safely or is not a sem-denoise checkpoint.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ValueError(f"cannot load checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
    return ckpt


def _card_path(path: Path) -> Path:
    return path.with_suffix(".json")


def export_release(model: nn.Module, path: str | Path, card: Mapping[str, Any]) -> Path:
    """Write ``model``'s weights as float16 safetensors plus a JSON card beside it.

    Parameters
    ----------
    model : UNet
        The trained model (its ``config`` gives the architecture).
    path : str or Path
        Target ``.safetensors`` file; the card goes to the same name with ``.json``.
    card : mapping
        JSON-serialisable facts: training data, experiment, metrics, ...; ``architecture``
        and ``date`` are filled in when absent.

    Raises
    ------
    ValueError
        If the file would exceed 20 MB (MAX_RELEASE_BYTES) or the card is not JSON-serialisable.
    """
    path = Path(path)
    full_card = {"architecture": dict(getattr(model, "config", {})), **dict(card)}
    full_card.setdefault("date", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    full_card.setdefault("dtype", "float16")
    try:
        card_text = json.dumps(full_card, indent=2, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"release card for {path} is not JSON-serialisable: {exc}") from exc
    tensors = {
        k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    if size > MAX_RELEASE_BYTES:
        raise ValueError(f"release {path} would be {size / 1e6:.1f} MB > {MAX_RELEASE_BYTES / 1e6:.0f} MB")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"card": card_text})
    _card_path(path).write_text(card_text + "\n")
    return path


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[UNet, dict[str, Any]]:
    """Load a U-Net for inference from a release ``.safetensors`` or a training ``.ckpt``.

    Returns
    -------
    model : UNet
        float32, in eval mode, on ``device``.
    card : dict
        The release card (JSON beside the file, else the safetensors metadata) or, for a
        checkpoint, ``{"architecture", "config", "data_hash", "val_metrics", "step"}``.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            state = load_file(str(path))
            if _card_path(path).is_file():
                card = json.loads(_card_path(path).read_text())
            else:
                from safetensors import safe_open

                with safe_open(str(path), framework="pt") as fh:
                    card = json.loads((fh.metadata() or {})["card"])
        except (OSError, KeyError, json.JSONDecodeError, SafetensorError) as exc:
            raise ValueError(f"cannot load release model {path}: {exc}") from exc
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        arch = card["architecture"]
    else:
        ckpt = load_checkpoint(path)
        state, arch = ckpt["model"], ckpt["config"]["model_kwargs"]
        card = {"architecture": arch, "config": ckpt["config"], "data_hash": ckpt.get("data_hash"),
                "val_metrics": ckpt.get("val_metrics"), "step": ckpt.get("step")}
    try:
        model = UNet(**arch)
        model.load_state_dict(state)
    except (TypeError, RuntimeError) as exc:
        raise ValueError(f"{path}: weights do not match architecture {arch}: {exc}") from exc
    return model.to(device).eval(), card
