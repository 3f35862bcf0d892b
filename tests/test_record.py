"""core.contract.record, the one writer of technique results: the artifact first (inside the workspace, its
path stored relative), then one history row, child of the run the result started from."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import pytest
import torch

from core.contract import record as record_module
from core.contract.record import record
from core.contract.result import HEADLINE_KEYS, Artifact, Headline, TechniqueResult
from core.contract.source import ModelSource
from core.foundation import history
from core.foundation.data.datasets import DatasetSpec
from core.foundation.workspace import Workspace, load_checkpoint


def make_source(workspace: Workspace, baseline) -> ModelSource:
    """The digits baseline's model as a source whose run lives in `workspace` (a fresh one per test)."""
    train_id = history.record_run(workspace.history_db, "train", "digits", "simple_cnn", params={"dataset": {"name": "digits"}}, metrics={"accuracy": 0.9})
    return ModelSource(
        model=baseline.model,
        architecture="simple_cnn",
        dataset=baseline.dataset,
        dataset_spec=DatasetSpec("digits"),
        recipe=baseline.recipe,
        accuracy=0.9,
        run_id=train_id,
        lineage=(train_id,),
        seed=3,
    )


def make_result(source: ModelSource, zip_bytes: bytes | None = None, parent_run_id: int | None = None) -> TechniqueResult:
    model = source.fresh_copy()
    headline = Headline(
        accuracy_before=0.9,
        accuracy_after=0.8,
        eval_images=360,
        size_bytes_before=1000,
        size_bytes_after=250,
        size_measure_before="fp32 safetensors file",
        size_measure="sparse encoding",
        params_before=100,
        params_after=60,
        nonzero_params_after=40,
        macs_before=700,
        macs_after=None,
        latency_ms_before=2.0,
        latency_ms_after=1.0,
        latency_ms_single_before=0.2,
        latency_ms_single_after=0.1,
        latency_batch_size=256,
        latency_threads=1,
        latency_runtime="torch eager",
        latency_device="cpu",
    )
    details = {"sparsity": 0.5, "sparsity_per_layer": {"conv1": 0.5}, "channels_removed": True, "note": "hand-made"}
    artifact = Artifact(tensors={name: tensor.clone() for name, tensor in model.state_dict().items()}, meta={"extra": 1}, zip_bytes=zip_bytes)
    return TechniqueResult("prune", {"amount": 0.5, "method": "l1"}, headline, details, artifact, model, "simple_cnn", source, seconds=1.5, parent_run_id=parent_run_id)


def test_the_artifact_and_one_row_child_of_the_source(workspace, digits_baseline):
    source = make_source(workspace, digits_baseline)
    result = make_result(source)
    before = time.time()
    run_id = record(result, workspace)
    assert result.run_id == run_id and history.count_runs(workspace.history_db) == 2
    row = history.get_run(workspace.history_db, run_id)
    assert (row.technique, row.dataset, row.model, row.parent_id) == ("prune", "digits", "simple_cnn", source.run_id)
    # The artifact: inside the workspace's checkpoints, named after the technique and architecture, stored relative.
    path = result.artifact.path
    assert path.parent == workspace.checkpoint_dir and path.name.startswith("prune-simple_cnn-")
    assert not Path(row.artifact_path).is_absolute() and workspace.resolve_artifact(row.artifact_path) == path
    tensors, meta = load_checkpoint(path)
    assert tensors.keys() == result.artifact.tensors.keys() and all(torch.equal(tensors[name], result.artifact.tensors[name]) for name in tensors)
    assert (meta["technique"], meta["architecture"], meta["source_run_id"], meta["extra"]) == ("prune", "simple_cnn", source.run_id, 1)
    assert meta["dataset"]["name"] == "digits" and meta["headline"]["accuracy_after"] == 0.8
    # The row: the config and where it started from, then the headline, the details and their numbers beside it.
    assert row.params["amount"] == 0.5 and row.params["method"] == "l1" and row.params["dataset"]["name"] == "digits"
    assert (row.params["source_run_id"], row.params["lineage"], row.params["seed"]) == (source.run_id, [source.run_id], 3)
    expected = result.headline.as_dict()
    assert {key: row.metrics[key] for key in HEADLINE_KEYS} == expected and row.metrics["headline_version"] == 2
    assert row.metrics["accuracy_change_points"] == pytest.approx(-10.0) and row.metrics["compression_ratio"] == 4.0 and row.metrics["speedup"] == 2.0
    assert (row.metrics["accuracy"], row.metrics["params"], row.metrics["nonzero_params"], row.metrics["macs"]) == (0.8, 60, 40, None)
    assert row.metrics["before_run_id"] == source.run_id and row.metrics["details"] == result.details and row.metrics["seconds"] == 1.5
    assert row.metrics["sparsity"] == 0.5 and row.metrics["note"] == "hand-made"  # top-level numbers and words beside the headline
    assert "sparsity_per_layer" not in row.metrics and "channels_removed" not in row.metrics  # nested values and flags stay in details
    # started_at is when the technique began: its seconds before the row was written.
    assert row.finished_at - row.created_at >= 1.5 and before - 1.5 - 1e-3 <= row.created_at <= time.time() - 1.5 + 1e-3


