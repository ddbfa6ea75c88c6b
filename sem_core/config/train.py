"""Config section `train`: U-Net training and the experiment ladder (issue 3)."""

from __future__ import annotations

from .base import Section

__all__ = ["TrainConfig"]


class TrainConfig(Section):
    """U-Net training and the experiment ladder (issue 3)."""
