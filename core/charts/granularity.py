"""Charts of the per-tensor against per-channel lesson: one layer's weight range per output channel
before and after batch-norm folding, against the one range a per-tensor scale must cover; and
every layer's share of weights that one scale per tensor rounds to zero. Pure builders: results
in, figures out."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from core.charts.style import PALETTE, styled_figure
from core.quantization.granularity import ChannelRanges, LayerGranularity

BEFORE_COLOUR, AFTER_COLOUR, RANGE_COLOUR, ZERO_COLOUR = PALETTE[5], PALETTE[0], PALETTE[1], PALETTE[3]


def _positive(values: tuple[float, ...]) -> list[float | None]:
    """A log axis cannot draw 0 (a pruned channel): such a channel is left out, not drawn at the floor."""
    return [value if value > 0 else None for value in values]


def channel_ranges_figure(ranges: ChannelRanges, bits: int) -> go.Figure:
    """Max |weight| of every output channel of one layer on a log axis: before folding its batch
    norm (markers) and after (bars), with the per-tensor range after folding (the one scale must
    reach the widest channel) and half its step, below which a weight rounds to 0 with that scale."""
    channels = list(range(ranges.channels))
    after = ranges.abs_max_after
    step = ranges.per_tensor_step_after
    codes = [round(value / step) if step > 0 else 0 for value in after]  # the largest code each channel reaches per tensor
    traces = []
    folded = bool(ranges.batch_norm)
    if folded:
        traces.append(
            go.Scatter(
                x=channels,
                y=_positive(ranges.abs_max_before),
                mode="markers",
                name="before folding",
                marker={"color": BEFORE_COLOUR, "size": 9, "symbol": "circle-open", "line": {"width": 2}},
                hovertemplate="channel %{x}: max |w| %{y:.3g} before folding<extra></extra>",
            )
        )
    traces.append(
        go.Bar(
            x=channels,
            y=_positive(after),
            name=f"after folding {ranges.batch_norm}" if folded else "weights (no batch norm follows this layer)",
            marker={"color": AFTER_COLOUR},
            customdata=codes,
            hovertemplate=f"channel %{{x}}: max |w| %{{y:.3g}}<br>reaches code ±%{{customdata}} of ±{ranges.quant_max} per tensor<extra></extra>",
        )
    )
    lines = (
        (ranges.per_tensor_abs_max_after, f"per-tensor range ±{ranges.per_tensor_abs_max_after:.3g}: one scale for all channels", RANGE_COLOUR, "solid"),
        (step / 2, f"half a per-tensor step ({step / 2:.2g}): smaller weights round to 0", ZERO_COLOUR, "dash"),
    )
    for level, name, colour, dash in lines:
        # A line as a trace, not a shape: it gets a legend entry that names it.
        traces.append(go.Scatter(x=[-0.5, ranges.channels - 0.5], y=[level, level], mode="lines", name=name, line={"color": colour, "width": 3, "dash": dash}, hoverinfo="skip"))
    positive = [value for value in (*after, *ranges.abs_max_before, step / 2) if value > 0]
    low, high = (math.log10(min(positive)), math.log10(max(positive))) if positive else (-3.0, 0.0)
    title = f"{ranges.layer} ({ranges.kind}, {ranges.channels} output channels): weight range per channel at {bits} bits"
    return styled_figure(
        traces,
        title,
        x_title="output channel",
        y_title="max |weight| (log scale)",
        height=460,
        barmode="overlay",
        bargap=0.15,
        yaxis_type="log",
        yaxis_range=[low - 0.3, high + 0.3],
        xaxis_range=[-0.5, ranges.channels - 0.5],
    )


def zeroed_weights_figure(layers: tuple[LayerGranularity, ...] | list[LayerGranularity], bits: int, highlighted: str | None = None) -> go.Figure:
    """Each layer's share of nonzero weights that round to 0 at `bits`, with one scale per tensor
    and with one per output channel, in the model's order; depthwise layers drawn as diamonds."""
    names = [layer.layer for layer in layers]
    symbols = ["diamond" if layer.kind == "depthwise conv" else "circle" for layer in layers]
    sizes = [16 if layer.layer == highlighted else 10 for layer in layers]
    hover = [f"{layer.kind}, {layer.channels} channels<br>{layer.channels_zeroed_per_tensor} channels all zero per tensor" for layer in layers]
    traces = [
        go.Scatter(
            x=names,
            y=[100 * getattr(layer, field) for layer in layers],
            mode="lines+markers",
            name=name,
            line={"color": colour, "width": 2},
            marker={"color": colour, "symbol": symbols, "size": sizes},
            customdata=hover,
            hovertemplate="%{x}: %{y:.1f}% rounded to 0<br>%{customdata}<extra>" + name + "</extra>",
        )
        for field, name, colour in (
            ("weights_zeroed_per_tensor_fraction", "one scale per tensor", RANGE_COLOUR),
            ("weights_zeroed_per_channel_fraction", "one scale per output channel", AFTER_COLOUR),
        )
    ]
    return styled_figure(
        traces,
        f"Weights rounded to 0 at {bits} bits, per layer (diamonds: depthwise convs)",
        x_title="layer (folded), input to output",
        y_title="weights rounded to 0 (%)",
        height=440,
        yaxis_rangemode="tozero",
        xaxis_type="category",
    )
