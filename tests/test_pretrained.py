"""Pretrained starts: `--pretrained` and the sidebar's toggle start a torchvision network from
torchvision's ImageNet weights (core.foundation.models.pretrained).

Nothing here downloads: every test points torch's hub at an empty temp folder and replaces
torch.hub's download with one that fails as an offline machine does. The "ImageNet" file is always
one a test makes: torchvision's network with random weights from a fixed seed, saved with
torch.save under the file name torchvision expects."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from types import SimpleNamespace
from urllib.error import URLError
from urllib.parse import urlparse

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.foundation import history
from core.foundation.baseline.card import _describes, find_baseline_card
from core.foundation.baseline.config import BaselineConfig, checkpoint_folder, recipe_with_epochs
from core.foundation.data.names import DatasetSpec
from core.foundation.errors import UserError
from core.foundation.models.names import RESNET18_IMAGENET, available_models, pretrained_arch, pretrained_models, why_not_pretrained
from core.foundation.models.pretrained import _stem_for_kernel, fit_pretrained, pretrained_weights, read_pretrained, weights_path
from core.foundation.models.registry import build_model
from core.foundation.models.weights_file import TORCH, WeightsFile
from core.foundation.training.records import FINETUNE_LR_FACTOR, TrainRecipe, classroom_recipe_for_shape, finetune_recipe
from core.foundation.workspace import Workspace, config_key, file_sha256, load_checkpoint
from tests.conftest import REPO_ROOT, cli_in_process

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
HEAVY = {"resnet50", "efficientnet_b0", "convnext_tiny"}  # the big ones: slow to build twice here


@pytest.fixture(autouse=True)
def offline_hub(tmp_path, monkeypatch) -> SimpleNamespace:
    """torch's hub at an empty temp folder ($TORCH_HOME/hub), and a download that fails as it does
    offline: `folder` is the checkpoints folder torchvision's weights are looked for in, `attempts`
    the downloads tried."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a torch.hub.set_dir() elsewhere would win over $TORCH_HOME
    hub = SimpleNamespace(folder=tmp_path / "torch" / "hub" / "checkpoints", attempts=[])

    def no_network(url, dst, hash_prefix=None, progress=True):
        hub.attempts.append({"url": url, "dst": dst, "hash_prefix": hash_prefix})
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return hub


def expected_file(weights) -> str:
    """The file name torchvision downloads `weights` as: the last part of its URL."""
    return Path(urlparse(weights.url).path).name


def place_fake_resnet18(folder: Path) -> dict[str, torch.Tensor]:
    """torchvision's ResNet-18 with seeded random weights, saved where and as torchvision's ImageNet file would be."""
    from torchvision.models import ResNet18_Weights, resnet18

    torch.manual_seed(1234)
    state = resnet18(weights=None).state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / expected_file(ResNet18_Weights.DEFAULT))
    return state


def error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines and lines[-1].startswith("error: "), result.stderr
    return lines[-1]


