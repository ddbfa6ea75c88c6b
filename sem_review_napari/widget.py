"""The dock widget: runs (filter, two-run deltas), the run's images (sortable metrics), run charts.

Choosing an image puts its panels into the viewer (:func:`sem_review_napari.layers.show_image`).
Keys (anywhere in the viewer window): PageDown / PageUp next / previous image in the table's current
order, M / Shift+M next / previous method (selects its panel; with the grid off, shows only that method).
"""

from __future__ import annotations

import math
import os
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QShortcut,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .charts import draw_summary, run_metrics
from .layers import Panels, show_image
from .model import filter_runs, image_rows

__all__ = ["ReviewWidget"]

RUN_COLUMNS = ["id", "kind", "created", "datasets", "methods", "summary"]
DELTA_COLUMNS = ["dataset", "method", "metric", "a", "b", "delta"]


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


NUMBER_ROLE = Qt.ItemDataRole.UserRole + 1
"""Item data role holding a cell's float value (the text is rounded for display)."""


class _Item(QTableWidgetItem):
    """A read-only cell that sorts numbers by value, empty cells after every number."""

    def __lt__(self, other: QTableWidgetItem) -> bool:  # type: ignore[override]
        a, b = self.data(NUMBER_ROLE), other.data(NUMBER_ROLE)
        if isinstance(a, float) or isinstance(b, float):
            if not isinstance(b, float):
                return True
            if not isinstance(a, float):
                return False
            return a < b
        return self.text() < other.text()


