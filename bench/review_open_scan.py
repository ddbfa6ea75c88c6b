"""How long the napari review client takes to open a large OME-Zarr scan and to pan over it at full resolution.

Usage (under Xvfb: ``QT_QPA_PLATFORM=xcb xvfb-run -a python bench/review_open_scan.py PATH``), PATH a folder or
checkout that ``sem-denoise review PATH`` opens (a scan ``<name>.ome.zarr`` and denoised ``<name>_<method>.ome.zarr``).

Prints: viewer start-up; *open* = discover the scan + build every panel (noisy, methods, clean, difference maps,
defect markers) + the first rendered frame; *pan* = move the view by a given number of level-0 pixels at 1:1
zoom and render (median and max over ``--pans`` moves, each to a part of the scan not seen before); the process RSS
after each phase against the size of one level 0 (a whole layer read would show as that much more memory).
Wall and CPU time (all threads of this process, llvmpipe's rendering included) are both printed: on a shared
machine the wall time mostly measures the other processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psutil


def _render(viewer) -> None:
    viewer.screenshot(canvas_only=True, flash=False)  # forces slicing of the visible tiles and one draw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--pans", type=int, default=8)
    ap.add_argument("--step", type=int, default=1500, help="Pan step in level-0 pixels.")
    ap.add_argument("--size", default="1600x1000")
    args = ap.parse_args()
    proc = psutil.Process()
    mib = lambda: proc.memory_info().rss / 2**20  # noqa: E731

    t0 = time.perf_counter()
    import dask.array  # noqa: F401 - imported at start-up, as the CLI does, not inside "open"
    import napari
    from qtpy.QtWidgets import QApplication

    from sem_review_napari.local import LocalSource
    from sem_review_napari.widget import ReviewWidget

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*(int(v) for v in args.size.split("x")))
    QApplication.processEvents()
    t_start = time.perf_counter() - t0
    rss0 = mib()

    t0, c0 = time.perf_counter(), time.process_time()
    source = LocalSource(args.path)
    widget = ReviewWidget(viewer, source=source)
    viewer.window.add_dock_widget(widget, area="right")
    widget.select_runs(["local:scans"])
    widget.select_image(0)
    QApplication.processEvents()
    _render(viewer)
    t_open, c_open = time.perf_counter() - t0, time.process_time() - c0
    rss_open = mib()
    image = widget.images[0]
    h, w = image["height"], image["width"]
    panels = widget.panels

    viewer.camera.zoom = 1.0  # one screen pixel per level-0 pixel: napari draws level 0
    viewer.camera.center = (h / 2, w / 2)
    _render(viewer)
    times, cpu = [], []
    for k in range(args.pans):
        r = h / 2 + ((k % 4) - 1.5) * args.step
        c = w / 2 + ((k // 4) - 0.5) * args.step * 2 + k * 37
        t, c0 = time.perf_counter(), time.process_time()
        viewer.camera.center = (r, c)
        QApplication.processEvents()
        _render(viewer)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c0)
    levels = {lay.name: lay.data_level for lay in viewer.layers if getattr(lay, "multiscale", False)}
    rss_pan = mib()
    level0_mib = h * w * source.levels(image, "noisy")[0].dtype.itemsize / 2**20
    print(f"scan {h}x{w}, {image['levels']} levels, panels {panels.intensity + panels.differences}, "
          f"defect markers {len(panels.boxes)} layers; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    print(f"viewer start-up: {t_start:.2f} s (RSS {rss0:.0f} MiB)")
    print(f"open (discover + all panels + first frame): {t_open:.2f} s wall, {c_open:.2f} s CPU (RSS {rss_open:.0f} MiB, "
          f"+{rss_open - rss0:.0f}; one level 0 = {level0_mib:.0f} MiB)")
    print(f"pan at 1:1 ({args.pans} moves of ~{args.step} px, level drawn {sorted(set(levels.values()))}): "
          f"median {statistics.median(times):.2f} s wall ({statistics.median(cpu):.2f} s CPU), max {max(times):.2f} s "
          f"(RSS {rss_pan:.0f} MiB)")
    viewer.close()


if __name__ == "__main__":
    main()