def test_a_pretrained_resnet18_starts_from_the_files_weights_with_a_head_for_the_datasets_classes(offline_hub, tmp_path, capsys):
    from torchvision.models import ResNet18_Weights

    placed = place_fake_resnet18(offline_hub.folder)
    root = tmp_path / "workspace"
    result = cli_in_process(capsys, "train", "--model", "resnet18", "--pretrained", "--epochs", "0", "--dataset", "digits", "--workspace", str(root))
    assert result.returncode == 0, result.stderr
    assert offline_hub.attempts == []  # the file was there: nothing downloaded
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    state, meta = load_checkpoint(Path(payload["checkpoint"]))
    # Every weight but the head and the stem is the file's, exactly (0 epochs: nothing trained).
    for key, tensor in placed.items():
        if not key.startswith(("fc.", "conv1.")):
            assert torch.equal(state[key], tensor), key
    assert torch.allclose(state["conv1.weight"], placed["conv1.weight"].sum(dim=1, keepdim=True))  # digits are grey: the colour weights summed
    assert state["fc.weight"].shape == (10, 512) and state["fc.bias"].shape == (10,)  # the dataset's 10 classes, not ImageNet's 1000
    recorded = {
        "pretrained": str(ResNet18_Weights.DEFAULT),
        "pretrained_file": expected_file(ResNet18_Weights.DEFAULT),
        "pretrained_sha256": file_sha256(offline_hub.folder / expected_file(ResNet18_Weights.DEFAULT)),
        "pretrained_normalization": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    }
    assert recorded["pretrained"] == "ResNet18_Weights.IMAGENET1K_V1"
    run = history.get_run(Workspace.open(root).history_db, payload["run_id"])
    for record in (meta, run.params):
        assert {key: record.get(key) for key in recorded} == recorded
    preset = classroom_recipe_for_shape(payload["dataset"]["train_images"], 1, 8, "resnet18")
    assert payload["recipe"]["learning_rate"] == pytest.approx(preset.learning_rate * FINETUNE_LR_FACTOR)
    # The Overview's card finds it for the pretrained configuration only.
    workspace = Workspace.open(root)
    assert find_baseline_card(BaselineConfig(DatasetSpec("digits"), "resnet18", 0, pretrained=True), workspace).checkpoint == Path(payload["checkpoint"])
    assert find_baseline_card(BaselineConfig(DatasetSpec("digits"), "resnet18", 0), workspace) is None


def test_offline_without_the_file_one_line_names_the_file_and_the_folder(offline_hub, tmp_path, capsys):
    from torchvision.models import ResNet18_Weights

    result = cli_in_process(capsys, "train", "--model", "resnet18", "--pretrained", "--epochs", "0", "--dataset", "digits", "--workspace", str(tmp_path / "workspace"))
    line = error_line(result)
    file_name = expected_file(ResNet18_Weights.DEFAULT)
    assert line == (
        f"error: torchvision's ResNet18_Weights.IMAGENET1K_V1 is not in {offline_hub.folder} ({file_name}) and cannot be downloaded here: "
        "<urlopen error [Errno -3] Temporary failure in name resolution>; put the file there"
    )
    # One try, at torchvision's URL into that folder, checked against the hash in torchvision's file name.
    assert offline_hub.attempts == [{"url": ResNet18_Weights.DEFAULT.url, "dst": str(offline_hub.folder / file_name), "hash_prefix": file_name.split("-")[1].split(".")[0]}]
    assert list(offline_hub.folder.iterdir()) == []
    assert not list((tmp_path / "workspace" / "checkpoints").glob("resnet18-*"))


def test_with_no_download_a_missing_file_is_named_without_trying_the_network(offline_hub, tmp_path, capsys):
    from torchvision.models import ResNet18_Weights

    result = cli_in_process(capsys, "train", "--model", "resnet18", "--pretrained", "--no-download", "--dataset", "digits", "--workspace", str(tmp_path / "workspace"))
    file_name = expected_file(ResNet18_Weights.DEFAULT)
    assert error_line(result) == f"error: torchvision's ResNet18_Weights.IMAGENET1K_V1 is not in {offline_hub.folder} ({file_name}) and downloads are off (--no-download); put the file there"
    assert offline_hub.attempts == []


def test_a_file_in_the_cache_is_read_by_the_restricted_loader_only(offline_hub):
    """A pickle asking for more than tensors is refused (weights_only=True), as are bytes that are no PyTorch file."""
    weights = pretrained_weights("resnet18")
    assert weights_path(weights) == offline_hub.folder / expected_file(weights)
    offline_hub.folder.mkdir(parents=True)
    torch.save({"fc.weight": torch.zeros(2, 2), "options": argparse.Namespace(lr=0.1)}, weights_path(weights))
    with pytest.raises(UserError, match=f"^{re.escape(str(weights_path(weights)))} is not torchvision's ResNet18_Weights.IMAGENET1K_V1 .*delete it to download it again"):
        read_pretrained(weights)
    weights_path(weights).write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="is not torchvision's ResNet18_Weights"):
        read_pretrained(weights)
    assert offline_hub.attempts == []


