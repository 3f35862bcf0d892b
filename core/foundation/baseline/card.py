"""A cached baseline as the sidebar and the Overview show it, read from its checkpoint's meta.json
without importing torch (importing torch is most of a cold start's seconds).

The card is found by the same rule core.foundation.baseline.trained uses to name checkpoints: the meta records the
dataset's shape, from which the classroom recipe and so the folder name follow. A checkpoint the
card cannot vouch for (weights changed since the meta was written, or a meta written before it
recorded the class names) gives no card, and the caller loads the baseline with torch as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.foundation.baseline.config import BaselineConfig, checkpoint_folder, recipe_with_epochs
from core.foundation.training.records import EpochRecord, Evaluation, ModelMetrics, TrainRecipe, classroom_recipe_for_shape
from core.foundation.workspace import META_FILE, WEIGHTS_FILE, Workspace, file_sha256


@dataclass(frozen=True)
class BaselineCard:
    config: BaselineConfig
    recipe: TrainRecipe
    metrics: ModelMetrics
    evaluation: Evaluation
    history: list[EpochRecord]
    train_seconds: float
    dataset_summary: dict  # core.foundation.data.datasets.Dataset.summary(): images, classes, channels, image size
    class_names: list[str]
    checkpoint: Path
    saved_at: float  # the meta file's mtime, seconds since the epoch
    run_id: int | None


def find_baseline_card(config: BaselineConfig, workspace: Workspace) -> BaselineCard | None:
    """The card of the checkpoint core.foundation.baseline.trained would load for `config`, or None."""
    for meta_path in sorted(workspace.checkpoint_dir.glob(f"{config.model}-*/{META_FILE}")):
        meta = _read_meta(meta_path)
        if meta is None or not _describes(meta, config):
            continue
        summary = meta["dataset_summary"]
        preset = classroom_recipe_for_shape(summary["train_images"], summary["channels"], summary["image_size"], config.model)
        recipe = recipe_with_epochs(config, preset)
        folder = meta_path.parent
        if folder != checkpoint_folder(config, recipe, workspace) or meta.get("recipe") != recipe.as_dict():
            continue
        if "class_names" not in meta or not _weights_match(folder / WEIGHTS_FILE, meta.get("weights_sha256")):
            return None
        return BaselineCard(
            config=config,
            recipe=recipe,
            **recorded_figures(meta),
            train_seconds=meta["train_seconds"],
            dataset_summary=summary,
            class_names=list(meta["class_names"]),
            checkpoint=folder,
            saved_at=meta_path.stat().st_mtime,
            run_id=meta.get("run_id"),
        )
    return None


def recorded_figures(meta: dict) -> dict:
    """A checkpoint meta's metrics, evaluation and epoch history as records (core.foundation.baseline.trained reads them so too)."""
    return {"metrics": ModelMetrics.from_dict(meta["metrics"]), "evaluation": Evaluation(**meta["evaluation"]), "history": [EpochRecord(**record) for record in meta["history"]]}


def _describes(meta: dict, config: BaselineConfig) -> bool:
    return (
        meta.get("architecture") == config.model
        and meta.get("dataset") == config.dataset.as_dict()
        and meta.get("seed") == config.seed
        and meta.get("brought_weights_sha256", "") == config.brought_weights_sha256  # older metas: trained here
        and bool(meta.get("pretrained")) == config.pretrained  # older metas: from scratch
        and isinstance(meta.get("dataset_summary"), dict)
    )


def _read_meta(path: Path) -> dict | None:
    try:
        stat = path.stat()
        return _read_meta_cached(str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return None


@lru_cache(maxsize=256)
def _read_meta_cached(path: str, mtime_ns: int, size: int) -> dict | None:
    try:
        meta = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _weights_match(path: Path, expected_sha256: str | None) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return expected_sha256 is not None and _sha256_cached(str(path), stat.st_mtime_ns, stat.st_size) == expected_sha256


@lru_cache(maxsize=256)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str | None:
    try:
        return file_sha256(Path(path))
    except OSError:
        return None
