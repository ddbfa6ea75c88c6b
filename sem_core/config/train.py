"""Config section `train`: U-Net training and the experiment ladder (issue 3).

Top-level fields are the common hyper-parameters (the defaults are the small 2-core
profile: ``sem-denoise train`` of the default experiment finishes in a few minutes on
CPU). ``experiments`` names the ladder; each entry picks a loss and overrides the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..patches import resolve_augment
from .base import Section

__all__ = ["ExperimentConfig", "ModelConfig", "TrainConfig", "default_experiments"]

LossName = Literal["baseline", "charbonnier", "full", "mse", "ssim", "ms_ssim", "charbonnier_only", "edge"]


class ModelConfig(Section):
    """U-Net architecture (keyword arguments of ``sem_core.models.unet.UNet``)."""

    base_channels: int = Field(16, ge=1)
    depth: int = Field(3, ge=1, le=6)
    norm: Literal["batch", "group", "none"] = "batch"
    residual: bool = False
    edge_input: bool = False


class ExperimentConfig(Section):
    """One named experiment: loss and weights, model overrides, optional own training data."""

    loss: LossName = "charbonnier"
    lam: float = Field(0.2, ge=0, description="SSIM weight of baseline/charbonnier.")
    alpha: float = Field(0.2, ge=0, description="MS-SSIM weight of full.")
    beta: float = Field(0.1, ge=0, description="Sobel edge-loss weight of full.")
    eps: float = Field(1e-3, gt=0, description="Charbonnier epsilon.")
    model: dict[str, int | bool | str] = Field(default_factory=dict, description="Overrides of `train.model`.")
    train_data: Path | None = Field(
        None, description="Zarr to train on instead of the `--dataset` one (sim2real: simulated noise on Tin-balls "
        "clean images); validation then uses the real `--dataset` Zarr's val split.")
    init_from: str | None = Field(
        None, description="Checkpoint whose weights start the run (same architecture), e.g. a sim2real run: "
        "'models/sim2real_tin_balls_s{seed}/best.ckpt' ({seed} is the run's seed).")
    augment: Literal["dihedral", "scan", "none"] | None = Field(
        None, description="Overrides `train.augment` for this experiment.")
    description: str = ""


def default_experiments() -> dict[str, ExperimentConfig]:
    """The issue-3 ladder: baseline, charbonnier, full and the variants on top of `full`."""
    return {
        "baseline": ExperimentConfig(loss="baseline", description="MSE + lam (1 - SSIM)"),
        "charbonnier": ExperimentConfig(loss="charbonnier", description="Charbonnier + lam (1 - SSIM)"),
        "full": ExperimentConfig(loss="full", description="Charbonnier + alpha (1 - MS-SSIM) + beta Edge"),
        "residual": ExperimentConfig(loss="full", model={"residual": True}, description="full, predicts the noise"),
        "deeper": ExperimentConfig(loss="full", model={"depth": 4}, description="full, one level deeper"),
        "edge_input": ExperimentConfig(loss="full", model={"edge_input": True},
                                       description="full, Sobel magnitude as an extra input channel"),
        "sim2real": ExperimentConfig(
            loss="full", train_data=Path("data/interim/tin_balls_sim.zarr"),
            description="full, trained on simulated noise, evaluated on real noisy images"),
        "sim2real_ft": ExperimentConfig(
            loss="full", init_from="models/sim2real_tin_balls_s{seed}/best.ckpt",
            description="full on real pairs, starting from the sim2real weights (simulated-noise pre-training)"),
        "scan_aug": ExperimentConfig(
            loss="full", augment="scan",
            description="full, augmented only by up-down flips: keeps the fast-scan axis and direction of the noise"),
    }


class TrainConfig(Section):
    """U-Net training and the experiment ladder (issue 3)."""

    experiment: str = Field("charbonnier", description="Default experiment of `sem-denoise train`.")
    dataset: Literal["tin_balls", "wafers"] = "tin_balls"
    model: ModelConfig = ModelConfig()
    patch_size: int = Field(64, ge=16)
    batch_size: int = Field(8, ge=1)
    steps: int = Field(300, ge=1)
    steps_per_epoch: int = Field(50, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["cosine", "onecycle"] = "cosine"
    grad_clip: float | None = Field(1.0, gt=0)
    early_stopping_patience: int | None = Field(5, ge=1)
    val_crop: int = Field(256, ge=16, description="Validation images are centre-cropped to at most this side.")
    augment: Literal["dihedral", "scan", "none"] = Field(
        "dihedral", description="Patch transforms: all 8 flips/rot90, 'scan' (identity and up-down flip: keeps "
        "the fast-scan axis and direction of the noise), or none. true/false mean dihedral/none.")
    defect_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="Share of training patches placed on a defect (Wafers' defects.parquet).")
    ema_decay: float | None = Field(
        None, gt=0.0, lt=1.0, description="Exponential moving average of the weights (validated, checkpointed).")
    align_pairs: bool = Field(False, description="Use the dataset's attrs['pair_shifts'] to align training pairs.")
    device: str = "auto"
    compile: bool = False
    experiments: dict[str, ExperimentConfig] = Field(default_factory=default_experiments)

    @field_validator("augment", mode="before")
    @classmethod
    def _augment_from_bool(cls, value: object) -> object:
        return resolve_augment(value) if isinstance(value, bool) else value  # strings: the Literal checks them

    @model_validator(mode="after")
    def _check_experiment(self) -> TrainConfig:
        if self.experiment not in self.experiments:
            known = list(self.experiments)
            raise ValueError(f"train.experiment {self.experiment!r} is not in train.experiments {known}")
        for name, exp in self.experiments.items():
            unknown = set(exp.model) - set(ModelConfig.model_fields)
            if unknown:
                raise ValueError(f"train.experiments.{name}.model: unknown keys {sorted(unknown)}")
        return self

    def augment_for(self, name: str) -> str:
        """The augmentation mode of experiment ``name`` (its override, else ``train.augment``)."""
        return self.experiments[name].augment or self.augment

    def resolve(self, name: str) -> tuple[dict, dict]:
        """``(model_kwargs, loss_kwargs)`` of experiment ``name`` (model overrides applied)."""
        if name not in self.experiments:
            raise KeyError(f"unknown experiment {name!r}; known: {sorted(self.experiments)}")
        exp = self.experiments[name]
        model = ModelConfig.model_validate({**self.model.model_dump(), **exp.model}).model_dump()
        loss = {"name": exp.loss, "lam": exp.lam, "alpha": exp.alpha, "beta": exp.beta, "eps": exp.eps}
        return model, loss
