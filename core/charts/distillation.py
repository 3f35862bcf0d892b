"""Charts of the distillation lab: what the teacher teaches, the race, and what it bought."""

from __future__ import annotations

import math
import statistics

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.style import PALETTE, styled
from core.distillation.report import DistillReport
from core.distillation.soft_labels import SoftLabelExamples
from core.foundation.training.loop import EpochRecord

HARD_COLOUR, DISTILLED_COLOUR, TEACHER_COLOUR = PALETTE[0], PALETTE[3], PALETTE[7]


def _rgb(image) -> list:
    """uint8 [C, H, W] -> nested [H][W][3] for go.Image (grey images repeated into three channels)."""
    pixels = image.permute(1, 2, 0)
    if pixels.shape[-1] == 1:
        pixels = pixels.expand(-1, -1, 3)
    return pixels.tolist()


def soft_labels_figure(examples: SoftLabelExamples) -> go.Figure:
    """Each test image beside the teacher's class probabilities at T = 1 and at the chosen T."""
    rows = len(examples.labels)
    titles = []
    for label in examples.labels:
        titles += [f"true: {examples.class_names[label]}", ""]
    figure = make_subplots(rows=max(1, rows), cols=2, column_widths=[0.18, 0.82], horizontal_spacing=0.04, vertical_spacing=0.08, subplot_titles=titles)
    for row, (image, hard, soft) in enumerate(zip(examples.images, examples.probabilities_t1, examples.probabilities_t), start=1):
        figure.add_trace(go.Image(z=_rgb(image), hoverinfo="skip"), row=row, col=1)
        figure.add_trace(
            go.Bar(x=examples.class_names, y=[100 * p for p in hard], name="T = 1 (the teacher's prediction)", marker_color=HARD_COLOUR, legendgroup="t1", showlegend=row == 1), row=row, col=2
        )
        figure.add_trace(
            go.Bar(
                x=examples.class_names, y=[100 * p for p in soft], name=f"T = {examples.temperature:g} (what the student learns)", marker_color=DISTILLED_COLOUR, legendgroup="t", showlegend=row == 1
            ),
            row=row,
            col=2,
        )
        figure.update_xaxes(showticklabels=False, showgrid=False, row=row, col=1)
        figure.update_yaxes(showticklabels=False, showgrid=False, row=row, col=1)
        figure.update_yaxes(range=[0, 100], ticksuffix="%", row=row, col=2)
    figure.update_layout(barmode="group")
    return styled(figure, "Soft labels: the teacher's probabilities, sharp (T = 1) and softened", height=max(320, 170 * rows + 90))


