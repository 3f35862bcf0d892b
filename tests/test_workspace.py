import json

import pytest
import torch

from core.foundation import history
from core.foundation.baseline.trained import BaselineConfig, get_baseline
from core.foundation.data.datasets import DatasetSpec
from core.foundation.errors import UserError
from core.foundation.measures.latency import THROUGHPUT_BATCH_SIZE
from core.foundation.workspace import META_FILE, WEIGHTS_FILE, Workspace, atomic_write_bytes, load_checkpoint, save_checkpoint


def test_checkpoint_round_trip(tmp_path):
    state = {"layer.weight": torch.randn(3, 4), "layer.bias": torch.zeros(3)}
    save_checkpoint(tmp_path / "ck", state, {"architecture": "x"})
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded is not None
    tensors, meta = loaded
    assert torch.equal(tensors["layer.weight"], state["layer.weight"]) and meta["architecture"] == "x"


def test_truncated_or_partial_checkpoint_is_never_loaded(tmp_path):
    folder = tmp_path / "ck"
    save_checkpoint(folder, {"w": torch.randn(100)}, {})
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-10])
    assert load_checkpoint(folder) is None
    (folder / META_FILE).unlink()
    assert load_checkpoint(folder) is None


def test_atomic_write_keeps_old_content_when_writing_fails(tmp_path):
    target = tmp_path / "file.json"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


def test_baseline_is_cached_and_reused(workspace):
    config = BaselineConfig(DatasetSpec("digits", train_size=300), epochs=2)
    first = get_baseline(config, workspace)
    second = get_baseline(config, workspace)
    assert not first.from_cache and second.from_cache
    assert second.metrics == first.metrics
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(tensor.cpu(), second.model.state_dict()[name].cpu())
    meta = json.loads((first.checkpoint / META_FILE).read_text())
    assert meta["architecture"] == "simple_cnn" and meta["recipe"]["epochs"] == 2 and meta["dataset"]["train_size"] == 300
    # The training run is recorded once, with its artifact relative to the workspace and latency under the one protocol.
    assert history.count_runs(workspace.history_db) == 1 and second.run_id == first.run_id
    row = history.get_run(workspace.history_db, first.run_id)
    assert row.technique == "train" and workspace.resolve_artifact(row.artifact_path) == first.checkpoint and not row.artifact_path.startswith("/")
    assert row.metrics["latency_batch_size"] == THROUGHPUT_BATCH_SIZE == first.metrics.latency_batch_size
    assert row.metrics["latency_ms"] > 0 and row.metrics["latency_ms_single"] == first.metrics.latency_ms_single > 0
    assert row.metrics["headline_version"] == 2 and row.metrics["eval_images"] == len(first.dataset.test) and row.metrics["size_measure"]


def test_changed_configuration_trains_a_new_baseline(workspace):
    base = get_baseline(BaselineConfig(DatasetSpec("digits", train_size=300), epochs=1), workspace)
    other = get_baseline(BaselineConfig(DatasetSpec("digits", train_size=300), epochs=1, seed=1), workspace)
    assert base.checkpoint != other.checkpoint and not other.from_cache


def test_baseline_settings_are_checked_before_any_data_is_loaded(workspace):
    for config, message in [
        (BaselineConfig(DatasetSpec("digits"), epochs=201), "--epochs must be between 0 and 200"),
        (BaselineConfig(DatasetSpec("digits"), model="giant"), "unknown model 'giant'"),
        (BaselineConfig(DatasetSpec("digits"), seed=-1), "--seed must be 0 or more"),
        (BaselineConfig(DatasetSpec("digits", train_size=0)), "--train-size must be at least 1"),
    ]:
        with pytest.raises(UserError, match=message):
            config.validate()
    assert not workspace.checkpoint_dir.exists()


def test_artifact_paths_are_stored_relative_and_found_after_a_move(tmp_path):
    old = Workspace.open(tmp_path / "old")
    inside = old.checkpoint_dir / "prune-simple_cnn-abc"
    assert old.relative_artifact(inside) == "checkpoints/prune-simple_cnn-abc"
    assert old.relative_artifact(tmp_path / "elsewhere" / "model") == str(tmp_path / "elsewhere" / "model")  # outside: kept absolute
    new = Workspace.open(tmp_path / "new")
    assert new.resolve_artifact("checkpoints/prune-simple_cnn-abc") == new.root / "checkpoints" / "prune-simple_cnn-abc"
    assert new.resolve_artifact(None) is None and new.resolve_artifact("") is None
    # A row written before paths were relative holds an absolute path into the old location:
    # the copy in this workspace is used when there is one, else the old path as it was.
    save_checkpoint(inside, {"w": torch.zeros(2)}, {})
    assert new.resolve_artifact(str(inside)) == inside  # not copied yet
    save_checkpoint(new.checkpoint_dir / inside.name, {"w": torch.zeros(2)}, {})
    assert new.resolve_artifact(str(inside)) == new.checkpoint_dir / inside.name
