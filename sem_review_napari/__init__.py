"""napari (npe2) plugin of sem-denoise: review denoising runs from the review service or local outputs.

``sem-denoise review`` opens napari with the widget; in napari it is Plugins > SEM denoise review.
Only :mod:`.client`, :mod:`.model`, :mod:`.sources` and :mod:`.local` import without Qt.
"""

__all__: list[str] = []
