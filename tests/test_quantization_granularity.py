"""Per-tensor against per-channel int8 after batch-norm folding (core.quantization.granularity, the
Quantization page's lesson): folding matches W * gamma / sqrt(var + eps) and leaves the outputs
unchanged; depthwise layers with a dead channel (what long training leaves in MobileNet-v2) lose
far more weight precision per tensor than per channel; a trained ResNet loses nothing either way."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual

from core.charts.granularity import channel_ranges_figure, zeroed_weights_figure
from core.foundation.data.datasets import load_dataset
from core.foundation.data.names import DatasetSpec
from core.foundation.models.registry import build_model
from core.foundation.training.loop import train_model
from core.foundation.training.quick_evaluation import QuickEvaluator
from core.foundation.training.records import TrainRecipe
from core.foundation.workspace import Workspace
from core.quantization.granularity import FoldedPair, fold_batch_norms, granularity_lesson, layer_granularity, lesson_sentences
from tests.conftest import open_app_page


@pytest.fixture(scope="module")
def lesson_workspace(tmp_path_factory) -> Workspace:
    return Workspace.open(tmp_path_factory.mktemp("granularity-ws"))


@pytest.fixture(scope="module")
def digits_evaluator(lesson_workspace) -> QuickEvaluator:
    return QuickEvaluator(load_dataset(DatasetSpec("digits"), lesson_workspace))


def conv_bn_net() -> nn.Sequential:
    """conv -> batch norm (statistics set by hand) -> ReLU -> pool -> linear: one pair to fold."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([0.5, 2.0, -1.0, 1.5]))
        net[1].bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
        net[1].running_mean.copy_(torch.tensor([0.2, -0.1, 0.0, 1.0]))
        net[1].running_var.copy_(torch.tensor([4.0, 0.01, 1.0, 1e-4]))
    return net.eval()


