"""Charts of a training run: learning curves and the confusion matrix."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.style import PALETTE, styled
from core.foundation.training.records import EpochRecord


def learning_curve_figure(history: list[EpochRecord], title: str = "Learning curve") -> go.Figure:
    """Training loss (left axis) and train/test accuracy in % (right axis) per epoch."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    epochs = [record.epoch for record in history]
    figure.add_trace(go.Scatter(x=epochs, y=[r.train_loss for r in history], name="train loss", mode="lines+markers", line={"color": PALETTE[3]}), secondary_y=False)
    figure.add_trace(go.Scatter(x=epochs, y=[100 * r.train_accuracy for r in history], name="train accuracy", mode="lines+markers", line={"color": PALETTE[0], "dash": "dot"}), secondary_y=True)
    test_points = [(r.epoch, 100 * r.test_accuracy) for r in history if not math.isnan(r.test_accuracy)]
    if test_points:
        figure.add_trace(go.Scatter(x=[p[0] for p in test_points], y=[p[1] for p in test_points], name="test accuracy", mode="lines+markers", line={"color": PALETTE[0]}), secondary_y=True)
    figure.update_yaxes(title_text="loss", secondary_y=False, rangemode="tozero")
    figure.update_yaxes(title_text="accuracy (%)", secondary_y=True, range=[0, 100], dtick=20, showgrid=False)
    figure.update_xaxes(dtick=max(1, len(epochs) // 10) if epochs else 1)
    return styled(figure, title, x_title="epoch")


def live_training_figure(steps: list[int], losses: list[float], accuracies: list[float], total_steps: int) -> go.Figure:
    """The chart drawn while training runs: running loss and running accuracy per step."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(go.Scatter(x=steps, y=losses, name="running loss", mode="lines", line={"color": PALETTE[3]}), secondary_y=False)
    figure.add_trace(go.Scatter(x=steps, y=[100 * a for a in accuracies], name="running accuracy", mode="lines", line={"color": PALETTE[0]}), secondary_y=True)
    figure.update_xaxes(range=[0, max(1, total_steps)])
    figure.update_yaxes(title_text="loss", secondary_y=False, rangemode="tozero")
    figure.update_yaxes(title_text="accuracy (%)", secondary_y=True, range=[0, 100], dtick=20, showgrid=False)
    return styled(figure, "Training live", x_title="step", height=340)


def confusion_matrix_figure(confusion: list[list[int]], class_names: list[str], title: str = "Confusion matrix (test set)") -> go.Figure:
    """Counts per (true, predicted) class; the diagonal is what the model got right."""
    figure = go.Figure(
        go.Heatmap(
            z=confusion,
            x=class_names,
            y=class_names,
            colorscale="Blues",
            text=confusion,
            texttemplate="%{text}",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>",
            colorbar={"title": "images"},
        )
    )
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(type="category")
    return styled(figure, title, x_title="predicted class", y_title="true class", height=480)
