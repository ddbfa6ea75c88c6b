"""``sem-denoise review``: the napari review client (needs the ``client`` extra: napari + PySide6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from .common import err_console


def review_cmd(
    path: Annotated[Path | None, typer.Argument(
        help="Review local outputs offline: a checkout, a metrics folder or .ome.zarr (no service).")] = None,
    url: Annotated[str | None, typer.Option("--url", envvar="SEM_REVIEW_URL", help="Review service URL.")] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="SEM_REVIEW_TOKEN",
                                              help="Bearer token of the service.")] = None,
    run: Annotated[str, typer.Option("--run", help="Run id to open, or 'latest'.")] = "latest",
    compare: Annotated[str | None, typer.Option("--compare", help="Second run: list its metric deltas.")] = None,
    image: Annotated[str | None, typer.Option("--image", help="Image name, id or table row to show first.")] = None,
    sort: Annotated[str | None, typer.Option("--sort", help="Sort the image table by this column (a method).")] = None,
    descending: Annotated[bool, typer.Option("--descending", help="Sort descending.")] = False,
    tab: Annotated[Literal["runs", "images", "charts"] | None, typer.Option("--tab", help="Dock tab shown.")] = None,
    screenshot: Annotated[Path | None, typer.Option(
        "--screenshot", help="Render the window to this PNG and exit.")] = None,
    size: Annotated[str, typer.Option("--size", help="Window size WxH for --screenshot.")] = "1600x1000",
    zoom: Annotated[float | None, typer.Option("--zoom", min=0.01, help="Zoom factor over the fitted view.")] = None,
    center: Annotated[str | None, typer.Option("--center", help="View centre 'row,col' in pixels.")] = None,
) -> None:
    """Open napari with the review widget: runs, image-by-image comparison in grid mode, run charts."""
    try:
        import napari
        from sem_review_napari.app import make_source, open_review, take_screenshot
    except ImportError as exc:
        err_console.print(f"[red]error:[/red] the review client needs napari and Qt: "
                          f"pip install -e '.[client]' ({exc})")
        raise typer.Exit(2) from exc
    try:
        w, h = (int(v) for v in size.lower().split("x"))
        ctr = tuple(float(v) for v in center.split(",")) if center else None
        if ctr is not None and len(ctr) != 2:
            raise ValueError("--center takes 'row,col'")
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] bad --size {size!r} or --center {center!r}: {exc}")
        raise typer.Exit(2) from exc
    try:
        source = make_source(path, url, token)
    except (OSError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    viewer = napari.Viewer(title="sem-denoise review", show=True)
    try:
        open_review(viewer, source, run=run, compare=compare, image=image, sort=sort, descending=descending,
                    tab=tab)
    except (KeyError, ValueError) as exc:
        viewer.close()
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if screenshot is not None:
        out = take_screenshot(viewer, screenshot, size=(w, h), zoom=zoom, center=ctr)  # type: ignore[arg-type]
        viewer.close()
        typer.echo(f"screenshot: {out}")
        return
    napari.run()


def register(app: typer.Typer) -> None:
    """Add the ``review`` command to ``app``."""
    app.command("review")(review_cmd)
