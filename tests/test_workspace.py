import json

import pytest
import torch

from core.baseline import BaselineConfig, get_baseline
from core.datasets import DatasetSpec
from core.workspace import META_FILE, WEIGHTS_FILE, atomic_write_bytes, load_checkpoint, save_checkpoint


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


def test_changed_configuration_trains_a_new_baseline(workspace):
    base = get_baseline(BaselineConfig(DatasetSpec("digits", train_size=300), epochs=1), workspace)
    other = get_baseline(BaselineConfig(DatasetSpec("digits", train_size=300), epochs=1, seed=1), workspace)
    assert base.checkpoint != other.checkpoint and not other.from_cache
