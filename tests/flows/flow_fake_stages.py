"""Stand-in for every stage command in the pipeline wiring tests: instant, and each output's content is a hash
of exactly what the real stage's output depends on (its data dependencies' content and its config sections), so
cache behaviour downstream is realistic. Every call is logged (stage name) to ``calls.log`` in the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sem_core.config import load_params
from sem_core.provenance import hash_params
from sem_pipeline.keys import hash_path, section_values
from sem_pipeline.stages import build_stages


def _find_stage(command: str, params: Any, call: dict[str, Any]):
    real = Path(params.paths.tin_balls_source).is_dir()
    for train in (True, False):
        for stage in build_stages(params, train=train, real_data=real).values():
            if stage.command == command and dict(stage.call) == call:
                return stage
    raise LookupError(f"no stage runs {command} with {call}")


def make_fake(command: str):
    """A fake of the command function ``command`` (same call convention as the real one)."""

    def fake(**kwargs: Any) -> None:
        params_file = kwargs.pop("params", None) or kwargs.pop("params_path")
        params = load_params(params_file, profile=kwargs.pop("profile"))
        stage = _find_stage(command, params, kwargs)
        with open("calls.log", "a") as fh:
            fh.write(stage.name + "\n")
        dump = params.model_dump(mode="json")
        content = hash_params([[hash_path(d) for d in stage.deps if Path(d).exists()],
                               section_values(dump, stage.sections)])
        for out in stage.all_outputs:
            out = Path(out)
            if out.suffix in (".zarr", "") or out.name.endswith(".ome.zarr"):
                out.mkdir(parents=True, exist_ok=True)
                out = out / "data"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(content)

    return fake
