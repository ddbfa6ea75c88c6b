"""Wafer-like specimens: line/space gratings and contact-hole arrays, rendered window by window.

A :class:`WaferLayout` is built once for a whole image or scan and holds O(rows + cols + defects)
numbers: the grating's offset and direction, the defect list, and a bounded cache of line-edge
profiles. Everything else is a pure function of the global pixel position:

- lines: pixel (r, c) has across-line coordinate ``u = sin θ·r + cos θ·c`` and along-line
  ``v = cos θ·r − sin θ·c`` (θ = ``orientation_deg``; 0 = vertical lines, 90 = horizontal; sin and
  cos are exact at multiples of 90°). Line k spans ``u_k ± cd/2`` plus its rough edges: Palasantzas
  profiles along v, made of blocks of ``B + T`` samples (block b from ``derive_rng(seed, "edge", k,
  side, b)``) joined by a variance-preserving cos/sin cross-fade over T samples, so any stretch of
  an edge costs O(its length), independent of the image size;
- contacts: hole (i, j) sits at ``(off_r + i·p_y, off_c + j·p_x)`` plus a small jitter, with a
  harmonically rough outline; the parameters of the 64 holes ``(i, 64·jb .. 64·jb + 63)`` come from
  ``derive_rng(seed, "holes", i, jb)``;
- defects (:mod:`sem_core.synth.defects`) change the pattern inside disjoint boxes.

The yield comes from the pattern through a clipped distance-to-outline (SE edge effect) computed on
the window plus a halo, so ``render`` of any tiling stitches bit-exactly to the full render.

Modules: :mod:`.lines` (line edges and line geometry), :mod:`.contacts` (hole geometry),
:mod:`.layout` (:class:`WaferLayout`: state, window rendering, defect table), :mod:`.build`
(:func:`make_wafer_layout`, :func:`render_wafer`), :mod:`.sampling` (:func:`sample_wafer_kwargs`).
"""

from __future__ import annotations

from .build import make_wafer_layout, render_wafer
from .layout import WaferLayout
from .sampling import sample_wafer_kwargs

__all__ = ["WaferLayout", "make_wafer_layout", "render_wafer", "sample_wafer_kwargs"]
