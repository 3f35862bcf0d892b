"""Charts of pruning: where the zeros are, what they cost, what they buy."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.style import PALETTE, grid_axes, style_layout, styled, styled_figure
from core.pruning.explore import SensitivityScan
from core.pruning.groups import ATTENTION_HEADS, DEPTHWISE, GROUPED, IN, LEFT_WHOLE, MULTIPLY, OUT, RESIDUAL, TIED, ChannelGroups, CoupledGroup, GroupMember
from core.pruning.stats import WeightView

EMPTY_COLOUR = "#ffffff"  # pruned weights are not drawn: the background shows through
# The coupled-groups matrix: what a layer loses in a group, one colour each (Okabe-Ito, plus grey).
GROUP_ROLES = (
    (OUT, "loses output channels", PALETTE[0]),
    (IN, "loses input channels", PALETTE[1]),
    ("whole", "left whole (cannot lose channels exactly)", "#999999"),
)
GROUP_ROW_PX = 26  # one layer's row: a 16-px label with room to read it on a projector
HOVER_LINE_CHARACTERS = 70


def weight_heatmaps_figure(views: list[WeightView], max_rows: int = 128, max_columns: int = 512, columns: int = 2) -> go.Figure:
    """One heatmap per layer of |weight| / the layer's largest |weight|, as (output channel) x
    (input channel x kernel position). Pruned entries are empty cells, so a removed filter is an
    empty row and the next layer's matching input columns are empty too. Wide layers show 1 in k
    columns (said in their titles).

    The figure is made in one step from a layout dict (no make_subplots, no update calls): the
    Pruning page redraws it on every slider move."""
    columns = max(1, min(columns, len(views)))
    rows = max(1, math.ceil(len(views) / columns))
    layout = style_layout("Weights: empty cells are pruned", height=max(380, 300 * rows))
    layout.update(grid_axes(rows, columns, [_heatmap_title(view, max_rows, max_columns) for view in views], horizontal_spacing=0.08, vertical_spacing=0.22 / rows))
    for name, axis in list(layout.items()):
        if name.startswith(("xaxis", "yaxis")):
            axis.update(showgrid=False, zeroline=False)
            if name.startswith("yaxis"):
                axis["autorange"] = "reversed"  # output channel 0 at the top, as a matrix is read
    layout.update(plot_bgcolor=EMPTY_COLOUR, coloraxis={"colorscale": "Viridis", "cmin": 0.0, "cmax": 1.0, "colorbar": {"title": {"text": "|w| / max"}}})
    traces = []
    for index, view in enumerate(views):
        row_step, column_step = _steps(view, max_rows, max_columns)
        # float32 halves what the page sends (Plotly ships numpy arrays as typed binary).
        magnitude = np.abs(view.values[::row_step, ::column_step]).astype(np.float32)
        largest = float(np.abs(view.values).max()) or 1.0
        magnitude /= largest
        magnitude[view.pruned[::row_step, ::column_step]] = np.nan
        suffix = "" if index == 0 else str(index + 1)
        traces.append(
            go.Heatmap(
                z=magnitude,
                x=np.arange(0, view.values.shape[1], column_step),
                y=np.arange(0, view.values.shape[0], row_step),
                coloraxis="coloraxis",
                hoverongaps=False,
                name=view.layer,
                xaxis=f"x{suffix}",
                yaxis=f"y{suffix}",
                hovertemplate=f"{view.layer}<br>out %{{y}}, column %{{x}}<br>|w| = %{{z:.3f}} of the layer's largest<extra></extra>",
            )
        )
    return go.Figure(data=traces, layout=layout)


def _steps(view: WeightView, max_rows: int, max_columns: int) -> tuple[int, int]:
    rows, columns = view.values.shape
    return math.ceil(rows / max_rows), math.ceil(columns / max_columns)


def _heatmap_title(view: WeightView, max_rows: int, max_columns: int) -> str:
    rows, columns = view.values.shape
    row_step, column_step = _steps(view, max_rows, max_columns)
    notes = [f"1 in {step} {what}" for step, what in ((row_step, "rows"), (column_step, "columns")) if step > 1]
    shown = f", showing {' and '.join(notes)}" if notes else ""
    layout = f"{rows} out × {columns // view.kernel_positions} in × {view.kernel_positions} kernel" if view.kernel_positions > 1 else f"{rows} out × {columns} in"
    pruned_share = float(view.pruned.mean()) if view.pruned.size else 0.0
    empty_rows = int(view.pruned.all(axis=1).sum())
    return f"{view.layer} ({layout}): {pruned_share:.0%} pruned, {empty_rows} empty rows{shown}"


def sparsity_bars_figure(sparsity_per_layer: dict[str, float], global_sparsity: float) -> go.Figure:
    """Share of zero weights per layer, with the global figure as a line."""
    layers = list(sparsity_per_layer)
    values = [100 * sparsity_per_layer[layer] for layer in layers]
    figure = go.Figure(go.Bar(x=layers, y=values, marker_color=PALETTE[0], text=[f"{v:.0f}%" for v in values], textposition="outside", name="per layer"))
    figure.add_hline(y=100 * global_sparsity, line_dash="dash", line_color=PALETTE[3], annotation_text=f"global {100 * global_sparsity:.1f}%", annotation_position="top left")
    figure.update_yaxes(range=[0, 110])
    return styled(figure, "Zero weights per layer", x_title="layer", y_title="zero weights (%)", height=360)


def weight_histogram_figure(before: np.ndarray, after: np.ndarray, bins: int = 80) -> go.Figure:
    """All weights before pruning versus the nonzero weights after: the gap around zero is what was pruned."""
    low, high = float(np.min(before)), float(np.max(before))
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    kept = after[after != 0]
    before_counts, _ = np.histogram(before, edges)
    after_counts, _ = np.histogram(np.clip(kept, low, high), edges)
    traces = [
        go.Bar(x=centres, y=before_counts, width=width, name=f"before ({before.size:,} weights)", marker_color=PALETTE[5], opacity=0.55),
        go.Bar(x=centres, y=after_counts, width=width, name=f"after: {kept.size:,} nonzero ({after.size - kept.size:,} zeros not drawn)", marker_color=PALETTE[0], opacity=0.8),
    ]
    return styled_figure(traces, "Weight values before and after", x_title="weight value", y_title="weights", height=360, barmode="overlay", bargap=0)


def accuracy_vs_sparsity_figure(oneshot: list[tuple[float, float]], finetuned: list[tuple[float, float]], baseline_accuracy: float, current: tuple[float, float] | None = None) -> go.Figure:
    """Accuracy (%) against global sparsity (%): one-shot pruning, and after fine-tuning."""
    figure = go.Figure()
    figure.add_hline(y=100 * baseline_accuracy, line_dash="dot", line_color=PALETTE[7], annotation_text="baseline", annotation_position="bottom left")
    if oneshot:
        ordered = sorted(oneshot)
        figure.add_trace(go.Scatter(x=[100 * s for s, _ in ordered], y=[100 * a for _, a in ordered], mode="lines+markers", name="one-shot", line={"color": PALETTE[1]}))
    if finetuned:
        ordered = sorted(finetuned)
        figure.add_trace(
            go.Scatter(
                x=[100 * s for s, _ in ordered], y=[100 * a for _, a in ordered], mode="lines+markers", name="after fine-tuning", line={"color": PALETTE[2]}, marker={"size": 11, "symbol": "diamond"}
            )
        )
    if current is not None:
        figure.add_trace(go.Scatter(x=[100 * current[0]], y=[100 * current[1]], mode="markers", name="current setting", marker={"size": 15, "color": PALETTE[3], "symbol": "x"}))
    figure.update_xaxes(range=[0, 100])
    figure.update_yaxes(range=[0, 100])
    return styled(figure, "Accuracy versus sparsity", x_title="zero weights (%)", y_title="accuracy (%)", height=380)


def size_speed_figure(sizes_bytes: dict[str, int], latencies_ms: dict[str, float] | None, batch_size: int | None = None) -> go.Figure:
    """Left: bytes of each storage form. Right: measured latency of each model (or a hint when not measured yet)."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Storage (KB)", f"Latency, batch {batch_size} (ms)" if batch_size else "Latency (ms)"))
    names = list(sizes_bytes)
    figure.add_trace(
        go.Bar(
            x=names,
            y=[sizes_bytes[n] / 1000 for n in names],
            marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(names))],
            text=[f"{sizes_bytes[n] / 1000:,.1f}" for n in names],
            textposition="outside",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    if latencies_ms:
        models = list(latencies_ms)
        figure.add_trace(
            go.Bar(x=models, y=[latencies_ms[m] for m in models], marker_color=PALETTE[3], text=[f"{latencies_ms[m]:.2f}" for m in models], textposition="outside", showlegend=False), row=1, col=2
        )
    else:
        figure.add_annotation(text="not measured yet", xref="x2 domain", yref="y2 domain", x=0.5, y=0.5, showarrow=False, font={"size": 18})
    figure.update_yaxes(rangemode="tozero")
    return styled(figure, "Size and speed", height=400)


