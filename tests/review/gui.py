"""Skip napari tests, saying why, where napari or an OpenGL-capable display is missing; shared helpers."""

from __future__ import annotations

import os

import numpy as np
import pytest


def require_napari() -> None:
    """Call at module level before importing napari-dependent code."""
    pytest.importorskip("napari", reason="the client extra is not installed: pip install -e '.[client]'")
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        pytest.skip("napari does not run on Qt's offscreen platform (no QOpenGLWidget): use xcb under Xvfb",
                    allow_module_level=True)
    if not os.environ.get("DISPLAY"):
        pytest.skip("napari needs an X display with OpenGL: run under `xvfb-run -a` (make test does)",
                    allow_module_level=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")


def process_events() -> None:
    from qtpy.QtWidgets import QApplication

    for _ in range(3):
        QApplication.processEvents()


def panel_count(viewer) -> int:
    """Panels in a canvas screenshot: connected regions, of real size, that differ from the background.

    The intensity panels' (linked) contrast range is widened first so that no pixel is drawn black.
    """
    from scipy import ndimage

    image = next(lay for lay in viewer.layers if lay.name == "noisy")
    lo, hi = image.contrast_limits
    image.contrast_limits = (lo - (hi - lo), hi)
    process_events()
    rgb = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(np.int16)
    image.contrast_limits = (lo, hi)
    mask = np.abs(rgb - rgb[0, 0]).max(axis=-1) > 10  # differs from the canvas background (a corner pixel)
    mask = ndimage.binary_opening(mask, iterations=1)
    labels, n = ndimage.label(mask)
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return int((sizes > 0.01 * mask.size).sum())
