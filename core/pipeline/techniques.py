"""Every technique by name, with the one shape an engine needs: a config from options, and
`run(source, config, context) -> TechniqueResult`. The pipeline loops over it; a sweep or a job
queue can too.

    result = run_technique("prune", source, PruneConfig(amount=0.5), context)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.contract.context import RunContext
from core.contract.result import TechniqueResult

if TYPE_CHECKING:
    from core.contract.source import ModelSource

TechniqueConfig = Any  # a PruneConfig, one of the quantization configs, or a DistillConfig

TECHNIQUE_NAMES = ("distill", "prune", "quantize")


def run_technique(name: str, source: ModelSource, config: TechniqueConfig, context: RunContext) -> TechniqueResult:
    # Imported here: each technique pulls in its own heavy dependencies (Torch-Pruning, torchao).
    if name == "prune":
        from core.pruning.run import prune

        return prune(source, config, context)
    if name == "quantize":
        from core.quantization.run import quantize

        return quantize(source, config, context)
    if name == "distill":
        from core.distillation.run import distill

        return distill(source, config, context)
    raise ValueError(f"unknown technique {name!r}; choose one of {', '.join(TECHNIQUE_NAMES)}")