def race_curves_figure(hard: list[list[EpochRecord]], distilled: list[list[EpochRecord]], teacher_accuracy: float | None = None, epochs: int | None = None) -> go.Figure:
    """Training loss and test accuracy per epoch, one line per seed, hard-label versus distilled.
    The two losses are different objectives (cross-entropy vs the distillation mix), so compare their shapes, not their heights."""
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1)
    for runs, name, colour in ((hard, "hard labels", HARD_COLOUR), (distilled, "distilled", DISTILLED_COLOUR)):
        for index, history in enumerate(runs):
            x = [record.epoch for record in history]
            shared = {"mode": "lines+markers", "line": {"color": colour, "width": 3 if index == 0 else 1.5}, "legendgroup": name}
            figure.add_trace(go.Scatter(x=x, y=[r.train_loss for r in history], name=name, showlegend=index == 0, **shared), row=1, col=1)
            figure.add_trace(go.Scatter(x=x, y=[100 * r.test_accuracy for r in history], name=name, showlegend=False, **shared), row=1, col=2)
    if teacher_accuracy is not None:
        figure.add_hline(
            y=100 * teacher_accuracy, line={"color": TEACHER_COLOUR, "dash": "dash"}, annotation_text=f"teacher {100 * teacher_accuracy:.1f}%", annotation_position="bottom right", row=1, col=2
        )
    if epochs:
        figure.update_xaxes(range=[0.5, epochs + 0.5], dtick=max(1, epochs // 10))
    figure.update_xaxes(title_text="epoch")
    figure.update_yaxes(title_text="training loss", rangemode="tozero", row=1, col=1)
    figure.update_yaxes(title_text="test accuracy (%)", range=[0, 100], row=1, col=2)
    return styled(figure, "The race: same student, same data order, hard labels vs distillation")


def size_accuracy_figure(report: DistillReport) -> go.Figure:
    """Teacher, hard-label student and distilled student: size on disk against test accuracy (mean ± spread over seeds)."""
    hard = [run.accuracy for run in report.hard_runs]
    distilled = [run.accuracy for run in report.distilled_runs]
    points = [
        (f"teacher ({report.config.teacher})", report.teacher_metrics.size_bytes, [report.teacher_accuracy], TEACHER_COLOUR),
        (f"{report.config.student}, hard labels", report.student_metrics.size_bytes, hard, HARD_COLOUR),
        (f"{report.config.student}, distilled", report.student_metrics.size_bytes, distilled, DISTILLED_COLOUR),
    ]
    figure = go.Figure()
    for name, size_bytes, accuracies, colour in points:
        mean = statistics.fmean(accuracies)
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        figure.add_trace(
            go.Scatter(
                x=[size_bytes / 1e3],
                y=[100 * mean],
                name=name,
                mode="markers+text",
                text=[f"{100 * mean:.1f}%"],
                textposition="middle right",
                marker={"size": 18, "color": colour, "symbol": "diamond" if "distilled" in name else "circle"},
                error_y={"type": "data", "array": [100 * spread], "visible": len(accuracies) > 1},
                hovertemplate=f"{name}<br>%{{x:,.0f}} KB<br>%{{y:.2f}}% accuracy<extra></extra>",
            )
        )
    largest = max(size for _, size, _, _ in points) / 1e3
    figure.update_xaxes(range=[0, largest * 1.25])
    return styled(figure, "Size versus accuracy", x_title="size on disk, fp32 (KB)", y_title="test accuracy (%)")


def agreement_figure(class_names: list[str], hard_per_class: list[float], distilled_per_class: list[float]) -> go.Figure:
    """Per true class: the fraction of test images where the student's top class is the teacher's."""
    figure = go.Figure()
    figure.add_trace(go.Bar(x=class_names, y=[100 * v for v in hard_per_class], name="hard-label student", marker_color=HARD_COLOUR))
    figure.add_trace(go.Bar(x=class_names, y=[100 * v for v in distilled_per_class], name="distilled student", marker_color=DISTILLED_COLOUR))
    lowest = min([*hard_per_class, *distilled_per_class], default=0.0)
    figure.update_layout(barmode="group")
    figure.update_yaxes(range=[max(0.0, math.floor(100 * lowest / 10) * 10 - 10), 100])
    figure.update_xaxes(type="category")
    return styled(figure, "Agreement with the teacher, per class", x_title="true class", y_title="same top class as the teacher (%)")


def gain_per_seed_figure(seeds: list[int], gains: list[float]) -> go.Figure:
    """Distilled minus hard-label accuracy for each seed, with the mean: is the gain bigger than the seed-to-seed noise?"""
    figure = go.Figure(
        go.Bar(
            x=[str(seed) for seed in seeds],
            y=[100 * g for g in gains],
            marker_color=[DISTILLED_COLOUR if g >= 0 else HARD_COLOUR for g in gains],
            name="gain",
            text=[f"{100 * g:+.2f}" for g in gains],
            textposition="outside",
        )
    )
    if gains:
        figure.add_hline(y=100 * statistics.fmean(gains), line={"color": TEACHER_COLOUR, "dash": "dash"}, annotation_text=f"mean {100 * statistics.fmean(gains):+.2f} points")
    figure.add_hline(y=0, line={"color": "#888888", "width": 1})
    figure.update_xaxes(type="category")
    return styled(figure, "Gain of distillation, seed by seed", x_title="seed", y_title="accuracy points (distilled − hard)", height=360)
