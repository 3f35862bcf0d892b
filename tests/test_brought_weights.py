"""Your own trained model as the baseline: `--weights FILE` on the CLI (core.foundation.baseline.brought).

The file here is always one a test makes: the digits baseline's weights saved as a user would save
them (torch.save of a nested dict with DataParallel's `module.` prefixes, or safetensors)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from core.foundation import history
from core.foundation.baseline.brought import BROUGHT_DIR
from core.foundation.baseline.config import BaselineConfig, checkpoint_folder, recipe_with_epochs
from core.foundation.data.names import DatasetSpec
from core.foundation.models.registry import build_model
from core.foundation.training.records import FINETUNE_LR_FACTOR, TrainRecipe
from core.foundation.workspace import config_key, file_sha256
from tests.conftest import cli_in_process


def _saved_like_a_user(baseline, path):
    """The baseline's weights as a training script with DataParallel saves them."""
    state = {f"module.{name}": tensor for name, tensor in baseline.model.state_dict().items()}
    torch.save({"epoch": 7, "state_dict": state, "optimizer": {"lr": 0.1}}, path)
    return path


def _json(completed) -> dict:
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_brought_weights_become_the_baseline_with_their_name_and_hash(digits_baseline, workspace, tmp_path, capsys):
    """Recorded without training (--epochs 0): the same weights give the same accuracy on the same
    test set, and the history names the file and its SHA-256."""
    weights = _saved_like_a_user(digits_baseline, tmp_path / "my model.pth")
    completed = cli_in_process(capsys, "train", "--model", "simple_cnn", "--weights", str(weights), "--epochs", "0", "--workspace", str(workspace.root))
    assert completed.returncode == 0, completed.stderr
    payload = _json(completed)
    assert payload["accuracy"] == pytest.approx(digits_baseline.metrics.accuracy, abs=1e-9)
    assert payload["recipe"]["epochs"] == 0 and payload["from_cache"] is False
    sha256 = file_sha256(weights)
    assert payload["brought_weights"] == {"name": "my model.pth", "sha256": sha256}
    run = history.get_run(workspace.history_db, payload["run_id"])
    assert (run.params["brought_weights_name"], run.params["brought_weights_sha256"]) == ("my model.pth", sha256)
    assert (workspace.root / BROUGHT_DIR / f"{sha256}.pth").read_bytes() == weights.read_bytes()  # kept: the upload may go away

    weights.unlink()  # the kept copy is what the baseline loads from now on
    again = cli_in_process(capsys, "train", "--model", "simple_cnn", "--weights", str(workspace.root / BROUGHT_DIR / f"{sha256}.pth"), "--workspace", str(workspace.root))
    assert again.returncode == 0, again.stderr
    assert _json(again)["from_cache"] is True and _json(again)["run_id"] == payload["run_id"]


def test_a_technique_starts_from_the_brought_model(digits_baseline, workspace, tmp_path, capsys):
    """`prune --weights FILE` prunes the brought model (its source run is the brought baseline's)."""
    weights = tmp_path / "mine.safetensors"
    save_file({name: tensor.contiguous() for name, tensor in digits_baseline.model.state_dict().items()}, str(weights))
    trained = _json(cli_in_process(capsys, "train", "--model", "simple_cnn", "--weights", str(weights), "--workspace", str(workspace.root)))
    completed = cli_in_process(capsys, "prune", "--model", "simple_cnn", "--weights", str(weights), "--amount", "0.5", "--workspace", str(workspace.root))
    assert completed.returncode == 0, completed.stderr
    pruned = history.get_run(workspace.history_db, _json(completed)["run_id"])
    assert pruned.parent_id == trained["run_id"]
    report = tmp_path / "report.html"
    written = cli_in_process(capsys, "report", "--out", str(report), "--workspace", str(workspace.root))
    assert written.returncode == 0, written.stderr
    assert f"mine.safetensors · SHA-256 {file_sha256(weights)}" in report.read_text()  # the report names the compressed file


def test_fine_tuning_a_brought_model_uses_the_gentler_rate():
    """Epochs on a brought model fine-tune it at FINETUNE_LR_FACTOR of the preset's peak; none are the default."""
    preset = TrainRecipe(epochs=30, learning_rate=3e-3)
    brought = BaselineConfig(DatasetSpec("digits"), "simple_cnn", None, 0, "auto", "mine.pt", "a" * 64)
    assert recipe_with_epochs(brought, preset).epochs == 0
    tuned = recipe_with_epochs(BaselineConfig(DatasetSpec("digits"), "simple_cnn", 3, 0, "auto", "mine.pt", "a" * 64), preset)
    assert (tuned.epochs, tuned.learning_rate) == (3, pytest.approx(3e-3 * FINETUNE_LR_FACTOR))
    assert recipe_with_epochs(BaselineConfig(DatasetSpec("digits"), "simple_cnn", 3), preset).learning_rate == 3e-3


