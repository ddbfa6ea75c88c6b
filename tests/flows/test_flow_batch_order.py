"""Write ordering of the batch flow: at no moment is a half-written output marked, or a ledger entry ahead.

A Python audit hook sees every file-system write of the process (``open`` for writing, ``os.rename``/
``os.replace``, removals, ``mkdir``). Before each one that touches the outputs folder, and once at
the end, the outputs folder is checked as a reader (or the next run, after a crash at that very
point) would see it:

* a published folder ``<outputs>/<batch>`` with a readable ``_SUCCESS`` marker holds its whole
  content: ``metrics.csv`` valid under the batch schema, ``errors.json``, a ``provenance.json``
  whose input hash is the marker's content hash, and every OME-Zarr output that the metrics name;
* a ``done`` ledger entry for the content being processed now has that marker, with the same
  content hash, in its output folder. (An entry from an earlier run may point at an output that is
  being replaced: by design the marker, not the ledger, says what is finished; see tasks.ledger.)

Checking before every write is checking every state a ``kill -9`` could leave, so a marker written
before the data (or the ledger before the marker) fails here even though the final state is fine.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
import zarr

from flows.batch import process_batches
from tasks.batch import BATCH_METRICS_SCHEMA
from tasks.ledger import LEDGER_NAME, SUCCESS_MARKER, batch_content_hash, read_ledger

_STATE: dict = {"checker": None}
_LOCAL = threading.local()


def _audit(event: str, args: tuple) -> None:
    checker = _STATE["checker"]
    if checker is None or getattr(_LOCAL, "busy", False):
        return
    checker.on_event(event, args)


if not getattr(sys, "_sem_batch_order_hook", False):  # audit hooks cannot be removed: install once, inert when idle
    sys.addaudithook(_audit)
    sys._sem_batch_order_hook = True


def _is_write(event: str, args: tuple) -> str | None:
    """The path a file-system mutation event touches (None for reads and other events)."""
    if event == "open":
        path, mode, flags = args
        if isinstance(mode, str):
            return path if any(ch in mode for ch in "wax+") else None
        import os

        return path if isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) else None
    if event in ("os.rename", "os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.truncate"):
        return args[0]
    return None


class OrderChecker:
    def __init__(self, outputs: Path, fresh_hashes: set[str] = frozenset()) -> None:
        self.outputs = Path(outputs).resolve()
        self.fresh = set(fresh_hashes)
        self.prefix = str(self.outputs)
        self.events = 0
        self.violations: list[str] = []
        self.lock = threading.Lock()

    def on_event(self, event: str, args: tuple) -> None:
        path = _is_write(event, args)
        if path is None or isinstance(path, int):
            return
        try:
            path = str(Path(path if isinstance(path, str) else path.decode()).resolve())
        except (TypeError, AttributeError, UnicodeDecodeError):
            return
        if not path.startswith(self.prefix):
            return
        with self.lock:
            self.events += 1
            self.check(f"before {event} {path}")

    def check(self, when: str) -> None:
        _LOCAL.busy = True
        try:
            for problem in self.problems():
                self.violations.append(f"{when}: {problem}")
        finally:
            _LOCAL.busy = False

    def problems(self) -> list[str]:
        found = []
        if not self.outputs.is_dir():
            return found
        for folder in sorted(p for p in self.outputs.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                marker = json.loads((folder / SUCCESS_MARKER).read_text())
            except (OSError, ValueError):
                continue  # unmarked: not finished, nobody trusts it
            found += [f"{folder.name}: {p}" for p in self._incomplete(folder, marker["content_hash"])]
        try:
            ledger = read_ledger(self.outputs)["batches"]
        except ValueError as exc:
            return [*found, f"ledger unreadable: {exc}"]
        for batch, entry in ledger.items():
            if entry.get("status") != "done" or entry.get("content_hash") not in self.fresh:
                continue
            try:
                marker = json.loads((self.outputs / batch / SUCCESS_MARKER).read_text())
            except (OSError, ValueError):
                found.append(f"ledger says {batch} is done but its output has no marker")
                continue
            if marker.get("content_hash") != entry.get("content_hash"):
                found.append(f"ledger entry of {batch} and its marker disagree on the content hash")
        return found

    @staticmethod
    def _incomplete(folder: Path, content_hash: str) -> list[str]:
        try:
            metrics = BATCH_METRICS_SCHEMA.validate(pd.read_csv(folder / "metrics.csv"))
            json.loads((folder / "errors.json").read_text())
            provenance = json.loads((folder / "provenance.json").read_text())
        except Exception as exc:  # noqa: BLE001 - any unreadable part is the finding
            return [f"marked but incomplete: {exc!r}"]
        out = []
        if provenance.get("inputs_hash") != content_hash:
            out.append("marked with a content hash its provenance does not have (stale output)")
        for name in metrics["output"]:
            if not (folder / name / "zarr.json").is_file() or not (folder / name / "0" / "zarr.json").is_file():
                out.append(f"marked but output {name} is missing")
        return out


def _write_tif(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    clean = np.full((48, 64), 100.0)
    clean[12:36, 16:48] = 180.0
    tifffile.imwrite(path, np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8))


def _run_checked(inbox: Path, outputs: Path) -> OrderChecker:
    outputs.mkdir(parents=True, exist_ok=True)
    checker = OrderChecker(outputs, {batch_content_hash(p) for p in inbox.iterdir()})
    _STATE["checker"] = checker
    try:
        state = process_batches(params_path="params.yaml", methods={"gaussian": {"sigma_px": 1.0}},
                                inbox_dir=str(inbox), outputs_dir=str(outputs), chunks=64, return_state=True)
    finally:
        _STATE["checker"] = None
    assert state.is_completed(), state
    checker.check("at the end")
    return checker


def test_no_intermediate_state_has_a_marked_incomplete_output_or_an_early_ledger_entry(tmp_path, results_dir):
    inbox, outputs = tmp_path / "inbox", tmp_path / "outputs"
    batch = inbox / "b1"
    batch.mkdir(parents=True)
    _write_tif(batch / "a.tif", 1)
    scan = zarr.create_array(store=str(batch / "scan.zarr"), shape=(128, 128), chunks=(64, 64), dtype="uint8")
    scan[:] = np.random.default_rng(3).integers(0, 255, (128, 128), dtype=np.uint8)

    first = _run_checked(inbox, outputs)
    assert first.events > 10 and first.violations == []  # the hook saw the flow's writes, none out of order
    assert read_ledger(outputs)["batches"]["b1"]["status"] == "done"

    # New content for the same batch: the old published output is replaced (the other branch of publishing).
    _write_tif(batch / "a.tif", 2)
    second = _run_checked(inbox, outputs)
    assert second.events > 10 and second.violations == []
    entry = json.loads((outputs / LEDGER_NAME).read_text())["batches"]["b1"]
    assert json.loads((outputs / "b1" / SUCCESS_MARKER).read_text())["content_hash"] == entry["content_hash"]


def test_the_checker_sees_a_marker_ahead_of_its_data_and_a_ledger_ahead_of_its_marker(tmp_path):
    """The invariant itself is not vacuous (the flow test above passes only if the flow orders its writes)."""
    out = tmp_path / "outputs"
    (out / "b1").mkdir(parents=True)
    (out / "b1" / SUCCESS_MARKER).write_text(json.dumps({"content_hash": "h"}))
    checker = OrderChecker(out, {"h"})
    assert any("marked but incomplete" in p for p in checker.problems())
    (out / "b1" / SUCCESS_MARKER).unlink()
    (out / LEDGER_NAME).write_text(json.dumps({"version": 1, "batches": {"b1": {"status": "done", "content_hash": "h"}}}))
    assert any("no marker" in p for p in checker.problems())
