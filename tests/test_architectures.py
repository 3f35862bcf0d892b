"""Real architectures (issue 26, items 1 and 3): torchvision's classification networks by name, adapted
to small images and 1-channel data, and channel pruning through their residuals, depthwise
convolutions and attention heads, with the smaller model computing exactly what the masked one does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.foundation.data.datasets import DatasetSpec, load_dataset
from core.foundation.errors import UserError
from core.foundation.measures.metrics import count_parameters
from core.foundation.models import memory
from core.foundation.models.channels import remove_channels
from core.foundation.models.names import ARCHITECTURES, LAB_OWN, MODEL_GROUPS, MODEL_NAMES, RETIRED_MODELS, TORCHVISION, available_model_groups, available_models
from core.foundation.models.registry import build_model
from core.foundation.models.vit import HeadAttention
from core.foundation.training.loop import TrainRecipe, train_model
from core.pruning import PruneConfig, apply_pruning
from core.pruning.masks import blocked_channel_layers, channel_layers, model_channel_groups

TORCHVISION_MODELS = [name for name in MODEL_GROUPS[TORCHVISION] if name not in RETIRED_MODELS]  # resnet18_imagenet builds resnet18 for its old runs
HEAVY = {"resnet50", "efficientnet_b0", "convnext_tiny"}  # 1.4 to 2.5 s each to prune here (the others: under 1 s)
SIDE = 32


def slow_if_heavy(names):
    return [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name for name in names]


def randomised(name: str, channels: int = 3) -> nn.Module:
    """An eval-mode model whose every number matters: batch-norm statistics and scales drawn at
    random, ConvNeXt's layer scale (1e-6 at init) near 1, and no weight left all zero (ViT's head)."""
    torch.manual_seed(0)
    model = build_model(name, channels, SIDE, 10).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        for parameter_name, parameter in model.named_parameters():
            if parameter_name.endswith("layer_scale"):
                parameter.uniform_(0.5, 1.5)
            elif not parameter.any():
                parameter.normal_(0.0, 0.05)
    return model


# --- item 1: architectures by name ------------------------------------------------------------


def test_the_registry_is_one_list_grouped_with_the_issues_architectures():
    assert [a.name for a in ARCHITECTURES] == list(MODEL_NAMES)
    assert MODEL_GROUPS[LAB_OWN] + MODEL_GROUPS[TORCHVISION] == MODEL_NAMES
    assert set(MODEL_GROUPS[LAB_OWN]) == {"simple_cnn", "simple_cnn_narrow", "simple_cnn_wide", "teacher"}
    assert {"resnet18", "resnet50", "mobilenet_v2", "mobilenet_v2_x0_5", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf", "convnext_tiny", "vit_tiny_p4"} <= set(MODEL_GROUPS[TORCHVISION])
    assert all(a.adaptation for a in ARCHITECTURES if a.group == TORCHVISION)
    assert sum(available_model_groups().values(), []) == [name for name in MODEL_NAMES if name in sum(available_model_groups().values(), [])]


def test_every_registry_architecture_reaches_the_sidebar_and_the_cli():
    """One list: the sidebar's groups and the CLI's --model choices are the registry's names (the
    retired resnet18_imagenet is refused by the CLI in one line and hidden in the sidebar), in the registry's order."""
    from core.cli.main import build_parser

    model_option = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions if a.dest == "model")
    assert tuple(model_option.choices) == MODEL_NAMES
    grouped = available_model_groups()
    assert grouped[LAB_OWN] == list(MODEL_GROUPS[LAB_OWN])
    assert [name for name in MODEL_GROUPS[TORCHVISION] if name not in RETIRED_MODELS] == grouped[TORCHVISION]
    assert set(available_models()) == set(sum(grouped.values(), []))


@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_every_architecture_takes_1_and_3_channels_and_its_smallest_image(name):
    minimum = next(a.min_image_size for a in ARCHITECTURES if a.name == name)
    for channels, side in ((3, SIDE), (1, SIDE), (1, minimum)):
        model = build_model(name, channels, side, num_classes=7).eval()
        with torch.no_grad():
            assert model(torch.randn(2, channels, side, side)).shape == (2, 7)