def sensitivity_figure(scan: SensitivityScan) -> go.Figure:
    """Accuracy when only one layer is pruned, one line per layer: flat lines tolerate pruning."""
    figure = go.Figure()
    figure.add_hline(y=100 * scan.baseline_accuracy, line_dash="dot", line_color=PALETTE[7], annotation_text="baseline", annotation_position="bottom left")
    for index, (layer, accuracies) in enumerate(scan.accuracy_by_layer.items()):
        points = [(100 * amount, 100 * accuracy) for amount, accuracy in zip(scan.amounts, accuracies) if accuracy is not None]
        figure.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=layer, line={"color": PALETTE[index % len(PALETTE)]}))
    figure.update_yaxes(range=[0, 100])
    unit = "weights" if scan.granularity == "unstructured" else "channels"
    return styled(figure, f"Sensitivity: one layer pruned at a time ({scan.method}, {scan.granularity})", x_title=f"{unit} pruned in that layer (%)", y_title="accuracy (%)", height=400)


def coupled_groups_figure(groups: ChannelGroups, coupled_only: bool = False) -> go.Figure:
    """Which layers lose the same channels: a layer x group matrix. Rows are the layers (convs,
    linears, attentions; batch norms go with their conv) in network order, columns the channel
    groups in network order, named by their root layer (the page's "Layers"). A cell is coloured
    when the layer loses that group's channels: blue its outputs, orange the inputs it reads,
    grey when the group is left whole. A column with several blue cells is a coupling (an add
    ties those outputs); the hover says why. After a prune each column's label says how many
    channels the group lost, the same for every layer in it. `coupled_only`: only the groups
    that tie more than one layer."""
    shown = [group for group in groups.groups if group.is_coupled or not coupled_only]
    columns = [_group_label(group) for group in shown]
    layer_members = {group.root: [member for member in group.members if not member.is_norm] for group in shown}
    rows = [layer for layer in groups.layers if any(member.layer == layer for members in layer_members.values() for member in members)]
    row_index = {layer: index for index, layer in enumerate(rows)}
    cells = {role: np.full((len(rows), len(shown)), np.nan, dtype=np.float32) for role, _, _ in GROUP_ROLES}
    hover = np.full((len(rows), len(shown)), "", dtype=object)
    for column, group in enumerate(shown):
        for member in layer_members[group.root]:
            row = row_index[member.layer]
            role = "whole" if group.blocked_by is not None else member.side
            if not np.isnan(cells[role][row, column]):
                continue  # a layer listed with both sides (a depthwise conv): the first, its outputs, is drawn
            cells[role][row, column] = 1.0
            hover[row, column] = _group_hover(member, group)
    traces = [
        go.Heatmap(
            z=cells[role],
            x=columns,
            y=rows,
            text=hover,
            hovertemplate="%{text}<extra></extra>",
            hoverongaps=False,
            colorscale=[[0.0, colour], [1.0, colour]],
            zmin=0.0,
            zmax=1.0,
            showscale=False,
            showlegend=True,
            name=label,
            xgap=2,
            ygap=2,
        )
        for role, label, colour in GROUP_ROLES
        if not np.isnan(cells[role]).all()
    ]
    layout = style_layout(_groups_title(groups, coupled_only), height=max(380, GROUP_ROW_PX * len(rows) + 260))
    layout.update(
        xaxis={"title": {"text": "channel group (its root layer)" + (": channels lost" if groups.pruned else "")}, "type": "category", "tickangle": -45, "showgrid": False, "automargin": True},
        yaxis={"title": {"text": "layer, in network order"}, "type": "category", "autorange": "reversed", "showgrid": True, "automargin": True},
        plot_bgcolor=EMPTY_COLOUR,
    )
    return go.Figure(data=traces, layout=layout)