def _item(value: Any) -> QTableWidgetItem:
    item = _Item(_fmt(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        item.setData(NUMBER_ROLE, float(value))
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


def _summary_text(run: dict[str, Any], metric: str = "psnr") -> str:
    parts = [f"{r['dataset']}/{r['method']} {r['mean']:.3g}" for r in run.get("summary", [])
             if r["metric"] == metric and r.get("mean") is not None]
    return f"{metric}: " + ", ".join(parts) if parts else ""


class ReviewWidget(QWidget):
    """The review dock widget (npe2 widget contribution; ``napari_viewer`` is injected by napari).

    Without a ``source`` it connects to ``SEM_REVIEW_URL`` / ``SEM_REVIEW_TOKEN`` when set; the
    connection bar connects to another service or opens a local folder.
    """

    def __init__(self, napari_viewer: Any, source: Any = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.source: Any = None
        self.runs: list[dict[str, Any]] = []
        self.shown_runs: list[dict[str, Any]] = []
        self.run: dict[str, Any] | None = None
        self.images: list[dict[str, Any]] = []
        self.defects: list[dict[str, Any]] = []
        self.deltas: list[dict[str, Any]] = []
        self.panels: Panels | None = None
        self.method_index = -1
        self._build()
        self._bind_keys()
        if source is not None:
            self.set_source(source)
        elif os.environ.get("SEM_REVIEW_URL"):
            self.connect_service(os.environ["SEM_REVIEW_URL"], os.environ.get("SEM_REVIEW_TOKEN"))

    # --- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.url_edit = QLineEdit(os.environ.get("SEM_REVIEW_URL", ""))
        self.url_edit.setPlaceholderText("service URL (http://127.0.0.1:PORT)")
        self.token_edit = QLineEdit(os.environ.get("SEM_REVIEW_TOKEN", ""))
        self.token_edit.setPlaceholderText("token")
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        connect = QPushButton("Connect")
        connect.clicked.connect(lambda: self.connect_service(self.url_edit.text(), self.token_edit.text() or None))
        open_dir = QPushButton("Open folder…")
        open_dir.clicked.connect(self._choose_folder)
        for w in (self.url_edit, self.token_edit, connect, open_dir):
            bar.addWidget(w)
        layout.addLayout(bar)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        runs_tab = QWidget()
        rl = QVBoxLayout(runs_tab)
        filt = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("filter: dataset, method, id, code version…")
        self.filter_edit.textChanged.connect(self._fill_runs)
        self.kind_combo = QComboBox()
        self.kind_combo.addItems(["", "pipeline", "batch"])
        self.kind_combo.currentTextChanged.connect(self._fill_runs)
        filt.addWidget(self.filter_edit)
        filt.addWidget(self.kind_combo)
        rl.addLayout(filt)
        split = QSplitter(Qt.Orientation.Vertical)
        self.runs_table = self._table(RUN_COLUMNS)
        self.runs_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.runs_table.itemSelectionChanged.connect(self._on_runs_selected)
        self.deltas_table = self._table(DELTA_COLUMNS)
        self.deltas_table.setSortingEnabled(True)
        split.addWidget(self.runs_table)
        split.addWidget(self.deltas_table)
        rl.addWidget(split)
        self.tabs.addTab(runs_tab, "Runs")

        images_tab = QWidget()
        il = QVBoxLayout(images_tab)
        row = QHBoxLayout()
        row.addWidget(QLabel("metric"))
        self.metric_combo = QComboBox()
        self.metric_combo.currentTextChanged.connect(self._fill_images)
        row.addWidget(self.metric_combo, 1)
        il.addLayout(row)
        self.images_table = self._table(["dataset", "name", "kind"])
        self.images_table.setSortingEnabled(True)
        self.images_table.itemSelectionChanged.connect(self._on_image_selected)
        il.addWidget(self.images_table)
        self.tabs.addTab(images_tab, "Images")

        charts_tab = QWidget()
        cl = QVBoxLayout(charts_tab)
        self.chart_metric = QComboBox()
        self.chart_metric.currentTextChanged.connect(self._draw_chart)
        cl.addWidget(self.chart_metric)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 4), dpi=100)
        self.chart = FigureCanvasQTAgg(self.figure)
        cl.addWidget(self.chart)
        self.tabs.addTab(charts_tab, "Charts")

    @staticmethod
    def _table(columns: list[str]) -> QTableWidget:
        t = QTableWidget(0, len(columns))
        t.setHorizontalHeaderLabels(columns)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        t.verticalHeader().setVisible(False)
        return t

    def _bind_keys(self) -> None:
        window = getattr(getattr(self.viewer, "window", None), "_qt_window", None) or self
        self._shortcuts = []
        for keys, fn in (("PgDown", self.next_image), ("PgUp", self.previous_image), ("M", self.next_method),
                         ("Shift+M", self.previous_method)):
            sc = QShortcut(QKeySequence(keys), window)
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(fn)
            self._shortcuts.append(sc)

    # --- sources ----------------------------------------------------------------------------------
    def connect_service(self, url: str, token: str | None) -> None:
        from .client import ReviewClient
        from .sources import ServiceSource

        if not url:
            self._error("no service URL given")
            return
        self.set_source(ServiceSource(ReviewClient(url, token)))

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open pipeline outputs")
        if folder:
            self.open_folder(folder)

    def open_folder(self, path: str) -> None:
        from .local import LocalSource

        try:
            self.set_source(LocalSource(path))
        except (OSError, ValueError) as exc:
            self._error(str(exc))

    def set_source(self, source: Any) -> None:
        """Use ``source`` (a :class:`~sem_review_napari.sources.Source`) and list its runs."""
        self.source = source
        try:
            self.runs = source.runs()
        except Exception as exc:  # noqa: BLE001 - shown to the user, the widget stays usable
            self.runs = []
            self._error(f"{source.label}: {exc}")
        else:
            self.status.setText(f"{source.label}: {len(self.runs)} runs")
        self._fill_runs()

    def _error(self, text: str) -> None:
        self.status.setText(f"error: {text}")

    # --- runs -------------------------------------------------------------------------------------
    def _fill_runs(self) -> None:
        self.shown_runs = filter_runs(self.runs, self.filter_edit.text(), self.kind_combo.currentText())
        t = self.runs_table
        t.blockSignals(True)
        t.setRowCount(len(self.shown_runs))
        for i, r in enumerate(self.shown_runs):
            vals = [r["id"], r.get("kind"), r.get("created"), ", ".join(r.get("datasets", [])),
                    ", ".join(r.get("methods", [])), _summary_text(r)]
            for j, v in enumerate(vals):
                t.setItem(i, j, _item(str(v) if j < 5 else v))
        t.blockSignals(False)
        t.resizeColumnsToContents()

    def select_runs(self, run_ids: list[str]) -> None:
        """Select runs by id (one: review it; two: also show their deltas, the first one reviewed)."""
        t = self.runs_table
        t.clearSelection()
        t.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        ids = [r["id"] for r in self.shown_runs]
        for rid in run_ids:
            if rid not in ids:
                raise KeyError(f"run {rid!r} is not in the list ({len(ids)} shown)")
            t.selectRow(ids.index(rid))
        t.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._on_runs_selected(order=run_ids)

    def _on_runs_selected(self, order: list[str] | None = None) -> None:
        rows = sorted({i.row() for i in self.runs_table.selectedIndexes()})
        chosen = [self.shown_runs[i] for i in rows]
        if order:
            chosen.sort(key=lambda r: order.index(r["id"]) if r["id"] in order else len(order))
        if not chosen:
            return
        if len(chosen) >= 2:
            self._show_deltas(chosen[0]["id"], chosen[1]["id"])
        else:
            self.deltas = []
            self.deltas_table.setRowCount(0)
        if self.run is None or chosen[0]["id"] != self.run["id"]:
            self.load_run(chosen[0]["id"])

    def _show_deltas(self, a: str, b: str) -> None:
        try:
            self.deltas = self.source.compare(a, b)
        except Exception as exc:  # noqa: BLE001
            self._error(f"compare {a} {b}: {exc}")
            return
        shown = [d for d in self.deltas if d.get("a") is not None or d.get("b") is not None]  # not all-NaN metrics
        t = self.deltas_table
        t.setSortingEnabled(False)
        t.setRowCount(len(shown))
        for i, d in enumerate(shown):
            for j, c in enumerate(DELTA_COLUMNS):
                t.setItem(i, j, _item(d.get(c)))
        t.setSortingEnabled(True)
        self.status.setText(f"deltas {b} - {a}: {len(self.deltas)} rows")

    def load_run(self, run_id: str) -> None:
        """Review one run: its images, defects and charts."""
        try:
            self.run = self.source.run(run_id)
            self.images = self.source.images(run_id)
            self.defects = self.source.defects(run_id)
        except Exception as exc:  # noqa: BLE001
            self._error(f"run {run_id}: {exc}")
            return
        metrics: list[str] = []
        for im in self.images:
            for vals in (im.get("metrics") or {}).values():
                metrics += [m for m in vals if m not in metrics]
        first = [m for m in ("psnr", "ssim", "defect_retention") if m in metrics]
        self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        self.metric_combo.addItems(first + [m for m in metrics if m not in first])
        self.metric_combo.blockSignals(False)
        self._fill_images()
        self.chart_metric.blockSignals(True)
        self.chart_metric.clear()
        self.chart_metric.addItems(run_metrics(self.run))
        self.chart_metric.blockSignals(False)
        self._draw_chart()
        self.status.setText(f"run {run_id}: {len(self.images)} images, {len(self.defects)} defects")

    # --- images -----------------------------------------------------------------------------------
    def _fill_images(self) -> None:
        header, rows = image_rows(self.images, self.metric_combo.currentText())
        self.image_header = header
        t = self.images_table
        t.blockSignals(True)
        t.setSortingEnabled(False)
        t.clearContents()
        t.setColumnCount(len(header))
        t.setHorizontalHeaderLabels(header)
        t.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                item = _item(v)
                item.setData(Qt.ItemDataRole.UserRole, i)
                t.setItem(i, j, item)
        t.setSortingEnabled(True)
        t.blockSignals(False)
        t.resizeColumnsToContents()

    def sort_images(self, column: str, *, descending: bool = False) -> None:
        """Sort the image table by a column name (e.g. a method: its values of the chosen metric)."""
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self.images_table.sortItems(self.image_header.index(column), order)

    def image_order(self) -> list[str]:
        """Image ids in the table's current (sorted) order."""
        t = self.images_table
        return [str(self.images[t.item(i, 0).data(Qt.ItemDataRole.UserRole)]["id"]) for i in range(t.rowCount())]

    def table_values(self, column: str) -> dict[str, Any]:
        """``image id -> value shown`` in a column (a float, or None when empty)."""
        t, j = self.images_table, self.image_header.index(column)
        out = {}
        for i in range(t.rowCount()):
            v = t.item(i, j).data(NUMBER_ROLE)
            out[str(self.images[t.item(i, 0).data(Qt.ItemDataRole.UserRole)]["id"])] = (
                v if isinstance(v, float) else None)
        return out

    def select_image(self, row: int) -> None:
        """Show the image in table row ``row`` (in the current sort order)."""
        if not 0 <= row < self.images_table.rowCount():
            return
        self.images_table.selectRow(row)

    def _on_image_selected(self) -> None:
        rows = sorted({i.row() for i in self.images_table.selectedIndexes()})
        if not rows:
            return
        image = self.images[self.images_table.item(rows[0], 0).data(Qt.ItemDataRole.UserRole)]
        self.open_image(image)

    def open_image(self, image: dict[str, Any]) -> Panels:
        """Put ``image``'s panels into the viewer."""
        self.panels = show_image(self.viewer, self.source, image, self.defects)
        self.method_index = -1
        note = f"; missing: {', '.join(self.panels.missing)}" if self.panels.missing else ""
        self.status.setText(f"{image['dataset']}/{image['name']}: {len(self.panels.intensity)} panels, "
                            f"{len(self.panels.differences)} difference maps{note}")
        if self.panels.missing and not self.panels.intensity:
            self._error(next(iter(self.panels.missing.values())))
        return self.panels

    def _current_row(self) -> int:
        rows = sorted({i.row() for i in self.images_table.selectedIndexes()})
        return rows[0] if rows else -1

    def next_image(self) -> None:
        self.select_image(min(self._current_row() + 1, self.images_table.rowCount() - 1))

    def previous_image(self) -> None:
        self.select_image(max(self._current_row() - 1, 0))

    def next_method(self, step: int = 1) -> None:
        """Select the next method's panel; with the grid off, show only that method (a blink comparison)."""
        if not self.panels or not self.panels.methods:
            return
        self.method_index = (self.method_index + step) % len(self.panels.methods)
        name = self.panels.methods[self.method_index]
        layers = self.viewer.layers
        if not self.viewer.canvas.grid.enabled:
            for lay in layers:
                if lay.name in self.panels.methods or lay.name.removeprefix("defects: ") in self.panels.methods:
                    lay.visible = lay.name in (name, f"defects: {name}")
        layers.selection.active = layers[name]
        self.status.setText(f"method {name}")

    def previous_method(self) -> None:
        self.next_method(-1)

    # --- charts -----------------------------------------------------------------------------------
    def _draw_chart(self) -> None:
        if self.run is None:
            return
        self.chart_bars = draw_summary(self.figure, self.run, self.chart_metric.currentText() or "psnr")
        self.chart.draw()
