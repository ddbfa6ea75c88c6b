"""Save one picture per specimen type (clean yield maps, defect boxes outlined) to docs/specimens.png.

Usage: python bench/show_specimens.py [--out docs/specimens.png] [--seed 7] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from sem_core.rng import derive_rng  # noqa: E402
from sem_core.synth.tin_balls import render_tin_balls  # noqa: E402
from sem_core.synth.wafers import render_wafer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/specimens.png")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smaller wafer panels")
    args = ap.parse_args()
    side = 192 if args.quick else 256
    panels = [("tin balls (442x512)", render_tin_balls(rng=derive_rng(args.seed, "show", "tin")))]
    wafer_cases = [
        ("lines 0°", dict(pattern="lines", orientation_deg=0.0)),
        ("lines 90°", dict(pattern="lines", orientation_deg=90.0, pitch_nm=100.0, cd_nm=45.0)),
        ("lines 30°, rough", dict(pattern="lines", orientation_deg=30.0, ler_sigma_nm=2.5)),
        ("contacts", dict(pattern="contacts", pitch_nm=90.0, cd_nm=45.0)),
    ]
    for title, kw in wafer_cases:
        spec = render_wafer(shape=(side, side), rng=derive_rng(args.seed, "show", title), defect_density_per_um2=8.0, **kw)
        panels.append((title, spec))
    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 6.4))
    for col, (title, spec) in enumerate(panels):
        axes[0, col].imshow(spec.yield_map, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[0, col].set_title(title, fontsize=9)
        axes[1, col].imshow(spec.mask, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        axes[1, col].set_title("mask (defect codes)" if col else "mask (balls)", fontsize=9)
        for row in spec.defects.itertuples():
            rect = Rectangle((row.bbox_c0 - 0.5, row.bbox_r0 - 0.5), row.bbox_c1 - row.bbox_c0, row.bbox_r1 - row.bbox_r0,
                             fill=False, edgecolor="red", linewidth=0.8)
            axes[0, col].add_patch(rect)
            axes[0, col].text(row.bbox_c0, row.bbox_r0 - 2, row.type, color="red", fontsize=5)
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