def test_resnet18_is_still_the_network_old_runs_saved():
    from torchvision.models import resnet18

    reference = resnet18(weights=None, num_classes=10)
    model = build_model("resnet18", 3, SIDE, 10)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert model.conv1.kernel_size == (7, 7) and model.conv1.stride == (1, 1) and isinstance(model.maxpool, nn.Identity)


def test_small_image_adaptations_keep_a_map_at_the_end():
    mobilenet = build_model("mobilenet_v2_x0_5", 3, SIDE, 10)
    assert mobilenet.features[0][0].stride == (1, 1) and mobilenet.features[0][0].out_channels == 16  # width 0.5 of 32
    assert mobilenet.features(torch.zeros(1, 3, SIDE, SIDE)).shape[-1] == 4  # /8, not /32
    assert 0.6e6 < count_parameters(mobilenet) < 0.8e6  # chenyaofo's CIFAR MobileNetV2 x0.5: 0.70 M
    convnext = build_model("convnext_tiny", 3, SIDE, 10)
    assert convnext.features[0][0].kernel_size == (2, 2) and convnext.features(torch.zeros(1, 3, SIDE, SIDE)).shape[-1] == 2
    vit = build_model("vit_tiny_p4", 3, SIDE, 10)
    assert vit.patch_size == 4 and vit.seq_length == 65 and len(vit.encoder.layers) == 6
    assert all(isinstance(block.self_attention, HeadAttention) for block in vit.encoder.layers)


def test_one_channel_data_is_adapted_by_summing_the_colour_weights():
    torch.manual_seed(0)
    colour = build_model("mobilenet_v2_x0_5", 3, SIDE, 10).eval()
    torch.manual_seed(0)
    grey = build_model("mobilenet_v2_x0_5", 1, SIDE, 10).eval()
    assert grey.features[0][0].in_channels == 1
    torch.testing.assert_close(grey.features[0][0].weight, colour.features[0][0].weight.sum(dim=1, keepdim=True))
    image = torch.randn(2, 1, SIDE, SIDE)
    with torch.no_grad():
        torch.testing.assert_close(grey(image), colour(image.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)  # grey = R = G = B


def test_a_vit_takes_a_side_that_is_no_multiple_of_its_patch():
    model = build_model("vit_tiny_p4", 1, 30, 10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 30, 30)).shape == (2, 10)


def test_an_image_too_small_for_the_stem_is_one_line_naming_the_minimum():
    with pytest.raises(UserError, match=r"convnext_tiny needs images of at least 16x16 pixels \(.*\); these are 8x8") as caught:
        build_model("convnext_tiny", 1, 8, 10)
    assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match="outside the supported 8..224"):
        build_model("resnet50", 3, 4, 10)


def test_head_attention_computes_what_torchvisions_multihead_attention_does():
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(48, 4, batch_first=True).eval()
    nn.init.normal_(reference.in_proj_bias)
    twin = HeadAttention.from_multihead(reference).eval()
    x = torch.randn(2, 9, 48)
    with torch.no_grad():
        torch.testing.assert_close(twin(x, x, x, need_weights=False)[0], reference(x, x, x, need_weights=False)[0], rtol=1e-5, atol=1e-5)


def test_training_that_would_not_fit_in_memory_is_refused_with_the_estimate(workspace, monkeypatch):
    dataset = load_dataset(DatasetSpec("digits", train_size=64, test_size=20), workspace)
    model = build_model("resnet50", 1, dataset.image_size, dataset.num_classes)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    small = memory.estimate_memory(model, 1, dataset.image_size, 16)
    assert memory.estimate_memory(model, 1, dataset.image_size, 64).bytes > small.bytes > 4 * 4 * small.params
    monkeypatch.setattr(memory, "available_memory_bytes", lambda device="cpu": 10**8)
    with pytest.raises(UserError, match=r"training ResNet on 8-px images in batches of 16 needs about [\d.]+ GB \(23\.5 M parameters, .*more than the 0\.1 GB") as caught:
        train_model(model, dataset, TrainRecipe(epochs=1, batch_size=16), torch.device("cpu"))
    assert "\n" not in str(caught.value)
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())  # not one step was taken