def test_a_result_that_derives_from_another_run_is_its_child(workspace, digits_baseline):
    source = make_source(workspace, digits_baseline)
    other = history.record_run(workspace.history_db, "quantize", "digits", "simple_cnn", params={}, metrics={})
    row = history.get_run(workspace.history_db, record(make_result(source, parent_run_id=other), workspace))
    assert row.parent_id == other
    assert row.metrics["before_run_id"] == source.run_id and row.params["source_run_id"] == source.run_id  # the "before" figures stay the source's


def test_a_zip_artifact_is_written_as_its_bytes(workspace, digits_baseline):
    data = b"PK\x05\x06" + bytes(18)  # an empty zip archive
    result = make_result(make_source(workspace, digits_baseline), zip_bytes=data)
    row = history.get_run(workspace.history_db, record(result, workspace))
    assert result.artifact.path.parent == workspace.checkpoint_dir / "pipelines" and result.artifact.path.suffix == ".zip"
    assert result.artifact.path.read_bytes() == data and Path(row.artifact_path) == Path("checkpoints", "pipelines", result.artifact.path.name)


def test_two_recordings_never_share_an_artifact(workspace, digits_baseline):
    source = make_source(workspace, digits_baseline)
    first, second = make_result(source), make_result(source)
    record(first, workspace, started_at=1000.0)
    record(second, workspace, started_at=2000.0)
    assert first.artifact.path != second.artifact.path and first.artifact.path.is_dir() and second.artifact.path.is_dir()
    assert history.get_run(workspace.history_db, second.run_id).created_at == 2000.0


def test_the_artifact_is_written_before_the_row(workspace, digits_baseline, monkeypatch):
    """A failure while writing the row leaves an unlisted artifact, never a listed run without its model."""
    result = make_result(make_source(workspace, digits_baseline))
    seen = {}

    def failing_record_run(db, **row):
        seen["artifact_complete"] = load_checkpoint(workspace.resolve_artifact(row["artifact_path"])) is not None
        raise RuntimeError("disk full")

    monkeypatch.setattr(record_module.history, "record_run", failing_record_run)
    with pytest.raises(RuntimeError, match="disk full"):
        record(result, workspace)
    assert seen == {"artifact_complete": True}
    assert history.count_runs(workspace.history_db) == 1 and result.run_id is None


def test_a_moved_workspace_finds_its_artifacts(workspace, digits_baseline, tmp_path):
    result = make_result(make_source(workspace, digits_baseline))
    run_id = record(result, workspace)
    moved = Workspace.open(tmp_path / "moved")
    shutil.copytree(workspace.root, moved.root, dirs_exist_ok=True)
    shutil.rmtree(workspace.root)
    row = history.get_run(moved.history_db, run_id)
    path = moved.resolve_artifact(row.artifact_path)
    assert path.is_relative_to(moved.root) and load_checkpoint(path) is not None


def test_nan_figures_are_recorded_as_null(workspace, digits_baseline):
    result = make_result(make_source(workspace, digits_baseline))
    result.headline.size_bytes_after = 0  # a compression ratio of size / 0 is NaN, which JSON cannot hold
    assert math.isnan(result.headline.compression_ratio)
    row = history.get_run(workspace.history_db, record(result, workspace))
    assert row.metrics["compression_ratio"] is None and row.metrics["size_bytes_after"] == 0
