"""sem-denoise core library: pure functions and models (no Prefect, DVC or web imports)."""
