"""The napari review client under Xvfb on local outputs: widget, grid panels, linked contrast and cameras,
defects, charts, keys, screenshots, offline scans, the npe2 manifest (service mode: test_review_service.py).

napari needs OpenGL: run under ``QT_QPA_PLATFORM=xcb xvfb-run -a`` (``make test`` does). Without napari
(the ``client`` extra) or a display these tests skip, saying why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.review.gui import panel_count, process_events, require_napari

require_napari()

from sem_review_napari.local import LocalSource  # noqa: E402
from sem_review_napari.model import compute_deltas  # noqa: E402
from tests.review.outputs import make_review_outputs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN = "local:reports/metrics"
PREVIOUS = "local:reports/previous"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("review_napari")
    return root, make_review_outputs(root)


@pytest.fixture(scope="module")
def viewer():
    import napari

    v = napari.Viewer(show=True, title="sem-denoise review test")
    v.window._qt_window.resize(1400, 900)
    yield v
    v.close()


@pytest.fixture(scope="module")
def widget(viewer, outputs):
    from sem_review_napari.app import open_review

    root, _ = outputs
    return open_review(viewer, LocalSource(root), run=RUN, image="w000")


def test_widget_lists_runs_and_two_run_deltas(widget):
    assert widget.runs_table.rowCount() == 3
    assert {widget.runs_table.item(i, 0).text() for i in range(3)} == {RUN, PREVIOUS, "local:scans"}
    widget.filter_edit.setText("scans")
    assert widget.runs_table.rowCount() == 1
    widget.filter_edit.setText("")
    widget.select_runs([PREVIOUS, RUN])  # deltas RUN - PREVIOUS: +1 dB PSNR for every method
    psnr = {d["method"]: d["delta"] for d in widget.deltas if d["metric"] == "psnr"}
    assert psnr == pytest.approx({"noisy_input": 1.0, "gaussian": 1.0, "unet-full": 1.0})
    src = widget.source
    expected = compute_deltas(src.run(PREVIOUS), src.run(RUN))
    assert widget.deltas == expected
    assert widget.deltas_table.rowCount() == sum(d["a"] is not None or d["b"] is not None for d in expected) > 0
    assert widget.run["id"] == PREVIOUS
    widget.select_runs([RUN])
    assert widget.deltas_table.rowCount() == 0


def test_image_panels_in_grid_with_linked_contrast_and_cameras(widget, viewer):
    widget.select_image(widget.image_order().index("wafers/w000"))
    process_events()
    p = widget.panels
    assert p.image_id == "wafers/w000" and not p.missing
    assert p.intensity == ["noisy", "gaussian", "unet-full", "clean"]
    assert p.differences == ["gaussian - clean", "unet-full - clean"]
    names = [lay.name for lay in viewer.layers]
    assert names[::2] == p.intensity + p.differences and all(n.startswith("defects: ") for n in names[1::2])
    assert viewer.canvas.grid.enabled and viewer.canvas.grid.stride == 2
    layers = viewer.layers
    limits = {tuple(layers[n].contrast_limits) for n in p.intensity}
    assert len(limits) == 1  # one contrast range across the intensity panels
    layers["noisy"].contrast_limits = (0.1, 0.6)
    assert all(tuple(layers[n].contrast_limits) == pytest.approx((0.1, 0.6)) for n in p.intensity)
    lo, hi = layers["gaussian - clean"].contrast_limits
    assert lo == -hi and tuple(layers["unet-full - clean"].contrast_limits) == (lo, hi)
    diff = np.asarray(layers["gaussian - clean"].data, dtype=np.float32)
    src = widget.source
    img = next(im for im in widget.images if im["id"] == "wafers/w000")
    np.testing.assert_allclose(diff, src.levels(img, "gaussian")[0] - src.levels(img, "clean")[0], atol=1e-6)
    # grid mode: one viewbox per panel, every viewbox camera driven by the viewer's single camera model
    canvas = viewer.window._qt_viewer.canvas
    assert len(canvas.grid_cameras) == viewer.canvas.grid.actual_shape(layers)[0] * viewer.canvas.grid.actual_shape(layers)[1]
    assert len(canvas.grid_cameras) >= 6
    assert all(cam._camera is viewer.camera for cam in canvas.grid_cameras)
    # defect boxes: labelled by type, with this method's contrast retention from the defect table
    boxes = layers["defects: unet-full"]
    assert list(boxes.features["type"]) == ["bridge", "particle"]
    assert list(boxes.features["retention"]) == pytest.approx([0.80, 0.85])
    assert list(boxes.features["label"]) == ["bridge 0.80", "particle 0.85"]
    assert np.isnan(layers["defects: noisy"].features["retention"]).all()


def test_metrics_table_matches_numbers_and_sorts_worst_first(widget, outputs):
    _, made = outputs
    table = made["table"]
    unet = table[table.experiment == "full"].set_index("image_id")["psnr"]
    widget.metric_combo.setCurrentText("psnr")
    shown = widget.table_values("unet-full")
    assert shown == pytest.approx({f"wafers/{k}": v for k, v in unet.items()}, rel=1e-6)
    noisy = table[table.method == "noisy_input"].set_index("image_id")["psnr"]
    assert widget.table_values("noisy_input") == pytest.approx({f"wafers/{k}": v for k, v in noisy.items()})
    widget.sort_images("unet-full")
    assert widget.image_order() == [f"wafers/{k}" for k in unet.sort_values().index]
    widget.sort_images("unet-full", descending=True)
    assert widget.image_order()[0] == f"wafers/{unet.idxmax()}"


def test_keys_next_image_and_next_method(widget, viewer):
    from qtpy.QtGui import QKeySequence

    keys = {sc.key().toString(QKeySequence.SequenceFormat.PortableText) for sc in widget._shortcuts}
    assert keys == {"PgDown", "PgUp", "M", "Shift+M"}
    widget.sort_images("name")
    order = widget.image_order()
    if widget.panels.image_id != order[0]:
        widget.select_image(0)
    widget.next_method()
    assert viewer.layers.selection.active.name == "gaussian"
    viewer.canvas.grid.enabled = False  # blink comparison: one method at a time
    widget.next_method()
    visible = {lay.name for lay in viewer.layers if lay.visible}
    assert "unet-full" in visible and "gaussian" not in visible and "defects: gaussian" not in visible
    widget.previous_method()
    assert {"gaussian", "defects: gaussian"} <= {lay.name for lay in viewer.layers if lay.visible}
    before = {lay.name: id(lay) for lay in viewer.layers}
    widget.next_image()  # w001 (has pixels): grid mode again, every panel shown
    assert widget.panels.image_id == order[1]
    assert viewer.canvas.grid.enabled and all(lay.visible for lay in viewer.layers)
    assert {lay.name: id(lay) for lay in viewer.layers} == before  # same panels: layers reused, data swapped
    src, img = widget.source, next(im for im in widget.images if im["id"] == order[1])
    np.testing.assert_array_equal(viewer.layers["unet-full"].data, src.levels(img, "unet-full")[0])
    boxes = viewer.layers["defects: unet-full"]
    assert list(boxes.features["retention"]) == pytest.approx([0.81, 0.86])
    np.testing.assert_array_equal(boxes.data[0][0], [17, 20])  # w001's first box starts at (17, 20)
    widget.previous_image()
    assert widget.panels.image_id == order[0]


def test_run_charts_draw_every_method_with_ci(widget):
    widget.chart_metric.setCurrentText("psnr")
    assert widget.chart_bars == 3  # noisy_input, gaussian, unet-full on one dataset
    ax = widget.figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [r["method"] for r in widget.run["summary"]
                                                            if r["metric"] == "psnr"]
    widget.chart_metric.setCurrentText("cnr")  # all NaN in the fixture: an empty chart says so
    assert widget.chart_bars == 0


def test_screenshot_is_not_blank_and_shows_several_panels(widget, viewer, tmp_path):
    from PIL import Image

    from sem_review_napari.app import take_screenshot

    if widget.panels.image_id != "wafers/w000":
        widget.select_image(widget.image_order().index("wafers/w000"))
    path = take_screenshot(viewer, tmp_path / "shot.png", size=(1400, 900))
    full = np.asarray(Image.open(path))
    assert full.shape[:2] == (900, 1400) or full.shape[1] >= 1000
    assert full[..., :3].std() > 20
    assert panel_count(viewer) >= 6  # noisy, 2 methods, clean, 2 difference maps


def test_offline_scan_opens_as_lazy_multiscale(widget, viewer, outputs):
    import dask.array as da

    widget.select_runs(["local:scans"])
    widget.select_image(0)
    p = widget.panels
    assert p.intensity == ["noisy", "gaussian", "clean"] and p.differences == ["gaussian - clean"]
    for name in p.intensity + p.differences:
        layer = viewer.layers[name]
        assert layer.multiscale and len(layer.data) == 3
    assert not isinstance(viewer.layers["noisy"].data[0], np.ndarray)  # zarr levels, read on demand
    assert isinstance(viewer.layers["gaussian - clean"].data[0], da.Array)
    assert viewer.layers["defects: noisy"].nshapes == 2
    assert panel_count(viewer) >= 3


def test_cli_review_offline_screenshot(outputs, tmp_path):
    from typer.testing import CliRunner

    from sem_cli.main import app

    root, made = outputs
    out = tmp_path / "cli.png"
    res = CliRunner().invoke(app, ["review", str(made["scan"]), "--screenshot", str(out), "--size", "1000x700"])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 10_000
    bad = CliRunner().invoke(app, ["review", str(tmp_path / "nothing")])
    assert bad.exit_code == 2 and "no such file" in " ".join(bad.output.split())


def test_npe2_manifest_names_the_widget():
    import npe2

    manifest = npe2.PluginManifest.from_file(ROOT / "sem_review_napari" / "napari.yaml")
    (widget,) = manifest.contributions.widgets
    (cmd,) = manifest.contributions.commands
    assert widget.command == cmd.id and cmd.python_name == "sem_review_napari.widget:ReviewWidget"
    from sem_review_napari.widget import ReviewWidget

    assert "napari_viewer" in ReviewWidget.__init__.__code__.co_varnames
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'sem-denoise = "sem_review_napari:napari.yaml"' in pyproject
