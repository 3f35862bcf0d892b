"""Coupled channel groups (issue 26, item 3): which layers lose the same channels and why, found
from Torch-Pruning's dependency graph and one traced pass; the chart that shows them; the Pruning
page's tab that draws it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from core.charts.pruning import coupled_groups_figure
from core.foundation.models.registry import build_model
from core.pruning import PruneConfig, apply_pruning
from core.pruning.groups import ATTENTION_HEADS, DEPTHWISE, LEFT_WHOLE, ONE_LAYER, RESIDUAL, coupled_groups
from tests.conftest import open_app_page

RESNET_STEM = ("conv1", "layer1.0.conv2", "layer1.1.conv2")  # the stem and each layer1 block's second conv: one add chain


@pytest.fixture(scope="module")
def resnet18() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return build_model("resnet18", 1, 8, 10), torch.randn(2, 1, 8, 8)


@pytest.fixture(scope="module")
def resnet18_groups(resnet18):
    model, example = resnet18
    return coupled_groups(model, example, "resnet18")


def zero_rows(module: nn.Module) -> list[int]:
    """Output channels whose whole filter is masked to zero."""
    return torch.nonzero(module.weight.detach().flatten(1).abs().sum(1) == 0).flatten().tolist()


def test_resnet18_the_add_ties_the_stem_to_every_layer1_blocks_second_conv(resnet18_groups):
    stem = resnet18_groups.group("conv1")
    assert stem.output_layers == RESNET_STEM
    assert stem.coupling == RESIDUAL and stem.ties == ("layer1.0", "layer1.1")
    assert stem.why == "tied by the add in layer1.0, layer1.1 (residual)"
    assert stem.channels == stem.units == 64
    assert {member.layer for member in stem.members if member.side == "in"} >= {"layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.0.downsample.0"}
    assert {"bn1", "layer1.0.bn2", "layer1.1.bn2"} <= {member.layer for member in stem.members if member.is_norm}
    downsample = resnet18_groups.group("layer2.0.downsample.0")
    assert set(downsample.output_layers) == {"layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv2"}
    assert "tied by the add in layer2.0, layer2.1 (residual)" in downsample.why
    # A block's first conv feeds only its second: one layer, coupled to nothing.
    inner = resnet18_groups.group("layer1.0.conv1")
    assert inner.coupling == ONE_LAYER and not inner.is_coupled and inner.output_layers == ("layer1.0.conv1",)
    assert [group.root for group in resnet18_groups.coupled] == ["conv1", "layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0"]
    assert len(resnet18_groups.groups) == 12 and "fc" not in [group.root for group in resnet18_groups.groups]  # the classes are never pruned
    layers = list(resnet18_groups.layers)
    assert layers[:2] == ["conv1", "bn1"] and layers[-1] == "fc"
    assert layers.index("layer1.0.conv2") < layers.index("layer1.1.conv1") < layers.index("layer2.0.conv1") < layers.index("layer4.1.conv2")


def test_resnet18_every_layer_of_a_group_loses_the_same_channels(resnet18, resnet18_groups):
    model, example = resnet18
    pruned = apply_pruning(build_model("resnet18", 1, 8, 10).eval(), PruneConfig(granularity="channel", amount=0.5, method="l1"), example)
    after = resnet18_groups.after(pruned.pruned_channels)
    assert after.pruned and not resnet18_groups.pruned
    modules = dict(pruned.masked.named_modules())
    for group in after.groups:
        removed = pruned.pruned_channels[group.root]
        assert group.lost == len(removed) == group.channels // 2 and group.kept == group.channels - group.lost
        for layer in group.output_layers:  # each conv of the group has exactly these filters zeroed
            assert zero_rows(modules[layer]) == removed, (group.root, layer)
        for member in group.members:
            if member.is_norm and member.side == "out":  # and its batch norm's scale and shift
                assert torch.nonzero(modules[member.layer].weight.detach() == 0).flatten().tolist() == removed
    stem = after.group("conv1")
    compact = dict(pruned.compact.named_modules())
    assert {compact[layer].out_channels for layer in stem.output_layers} == {64 - stem.lost}
    assert compact["layer1.0.conv1"].in_channels == compact["layer2.0.downsample.0"].in_channels == 64 - stem.lost


def test_mobilenet_v2_names_its_depthwise_and_residual_couplings():
    groups = coupled_groups(build_model("mobilenet_v2_x0_5", 1, 8, 10), torch.randn(2, 1, 8, 8))
    depthwise = groups.group("features.2.conv.1.0")
    assert depthwise.coupling == DEPTHWISE and depthwise.ties == ("features.2.conv.1.0",)
    assert depthwise.output_layers == ("features.2.conv.0.0", "features.2.conv.1.0")  # the expansion conv whose outputs it reads
    assert depthwise.why.startswith("features.2.conv.1.0 is depthwise: each output channel reads only its own input channel, so its input and output lose the same channels")
    assert sum(group.coupling == DEPTHWISE for group in groups.groups) == 17  # one per inverted-residual block
    residual = groups.group("features.3.conv.2")
    assert residual.coupling == RESIDUAL and residual.why == "tied by the add in features.3 (residual)"
    assert residual.output_layers == ("features.2.conv.2", "features.3.conv.2")


def test_vit_heads_go_whole_and_the_layernormed_stream_is_left_whole():
    groups = coupled_groups(build_model("vit_tiny_p4", 1, 8, 10), torch.randn(2, 1, 8, 8))
    heads = groups.group("encoder.layers.encoder_layer_0.self_attention.qkv")
    assert heads.coupling == ATTENTION_HEADS and heads.units == 4 and heads.channels == 3 * 192
    assert "heads are removed whole" in heads.why
    stream = next(group for group in groups.groups if group.blocked_by is not None)
    assert stream.coupling == LEFT_WHOLE and stream.why.startswith("left whole: ") and "(LayerNorm) normalises across these channels" in stream.why
    assert RESIDUAL in stream.couplings and "conv_proj" in stream.output_layers
    figure = coupled_groups_figure(groups)
    whole = next(trace for trace in figure.data if trace.name.startswith("left whole"))
    column = list(whole.x).index(f"{stream.root} (whole)")
    assert not np.isnan(whole.z[:, column]).all() and np.isnan(np.delete(whole.z, column, axis=1)).all()


def test_the_lab_cnn_has_no_coupled_groups_and_its_chart_says_so():
    groups = coupled_groups(build_model("simple_cnn", 1, 8, 10), torch.randn(2, 1, 8, 8), "simple_cnn")
    assert not groups.coupled and all(len(group.output_layers) == 1 for group in groups.groups)
    figure = coupled_groups_figure(groups)
    assert figure.layout.title.text == "Channel groups of simple_cnn: none coupled, every group is one layer"
    out = figure.data[0]
    assert out.name == "loses output channels"
    assert np.array_equal(~np.isnan(out.z[: len(out.x)]), np.eye(len(out.x), dtype=bool))  # one layer per group: a diagonal


def test_the_chart_is_a_layer_by_group_matrix_with_the_reason_in_the_hover(resnet18, resnet18_groups):
    model, example = resnet18
    pruned = apply_pruning(build_model("resnet18", 1, 8, 10).eval(), PruneConfig(granularity="channel", amount=0.5, method="l1"), example)
    figure = coupled_groups_figure(resnet18_groups.after(pruned.pruned_channels))
    assert figure.layout.title.text == "Channel groups of resnet18: 4 of 12 tie layers together"
    assert [trace.name for trace in figure.data] == ["loses output channels", "loses input channels"]
    out, reads = figure.data
    convs = [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d | nn.Linear)]
    assert list(out.y) == list(reads.y) == convs  # network order, batch norms left out (they go with their conv)
    assert list(out.x)[:2] == ["conv1 (add, −32)", "layer1.0.conv1 (−32)"] and len(out.x) == 12
    column = list(out.x).index("conv1 (add, −32)")
    rows = [out.y[row] for row in np.flatnonzero(~np.isnan(out.z[:, column]))]
    assert rows == list(RESNET_STEM)
    hover = out.text[convs.index("layer1.1.conv2")][column]
    assert "<b>layer1.1.conv2</b> (Conv2d) loses 32 of 64 output channels" in hover and "tied by the add in layer1.0, layer1.1 (residual)" in hover
    assert {out.y[row] for row in np.flatnonzero(~np.isnan(reads.z[:, column]))} == {"layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.0.downsample.0"}
    only = coupled_groups_figure(resnet18_groups, coupled_only=True)
    assert list(only.data[0].x) == ["conv1 (add)", "layer2.0.downsample.0 (add)", "layer3.0.downsample.0 (add)", "layer4.0.downsample.0 (add)"]
    assert only.layout.title.text == "Coupled channel groups of resnet18: 4 (of 12 groups)"


def groups_chart(at) -> dict:
    return json.loads(next(chart for chart in at.get("plotly_chart") if "Channel groups" in chart.proto.spec).proto.spec)


def test_the_pruning_page_draws_the_groups_for_channel_pruning_once_per_model(digits_baseline, monkeypatch):
    import core.pruning.groups

    calls = []
    real = core.pruning.groups.coupled_groups
    monkeypatch.setattr(core.pruning.groups, "coupled_groups", lambda *args, **kwargs: calls.append(args) or real(*args, **kwargs))
    at = open_app_page("pages/pruning.py")
    at.session_state["prune_tab"] = "Coupled groups"
    at.run()
    assert not at.exception
    assert any("Choose **whole channels (structured)**" in caption.value for caption in at.caption)  # unstructured: nothing is coupled
    at.radio(key="prune_granularity").set_value("channel").run()
    assert not at.exception
    chart = groups_chart(at)
    assert chart["layout"]["title"]["text"] == "Channel groups of simple_cnn: none coupled, every group is one layer"
    assert chart["data"][0]["x"] == ["conv1 (−8)", "conv2 (−16)", "fc1 (−60)", "fc2 (−42)"]  # the default 50% of each layer's channels
    assert any(caption.value.startswith("No layers of simple_cnn are coupled") for caption in at.caption)
    computed = len(calls)
    assert computed <= 1  # once per model (zero when an earlier test of this process already cached it)
    at.slider(key="prune_amount").set_value(0.25).run()
    assert not at.exception
    assert groups_chart(at)["data"][0]["x"] == ["conv1 (−4)", "conv2 (−8)", "fc1 (−30)", "fc2 (−21)"]
    assert len(calls) == computed  # a slider move redraws from the cached groups
