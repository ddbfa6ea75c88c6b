"""Readers and writers: SEM TIFF/PNG, Zarr datasets, OME-Zarr scans."""
