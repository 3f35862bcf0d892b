"""Charts of what changed between two models: the 2x2 table, per-class accuracy change, the shift of
the true class's probability, and the layer-by-layer error. Pure builders: results in, figure out."""

from __future__ import annotations

import plotly.graph_objects as go

from core.charts.style import PALETTE, styled
from core.diff.layers import LayerErrorReport
from core.diff.pairs import PredictionDiff


def agreement_table_figure(diff: PredictionDiff) -> go.Figure:
    """The 2x2 table: rows A right / A wrong, columns B right / B wrong, counts and shares."""
    counts = [[diff.both_right, diff.only_a_right], [diff.only_b_right, diff.both_wrong]]
    total = max(1, diff.test_images)
    text = [[f"{count:,}<br>{count / total:.1%}" for count in row] for row in counts]
    shades = [[0.2, 1.0], [1.0, 0.6]]  # the two off-diagonal cells, where the models disagree on correctness, stand out
    figure = go.Figure(
        go.Heatmap(
            z=shades,
            x=[f"{diff.label_b} right", f"{diff.label_b} wrong"],
            y=[f"{diff.label_a} right", f"{diff.label_a} wrong"],
            text=text,
            texttemplate="%{text}",
            textfont={"size": 22},
            colorscale=[[0, "#EAF2F8"], [1, "#F6C89F"]],
            showscale=False,
            zmin=0,
            zmax=1,
            hovertemplate="%{y}, %{x}: %{text}<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    return styled(figure, f"Who gets which test image right ({diff.test_images:,} images)", height=340)


def class_change_figure(diff: PredictionDiff) -> go.Figure:
    """Per-class accuracy change, A minus B, in points; falls in vermilion, gains in green."""
    changes = [change.change_points for change in diff.per_class]
    figure = go.Figure(
        go.Bar(
            x=[change.class_name for change in diff.per_class],
            y=changes,
            marker={"color": [PALETTE[3] if value < 0 else PALETTE[2] for value in changes]},
            customdata=[[change.accuracy_b, change.accuracy_a] for change in diff.per_class],
            hovertemplate="%{x}: %{y:+.1f} points (%{customdata[0]:.1%} → %{customdata[1]:.1%})<extra></extra>",
        )
    )
    figure.add_hline(y=0, line={"color": "#444", "width": 1})
    return styled(figure, f"Accuracy change per class: {diff.label_a} minus {diff.label_b}", x_title="class", y_title="points")


def confidence_shift_figure(diff: PredictionDiff) -> go.Figure:
    """Histogram of how the probability of the true class moved per image (A minus B)."""
    edges, counts = diff.confidence_histogram()
    centres = [(low + high) / 2 for low, high in zip(edges[:-1], edges[1:])]
    width = edges[1] - edges[0] if len(edges) > 1 else 0.05
    figure = go.Figure(
        go.Bar(x=centres, y=counts, width=width, marker={"color": [PALETTE[3] if centre < 0 else PALETTE[0] for centre in centres]}, hovertemplate="%{x:+.2f}: %{y:,} images<extra></extra>")
    )
    figure.update_layout(bargap=0)
    figure.update_yaxes(type="log")
    return styled(figure, f"Probability of the true class: {diff.label_a} minus {diff.label_b}", x_title="change in probability (negative: less sure of the truth)", y_title="images (log)")


def layer_error_figure(report: LayerErrorReport, metric: str = "sqnr_db") -> go.Figure:
    """Each layer's output error in network order; a quantized model also shows weights only.

    `metric` is "sqnr_db" (higher is better) or "relative_error" (lower is better)."""
    if metric not in ("sqnr_db", "relative_error"):
        raise ValueError(f"metric must be 'sqnr_db' or 'relative_error', got {metric!r}")
    layers = [layer.layer for layer in report.layers]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=layers,
            y=[getattr(layer, metric) for layer in report.layers],
            mode="lines+markers",
            name="weights and activations" if report.has_weights_only else report.model_label,
            line={"color": PALETTE[3], "width": 3},
            marker={"size": 10},
        )
    )
    if report.has_weights_only:
        figure.add_trace(
            go.Scatter(
                x=layers,
                y=[getattr(layer, f"weights_only_{metric}") for layer in report.layers],
                mode="lines+markers",
                name="weights only",
                line={"color": PALETTE[0], "width": 3, "dash": "dash"},
                marker={"size": 10},
            )
        )
    y_title = "SQNR (dB, higher is better)" if metric == "sqnr_db" else "relative error (lower is better)"
    figure.update_xaxes(type="category")
    if metric == "relative_error":
        figure.update_yaxes(tickformat=".1%", rangemode="tozero")
    return styled(figure, f"Where the error enters: {report.model_label} against {report.reference_label}", x_title="layer (network order)", y_title=y_title)