@pytest.mark.parametrize(
    "model, reason",
    [
        ("simple_cnn", "it is the lab's own network"),
        ("mobilenet_v2_x0_5", "torchvision publishes mobilenet_v2 weights at width 1.0 only, and this is width 0.5"),
        ("vit_tiny_p4", "it is the lab's own small configuration of torchvision's network"),
    ],
)
def test_pretrained_is_refused_in_one_line_for_networks_torchvision_has_no_weights_for(model, reason, tmp_path, capsys):
    result = cli_in_process(capsys, "train", "--model", model, "--pretrained", "--dataset", "digits", "--workspace", str(tmp_path / "workspace"))
    line = error_line(result)
    assert line.startswith(f"error: --pretrained: torchvision has no ImageNet weights for {model} ({reason}")
    assert line.endswith(f"choose one of {', '.join(pretrained_models())}")
    assert len(result.stderr.strip().splitlines()) == 1  # refused before any data was loaded


def test_pretrained_and_brought_weights_are_one_start_too_many():
    config = BaselineConfig(model="resnet18", brought_weights_name="mine.pt", brought_weights_sha256="0" * 64, pretrained=True)
    with pytest.raises(UserError, match="^--pretrained and --weights both say what the baseline starts from; choose one$"):
        config.validate()


def test_an_old_configuration_keeps_its_checkpoint_folder_and_its_card(tmp_path):
    """Older workspaces still open: the key gains "pretrained" only for pretrained starts, and a meta
    written before the field existed describes a start from scratch."""
    workspace = Workspace.open(tmp_path / "workspace")
    config = BaselineConfig(DatasetSpec("digits"), "resnet18", 3, 7)
    recipe = recipe_with_epochs(config, TrainRecipe(epochs=5))
    old_key = config_key({"v": 1, "dataset": config.dataset.as_dict(), "model": "resnet18", "recipe": recipe.as_dict(), "seed": 7})
    assert checkpoint_folder(config, recipe, workspace).name == f"resnet18-{old_key}"
    pretrained = BaselineConfig(DatasetSpec("digits"), "resnet18", 3, 7, pretrained=True)
    assert checkpoint_folder(pretrained, recipe, workspace) != checkpoint_folder(config, recipe, workspace)
    old_meta = {"architecture": "resnet18", "dataset": config.dataset.as_dict(), "seed": 7, "dataset_summary": {}}
    assert _describes(old_meta, config) and not _describes(old_meta, pretrained)
    assert _describes({**old_meta, "pretrained": "ResNet18_Weights.IMAGENET1K_V1"}, pretrained)


def test_a_pretrained_start_is_fine_tuned_for_the_presets_epochs_unless_told():
    preset = TrainRecipe(epochs=5, learning_rate=3e-3)
    assert recipe_with_epochs(BaselineConfig(model="resnet18", pretrained=True), preset) == finetune_recipe(preset, 5)
    assert recipe_with_epochs(BaselineConfig(model="resnet18", epochs=2, pretrained=True), preset) == finetune_recipe(preset, 2)
    assert recipe_with_epochs(BaselineConfig(model="resnet18"), preset) == preset


