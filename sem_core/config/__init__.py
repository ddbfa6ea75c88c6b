"""Typed parameters: ``params.yaml`` is read once into these pydantic models.

``params.yaml`` holds the default (small, 2-core) profile at its top level and named
overlays under ``profiles:``. The active overlay is chosen by the top-level key
``profile`` (so ``dvc exp run -S profile=full`` works), by the ``profile=`` argument
of :func:`load_params`, or by the ``SEM_PROFILE`` environment variable, in that order
of precedence: argument, environment, file. Library functions never receive these
models: callers unpack the fields they need into keyword arguments.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from .adapt import AdaptConfig
from .base import Section
from .datasets import DatasetsConfig
from .denoise import DenoiseConfig
from .evaluate import EvaluateConfig
from .imaging import ImagingConfig
from .ingest import IngestConfig
from .noise_fit import NoiseFitConfig
from .paths import PathsConfig
from .release import ReleaseConfig
from .scan import ScanConfig
from .service import ServiceConfig
from .specimen import SpecimenConfig
from .train import TrainConfig

__all__ = ["Params", "load_params", "merge_overrides", "ParamsError"]


class ParamsError(ValueError):
    """params.yaml is missing, malformed, or fails validation."""


class Params(Section):
    """The whole of params.yaml after the active profile is applied."""

    seed: int = Field(20261126, ge=0, description="Project seed; every stage derives its generators from it.")
    profile: str = Field("default", description="Active profile: 'default' or a key of `profiles`.")
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Named overlays.")
    paths: PathsConfig = PathsConfig()
    ingest: IngestConfig = IngestConfig()
    specimen: SpecimenConfig = SpecimenConfig()
    imaging: ImagingConfig = ImagingConfig()
    noise_fit: NoiseFitConfig = NoiseFitConfig()
    datasets: DatasetsConfig = DatasetsConfig()
    scan: ScanConfig = ScanConfig()
    train: TrainConfig = TrainConfig()
    denoise: DenoiseConfig = DenoiseConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    service: ServiceConfig = ServiceConfig()
    adapt: AdaptConfig = AdaptConfig()
    release: ReleaseConfig = ReleaseConfig()


def merge_overrides(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overlay`` into a deep copy of ``base`` (mappings merge, other values replace)."""
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_params(
    path: str | Path = "params.yaml",
    *,
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Params:
    """Read ``params.yaml``, apply the active profile and ``overrides``, validate.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    profile : str, optional
        Profile name; default: ``$SEM_PROFILE`` or the file's ``profile`` key.
    overrides : mapping, optional
        Nested values merged last (e.g. from a Prefect flow parameter).

    Raises
    ------
    ParamsError
        Naming the file and the offending key, with the pydantic error chained.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ParamsError(f"cannot read parameters file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ParamsError(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    chosen = profile or os.environ.get("SEM_PROFILE") or raw.get("profile", "default")
    profiles = raw.get("profiles", {}) or {}
    if chosen != "default":
        if chosen not in profiles:
            raise ParamsError(f"{path}: unknown profile {chosen!r}; known: {['default', *profiles]}")
        raw = merge_overrides(raw, profiles[chosen])
    raw = dict(raw, profile=chosen)
    if overrides:
        raw = merge_overrides(raw, overrides)
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(f"{path} (profile {chosen!r}) is invalid:\n{exc}") from exc
