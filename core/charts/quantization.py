"""Charts of the quantization lab: the levels a weight is rounded to, per-layer error, accuracy
against bit width, and size and latency per variant. Pure builders: data in, figure out."""

from __future__ import annotations

import math
from dataclasses import dataclass

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from core.charts.style import PALETTE, styled


def weight_histogram_figure(fp32_weights: torch.Tensor, dequantized_weights: torch.Tensor, layer: str, description: str, bins: int = 120, max_spikes: int = 600) -> go.Figure:
    """fp32 weights as a histogram, overlaid with the dequantized values as spikes at each level.

    Both are fractions of the layer's weights, so a spike's height is the share rounded to that level.
    Past `max_spikes` distinct levels (8 bits, many channels) the dequantized values are binned like
    the fp32 ones: that many spikes could not be told apart and would bloat the figure."""
    fp32 = fp32_weights.detach().flatten().float().cpu()
    levels, counts = torch.unique(dequantized_weights.detach().flatten().float().cpu(), return_counts=True)
    total = max(1, fp32.numel())
    low, high = float(min(fp32.min(), levels.min())), float(max(fp32.max(), levels.max()))
    width = (high - low) / bins or 1.0
    histogram = torch.histc(fp32, bins=bins, min=low, max=low + width * bins)
    centres = [low + width * (i + 0.5) for i in range(bins)]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(x=centres, y=(histogram / total).tolist(), width=width, name="fp32 weights", marker={"color": PALETTE[5]}, opacity=0.7, hovertemplate="%{x:.4f}: %{y:.2%}<extra>fp32</extra>")
    )
    if len(levels) > max_spikes:
        binned = torch.histc(dequantized_weights.detach().flatten().float().cpu(), bins=bins, min=low, max=low + width * bins)
        figure.add_trace(go.Scatter(x=centres, y=(binned / total).tolist(), mode="lines", line={"color": PALETTE[3], "width": 2, "shape": "hvh"}, name=f"dequantized ({len(levels)} levels, binned)"))
    else:
        spike_x, spike_y = [], []
        for level, count in zip(levels.tolist(), counts.tolist()):
            spike_x += [level, level, None]
            spike_y += [0.0, count / total, None]
        figure.add_trace(go.Scatter(x=spike_x, y=spike_y, mode="lines", name=f"dequantized ({len(levels)} levels)", line={"color": PALETTE[3], "width": 2}, hoverinfo="skip"))
        figure.add_trace(
            go.Scatter(
                x=levels.tolist(),
                y=(counts / total).tolist(),
                mode="markers",
                marker={"color": PALETTE[3], "size": 6},
                showlegend=False,
                hovertemplate="level %{x:.4f}: %{y:.2%} of weights<extra></extra>",
            )
        )
    figure.update_layout(bargap=0)
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    return styled(figure, f"{layer}: weights rounded to {description} levels", x_title="weight value", y_title="share of weights")


@dataclass
class LayerErrorRow:
    layer: str
    per_tensor: float
    per_channel: float


def layer_error_figure(rows: list[LayerErrorRow], metric: str, bits: int) -> go.Figure:
    """Per-layer weight error, one scale per tensor versus one per output channel, side by side.

    `metric` is "sqnr_db" (higher is better) or "mse" (lower is better; drawn on a log axis)."""
    if metric not in ("sqnr_db", "mse"):
        raise ValueError(f"metric must be 'sqnr_db' or 'mse', got {metric!r}")
    layers = [row.layer for row in rows]
    figure = go.Figure()
    for name, values, colour in (("per-tensor", [row.per_tensor for row in rows], PALETTE[1]), ("per-channel", [row.per_channel for row in rows], PALETTE[0])):
        shown = [None if value is None or not math.isfinite(value) else value for value in values]
        text = [("" if v is None else (f"{v:.1f}" if metric == "sqnr_db" else f"{v:.1e}")) for v in shown]
        figure.add_trace(go.Bar(x=layers, y=shown, name=name, marker={"color": colour}, text=text, textposition="outside"))
    figure.update_layout(barmode="group")
    if metric == "mse":
        figure.update_yaxes(type="log")
        return styled(figure, f"Weight error at {bits} bits (MSE, lower is better)", x_title="layer", y_title="mean squared error")
    return styled(figure, f"Weight error at {bits} bits (SQNR, higher is better)", x_title="layer", y_title="SQNR (dB)")