def kill_channels(model: nn.Module, share: float, seed: int = 0) -> None:
    """Make `share` of each inverted residual's expanded channels dead, as long training leaves some
    in an ImageNet MobileNet-v2: the expand batch norm's bias drives them below ReLU6's zero, so the
    depthwise conv after sees zeros on them and its batch norm's running mean and variance are 0.
    Their depthwise weights and gamma keep their values (no gradient reaches them), so folding
    multiplies those channels by gamma / sqrt(eps), about 316 gamma."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.modules():
            if isinstance(block, InvertedResidual) and len(block.conv) == 4:  # the blocks with an expand conv
                expand_norm, depthwise_norm = block.conv[0][1], block.conv[1][1]
                dead = torch.randperm(expand_norm.num_features, generator=generator)[: max(1, round(share * expand_norm.num_features))]
                expand_norm.bias[dead] = -100.0
                depthwise_norm.running_mean[dead] = 0.0
                depthwise_norm.running_var[dead] = 0.0


def test_folding_matches_the_hand_computation_and_keeps_the_outputs():
    net = conv_bn_net()
    folded, pairs = fold_batch_norms(net)
    assert pairs == [FoldedPair("0", "1")] and isinstance(folded[1], nn.Identity)
    norm = net[1]
    factor = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    expected = net[0].weight * factor.view(-1, 1, 1, 1)
    torch.testing.assert_close(folded[0].weight, expected)
    torch.testing.assert_close(folded[0].bias, norm.bias - norm.running_mean * factor)
    images = torch.randn(8, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(folded(images), net(images), atol=1e-5, rtol=1e-5)
    assert net[1].running_var[3] == pytest.approx(1e-4)  # the source model is untouched


def test_ranges_before_and_after_folding_per_output_channel(digits_evaluator):
    net = conv_bn_net()
    lesson = granularity_lesson(net, digits_evaluator)
    conv, linear = lesson.layer("0"), lesson.layer("5")
    norm = net[1]
    expected = (net[0].weight * (norm.weight / torch.sqrt(norm.running_var + norm.eps)).view(-1, 1, 1, 1)).detach().flatten(1)
    raw = net[0].weight.detach().flatten(1)
    assert conv.batch_norm == "1" and conv.kind == "conv" and conv.channels == 4
    assert conv.ranges.minimum_before == pytest.approx(raw.min(dim=1).values.tolist())
    assert conv.ranges.maximum_before == pytest.approx(raw.max(dim=1).values.tolist())
    assert conv.ranges.minimum_after == pytest.approx(expected.min(dim=1).values.tolist(), rel=1e-5)
    assert conv.ranges.maximum_after == pytest.approx(expected.max(dim=1).values.tolist(), rel=1e-5)
    # Channel 3 (variance 1e-4, gamma 1.5) is 150x its raw weights: it sets the per-tensor range alone.
    assert conv.ranges.per_tensor_abs_max_after == pytest.approx(expected.abs().max().item(), rel=1e-5)
    assert conv.ranges.per_tensor_abs_max_after == pytest.approx(max(conv.ranges.abs_max_after)) == pytest.approx(expected[3].abs().max().item(), rel=1e-5)
    assert conv.channel_range_ratio > 10 and lesson.worst_layer == "0"
    assert linear.batch_norm == "" and linear.ranges.minimum_before == linear.ranges.minimum_after
    assert lesson.eval_images == len(digits_evaluator.labels) and lesson.bits == 8
    assert lesson.accuracy_float == pytest.approx(digits_evaluator.accuracy(net))  # folding changes no prediction


def test_depthwise_layers_lose_far_more_per_tensor_than_per_channel(digits_evaluator):
    model = build_model("mobilenet_v2_x0_5", 1, 8, 10).eval()
    kill_channels(model, share=0.05)
    lesson = granularity_lesson(model, digits_evaluator)
    depthwise = [layer for layer in lesson.layers if layer.kind == "depthwise conv"]
    assert len(depthwise) == 17 and len(lesson.folded) == 52  # every conv of MobileNet-v2 has its batch norm folded
    for layer in depthwise:
        if layer.layer == "features.1.conv.0.0":
            continue  # the first block has no expand conv: nothing dead feeds it
        assert layer.per_tensor_mse > 10 * layer.per_channel_mse, layer
        assert layer.weights_zeroed_per_tensor_fraction > 0.05 > layer.weights_zeroed_per_channel_fraction, layer
    assert lesson.layer(lesson.worst_layer).kind == "depthwise conv"
    # A depthwise layer's ranges against the hand computation on the model itself.
    conv, norm = model.features[3].conv[1][0], model.features[3].conv[1][1]
    folded = (conv.weight * (norm.weight / torch.sqrt(norm.running_var + norm.eps)).view(-1, 1, 1, 1)).detach().flatten(1)
    ranges = lesson.layer("features.3.conv.1.0").ranges
    assert ranges.batch_norm == "features.3.conv.1.1"
    assert ranges.maximum_after == pytest.approx(folded.max(dim=1).values.tolist(), rel=1e-5)
    assert ranges.minimum_before == pytest.approx(conv.weight.detach().flatten(1).min(dim=1).values.tolist())


def test_a_trained_resnet_loses_nothing_per_tensor(digits_evaluator):
    """The lab's small ResNet (conv + batch norm, residual adds), trained on digits: its dense convs'
    folded channels stay within a few times of each other, so one scale per tensor serves them."""
    torch.manual_seed(0)
    model = build_model("teacher", 1, 8, 10)
    # AdamW, not the teacher's classroom SGD recipe: 3 epochs reach ~98% on digits in seconds.
    train_model(model, digits_evaluator.dataset, TrainRecipe(epochs=3, batch_size=64, learning_rate=3e-3), torch.device("cpu"), evaluate_each_epoch=False)
    lesson = granularity_lesson(model.eval(), digits_evaluator)
    assert len(lesson.folded) == 8 and lesson.accuracy_float > 0.8
    assert abs(lesson.accuracy_per_tensor - lesson.accuracy_per_channel) <= 0.01
    assert abs(lesson.accuracy_per_tensor - lesson.accuracy_float) <= 0.01
    assert lesson.channels_zeroed_per_tensor == 0
    assert all(layer.channel_range_ratio < 10 for layer in lesson.layers)


class DataDependent(nn.Module):
    """A batch norm behind data-dependent control flow, which torch.fx cannot trace."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        if x.mean() > 0:
            x = x.relu()
        return self.fc(x.mean(dim=(2, 3)))


