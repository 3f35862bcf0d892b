"""A trial: one grid point made into the technique configs it runs, with a key that names it.

The configs come from the same option descriptions as the CLI and the pages (core.contract.options), so a
trial means what the same flags would mean in `prune`, `quantize`, `distill` or `pipeline`. A point
the configs refuse (ln ranking of single weights, 4-bit static int8) is a failed trial with that
one-line reason, not a failed sweep: such combinations are what a grid crosses into.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.contract.options import from_options
from core.distillation.config import DistillConfig
from core.foundation.errors import UserError
from core.foundation.models.registry import STUDENT_MODELS
from core.foundation.workspace import config_key
from core.pipeline.config import build_pipeline_config
from core.pruning.config import PruneConfig
from core.quantization.config import quantization_config

AUTO_MODE_INT8 = "static"  # quantize.mode left out: 8 bits is the real int8 model ...
AUTO_MODE_LOW_BIT = "simulate"  # ... and fewer bits are simulated


@dataclass(frozen=True)
class TrialPlan:
    key: str  # names the point within its sweep (stable across restarts)
    point: dict  # "technique.param" -> value, as the grid gave it
    steps: tuple[str, ...]
    config: object | None  # a technique config (one step) or a PipelineConfig (several); None when refused
    error: str | None = None  # why the configs refused this point

    @property
    def technique(self) -> str:
        return self.steps[0] if len(self.steps) == 1 else "pipeline"


def trial_key(point: dict) -> str:
    return config_key({name: point[name] for name in sorted(point)})


def step_options(point: dict, technique: str) -> dict:
    """One technique's options (by dest) from a grid point; quantize gets its mode."""
    options = {name.split(".", 1)[1]: value for name, value in point.items() if name.split(".", 1)[0] == technique}
    if technique == "quantize" and options.get("mode") is None:
        bits = options.get("bits", 8)
        options["mode"] = AUTO_MODE_INT8 if bits == 8 else AUTO_MODE_LOW_BIT
        options.setdefault("bits", bits)
    return options


def plan_trial(point: dict, steps: tuple[str, ...], source_architecture: str, seed: int, device: str) -> TrialPlan:
    key = trial_key(point)
    try:
        config = build_trial_config(point, steps, source_architecture, seed, device)
    except UserError as error:
        return TrialPlan(key, point, steps, None, str(error))
    return TrialPlan(key, point, steps, config)


def build_trial_config(point: dict, steps: tuple[str, ...], source_architecture: str, seed: int, device: str):
    """A single technique's config, or a pipeline's when the point names several techniques."""
    if len(steps) > 1:
        options = {"steps": steps}
        for step in steps:
            options.update(step_options(point, step))
        return build_pipeline_config(options, source_architecture, seed, device)
    (step,) = steps
    options = step_options(point, step)
    if step == "prune":
        return from_options(PruneConfig, options, seed=seed)
    if step == "quantize":
        return quantization_config(options.pop("mode"), options)
    student = options.get("student") or (source_architecture if source_architecture in STUDENT_MODELS else None)
    return from_options(DistillConfig, {**options, "student": student}, seeds=(seed,), device=device)