# The four weight schemes the accuracy-versus-bits chart draws side by side, as (per_channel, symmetric),
# each with a colour of its own that stays the same whichever scheme is highlighted.
SCHEMES = ((True, True), (True, False), (False, True), (False, False))
SCHEME_COLOURS = {(True, True): PALETTE[0], (True, False): PALETTE[5], (False, True): PALETTE[3], (False, False): PALETTE[1]}


def scheme_label(per_channel: bool, symmetric: bool) -> str:
    return f"{'per-channel' if per_channel else 'per-tensor'} {'symmetric' if symmetric else 'affine'}"


def accuracy_vs_bits_figure(
    post_training: dict[tuple[bool, bool], dict[int, float]], qat: dict[int, float], fp32_accuracy: float, title: str = "Accuracy versus bit width", current: tuple[bool, bool] | None = None
) -> go.Figure:
    """Accuracy in % at each bit width (8 down to 2): one post-training line per weight scheme
    (`post_training` maps (per_channel, symmetric) to {bits: accuracy}), the QAT points and the fp32 line.

    The `current` scheme's line is thick; the others stay visible but thin, so the gap between
    per-channel and per-tensor scales reads off one chart without changing a setting."""
    figure = go.Figure()
    for scheme, accuracies in post_training.items():
        if not accuracies:
            continue
        highlighted = scheme == current
        bits = sorted(accuracies, reverse=True)
        figure.add_trace(
            go.Scatter(
                x=bits,
                y=[100 * accuracies[b] for b in bits],
                mode="lines+markers",
                name=f"post-training, {scheme_label(*scheme)}",
                line={"color": SCHEME_COLOURS.get(scheme, PALETTE[7]), "width": 5 if highlighted else 1.5},
                marker={"size": 10 if highlighted else 6},
                opacity=1.0 if highlighted or current is None else 0.6,
            )
        )
    if qat:
        bits = sorted(qat, reverse=True)
        figure.add_trace(
            go.Scatter(x=bits, y=[100 * qat[b] for b in bits], mode="lines+markers", name="quantization-aware training", line={"color": PALETTE[2]}, marker={"size": 12, "symbol": "diamond"})
        )
    figure.add_hline(y=100 * fp32_accuracy, line={"dash": "dot", "color": PALETTE[7]}, annotation_text=f"fp32 {100 * fp32_accuracy:.1f}%", annotation_position="bottom left")
    figure.update_xaxes(autorange="reversed", dtick=1, range=[8.5, 1.5])
    figure.update_yaxes(range=[0, 100.5])
    return styled(figure, title, x_title="weight bits", y_title="accuracy (%)")


@dataclass
class VariantCost:
    label: str  # "fp32", "dynamic int8", "static int8", "QAT 4-bit"...
    deployed_bytes: int
    artifact_bytes: int
    latency_ms: float | None  # compiled latency; None when not measured or simulated
    latency_note: str = ""  # shown instead of a bar when latency_ms is None


def size_latency_figure(variants: list[VariantCost]) -> go.Figure:
    """Deployed bytes beside the artifact's file bytes (left), compiled latency (right)."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Size (KiB)", "Latency, compiled (ms / batch)"), horizontal_spacing=0.12)
    labels = [variant.label for variant in variants]
    sizes = (
        ("deployed (values + scales + zero points)", [v.deployed_bytes for v in variants], PALETTE[0]),
        ("saved file (safetensors)", [v.artifact_bytes for v in variants], PALETTE[5]),
    )
    for name, sizes_bytes, colour in sizes:  # the two sizes side by side, in KiB
        kib = [size / 1024 for size in sizes_bytes]
        figure.add_trace(go.Bar(x=labels, y=kib, name=name, marker={"color": colour}, text=[f"{value:.0f}" for value in kib], textposition="outside"), row=1, col=1)
    figure.add_trace(
        go.Bar(
            x=labels,
            y=[v.latency_ms if v.latency_ms is not None else 0.0 for v in variants],  # a zero bar carries the note as its label
            name="latency",
            marker={"color": PALETTE[2]},
            text=[f"{v.latency_ms:.2f}" if v.latency_ms is not None else (v.latency_note or "not measured") for v in variants],
            textposition="outside",
            showlegend=False,
        ),
        row=1,
        col=2,
    )
    figure.update_layout(barmode="group")
    figure.update_yaxes(rangemode="tozero")
    return styled(figure, "What each variant costs", height=460)
