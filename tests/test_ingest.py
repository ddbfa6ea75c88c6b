"""Ingest: pairing, per-pair checks, manifest + bad items (nothing dropped silently), outputs, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandera.errors
import pytest
import tifffile
import typer
from fixtures_ingest import make_specimen, shifted_pair, to_uint8, write_fei_tiff, write_png
from pydantic import ValidationError
from typer.testing import CliRunner

from sem_cli.ingest import register
from sem_core.config.ingest import IngestConfig
from sem_core.ingest import (
    IngestError, describe_dataset, find_pairs, ingest_pairs, load_pair, read_manifest, write_ingest_outputs,
)
from sem_core.io.sem_tiff import SemReadError, read_sem_image
from sem_core.provenance import hash_file, make_provenance
from sem_core.registration import valid_slices
from sem_core.schemas.manifest import MANIFEST_SCHEMA

SHIFTS = {"001": (1.0, -1.5), "002": (-2.0, 0.5), "003": (0.5, 2.0)}


def _write_pair(root: Path, key: str, shift: tuple[float, float], seed: int, shape=(128, 160)) -> None:
    rng = np.random.default_rng(seed)
    noisy_content, clean_content = shifted_pair(shape, shift, rng)  # clean[r] = noisy[r + dy]
    noisy = to_uint8(noisy_content + 0.03 * rng.standard_normal(shape))
    write_fei_tiff(root / "low" / f"100ns_{key}.tif", noisy, dwell_s=1e-7)
    write_fei_tiff(root / "high" / f"30us_{key}.tif", to_uint8(clean_content), dwell_s=3e-5)


@pytest.fixture
def good_dir(tmp_path) -> Path:
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    for i, (key, shift) in enumerate(SHIFTS.items()):
        _write_pair(tmp_path, key, shift, seed=i)
    (tmp_path / "LICENSE").write_text("MIT License\n\nCopyright (c) test\n")
    return tmp_path


def _all_files(*folders: Path) -> set[str]:
    return {str(p) for f in folders for p in f.iterdir() if p.is_file()}


def test_good_pairs_metadata_and_shifts(good_dir):
    res = ingest_pairs(good_dir / "low", good_dir / "high")
    m = res.manifest
    assert res.bad == [] and list(m["pair_id"]) == ["001", "002", "003"]
    assert (m["height"] == 128).all() and (m["width"] == 160).all() and (m["crop_rows"] == 29).all()
    assert set(m["dtype"]) == {"uint8"} and set(m["channel"]) == {"G"} and set(m["detector"]) == {"ETD"}
    assert np.allclose(m["pixel_size_nm"], 5.83) and np.allclose(m["beam_kv"], 10.0)
    assert np.allclose(m["dwell_noisy_s"], 1e-7) and np.allclose(m["dwell_clean_s"], 3e-5)
    for _, row in m.iterrows():
        assert row["noisy_sha256"] == hash_file(row["noisy_path"])
        assert abs(row["shift_dy"] - SHIFTS[row["pair_id"]][0]) < 0.15
        assert abs(row["shift_dx"] - SHIFTS[row["pair_id"]][1]) < 0.15
    MANIFEST_SCHEMA.validate(m)


def test_load_pair_raw_and_aligned(good_dir):
    row = ingest_pairs(good_dir / "low", good_dir / "high").manifest.iloc[1]
    noisy, clean = load_pair(row)
    np.testing.assert_array_equal(clean, read_sem_image(row["clean_path"]).data)
    _, aligned = load_pair(row, align=True)
    _, aligned_lin = load_pair(row, align=True, order="linear")
    assert aligned.dtype == np.uint8 and aligned_lin.dtype == np.float32
    shift = (row["shift_dy"], row["shift_dx"])
    rows, cols = valid_slices(noisy.shape, shift)
    rows, cols = slice(rows.start + 2, rows.stop - 2), slice(cols.start + 2, cols.stop - 2)  # skip the frame

    def err(c):
        return np.abs(noisy[rows, cols].astype(float) - c[rows, cols].astype(float)).mean()

    assert err(aligned) < 0.5 * err(clean) and err(aligned_lin) < 0.5 * err(clean)


def test_load_pair_refuses_a_changed_file(good_dir):
    row = ingest_pairs(good_dir / "low", good_dir / "high").manifest.iloc[0]
    write_fei_tiff(Path(row["clean_path"]), np.full((128, 160), 99, np.uint8))
    with pytest.raises(SemReadError, match="content changed"):
        load_pair(row)


def test_bad_batch_lists_every_dropped_file_and_keeps_good_pairs(good_dir):
    low, high = good_dir / "low", good_dir / "high"
    grey = to_uint8(make_specimen((128, 160), np.random.default_rng(9)))
    trunc = write_fei_tiff(low / "100ns_004.tif", grey)
    trunc.write_bytes(trunc.read_bytes()[:2000])
    write_fei_tiff(high / "30us_004.tif", grey)
    (low / "100ns_005.tif").write_text("this is not a TIFF")
    write_fei_tiff(high / "30us_005.tif", grey)
    write_fei_tiff(low / "100ns_006.tif", grey)
    write_fei_tiff(high / "30us_006.tif", grey[:100])  # shape mismatch
    write_fei_tiff(low / "100ns_007.tif", grey)  # no partner
    data = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    tifffile.imwrite(low / "100ns_008.tif", data)
    data[3, 3] = np.nan
    tifffile.imwrite(high / "30us_008.tif", data)
    (high / "notes.txt").write_text("acquisition notes")
    res = ingest_pairs(low, high)
    assert list(res.manifest["pair_id"]) == ["001", "002", "003"]
    reasons = {Path(b.path).name: b.reason for b in res.bad}
    assert "not a readable image" in reasons["100ns_004.tif"] and "partner" in reasons["30us_004.tif"]
    assert "not a readable image" in reasons["100ns_005.tif"]
    assert "shape" in reasons["100ns_006.tif"] and "shape" in reasons["30us_006.tif"]
    assert "no partner" in reasons["100ns_007.tif"] and "NaN/Inf" in reasons["30us_008.tif"]
    assert "unsupported file type" in reasons["notes.txt"]
    accounted = set(res.manifest["noisy_path"]) | set(res.manifest["clean_path"]) | {b.path for b in res.bad}
    assert accounted == _all_files(low, high)  # never silently dropped
    assert (res.n_noisy_files, res.n_clean_files) == (8, 8)


def test_empty_or_missing_folder_is_an_error(tmp_path, good_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="empty"):
        ingest_pairs(tmp_path / "empty", good_dir / "high")
    with pytest.raises(IngestError, match="does not exist"):
        find_pairs(good_dir / "low", tmp_path / "nope")


def test_sorted_mode_pattern_none_duplicates_and_non_matching(tmp_path):
    grey = np.full((32, 32), 100, np.uint8)
    for folder, names in {"n": ["a.png", "b.png", "c.png"], "c": ["x.png", "y.png"]}.items():
        (tmp_path / folder).mkdir()
        for name in names:
            write_png(tmp_path / folder / name, grey)
    listing = find_pairs(tmp_path / "n", tmp_path / "c", mode="sorted")
    assert [(k, n.name, c.name) for k, n, c in listing.pairs] == [("a", "a.png", "x.png"), ("b", "b.png", "y.png")]
    assert [Path(b.path).name for b in listing.bad] == ["c.png"]
    write_png(tmp_path / "c" / "a.png", grey)
    same = find_pairs(tmp_path / "n", tmp_path / "c", pattern=None)
    assert [k for k, _, _ in same.pairs] == ["a"] and len(same.bad) == 4  # b, c, x, y have no partner
    for name in ("s_1.png", "t_1.png"):
        write_png(tmp_path / "n" / name, grey)
    write_png(tmp_path / "c" / "u_1.png", grey)
    dup = find_pairs(tmp_path / "n", tmp_path / "c", pattern=r"(\d+)")
    reasons = {Path(b.path).name: b.reason for b in dup.bad}
    assert dup.pairs == [] and "duplicate" in reasons["s_1.png"] and "does not match" in reasons["a.png"]
    with pytest.raises(IngestError, match="pair mode"):
        find_pairs(tmp_path / "n", tmp_path / "c", mode="zip")


def test_outputs_round_trip_with_provenance_and_licence(good_dir, tmp_path):
    dataset = describe_dataset(good_dir, licence="MIT", licence_file="LICENSE", citation="doi:x", repository="o/r")
    res = ingest_pairs(good_dir / "low", good_dir / "high", dataset=dataset)
    prov = make_provenance(params={"a": 1}, inputs_hash="abc", extra={"stage": "ingest"})
    report = write_ingest_outputs(res, manifest_path=tmp_path / "o" / "m.parquet",
                                  report_path=tmp_path / "o" / "r.json", provenance=prov)
    back = read_manifest(tmp_path / "o" / "m.parquet")
    assert back.attrs["provenance"] == prov and back.equals(res.manifest)
    on_disk = json.loads((tmp_path / "o" / "r.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert on_disk["summary"]["n_pairs"] == 3 and on_disk["bad_items"] == []
    assert on_disk["dataset"]["licence_text"].startswith("MIT License") and on_disk["provenance"] == prov


def test_schema_rejects_bad_rows(good_dir):
    m = ingest_pairs(good_dir / "low", good_dir / "high").manifest
    for col, value in (("height", -1), ("noisy_sha256", "xyz"), ("dtype", "int8")):
        broken = m.copy()
        broken.loc[0, col] = value
        with pytest.raises(pandera.errors.SchemaError):
            MANIFEST_SCHEMA.validate(broken)


def test_config_defaults_and_validation():
    cfg = IngestConfig()
    assert (cfg.noisy_subdir, cfg.clean_subdir, cfg.crop_rows, cfg.align) == ("time/low", "time/high", None, False)
    with pytest.raises(ValidationError, match="regular expression"):
        IngestConfig(pair_pattern="(")
    with pytest.raises(ValidationError):
        IngestConfig(crop_rows=-1)
    with pytest.raises(ValidationError):
        IngestConfig(unknown=1)


def _cli(tmp_path: Path, source: Path, *extra: str):
    out = tmp_path / "cli"
    params = tmp_path / "params.yaml"
    params.write_text(
        f"paths:\n  tin_balls_source: {source}\n  tin_balls_manifest: {out}/m.parquet\n"
        f"  tin_balls_ingest_report: {out}/r.json\n"
        "ingest:\n  noisy_subdir: low\n  clean_subdir: high\n"
    )
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return CliRunner().invoke(app, ["ingest", "--params", str(params), *extra]), out


def test_cli_exit_codes(good_dir, tmp_path):
    (good_dir / "low" / "100ns_009.tif").write_text("junk")
    result, out = _cli(tmp_path, good_dir, "--align")
    assert result.exit_code == 0, result.output
    assert "pairs ingested" in result.output and "100ns_009.tif" in result.output
    report = json.loads((out / "r.json").read_text())
    assert report["summary"]["n_pairs"] == 3 and report["provenance"]["align"] is True
    for p in (good_dir / "high").iterdir():
        p.write_bytes(b"garbage")
    result, _ = _cli(tmp_path, good_dir)
    assert result.exit_code == 1 and "no good pair" in result.output
    for p in (good_dir / "high").iterdir():
        p.unlink()
    result, _ = _cli(tmp_path, good_dir)
    assert result.exit_code == 1 and "empty" in result.output


@pytest.mark.shared_data
def test_real_tin_balls_ingest(tin_balls_dir):
    res = ingest_pairs(tin_balls_dir / "time" / "low", tin_balls_dir / "time" / "high")
    m = res.manifest
    assert len(m) == 50 and res.bad == []
    assert np.allclose(m["pixel_size_nm"], 5.83, atol=0.01) and (m["crop_rows"] == 29).all()
    assert (m["height"] == 442).all() and (m["width"] == 512).all()
    assert abs(m["shift_dy"].mean() - (-2.1)) < 0.3 and abs(m["shift_dx"].mean() - 0.6) < 0.3