class IgnoresEval(nn.Module):
    """Like a PT2E-prepared graph (QAT): .eval() does not reach its batch norm or its dropout."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm, self.drop = nn.Conv2d(1, 4, 3, bias=True), nn.BatchNorm2d(4), nn.Dropout(0.5)

    def train(self, mode=True):
        return self

    def forward(self, x):
        return self.drop(self.norm(self.conv(x)))


def test_the_memory_estimate_leaves_no_trace_in_the_model_or_the_random_stream():
    model = IgnoresEval()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    torch.manual_seed(5)
    memory.estimate_memory(model, 1, 8, 16)
    after_estimate = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(3), after_estimate)  # the seed's data order is unchanged
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())  # batch-norm statistics too


# --- item 3: channel removal through residuals, depthwise convolutions and attention -------------


@pytest.mark.parametrize("name", slow_if_heavy(TORCHVISION_MODELS))
def test_removing_channels_gives_exactly_the_masked_models_outputs(name):
    model = randomised(name)
    images = torch.randn(2, 3, SIDE, SIDE)
    with torch.no_grad():
        full = model(images)
    pruned = apply_pruning(model, PruneConfig(method="l1", granularity="channel", amount=0.3, remove=True), images[:1])
    with torch.no_grad():
        masked, smaller = pruned.masked(images), pruned.removed(images)
    torch.testing.assert_close(smaller, masked, rtol=1e-4, atol=1e-4)
    assert (full - masked).abs().max() > 1e-3  # the channels mattered, so the comparison means something
    assert count_parameters(pruned.removed) < 0.85 * count_parameters(build_model(name, 3, SIDE, 10))
    for module in pruned.removed.modules():
        if isinstance(module, nn.Conv2d) and module.groups > 1:
            assert module.in_channels % module.groups == 0 and module.out_channels % module.groups == 0
            assert module.weight.shape[1] == module.in_channels // module.groups
    check_architecture_specifics(name, pruned)


def check_architecture_specifics(name: str, pruned) -> None:
    smaller, removed = pruned.removed, pruned.pruned_channels
    if name.startswith("resnet"):  # an add couples layer1's shortcut (the stem; ResNet-50: its projection) with every block's last conv
        last, shortcut, width = ("conv2", "conv1", 64) if name == "resnet18" else ("conv3", "layer1.0.downsample.0", 256)
        coupled = smaller.get_submodule(shortcut).out_channels
        assert {getattr(block, last).out_channels for block in smaller.layer1} == {coupled} and coupled < width
        assert f"layer1.1.{last}" not in removed  # not a root of its own: its channels are the shortcut's
    if name.startswith(("mobilenet", "efficientnet")):
        depthwise = [m for m in smaller.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
        assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise)
        assert any(m.out_channels < original for m, original in zip(depthwise, (m.out_channels for m in build_model(name, 3, SIDE, 10).modules() if isinstance(m, nn.Conv2d) and m.groups > 1)))
    if name == "regnet_y_400mf":  # grouped 3x3 convs: the same positions go from every group, so groups stay equal
        conv = smaller.trunk_output[0][0].f.b[0]
        assert conv.groups == 6 and conv.out_channels == 6 * 6 and conv.in_channels == 6 * 6  # 48 = 6 groups of 8 -> of 6
    if name == "convnext_tiny":
        assert "features.0.0" in pruned.left_whole and "LayerNorm2d" in pruned.left_whole["features.0.0"]
        assert smaller.features[1][0].block[3].out_features < 4 * 96  # the inverted-bottleneck MLP shrank
    if name == "vit_tiny_p4":
        for block in smaller.encoder.layers:
            assert block.self_attention.num_heads == block.num_heads == 3 and block.self_attention.head_dim == 48  # 4 heads -> 3, whole
            assert block.self_attention.qkv.out_features == 3 * 3 * 48 and block.mlp[0].out_features < 384
        assert smaller.hidden_dim == 192 and smaller.class_token.shape[-1] == 192  # the residual stream stays whole


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "vit_tiny_p4"])
def test_a_saved_pruned_model_rebuilds_from_its_removed_channels(name):
    model = randomised(name)
    images = torch.randn(2, 3, SIDE, SIDE)
    pruned = apply_pruning(model, PruneConfig(method="ln", granularity="channel", amount=0.4, remove=True), images[:1])
    rebuilt = remove_channels(build_model(name, 3, SIDE, 10).eval(), pruned.pruned_channels, images[:1])
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in pruned.removed.state_dict().items()}
    rebuilt.load_state_dict(pruned.removed.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images), pruned.masked(images), rtol=1e-4, atol=1e-4)


def test_attention_heads_are_units_of_their_own_and_global_scope_counts_them():
    model = randomised("vit_tiny_p4")
    example = torch.randn(1, 3, SIDE, SIDE)
    groups = model_channel_groups(model, example)
    heads = groups["encoder.layers.encoder_layer_0.self_attention.qkv"]
    assert heads.kind == "attention heads" and len(heads.units) == 4 and all(len(unit) == 3 * 48 for unit in heads.units)
    assert groups["encoder.layers.encoder_layer_0.mlp.0"].blocked_by is None
    pruned = apply_pruning(model, PruneConfig(method="random", granularity="channel", amount=0.3, scope="global", remove=True), example)
    for root, indices in pruned.pruned_channels.items():
        assert len(indices) % (3 * 48 if root.endswith("qkv") else 1) == 0
    with torch.no_grad():
        torch.testing.assert_close(pruned.removed(example), pruned.masked(example), rtol=1e-4, atol=1e-4)


def test_channels_a_layer_norm_couples_are_refused_in_one_line_naming_it():
    model = build_model("vit_tiny_p4", 3, SIDE, 10).eval()
    example = torch.zeros(1, 3, SIDE, SIDE)
    blocked = blocked_channel_layers(model, example)
    assert len(blocked) == 1
    [(root, reason)] = blocked.items()
    assert root not in channel_layers(model, example) and "encoder_layer_0.ln_1 (LayerNorm) normalises across these channels" in reason
    with pytest.raises(UserError, match=rf"{root}'s channels cannot be removed exactly: encoder\.layers\.encoder_layer_0\.ln_1 \(LayerNorm\)") as caught:
        apply_pruning(model, PruneConfig(granularity="channel", amount=0.3, layers=(root,)), example)
    assert "\n" not in str(caught.value)


def test_convnexts_stem_and_stages_are_refused_for_their_layer_norms():
    model = build_model("convnext_tiny", 3, SIDE, 10).eval()
    example = torch.zeros(1, 3, SIDE, SIDE)
    with pytest.raises(UserError, match=r"features\.0\.0's channels cannot be removed exactly: features\.0\.1 \(LayerNorm2d\) normalises across these channels"):
        apply_pruning(model, PruneConfig(granularity="channel", amount=0.3, layers=("features.0.0",)), example)
    assert all(root.endswith("block.3") for root in channel_layers(model, example))  # only the MLPs' hidden channels


def test_an_iterative_schedule_keeps_the_heads_it_removed_and_adds_more():
    model = randomised("vit_tiny_p4")
    example = torch.randn(1, 3, SIDE, SIDE)
    root = "encoder.layers.encoder_layer_0.self_attention.qkv"
    first = apply_pruning(model, PruneConfig(granularity="channel", amount=0.25), example)  # masks only: 1 head of 4
    second = apply_pruning(model, PruneConfig(granularity="channel", amount=0.5, remove=True), example)  # the same model, masked again: 2 heads
    assert len(first.pruned_channels[root]) == 3 * 48 and len(second.pruned_channels[root]) == 2 * 3 * 48
    assert set(first.pruned_channels[root]) <= set(second.pruned_channels[root])
    assert second.removed.encoder.layers[0].self_attention.num_heads == 2
    with torch.no_grad():
        torch.testing.assert_close(second.removed(example), second.masked(example), rtol=1e-4, atol=1e-4)