def test_a_model_fx_cannot_trace_is_shown_unfolded_and_says_why(digits_evaluator):
    lesson = granularity_lesson(DataDependent().eval(), digits_evaluator)
    assert lesson.folded == () and "torch.fx cannot trace DataDependent" in lesson.note and "\n" not in lesson.note
    assert lesson.layer("conv").ranges.minimum_before == lesson.layer("conv").ranges.minimum_after
    plain = granularity_lesson(build_model("simple_cnn", 1, 8, 10).eval(), digits_evaluator)
    assert plain.folded == () and plain.note == ""  # nothing to fold, nothing to say


def test_charts_draw_the_per_tensor_range_and_the_zero_threshold():
    lesson_net = conv_bn_net()
    folded, _ = fold_batch_norms(lesson_net)
    layer = layer_granularity("0", lesson_net[0], folded[0], "1", 8)
    figure = channel_ranges_figure(layer.ranges, 8)
    names = [trace.name for trace in figure.data]
    assert names[0] == "before folding" and names[1] == "after folding 1"
    assert names[2].startswith("per-tensor range") and names[3].startswith("half a per-tensor step")
    assert list(figure.data[2].y) == pytest.approx([layer.ranges.per_tensor_abs_max_after] * 2)
    assert list(figure.data[3].y) == pytest.approx([layer.ranges.per_tensor_abs_max_after / 127 / 2] * 2)
    assert figure.layout.yaxis.type == "log" and figure.layout.title.font.size >= 20  # readable when projected
    zeroed = zeroed_weights_figure([layer], 8, highlighted="0")
    assert [trace.name for trace in zeroed.data] == ["one scale per tensor", "one scale per output channel"]
    assert list(zeroed.data[0].y) == pytest.approx([100 * layer.weights_zeroed_per_tensor_fraction])


def test_the_two_sentences_say_collapse_gap_or_no_harm_from_the_accuracies(digits_evaluator):
    lesson = granularity_lesson(conv_bn_net(), digits_evaluator)
    collapse = replace(lesson, accuracy_float=0.9, accuracy_per_tensor=0.1, accuracy_per_channel=0.89)
    gap = replace(lesson, accuracy_float=0.9, accuracy_per_tensor=0.87, accuracy_per_channel=0.9)
    unharmed = replace(lesson, accuracy_float=0.9, accuracy_per_tensor=0.9, accuracy_per_channel=0.9)
    texts = {name: lesson_sentences(case, "0") for name, case in (("collapse", collapse), ("gap", gap), ("unharmed", unharmed))}
    assert all(text.startswith("Folding each batch norm") and text.count(". ") == 1 for text in texts.values())
    assert "the collapse (-80.0 points per tensor, -1.0 per channel)" in texts["collapse"]
    assert "the gap is 3.0 points (-3.0 points per tensor, +0.0 per channel)" in texts["gap"]
    assert "one scale serves the model (+0.0 points per tensor, +0.0 per channel)" in texts["unharmed"] and "75.0% either way" in texts["unharmed"]


def test_the_lesson_renders_on_the_quantization_page_with_its_two_sentences(digits_baseline):
    page = open_app_page("pages/quantization.py")
    assert not any("one scale per tensor" in metric.label for metric in page.metric)  # closed: nothing computed
    page.session_state["quant_lesson_open"] = True
    page.run()
    assert not page.exception and not page.error
    labels = {metric.label: metric.value for metric in page.metric}
    assert labels["int8 weights, one scale per tensor"].endswith("%") and labels["int8 weights, one scale per output channel"].endswith("%")
    text = next(block.value for block in page.markdown if block.value.startswith("Folding each batch norm"))
    assert text.count(". ") == 1 and "Krishnamoorthi (2018" in text  # two sentences: what folding does, what this model shows
    layers = page.selectbox(key="quant_lesson_layer")
    spreads = {option.split()[0]: float(option.split("widest channel ")[1].split("×")[0]) for option in layers.options}
    assert list(spreads) == ["conv1", "conv2", "fc1", "fc2", "fc3"] and spreads[layers.value] == max(spreads.values())  # starts at the widest spread
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in page.get("plotly_chart")]
    assert any("weight range per channel at 8 bits" in title for title in titles) and any(title.startswith("Weights rounded to 0 at 8 bits") for title in titles)
    assert any("no batch norm to fold" in caption.value and "activations stay float" in caption.value for caption in page.caption)
    page.radio(key="quant_lesson_bits").set_value(4).run()
    assert not page.exception and "int4 weights, one scale per tensor" in {metric.label for metric in page.metric}
