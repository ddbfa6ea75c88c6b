"""Re-run issue 16's mutation table: put each one-line bug into a copy of the code, run its guarding tests.

Each row is a bug that once survived the tests that claim to guard that line (or, for the last,
one that was caught). The bug is applied as an exact text replacement in a temporary copy of the
tracked tree (the working tree is never touched); a replacement that no longer matches the code
is reported as ``stale`` (update the row), not silently skipped. A bug is *caught* when the
guarding tests fail on it.

Usage::

    nice python bench/mutation_table.py            # all rows (~5-10 min on 2 idle cores)
    python bench/mutation_table.py --rows gaussian_halo msssim_luminance
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bug:
    key: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    owner: str = "#16"


BUGS = (
    Bug("gaussian_halo", "Gaussian halo one pixel too small", "sem_core/denoise/classical.py",
        "return int(self.truncate * self.sigma_px + 0.5)", "return int(self.truncate * self.sigma_px + 0.5) - 1",
        ("tests/test_denoise_classical.py", "-k", "gaussian", "tests/test_denoise_tiled.py")),
    Bug("zarr_marker_first", "tiled Zarr denoising writes the block-done marker before the block's data",
        "sem_core/denoise_zarr.py",
        "    level0[r0 : r0 + block.shape[0], c0 : c0 + block.shape[1]] = from_unit_float(block, level0.dtype)\n"
        "    group[_PROGRESS][i, j] = 1",
        "    group[_PROGRESS][i, j] = 1\n"
        "    level0[r0 : r0 + block.shape[0], c0 : c0 + block.shape[1]] = from_unit_float(block, level0.dtype)",
        ("tests/test_denoise_zarr.py",)),
    Bug("batch_ledger_first", "batch flow records the batch done in the ledger before publishing its marker",
        "flows/batch.py",
        "        final = publish_output(staging, outputs_dir / name, content_hash=content_hash, summary=summary)",
        "        record_batch(outputs_dir, name, {\"status\": \"done\", \"content_hash\": content_hash})\n"
        "        final = publish_output(staging, outputs_dir / name, content_hash=content_hash, summary=summary)",
        ("tests/flows/test_flow_batch_order.py",)),
    Bug("msssim_luminance", "metric MS-SSIM drops the luminance term at the coarsest scale",
        "sem_core/metrics/full_reference.py", "values.append(max(ssim_val, 0.0))", "values.append(max(cs_val, 0.0))",
        ("tests/test_metrics.py", "-k", "ms_ssim")),
    Bug("synth_wafers_key", "synth_wafers cache key forgets the imaging and specimen sections",
        "sem_pipeline/stages.py",
        'Stage("synth_wafers", "sem_cli.synth:wafers_cmd", sections=("seed", "datasets.wafers", "imaging", "specimen"),',
        'Stage("synth_wafers", "sem_cli.synth:wafers_cmd", sections=("seed", "datasets.wafers"),',
        ("tests/test_stage_keys.py", "-k", "sections_each_stage"), owner="#13 (stage table)"),
    Bug("weights_only", "checkpoints loaded with weights_only=False", "sem_core/checkpoint.py",
        "ckpt = torch.load(path, map_location=map_location, weights_only=True)",
        "ckpt = torch.load(path, map_location=map_location, weights_only=False)",
        ("tests/test_checkpoint.py",)),
)


def _copy_tree(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dst / rel)


def run_bug(bug: Bug, work: Path) -> tuple[str, float]:
    target = work / bug.path
    original = target.read_text()
    if original.count(bug.old) != 1:
        return "stale (the line changed: update this row)", 0.0
    target.write_text(original.replace(bug.old, bug.new))
    env = {**os.environ, "PYTHONPATH": str(work), "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-W", "ignore",
                               *bug.tests], cwd=work, env=env, capture_output=True, text=True)
    finally:
        target.write_text(original)
    seconds = time.perf_counter() - t0
    if proc.returncode == 1:
        return "caught", seconds
    if proc.returncode == 0:
        return "SURVIVES", seconds
    return f"error (pytest exit {proc.returncode}): {proc.stdout[-500:]}", seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", nargs="*", default=[b.key for b in BUGS], choices=[b.key for b in BUGS])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sem-mutation-table-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        print(f"{'bug':<78} {'owner':<20} result   (seconds)")
        for bug in (b for b in BUGS if b.key in args.rows):
            result, seconds = run_bug(bug, work)
            print(f"{bug.what:<78} {bug.owner:<20} {result}   ({seconds:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
