"""Denoisers: one interface for classical methods and the U-Net."""
