"""What a pipeline runs: its steps in order, each step's technique config, and the presets.

Configs are made from flag-named options (the CLI's namespace, the page's widgets, a preset) by
each technique config's own option descriptions (core.contract.options), so a setting means the same in a
pipeline as in its technique's own command.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.contract.options import from_options
from core.distillation.config import DistillConfig
from core.foundation.errors import UserError
from core.foundation.models.registry import STUDENT_MODELS
from core.pruning.config import PruneConfig, parse_layers
from core.quantization.config import QuantizationConfig, quantization_config

STEP_ORDER = ("distill", "prune", "quantize")


@dataclass(frozen=True)
class PipelinePreset:
    title: str
    description: str
    options: dict  # step options by dest, as the CLI spells them


PRESETS: dict[str, PipelinePreset] = {
    "deep-compression": PipelinePreset(
        "Deep Compression style",
        "Prune 90% of the weights (smallest magnitudes, one global threshold), fine-tune with the masks fixed, "
        "quantize to int8 (static, PT2E), then store the nonzero int8 codes with a bitmask and entropy-code the file (Han et al., 2016).",
        {
            "steps": ("prune", "quantize"),
            "method": "l1",
            "granularity": "unstructured",
            "scope": "global",
            "amount": 0.9,
            "finetune_epochs": 1,
            "iterative_steps": 2,
            "remove": False,
            "mode": "static",
        },
    ),
    "smallest-fast": PipelinePreset(
        "Smallest fast model",
        "Distill the teacher into the student, remove half of its channels (L2 filter norm; the network physically shrinks "
        "to about the narrow student's width), fine-tune, then static int8 so convolutions and linears run on int8 kernels.",
        {
            "steps": ("distill", "prune", "quantize"),
            "student": "simple_cnn",
            "method": "ln",
            "granularity": "channel",
            "scope": "layer",
            "amount": 0.5,
            "remove": True,
            "finetune_epochs": 2,
            "iterative_steps": 1,
            "mode": "static",
        },
    ),
}


@dataclass(frozen=True)
class PipelineConfig:
    steps: tuple[str, ...]
    distill: DistillConfig | None = None
    prune: PruneConfig | None = None
    quantize: QuantizationConfig | None = None
    preset: str = "custom"

    def config_for(self, step: str):
        return {"distill": self.distill, "prune": self.prune, "quantize": self.quantize}[step]

    def validate(self) -> None:
        check_steps(self.steps)
        for step in self.steps:
            config = self.config_for(step)
            if config is None:
                raise UserError(f"the {step} step has no settings")
            config.validate()
        if "distill" in self.steps and len(self.distill.seeds) != 1:
            raise UserError(f"a pipeline distills one student, from one seed; got seeds {list(self.distill.seeds)}")
        if "quantize" in self.steps and self.quantize.mode == "dynamic":
            raise UserError("a pipeline ends in a saved model zip, and dynamic int8 quantizes activations afresh on every call, which a file cannot hold; use static, simulate or qat")

    def as_dict(self) -> dict:
        return {"preset": self.preset, "steps": list(self.steps), **{step: (self.config_for(step).as_dict() if step in self.steps else None) for step in STEP_ORDER}}


def parse_steps(text: str | tuple | list) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text.split(",") if isinstance(text, str) else text) if part and part.strip())


def check_steps(steps: tuple[str, ...]) -> None:
    if not steps:
        raise UserError(f"choose at least one step from {', '.join(STEP_ORDER)}")
    unknown = [step for step in steps if step not in STEP_ORDER]
    if unknown:
        raise UserError(f"unknown pipeline step '{unknown[0]}'; choose from {', '.join(STEP_ORDER)}")
    if len(set(steps)) != len(steps) or list(steps) != sorted(steps, key=STEP_ORDER.index):
        raise UserError(f"steps run once each, in the order {' -> '.join(STEP_ORDER)}; got {' -> '.join(steps)}")


def pipeline_options(preset: str | None, given: dict) -> dict:
    """A preset's options, then whatever was given explicitly (None means "not given")."""
    if preset is not None and preset not in PRESETS:
        raise UserError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    options = dict(PRESETS[preset].options) if preset else {}
    options.update({key: value for key, value in given.items() if value is not None})
    options["preset"] = preset or "custom"
    return options


def build_pipeline_config(options: dict, source_architecture: str, seed: int = 0, device: str = "auto") -> PipelineConfig:
    """Typed step configs from dest-named options; checked before any work starts."""
    steps = parse_steps(options.get("steps") or ())
    check_steps(steps)
    distill = prune = quantize = None
    if "distill" in steps:
        student = options.get("student") or (source_architecture if source_architecture in STUDENT_MODELS else None)
        distill = from_options(DistillConfig, {**options, "student": student}, seeds=(seed,), epochs=options.get("epochs"), device=device)
    if "prune" in steps:
        prune = from_options(PruneConfig, options, layers=parse_layers(options.get("layers")), seed=seed)
    if "quantize" in steps:
        if not options.get("mode"):
            raise UserError("the quantize step needs a mode (--mode simulate, dynamic, static or qat)")
        quantize = quantization_config(options["mode"], {key: value for key, value in options.items() if key != "mode"})
    config = PipelineConfig(steps, distill, prune, quantize, preset=str(options.get("preset") or "custom"))
    config.validate()
    return config
