"""Config section `release`: the release recipe (``sem-denoise release``): candidates, seeds, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import Section
from .train import LossName, ModelConfig

__all__ = ["ReleaseCandidateConfig", "ReleaseConfig"]


class ReleaseCandidateConfig(Section):
    """One candidate recipe: overrides of the common settings (unset fields keep them)."""

    pretrain_steps: int = Field(0, ge=0, description="Steps on simulated noise before the real pairs.")
    sim_copies: int = Field(0, ge=0, le=16, description="Simulated noisy copies of each training clean image.")
    brightness: float = Field(0.0, ge=0, le=0.5, description="Brightness offset range (unit scale).")
    contrast: float = Field(0.0, ge=0, le=0.9, description="Contrast gain range about 1.")
    noise_scale: tuple[float, float] = Field((1.0, 1.0), description="Residual scale range (noise level).")
    steps: int | None = Field(None, ge=1, description="Real-pair steps (default: release.steps).")
    lr: float | None = Field(None, gt=0, description="Learning rate (default: release.lr).")
    seeds: tuple[int, ...] | None = Field(None, min_length=1, description="Seeds (default: release.seeds).")

    @model_validator(mode="after")
    def _check(self) -> "ReleaseCandidateConfig":
        lo, hi = self.noise_scale
        if not 0 < lo <= hi:
            raise ValueError(f"noise_scale must be 0 < lo <= hi, got {list(self.noise_scale)}")
        if self.pretrain_steps and not self.sim_copies:
            raise ValueError("pretrain_steps > 0 needs sim_copies >= 1")
        return self

    def overrides(self) -> dict[str, Any]:
        """Keyword arguments for :func:`sem_core.release.run.run_release`'s ``candidates``."""
        return self.model_dump(exclude_none=True)


class ReleaseConfig(Section):
    """Train candidates on the Tin-balls training block, choose on val, export the chosen fp16 release."""

    out: Path = Field(Path("models/release_candidate/unet_tin_balls.safetensors"),
                      description="Exported release (.safetensors + .json card); promote to paths.release_model by hand.")
    report: Path = Field(Path("reports/release_eval.json"), description="Every run's val/test figures (JSON).")
    in_pipeline: bool = Field(False, description="A `release` stage in both routes (dvc.yaml and the Prefect "
                              "pipeline; regenerate dvc.yaml with `make dvc-yaml`). Off by default: the recipe "
                              "takes about an hour on a 2-core CPU, beyond `make run`'s budget.")
    model: ModelConfig = ModelConfig()
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(8, ge=1)
    patch_px: int = Field(64, ge=16)
    lr: float = Field(2e-3, gt=0)
    loss: LossName = "charbonnier"
    augment: Literal["none", "scan", "dihedral"] = "scan"
    seeds: tuple[int, ...] = Field((0, 1), min_length=1)
    ensemble: Literal["none", "scan", "dihedral"] = "none"
    candidates: dict[str, ReleaseCandidateConfig] = Field(
        default_factory=lambda: {"real": ReleaseCandidateConfig()}, min_length=1)

    @field_validator("out")
    @classmethod
    def _suffix(cls, v: Path) -> Path:
        if v.suffix != ".safetensors":
            raise ValueError(f"release.out must end in .safetensors, got {v}")
        return v

    def common_kwargs(self) -> dict[str, Any]:
        """Arguments of :func:`sem_core.release.recipe.train_candidate` shared by the candidates."""
        return {"model_kwargs": self.model.model_dump(), "steps": self.steps, "batch_size": self.batch_size,
                "patch_px": self.patch_px, "lr": self.lr, "loss": self.loss, "augment": self.augment}
