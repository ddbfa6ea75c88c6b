"""Denoisers: one interface for classical methods and the U-Net.

``build_denoiser(name, **params)`` returns a :class:`Denoiser` (``name``, ``halo``, ``__call__``);
``denoise_image`` applies one to a whole image; :func:`sem_core.denoise_zarr.denoise_zarr` tiles a
scan. Methods: gaussian, median, bilateral, nlm, tv, wavelet (:mod:`.classical`), bm3d
(:mod:`.bm3d_coloured`, optional, non-commercial licence), unet (:mod:`.unet`, imports torch).
"""

from .base import Denoiser, build_denoiser, denoise_image, describe_denoiser, list_denoisers

__all__ = ["Denoiser", "build_denoiser", "denoise_image", "describe_denoiser", "list_denoisers"]
