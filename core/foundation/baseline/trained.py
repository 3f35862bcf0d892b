"""The baseline: the trained fp32 model every technique starts from, trained once and cached.

Its cache key is its whole configuration (dataset and subsets, model, recipe, seed), so reopening
the app, another browser session or the CLI reuses the same checkpoint instead of retraining.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from core.foundation import history
from core.foundation.baseline.card import BaselineCard, recorded_figures
from core.foundation.baseline.config import BaselineConfig, checkpoint_folder, recipe_with_epochs
from core.foundation.data.datasets import Dataset, DatasetSpec, load_dataset  # noqa: F401 (DatasetSpec re-exported)
from core.foundation.errors import UserError
from core.foundation.history import HEADLINE_VERSION
from core.foundation.measures.metrics import ModelMetrics, measure_model
from core.foundation.models.names import RETIRED_MODELS
from core.foundation.models.registry import build_model
from core.foundation.progress import ProgressCallback, StopFlag, no_progress
from core.foundation.training.loop import EpochRecord, Evaluation, TrainRecipe, classroom_recipe, evaluate, resolve_device, train_model
from core.foundation.workspace import META_FILE, Workspace, load_checkpoint, save_checkpoint

TRAINED_SIZE_MEASURE = "fp32 safetensors file"


class TrainingStopped(UserError):
    """Training was stopped by the user; nothing was saved."""


@dataclass
class Baseline:
    config: BaselineConfig
    dataset: Dataset
    model: nn.Module
    recipe: TrainRecipe
    metrics: ModelMetrics
    evaluation: Evaluation
    history: list[EpochRecord]
    train_seconds: float
    checkpoint: Path
    from_cache: bool
    run_id: int | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def example_input(self) -> torch.Tensor:
        return self.dataset.normalize(self.dataset.test.images[:1]).to(self.device)

    def fresh_copy(self) -> nn.Module:
        """An independent copy of the trained model, for a technique to change."""
        model = build_model(self.config.model, self.dataset.channels, self.dataset.image_size, self.dataset.num_classes)
        model.load_state_dict(self.model.state_dict())
        return model.to(self.device).eval()


def recipe_for(config: BaselineConfig, dataset: Dataset) -> TrainRecipe:
    return recipe_with_epochs(config, classroom_recipe(dataset, config.model))


def load_cached_baseline(config: BaselineConfig, workspace: Workspace, dataset: Dataset | None = None) -> Baseline | None:
    dataset = dataset or load_dataset(config.dataset, workspace, allow_download=False)
    recipe = recipe_for(config, dataset)
    folder = checkpoint_folder(config, recipe, workspace)
    loaded = load_checkpoint(folder)
    if loaded is None:
        return None
    state_dict, meta = loaded
    model = build_model(config.model, dataset.channels, dataset.image_size, dataset.num_classes)
    model.load_state_dict(state_dict)
    model.to(resolve_device(config.device)).eval()
    return Baseline(
        config=config,
        dataset=dataset,
        model=model,
        recipe=recipe,
        **recorded_figures(meta),
        train_seconds=meta["train_seconds"],
        checkpoint=folder,
        from_cache=True,
        run_id=meta.get("run_id"),
    )


def get_baseline(config: BaselineConfig, workspace: Workspace, progress: ProgressCallback = no_progress, stop: StopFlag | None = None, dataset: Dataset | None = None) -> Baseline:
    """The cached baseline for `config`, or a freshly trained (and then cached) one."""
    dataset = dataset or load_dataset(config.dataset, workspace, progress)
    cached = load_cached_baseline(config, workspace, dataset)
    return cached if cached is not None else train_baseline(config, workspace, dataset, progress, stop)


def train_baseline(config: BaselineConfig, workspace: Workspace, dataset: Dataset, progress: ProgressCallback = no_progress, stop: StopFlag | None = None) -> Baseline:
    if config.model in RETIRED_MODELS:  # also for a distillation teacher, whose configuration is not validated
        raise UserError(f"{config.model} is retired: {RETIRED_MODELS[config.model]}")
    started_at = time.time()
    recipe = recipe_for(config, dataset)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(config.model, dataset.channels, dataset.image_size, dataset.num_classes)
    brought = _fill_with_brought_weights(model, config, workspace, dataset) if config.brought else {}
    pretrained = _fill_with_pretrained_weights(model, config, dataset, progress) if config.pretrained else {}
    result = train_model(model, dataset, recipe, device, config.seed, progress, stop)
    if result.stopped:
        raise TrainingStopped(f"training stopped after {len(result.history)} of {recipe.epochs} epochs; nothing was saved")
    evaluation = evaluate(model, dataset, dataset.test, device, progress)
    example_input = dataset.normalize(dataset.test.images[:1]).to(device)
    metrics = measure_model(model, evaluation.accuracy, example_input)
    folder = checkpoint_folder(config, recipe, workspace)
    run_id = history.record_run(
        workspace.history_db,
        technique="train",
        dataset=config.dataset.name,
        model=config.model,
        params={"dataset": config.dataset.as_dict(), "model": config.model, "seed": config.seed, "device": str(device), **recipe.as_dict(), **brought, **pretrained},
        metrics={
            **metrics.as_dict(),
            "latency_ms_single": metrics.latency_ms_single,
            "size_measure": TRAINED_SIZE_MEASURE,
            "eval_images": len(dataset.test),
            "headline_version": HEADLINE_VERSION,
            "train_seconds": result.train_seconds,
            "images_per_second": result.images_per_second,
        },
        artifact_path=workspace.relative_artifact(folder),
        started_at=started_at,
    )
    meta = {
        "architecture": config.model,
        "dataset": config.dataset.as_dict(),
        "dataset_summary": dataset.summary(),
        "class_names": list(dataset.class_names),  # with the summary, the Overview's card needs no dataset (core.foundation.baseline.card)
        "recipe": recipe.as_dict(),
        "seed": config.seed,
        "metrics": metrics.as_dict(),
        "evaluation": asdict(evaluation),
        "history": [asdict(record) for record in result.history],
        "train_seconds": result.train_seconds,
        "run_id": run_id,
        **brought,
        **pretrained,
    }
    save_checkpoint(folder, model.state_dict(), meta)
    return Baseline(config, dataset, model.eval(), recipe, metrics, evaluation, result.history, result.train_seconds, folder, False, run_id)


def _fill_with_brought_weights(model: nn.Module, config: BaselineConfig, workspace: Workspace, dataset: Dataset) -> dict:
    """Load the configuration's brought file into `model` (built for the dataset's images), after
    checking its classes and fitting its stem to the dataset's channels; what the history and the
    checkpoint record of the file."""
    from core.foundation.baseline.brought import load_brought_weights
    from core.foundation.models.weights_file import check_classes, fit_to_model, stem_for_channels

    weights = load_brought_weights(workspace, config)
    check_classes(config.model, weights, dataset.num_classes)
    fit_to_model(model, stem_for_channels(config.model, weights, dataset.channels), config.model)
    return {"brought_weights_name": config.brought_weights_name, "brought_weights_sha256": config.brought_weights_sha256, "brought_weights_bytes": weights.size_bytes}


def _fill_with_pretrained_weights(model: nn.Module, config: BaselineConfig, dataset: Dataset, progress: ProgressCallback) -> dict:
    """Load torchvision's ImageNet weights for the configuration's architecture into `model` (built
    for the dataset: its own head, its stem for the dataset's channels); what the history and the
    checkpoint record of them, the weights' normalisation among it."""
    from core.foundation.models.pretrained import start_from_pretrained

    return start_from_pretrained(model, config.model, dataset.channels, progress)


def card_of(baseline: Baseline) -> BaselineCard:
    """The card (core.foundation.baseline.card) of a loaded baseline: what the Overview shows of it."""
    meta_path = baseline.checkpoint / META_FILE
    return BaselineCard(
        config=baseline.config,
        recipe=baseline.recipe,
        metrics=baseline.metrics,
        evaluation=baseline.evaluation,
        history=baseline.history,
        train_seconds=baseline.train_seconds,
        dataset_summary=baseline.dataset.summary(),
        class_names=list(baseline.dataset.class_names),
        checkpoint=baseline.checkpoint,
        saved_at=meta_path.stat().st_mtime if meta_path.is_file() else time.time(),
        run_id=baseline.run_id,
    )
