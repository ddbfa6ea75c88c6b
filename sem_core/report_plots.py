"""Matplotlib (Agg) figures of the comparison report, returned as PNG bytes.

Every function builds its figure, renders it to PNG and closes it (no global pyplot state kept).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = [
    "Panel",
    "render_png",
    "plot_metric_bars",
    "plot_dose_curves",
    "plot_training_curves",
    "plot_panel",
    "BAR_METRICS",
]

BAR_METRICS = ("psnr", "ssim", "fsim", "cnr", "uiqi")
"""The seed post's bar-chart metrics."""

_TITLES = {"psnr": "PSNR (dB)", "ssim": "SSIM", "fsim": "FSIM", "cnr": "CNR", "uiqi": "UIQI",
           "ms_ssim": "MS-SSIM", "epi": "EPI", "defect_retention": "defect contrast retention"}


@dataclass
class Panel:
    """One image shown side by side: input, every method's output, the clean reference.

    Attributes
    ----------
    dataset, image_id : str
    noisy, clean : (H, W) float arrays on the unit scale
    outputs : mapping label -> (H, W) float array
    boxes : list of (r0, c0, r1, c1) defect boxes (half-open) to zoom into
    """

    dataset: str
    image_id: str
    noisy: np.ndarray
    clean: np.ndarray
    outputs: Mapping[str, np.ndarray]
    boxes: Sequence[tuple[int, int, int, int]] = field(default_factory=list)


def render_png(fig: plt.Figure, *, dpi: int = 90) -> bytes:
    """PNG bytes of ``fig``; the figure is closed."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buf.getvalue()


def plot_metric_bars(summary: pd.DataFrame, *, labels: Sequence[str], dataset: str,
                     metrics: Sequence[str] = BAR_METRICS) -> bytes:
    """Grouped bars (one panel per metric, one bar per method label) with 95 % CI whiskers.

    ``summary`` must have columns ``label, dataset, metric, mean, ci_low, ci_high``.
    """
    sub = summary[summary["dataset"] == dataset]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 3.4), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for ax, metric in zip(axes[0], metrics, strict=True):
        rows = sub[sub["metric"] == metric].set_index("label").reindex(labels)
        means = rows["mean"].to_numpy(dtype=float)
        err = np.vstack([means - rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float) - means])
        err = np.nan_to_num(err, nan=0.0)
        x = np.arange(len(labels))
        ax.bar(x, np.nan_to_num(means), yerr=err, color=[colours[i % 10] for i in x], capsize=3)
        ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(_TITLES.get(metric, metric), fontsize=10)
        finite = means[np.isfinite(means)]
        if metric in ("ssim", "fsim", "uiqi") and finite.size:
            ax.set_ylim(max(0.0, float(finite.min()) - 0.1), 1.0)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{dataset}: mean and 95 % CI over test images", fontsize=11)
    fig.tight_layout()
    return render_png(fig)


def plot_dose_curves(dose_table: pd.DataFrame) -> bytes:
    """PSNR and defect contrast retention vs dose (log x), mean over images, one line per method."""
    has_ret = dose_table["defect_retention"].notna().any()
    cols = ["psnr", "ssim"] + (["defect_retention"] if has_ret else [])
    mean = dose_table.groupby(["method", "dose"], sort=True)[cols].mean().reset_index()
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.4), squeeze=False)
    for ax, col in zip(axes[0], cols, strict=True):
        for method, grp in mean.groupby("method", sort=True):
            ax.plot(grp["dose"], grp[col], marker="o", label=method)
        ax.set_xscale("log")
        ax.set_xlabel("dose")
        ax.set_title(_TITLES.get(col, col), fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return render_png(fig)


def plot_training_curves(curves: pd.DataFrame) -> bytes:
    """Every numeric column but ``epoch``/``step``/``seconds`` vs epoch (or step), one line per experiment.

    ``lr`` is drawn on a log scale. Columns as in the training ``metrics.csv`` (epoch, step,
    train_loss, val_loss, val_psnr, lr, seconds), plus ``experiment`` when several are combined.
    """
    x = "epoch" if "epoch" in curves.columns else "step"
    group = "experiment" if "experiment" in curves.columns else None
    ys = [c for c in curves.columns if c not in (x, "step", "epoch", "experiment", "seconds")
          and pd.api.types.is_numeric_dtype(curves[c])]
    fig, axes = plt.subplots(1, max(len(ys), 1), figsize=(4.2 * max(len(ys), 1), 3.2), squeeze=False)
    for ax, y in zip(axes[0], ys, strict=False):
        for name, grp in (curves.groupby(group, sort=True) if group else [("", curves)]):
            ax.plot(grp[x], grp[y], label=str(name))
        ax.set_xlabel(x)
        ax.set_title(y, fontsize=10)
        ax.grid(alpha=0.3)
        if y == "lr":
            ax.set_yscale("log")
        if group:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return render_png(fig)


def _crop_box(box: tuple[int, int, int, int], shape: tuple[int, int], *, min_size: int = 24) -> tuple[slice, slice]:
    r0, c0, r1, c1 = box
    cr, cc = (r0 + r1) // 2, (c0 + c1) // 2
    half = max(min_size, r1 - r0 + 8, c1 - c0 + 8) // 2
    rs = slice(max(cr - half, 0), min(cr + half, shape[0]))
    cs = slice(max(cc - half, 0), min(cc + half, shape[1]))
    return rs, cs


def plot_panel(panel: Panel, *, max_zooms: int = 2) -> bytes:
    """Noisy | each method | clean on the first row, ``output - clean`` below, then zoomed defect crops.

    Grey levels share one scale (the clean image's 0.5-99.5 % range); difference maps share a
    symmetric blue-red scale (the 99th percentile of |noisy - clean|).
    """
    columns = [("noisy", panel.noisy), *panel.outputs.items(), ("clean", panel.clean)]
    boxes = list(panel.boxes)[:max_zooms]
    n_rows = 2 + len(boxes)
    fig, axes = plt.subplots(n_rows, len(columns), figsize=(2.1 * len(columns), 2.2 * n_rows), squeeze=False)
    lo, hi = (float(v) for v in np.percentile(panel.clean, [0.5, 99.5]))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    dmax = float(np.percentile(np.abs(panel.noisy - panel.clean), 99)) or 1e-3
    for j, (label, img) in enumerate(columns):
        axes[0][j].imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        axes[0][j].set_title(label, fontsize=9)
        for r0, c0, r1, c1 in boxes:
            axes[0][j].add_patch(plt.Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, ec="yellow", lw=1))
        if label == "clean":
            axes[1][j].axis("off")
        else:
            axes[1][j].imshow(np.asarray(img, float) - panel.clean, cmap="RdBu_r", vmin=-dmax, vmax=dmax,
                              interpolation="nearest")
            axes[1][j].set_title(f"{label} - clean", fontsize=8)
        for k, box in enumerate(boxes):
            rs, cs = _crop_box(box, panel.clean.shape)
            axes[2 + k][j].imshow(img[rs, cs], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            axes[2 + k][j].set_title(f"defect {k + 1}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return render_png(fig)
