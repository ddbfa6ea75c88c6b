"""Image quality metrics on single (H, W) images with an explicit data range.

- :mod:`.full_reference`: PSNR, SSIM, MS-SSIM, UIQI, edge preservation index.
- :mod:`.fsim`: FSIM (phase congruency + gradient similarity).
- :mod:`.task`: CNR, residual structure, defect preservation.
- :mod:`.aligned`: scoring of misregistered real pairs (shift + offset removed, border excluded).
"""

from .aligned import align_reference, score_aligned
from .fsim import compute_fsim, compute_gradient_magnitude, compute_phase_congruency
from .full_reference import (
    compute_edge_preservation,
    compute_ms_ssim,
    compute_psnr,
    compute_ssim,
    compute_ssim_map,
    compute_uiqi,
)
from .task import compute_cnr, compute_residual_structure, derive_cnr_masks, measure_defects, summarize_defects

__all__ = [
    "align_reference",
    "score_aligned",
    "compute_fsim",
    "compute_gradient_magnitude",
    "compute_phase_congruency",
    "compute_edge_preservation",
    "compute_ms_ssim",
    "compute_psnr",
    "compute_ssim",
    "compute_ssim_map",
    "compute_uiqi",
    "compute_cnr",
    "compute_residual_structure",
    "derive_cnr_masks",
    "measure_defects",
    "summarize_defects",
]
