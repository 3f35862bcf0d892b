"""A model source: what every technique starts from.

A cached baseline, any run in the history and a pipeline's intermediate model are all the same
thing to a technique: a model with its architecture name, the dataset it was made on, the recipe
its lineage was trained with, its accuracy on the full test set, its run id and its lineage.

    source = ModelSource.from_baseline(baseline)             # the sidebar's / the CLI's baseline
    source = ModelSource.from_run(workspace, run_id)         # prune a distilled student, quantize a pruned model
    source = ModelSource.from_result(result, run_id)         # the next step of a pipeline
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from core.foundation import history
from core.foundation.data.datasets import Dataset, DatasetSpec
from core.foundation.errors import UserError
from core.foundation.history import RunRecord
from core.foundation.measures.metrics import count_macs, count_nonzero_parameters, count_parameters, state_dict_size_bytes
from core.foundation.training.loop import TrainRecipe, evaluate, resolve_device
from core.foundation.workspace import Workspace

if TYPE_CHECKING:
    from core.contract.result import TechniqueResult
    from core.foundation.baseline.trained import Baseline


@dataclass
class ModelSource:
    model: nn.Module
    architecture: str  # a core.foundation.models.registry name; the model may be a physically smaller version of it
    dataset: Dataset
    dataset_spec: DatasetSpec
    recipe: TrainRecipe  # how the lineage's root was trained: fine-tuning and QAT derive from it
    accuracy: float  # on the full test split of `dataset`
    run_id: int | None  # None: not recorded (a model made in a test or a notebook)
    lineage: tuple[int, ...] = ()  # run ids, root first, ending with run_id
    technique: str = "train"  # what made it
    seed: int = 0
    device: str = "auto"  # as asked for; `model` is on the resolved device
    pruned_channels: dict[str, list[int]] = field(default_factory=dict)  # channels removed along the lineage, as indices of the full architecture
    quantized: bool = False  # an integer (or fake-quantized) model: it can be measured and exported, not compressed further
    checkpoint: str = ""  # where its weights are, for messages and cache keys

    @property
    def torch_device(self) -> torch.device:
        parameter = next(self.model.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    @property
    def label(self) -> str:
        where = f"run #{self.run_id}" if self.run_id is not None else "unrecorded"
        return f"{self.architecture} ({self.technique}, {where}) on {self.dataset.name}, {self.accuracy:.1%}"

    def example_input(self) -> torch.Tensor:
        return self.dataset.normalize(self.dataset.test.images[:1]).to(self.torch_device)

    def fresh_copy(self) -> nn.Module:
        """An independent copy of the model, in its real (possibly smaller) shape, for a technique to change."""
        return copy.deepcopy(self.model).to(self.torch_device).eval()

    def size_bytes(self) -> int:
        return state_dict_size_bytes(self.model)

    def params(self) -> int:
        return count_parameters(self.model)

    def nonzero_params(self) -> int:
        return count_nonzero_parameters(self.model)

    def macs(self) -> int:
        return count_macs(self.model, self.example_input())

    def check_compressible(self, technique: str) -> None:
        if self.quantized:
            parent = f" (start from its parent, run #{self.lineage[-2]})" if len(self.lineage) > 1 else ""
            raise UserError(f"{self.label} is already quantized; {technique} needs a floating-point model{parent}")

    # ---------------------------------------------------------------------------- constructors

    @classmethod
    def from_baseline(cls, baseline: Baseline) -> ModelSource:
        """A cached (or just trained) baseline, core.foundation.baseline.trained.Baseline."""
        return cls(
            model=baseline.model,
            architecture=baseline.config.model,
            dataset=baseline.dataset,
            dataset_spec=baseline.config.dataset,
            recipe=baseline.recipe,
            accuracy=baseline.evaluation.accuracy,
            run_id=baseline.run_id,
            lineage=(baseline.run_id,) if baseline.run_id is not None else (),
            technique="train",
            seed=baseline.config.seed,
            device=baseline.config.device,
            checkpoint=str(baseline.checkpoint),
        )

    @classmethod
    def from_result(cls, result: TechniqueResult, run_id: int | None) -> ModelSource:
        """The model a technique just made (core.contract.result.TechniqueResult), recorded as `run_id`."""
        source = result.source
        return cls(
            model=result.model,
            architecture=result.architecture,
            dataset=source.dataset,
            dataset_spec=source.dataset_spec,
            recipe=source.recipe,
            accuracy=result.headline.accuracy_after if result.headline.eval_images == len(source.dataset.test) else _full_accuracy(result.model, source.dataset),
            run_id=run_id,
            lineage=(*source.lineage, run_id) if run_id is not None else source.lineage,
            technique=result.technique,
            seed=source.seed,
            device=source.device,
            pruned_channels=result.pruned_channels,
            quantized=result.quantized,
            checkpoint=str(result.artifact.path) if result.artifact.path else "",
        )

    @classmethod
    def from_run(cls, workspace: Workspace, run_id: int, device: str = "auto", dataset: Dataset | None = None) -> ModelSource:
        """Any recorded run's final model, read back from its artifact (never unpickled)."""
        from core.contract.run_models import dataset_for_run, package_for_run, recipe_for_run

        run = history.get_run(workspace.history_db, run_id)
        if run is None:
            raise UserError(f"no run #{run_id} in {workspace.history_db}; `python -m core runs` lists them")
        if run.technique == "quantize":
            parent = f"; start from its parent, run #{run.parent_id}" if run.parent_id is not None else ""
            raise UserError(f"run #{run_id} is a quantized model, which cannot be compressed further here{parent}")
        dataset = dataset or dataset_for_run(run, workspace)
        package = package_for_run(run, workspace, dataset)
        if package.quantized_weights or package.activation_quant:
            raise UserError(f"run #{run_id} holds a quantized model, which cannot be compressed further here; start from a run before its quantize step")
        if (dataset.channels, dataset.image_size, dataset.image_size) != tuple(package.input_shape) or dataset.num_classes != package.num_classes:
            raise UserError(f"run #{run_id} was made for {list(package.input_shape)} images and {package.num_classes} classes, which {dataset.name} does not have")
        model = package.build_model().to(resolve_device(device)).eval()
        lineage = tuple(ancestor.id for ancestor in history.lineage(workspace.history_db, run_id))
        spec_dict = next((ancestor.params["dataset"] for ancestor in history.lineage(workspace.history_db, run_id) if isinstance(ancestor.params.get("dataset"), dict)), None)
        spec = DatasetSpec(**spec_dict) if spec_dict else DatasetSpec(dataset.name)
        root = history.lineage(workspace.history_db, run_id)[0]
        return cls(
            model=model,
            architecture=package.architecture,
            dataset=dataset,
            dataset_spec=spec,
            recipe=recipe_for_run(run, workspace, dataset, package.architecture),
            accuracy=_full_accuracy(model, dataset),
            run_id=run.id,
            lineage=lineage,
            technique=run.technique,
            seed=int(root.params.get("seed", 0)) if isinstance(root.params.get("seed", 0), int) else 0,
            device=device,
            pruned_channels={layer: list(indices) for layer, indices in package.pruned_channels.items()},
            checkpoint=str(workspace.resolve_artifact(run.artifact_path)),
        )