def test_a_trained_baseline_keeps_the_checkpoint_folder_older_versions_named(workspace):
    """An old workspace still opens: bringing weights added a key only for brought models."""
    config = BaselineConfig(DatasetSpec("digits"), "simple_cnn", 5)
    recipe = TrainRecipe(epochs=5)
    old_key = config_key({"v": 1, "dataset": config.dataset.as_dict(), "model": "simple_cnn", "recipe": recipe.as_dict(), "seed": 0})
    assert checkpoint_folder(config, recipe, workspace).name == f"simple_cnn-{old_key}"
    brought = BaselineConfig(DatasetSpec("digits"), "simple_cnn", 5, 0, "auto", "mine.pt", "b" * 64)
    assert checkpoint_folder(brought, recipe, workspace) != checkpoint_folder(config, recipe, workspace)


def _nothing_recorded(workspace) -> bool:
    return history.count_runs(workspace.history_db) == 0 and not any(workspace.checkpoint_dir.glob("*/meta.json"))


def test_weights_of_another_architecture_are_refused_naming_the_first_tensor(digits_baseline, workspace, tmp_path, capsys):
    weights = _saved_like_a_user(digits_baseline, tmp_path / "simple.pt")
    completed = cli_in_process(capsys, "train", "--model", "simple_cnn_wide", "--weights", str(weights), "--workspace", str(workspace.root))
    assert completed.returncode == 2
    line = completed.stderr.strip().splitlines()[-1]
    wide = build_model("simple_cnn_wide", 1, 8, 10).state_dict()["conv1.weight"]
    assert "conv1.weight" in line and str(list(digits_baseline.model.state_dict()["conv1.weight"].shape)) in line and str(list(wide.shape)) in line
    assert _nothing_recorded(workspace)


def test_weights_with_another_class_count_are_refused(workspace, tmp_path, capsys):
    weights = tmp_path / "twelve.pt"
    torch.save(build_model("simple_cnn", 1, 8, 12).state_dict(), weights)
    completed = cli_in_process(capsys, "train", "--model", "simple_cnn", "--weights", str(weights), "--workspace", str(workspace.root))
    assert completed.returncode == 2
    line = completed.stderr.strip().splitlines()[-1]
    assert "12" in line and "10" in line and "classes" in line
    assert _nothing_recorded(workspace)


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (type(self.path).touch, (self.path,))


def test_a_pickle_holding_code_is_refused_and_never_run(workspace, tmp_path, capsys):
    marker = tmp_path / "ran"
    weights = tmp_path / "trojan.pt"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "payload": _Marker(marker)}, weights)
    completed = cli_in_process(capsys, "train", "--model", "simple_cnn", "--weights", str(weights), "--workspace", str(workspace.root))
    assert completed.returncode == 2
    assert "restricted" in completed.stderr.strip().splitlines()[-1]
    assert not marker.exists()
    assert _nothing_recorded(workspace) and not (workspace.root / BROUGHT_DIR).exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut short"], ids=["empty", "truncated"])
def test_an_empty_or_truncated_file_is_refused_in_one_line(workspace, tmp_path, capsys, content):
    weights = tmp_path / "broken.pt"
    weights.write_bytes(content)
    completed = cli_in_process(capsys, "train", "--model", "simple_cnn", "--weights", str(weights), "--workspace", str(workspace.root))
    assert completed.returncode == 2 and "broken.pt" in completed.stderr.strip().splitlines()[-1]
    assert _nothing_recorded(workspace)


def test_an_rgb_file_on_grey_images_is_the_file_fed_grey_repeated_to_rgb():
    """A torchvision ResNet-18 trained on RGB, brought to 1-channel digits: its stem takes one channel
    whose weights are the colour weights summed, which is exactly the RGB model on (g, g, g)."""
    from core.foundation.models.weights_file import WeightsFile, fit_to_model, stem_for_channels

    torch.manual_seed(0)
    rgb = build_model("resnet18", 3, 16, 10).eval()
    weights = WeightsFile("rgb.pt", "c" * 64, 1, "torch", rgb.state_dict())
    grey = build_model("resnet18", 1, 16, 10).eval()
    fit_to_model(grey, stem_for_channels("resnet18", weights, 1), "resnet18")
    images = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(grey(images), rgb(images.repeat(1, 3, 1, 1)), atol=1e-4, rtol=1e-4)
    assert stem_for_channels("resnet18", weights, 3) is weights  # nothing to change


def test_a_brought_files_name_is_recorded_short_and_plain_with_its_suffix():
    from core.foundation.baseline.brought import RECORDED_NAME_CHARACTERS, recorded_name

    assert recorded_name("../../etc/our\nmodel.pt") == "our?model.pt"
    assert recorded_name("C:\\Users\\me\\best.pth") == "best.pth"
    long = recorded_name("x" * 500 + ".safetensors")
    assert len(long) == RECORDED_NAME_CHARACTERS and long.endswith("….safetensors")


def test_a_classroom_job_rebuilds_the_brought_configuration():
    """The job queue carries a baseline as a dict (dataclasses.asdict) and rebuilds it in the worker."""
    from dataclasses import asdict

    from core.jobs.kinds import _baseline_config

    config = BaselineConfig(DatasetSpec("digits"), "resnet18", 2, 0, "auto", "ours.pt", "d" * 64)
    assert _baseline_config(asdict(config)) == config
    with pytest.raises(Exception, match="both its file name and the SHA-256"):
        BaselineConfig(DatasetSpec("digits"), "resnet18", None, 0, "auto", "ours.pt", "not a hash").validate()