def test_the_torch_free_rule_agrees_with_torchvisions_weights():
    from torchvision.models import get_model_weights

    assert set(pretrained_models()) == {"resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf", "convnext_tiny"}
    for name in pretrained_models():
        assert get_model_weights(pretrained_arch(name)).DEFAULT.meta["categories"]  # ImageNet's weights exist for it
    for name in set(available_models()) - set(pretrained_models()):
        assert why_not_pretrained(name) and pretrained_arch(name) is None


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name for name in pretrained_models()])
def test_every_network_with_weights_takes_torchvisions_state_dict(name):
    """torchvision's own network (ImageNet's 1000 classes, 3 channels) fits the lab's small-image,
    1-channel, 10-class build: all but the head from the file, the head the model's own."""
    from torchvision.models import get_model

    torch.manual_seed(0)
    state = get_model(pretrained_arch(name), weights=None).state_dict()
    model = build_model(name, 1, 32, 10)
    head = [module_name for module_name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]
    own_head = model.get_submodule(head).weight.detach().clone()
    fit_pretrained(model, name, WeightsFile("fake.pth", "0" * 64, 1, TORCH, state), 1)
    fitted = model.state_dict()
    assert torch.equal(fitted[f"{head}.weight"], own_head) and own_head.shape[0] == 10
    stem = next(module_name for module_name, module in model.named_modules() if isinstance(module, nn.Conv2d))
    copied = [key for key in state if not key.startswith((f"{head}.", f"{stem}."))]
    assert copied and all(torch.equal(fitted[key], state[key]) for key in copied)
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_a_smaller_patchify_stem_is_the_files_stem_on_an_upsampled_image():
    """ConvNeXt's 2x2 small-image stem from ImageNet's 4x4 one: each 2x2 block summed gives, on an
    image, what the 4x4 kernel gives on that image upsampled twice (nearest)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, kernel_size=2, stride=2))
    file_weight = torch.randn(8, 3, 4, 4)
    fitted = _stem_for_kernel(model, WeightsFile("fake.pth", "0" * 64, 1, TORCH, {"0.weight": file_weight})).state_dict["0.weight"]
    image = torch.randn(1, 3, 16, 16)
    upsampled = F.interpolate(image, scale_factor=2, mode="nearest")
    assert torch.allclose(F.conv2d(image, fitted, stride=2), F.conv2d(upsampled, file_weight, stride=4), atol=1e-5)


def test_resnet18_imagenet_is_retired_but_its_old_runs_still_rebuild(tmp_path, capsys):
    assert RESNET18_IMAGENET not in available_models() and RESNET18_IMAGENET not in pretrained_models()
    model = build_model(RESNET18_IMAGENET, 1, 8, 10)  # no file anywhere (the hub is empty): a saved run's weights go over it
    saved = build_model("resnet18", 1, 8, 10).state_dict()
    model.load_state_dict(saved, strict=True)
    line = error_line(cli_in_process(capsys, "train", "--model", RESNET18_IMAGENET, "--dataset", "digits", "--workspace", str(tmp_path / "workspace")))
    assert line == "error: resnet18_imagenet is retired: it is now resnet18 started from torchvision's ImageNet weights: --model resnet18 --pretrained (its recorded runs still open with --from-run N)"


def test_the_sidebar_offers_the_imagenet_start_for_torchvision_networks_with_weights(session_workspace):
    from streamlit.testing.v1 import AppTest

    from ui.state import CONFIG_KEY

    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception
    assert not [toggle for toggle in at.sidebar.toggle if toggle.key == "sidebar_pretrained"]  # simple_cnn: the lab's own
    at.selectbox(key="sidebar_model").set_value("resnet18").run()
    assert at.toggle(key="sidebar_pretrained").label == "Start from torchvision's ImageNet weights"
    assert at.session_state[CONFIG_KEY].pretrained is False
    at.toggle(key="sidebar_pretrained").set_value(True).run()
    assert not at.exception
    assert (at.session_state[CONFIG_KEY].model, at.session_state[CONFIG_KEY].pretrained) == ("resnet18", True)
    at.selectbox(key="sidebar_model").set_value("mobilenet_v2_x0_5").run()
    assert not [toggle for toggle in at.sidebar.toggle if toggle.key == "sidebar_pretrained"]  # width 0.5: no weights
    assert at.session_state[CONFIG_KEY].pretrained is False
