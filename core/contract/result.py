"""One result shape for every technique, and the headline every recorded run carries.

result = prune(source, PruneConfig(amount=0.5), context)
result.headline   # accuracy before/after on the same images, size before/after with the measure named,
                  # latency before/after at one image and a throughput batch, threads, runtime
result.details    # what only this technique has (sparsity per layer, bits, teacher agreement, ...)
result.artifact   # what core.contract.record writes: safetensors + JSON metadata, or a model zip
run_id = record(result, workspace)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from core.foundation.history import HEADLINE_VERSION  # noqa: F401 (re-exported)
from core.foundation.measures.latency import LatencyFigures, measure_latencies
from core.foundation.measures.metrics import count_macs, count_nonzero_parameters, count_parameters

if TYPE_CHECKING:
    from core.contract.source import ModelSource


@dataclass
class Headline:
    accuracy_before: float  # the source model, on the same images as accuracy_after
    accuracy_after: float
    eval_images: int
    size_bytes_before: int
    size_bytes_after: int
    size_measure_before: str  # what was weighed, in words ("fp32 safetensors file", "model zip", ...)
    size_measure: str  # the same for size_bytes_after
    params_before: int
    params_after: int
    nonzero_params_after: int
    macs_before: int | None
    macs_after: int | None  # None: an int8 graph, which the MAC counter cannot trace
    latency_ms_before: float  # one forward pass over latency_batch_size images
    latency_ms_after: float
    latency_ms_single_before: float  # one image
    latency_ms_single_after: float
    latency_batch_size: int
    latency_threads: int
    latency_runtime: str  # both models were timed in this runtime
    latency_device: str
    headline_version: int = HEADLINE_VERSION

    @property
    def accuracy_change_points(self) -> float:
        return 100.0 * (self.accuracy_after - self.accuracy_before)

    @property
    def compression_ratio(self) -> float:
        return self.size_bytes_before / self.size_bytes_after if self.size_bytes_after else float("nan")

    @property
    def speedup(self) -> float:
        return self.latency_ms_before / self.latency_ms_after if self.latency_ms_after else float("nan")

    def as_dict(self) -> dict:
        return {**asdict(self), "accuracy_change_points": self.accuracy_change_points, "compression_ratio": self.compression_ratio, "speedup": self.speedup}


HEADLINE_KEYS = tuple(f.name for f in fields(Headline)) + ("accuracy_change_points", "compression_ratio", "speedup")


@dataclass
class Artifact:
    """What a result saves: tensors and JSON metadata as a checkpoint folder, or a model zip's bytes.
    `path` is set by core.contract.record once it is written."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # JSON; "technique" and "architecture" at least
    zip_bytes: bytes | None = None
    path: Path | None = None


@dataclass
class TechniqueResult:
    technique: str  # "prune", "quantize", "distill", "pipeline"
    config: dict  # the technique config's as_dict()
    headline: Headline
    details: dict  # JSON-able figures only this technique has
    artifact: Artifact
    model: nn.Module  # the model after: the next step of a pipeline starts from it
    architecture: str
    source: Any  # the core.contract.source.ModelSource it started from
    pruned_channels: dict[str, list[int]] = field(default_factory=dict)  # removed along the lineage, full-architecture indices
    quantized: bool = False
    report: Any = None  # the technique's own rich report (PruneReport, QuantizationReport, DistillReport) for pages and charts
    seconds: float = 0.0
    parent_run_id: int | None = None  # the run this one's model derives from, when not the source (a pipeline's last step)
    run_id: int | None = None  # set by core.contract.record

    def summary(self) -> dict:
        """The CLI's JSON payload: headline keys at the top, the technique's details beside them."""
        return {
            **self.details,
            **self.headline.as_dict(),
            "technique": self.technique,
            "config": self.config,
            "run_id": self.run_id,
            "source_run_id": self.source.run_id,
            "artifact_path": str(self.artifact.path) if self.artifact.path else None,
            "seconds": self.seconds,
        }


def latency_pair(before: nn.Module, after: nn.Module, example_input: torch.Tensor, compiled: bool = False) -> tuple[LatencyFigures, LatencyFigures]:
    """The source and the result timed together under the one protocol (core.foundation.measures.latency)."""
    figures, _ = measure_latencies({"before": before, "after": after}, example_input, compiled=compiled)
    return figures["before"], figures["after"]


def build_headline(
    source: ModelSource,
    model_after: nn.Module,
    accuracy_before: float,
    accuracy_after: float,
    eval_images: int,
    size_bytes_before: int,
    size_bytes_after: int,
    size_measure_before: str,
    size_measure: str,
    latency: tuple[LatencyFigures, LatencyFigures],
    params_after: int | None = None,
    nonzero_params_after: int | None = None,
    macs_after: int | None = -1,
) -> Headline:
    """A headline from a source, the model after, and the figures the technique measured."""
    before, after = latency
    example = source.example_input()
    return Headline(
        accuracy_before=accuracy_before,
        accuracy_after=accuracy_after,
        eval_images=eval_images,
        size_bytes_before=int(size_bytes_before),
        size_bytes_after=int(size_bytes_after),
        size_measure_before=size_measure_before,
        size_measure=size_measure,
        params_before=source.params(),
        params_after=count_parameters(model_after) if params_after is None else params_after,
        nonzero_params_after=count_nonzero_parameters(model_after) if nonzero_params_after is None else nonzero_params_after,
        macs_before=source.macs(),
        macs_after=count_macs(model_after, example) if macs_after == -1 else macs_after,
        **before.timing_fields("_before"),
        **after.timing_fields("_after"),
        **after.setup_fields(),
    )
