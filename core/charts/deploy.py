"""The runtimes side by side: latency per image by runtime and precision, one group of bars per
runtime, the fp32 torch-eager baseline marked. A pure builder: a RuntimeReport in, a figure out."""

from __future__ import annotations

import plotly.graph_objects as go

from core.charts.style import PALETTE, styled
from core.deploy.runtimes import RUNTIMES, RuntimeReport, baseline_figure


def runtime_latency_figure(report: RuntimeReport, batch_size: int) -> go.Figure:
    """Bars of per-image latency (ms) for each model and precision, grouped by runtime; a runtime
    that cannot run a model gets no bar and its reason in the hover of an empty slot."""
    figure = go.Figure()
    series = [(model, precision) for model in report.models for precision in ("fp32", "int8")]
    for index, (model, precision) in enumerate(series):
        values, hovers = [], []
        for runtime in RUNTIMES:
            found = report.figure(model, runtime, precision, batch_size)
            if found is None:
                values.append(None)
                hovers.append("not measured")
            elif not found.available:
                values.append(None)
                hovers.append(f"unavailable: {found.reason}")
            else:
                values.append(found.per_image_ms)
                accuracy = f"{found.accuracy:.1%}" if found.accuracy is not None else "n/a"
                hovers.append(f"{found.latency_ms:.3g} ms per call of {batch_size}; {found.per_image_ms:.3g} ms per image; accuracy {accuracy}")
        colour = PALETTE[(index // 2) % len(PALETTE)]
        figure.add_trace(
            go.Bar(
                x=list(RUNTIMES),
                y=values,
                name=f"{model} · {precision}",
                customdata=hovers,
                marker={"color": colour, "pattern": {"shape": "/" if precision == "int8" else ""}},
                hovertemplate="%{x}<br>%{fullData.name}: %{customdata}<extra></extra>",
            )
        )
    reference = baseline_figure(report, batch_size)
    if reference is not None and reference.per_image_ms is not None:
        figure.add_hline(
            y=reference.per_image_ms,
            line={"color": "#444", "dash": "dash", "width": 2},
            annotation_text=f"fp32 torch eager, {reference.model}: {reference.per_image_ms:.3g} ms",
            annotation_position="top right",
        )
    figure.update_layout(barmode="group")
    return styled(
        figure, f"Latency per image by runtime, batch {batch_size} ({report.threads} thread{'s' if report.threads != 1 else ''} each)", x_title="runtime", y_title="ms per image (lower is faster)"
    )
