"""The ``sem-denoise`` command-line tool (typer)."""