def _full_accuracy(model: nn.Module, dataset: Dataset) -> float:
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    return evaluate(model, dataset, dataset.test, device).accuracy


def compose_removed_channels(before: dict[str, list[int]], removed_now: dict[str, list[int]], original_counts: dict[str, int]) -> dict[str, list[int]]:
    """Channels removed in two steps, as indices of the full architecture: `removed_now` indexes the
    channels `before` left (a pruned model pruned again), so each is mapped back through them."""
    combined = {layer: sorted(indices) for layer, indices in before.items()}
    for layer, indices in removed_now.items():
        earlier = set(combined.get(layer, []))
        remaining = [index for index in range(original_counts[layer]) if index not in earlier]
        combined[layer] = sorted(earlier | {remaining[index] for index in indices})
    return {layer: indices for layer, indices in combined.items() if indices}


def is_compressible(run: RunRecord) -> bool:
    """Whether a run's final model is floating point (a quantized model cannot be pruned, quantized or distilled again)."""
    if run.technique == "quantize" or not run.artifact_path:
        return False
    if run.technique == "pipeline":
        steps = run.params.get("steps")
        return not (run.params.get("quantize") or (isinstance(steps, list) and "quantize" in steps))
    return True


def recorded_dataset(run: RunRecord, runs_by_id: dict[int, RunRecord]) -> dict:
    """The dataset spec a run's lineage was made on: its own params' "dataset", else its nearest ancestor's."""
    seen = set()
    current = run
    while current is not None and current.id not in seen:
        seen.add(current.id)
        spec = current.params.get("dataset")
        if isinstance(spec, dict) and spec.get("name") == run.dataset:
            return {**DatasetSpec(run.dataset).as_dict(), **spec}
        current = runs_by_id.get(current.parent_id) if current.parent_id is not None else None
    return DatasetSpec(run.dataset).as_dict()


def source_candidates(db_path: Path, dataset_spec: DatasetSpec, exclude_run_id: int | None = None) -> list[RunRecord]:
    """Runs made on `dataset_spec` (the same name and subsets) that a technique can start from,
    newest first: what a page offers under "Start from", and what a sweep may enumerate."""
    runs = history.list_runs(db_path)
    by_id = {run.id: run for run in runs}
    wanted = dataset_spec.as_dict()
    chosen = [run for run in runs if run.dataset == wanted["name"] and run.id != exclude_run_id and is_compressible(run) and recorded_dataset(run, by_id) == wanted]
    return sorted(chosen, key=lambda run: -run.id)
