"""What runs inside a Ray worker: one trial, from a source shipped without its data to a result
that holds no live model, so it crosses back to the driver as plain tensors and JSON.

The worker never writes the history (the driver records what comes back); it reads the workspace
only for a distillation trial's cached teacher, which the driver made sure exists.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import torch

from core.contract.context import RunContext
from core.contract.result import Artifact, Headline
from core.contract.source import ModelSource
from core.foundation.data.datasets import Dataset
from core.foundation.training.loop import resolve_device
from core.foundation.workspace import Workspace


@dataclass
class TrialPayload:
    key: str
    steps: tuple[str, ...]
    config: object  # a technique config, or a core.pipeline.config.PipelineConfig for several steps
    source: ModelSource  # with dataset=None: the dataset travels once, through Ray's object store
    workspace_root: str
    threads: int  # torch's threads inside the trial: the CPUs the trial asked for
    device: str  # "cpu" or "cuda" (a GPU the cluster gave this trial)


@dataclass
class PortableResult:
    """A TechniqueResult without its live objects (model, source, rich report)."""

    technique: str
    config: dict
    headline: Headline
    details: dict
    artifact: Artifact
    architecture: str
    pruned_channels: dict = field(default_factory=dict)
    quantized: bool = False
    seconds: float = 0.0
    worker_seconds: float = 0.0  # the whole task, loading included


def strip_source(source: ModelSource) -> ModelSource:
    """The source as a trial payload carries it: the model on the CPU, no dataset."""
    return dataclasses.replace(source, dataset=None, model=source.fresh_copy().cpu())


def run_trial(payload: TrialPayload, dataset: Dataset) -> PortableResult:
    started = time.perf_counter()
    torch.set_num_threads(max(1, payload.threads))
    device = resolve_device(payload.device)
    source = dataclasses.replace(payload.source, dataset=dataset, model=payload.source.model.to(device).eval(), device=str(device))
    context = RunContext(Workspace.open(payload.workspace_root))
    if len(payload.steps) > 1:
        from core.pipeline.run import run_pipeline

        result = run_pipeline(source, payload.config, context, record_steps=False)
    else:
        from core.pipeline.techniques import run_technique

        result = run_technique(payload.steps[0], source, payload.config, context)
    artifact = Artifact(tensors={name: tensor.detach().cpu() for name, tensor in result.artifact.tensors.items()}, meta=result.artifact.meta, zip_bytes=result.artifact.zip_bytes)
    return PortableResult(
        result.technique, result.config, result.headline, result.details, artifact, result.architecture, dict(result.pruned_channels), result.quantized, result.seconds, time.perf_counter() - started
    )
