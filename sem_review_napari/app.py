"""Open napari with the review widget (``sem-denoise review``), optionally render one screenshot and exit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["open_review", "take_screenshot", "make_source"]

TABS = {"runs": 0, "images": 1, "charts": 2}


def make_source(path: str | Path | None = None, url: str | None = None, token: str | None = None) -> Any:
    """A local source for ``path``, else the service at ``url``."""
    if path is not None:
        from .local import LocalSource

        return LocalSource(path)
    if not url:
        raise ValueError("give a PATH to review local outputs or --url (or SEM_REVIEW_URL) of the review service")
    from .client import ReviewClient
    from .sources import ServiceSource

    return ServiceSource(ReviewClient(url, token))


def open_review(viewer: Any, source: Any, *, run: str | None = "latest", compare: str | None = None,
                image: str | None = None, sort: str | None = None, descending: bool = False,
                tab: str | None = None) -> Any:
    """Dock the review widget into ``viewer`` and select a run (``latest`` = the newest) and an image.

    ``image`` is an image name, id or row number; without it the first image with pixels is shown.
    ``compare`` is a second run whose deltas are listed. Returns the widget.
    """
    from .widget import ReviewWidget

    widget = ReviewWidget(viewer, source=source)
    viewer.window.add_dock_widget(widget, name="SEM review", area="right")
    if run and widget.shown_runs:
        run_id = widget.shown_runs[0]["id"] if run == "latest" else run
        widget.select_runs([run_id] + ([compare] if compare else []))
        if sort:
            widget.sort_images(sort, descending=descending)
        order = widget.image_order()
        if image is not None:
            by_id = {str(im["id"]): im for im in widget.images}
            matches = [i for i, im_id in enumerate(order) if image in (im_id, by_id[im_id]["name"])]
            if not matches and image.isdigit():
                matches = [int(image)]
            if not matches:
                names = ", ".join(sorted(im["name"] for im in widget.images)[:20])
                raise KeyError(f"image {image!r} not in run {run_id} (images: {names})")
            widget.select_image(matches[0])
        else:
            for row in range(min(len(order), 50)):
                widget.select_image(row)
                if widget.panels is not None and widget.panels.intensity:
                    break
    if tab:
        widget.tabs.setCurrentIndex(TABS[tab])
    return widget


def take_screenshot(viewer: Any, path: str | Path, *, size: tuple[int, int] = (1600, 1000),
                    zoom: float | None = None, center: tuple[float, float] | None = None) -> Path:
    """Render the whole window (canvas and dock) to a PNG.

    ``zoom`` multiplies the fitted zoom (e.g. 8 for a close look at a large scan), ``center`` is a
    (row, col) in data pixels.
    """
    from qtpy.QtWidgets import QApplication

    qt_window = viewer.window._qt_window
    qt_window.resize(*size)
    QApplication.processEvents()
    viewer.reset_view()
    if zoom:
        viewer.camera.zoom = viewer.camera.zoom * zoom
    if center:
        viewer.camera.center = (float(center[0]), float(center[1]))
    for _ in range(3):
        QApplication.processEvents()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    return path
