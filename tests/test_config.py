"""params.yaml loads into typed models; bad input fails loudly."""

from pathlib import Path

import pytest

from sem_core.config import ParamsError, load_params, merge_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_repository_params_validate_for_every_profile():
    base = load_params(ROOT / "params.yaml", profile="default")
    assert base.profile == "default"
    import yaml

    for name in yaml.safe_load((ROOT / "params.yaml").read_text()).get("profiles", {}):
        assert load_params(ROOT / "params.yaml", profile=name).profile == name


def test_unknown_key_is_rejected_with_the_file_named(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("seed: 1\npaths:\n  not_a_path: x\n")
    with pytest.raises(ParamsError, match="params.yaml") as info:
        load_params(p)
    assert "not_a_path" in str(info.value)
    assert info.value.__cause__ is not None


def test_unknown_profile_and_negative_seed_are_errors(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("seed: 1\nprofiles: {big: {seed: 2}}\n")
    assert load_params(p, profile="big").seed == 2
    with pytest.raises(ParamsError, match="unknown profile 'nope'"):
        load_params(p, profile="nope")
    p.write_text("seed: -1\n")
    with pytest.raises(ParamsError, match="seed"):
        load_params(p)


def test_profile_from_environment(tmp_path, monkeypatch):
    p = tmp_path / "params.yaml"
    p.write_text("seed: 1\nprofiles: {big: {seed: 5}}\n")
    monkeypatch.setenv("SEM_PROFILE", "big")
    assert load_params(p).seed == 5


def test_merge_overrides_is_deep_and_does_not_mutate():
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    out = merge_overrides(base, {"a": {"b": 10}})
    assert out == {"a": {"b": 10, "c": 2}, "d": 3}
    assert base["a"]["b"] == 1