def _groups_title(groups: ChannelGroups, coupled_only: bool) -> str:
    coupled = len(groups.coupled)
    if not coupled:
        return f"Channel groups of {groups.model}: none coupled, every group is one layer"
    if coupled_only:
        return f"Coupled channel groups of {groups.model}: {coupled} (of {len(groups.groups)} groups)"
    return f"Channel groups of {groups.model}: {coupled} of {len(groups.groups)} tie layers together"


# What ties a coupled group, in a word for its column's label.
COUPLING_WORDS = {LEFT_WHOLE: "whole", ATTENTION_HEADS: "heads", RESIDUAL: "add", MULTIPLY: "multiply", GROUPED: "grouped", DEPTHWISE: "depthwise", TIED: "tied"}


def _group_label(group: CoupledGroup) -> str:
    notes = [COUPLING_WORDS[group.coupling]] if group.is_coupled else []
    if group.lost is not None:
        notes.append(f"−{group.lost}")
    return f"{group.root} ({', '.join(notes)})" if notes else group.root


def _group_hover(member: GroupMember, group: CoupledGroup) -> str:
    side = "output channels" if member.side == OUT else "input channels (reads the group's outputs)"
    if group.blocked_by is not None:
        action = f"keeps all its {side}"
    elif group.lost is None:
        action = f"loses {side}"
    else:
        action = f"loses {group.lost} of {group.channels} {side}"
    size = f"{group.channels} channels" if group.units == group.channels else f"{group.channels} channels in {group.units} {group.unit}"
    lines = [f"<b>{member.layer}</b> ({member.kind}) {action}", f"group {group.root}: {size}, {group.coupling}", *_wrapped(group.why)]
    return "<br>".join(lines)


def _wrapped(text: str, width: int = HOVER_LINE_CHARACTERS) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines
