"""The sweep's Pareto frontier: accuracy (%) against size (bytes, log axis), latency (ms at the
batch) or MACs. Dominated trials greyed, frontier trials joined cheapest first, the recommended
trial and the source marked; failed trials (no model) and trials without the figure are not drawn.
A pure builder: outcomes in, figure out. Each trace's `meta` names its role (frontier, dominated,
recommended, source) and `customdata` holds run ids, so tests and clicks can read them."""

from __future__ import annotations

import plotly.graph_objects as go

from core.charts.compare import format_bytes
from core.charts.style import PALETTE, styled
from core.sweep.frontier import OBJECTIVES, TrialOutcome, frontier

DOMINATED_COLOR = "#B0B0B0"
FRONTIER_COLOR = PALETTE[0]
RECOMMENDED_COLOR = PALETTE[3]
SOURCE_COLOR = "#000000"
TITLES = {"size": "Accuracy vs size", "latency": "Accuracy vs latency", "macs": "Accuracy vs MACs"}


def cost_title(objective: str, batch_size: int | None = None) -> str:
    if objective == "size":
        return "size of the artifact (bytes, log scale)"
    if objective == "latency":
        batch = f" at batch {batch_size}" if batch_size else ""
        return f"latency{batch}, relative to the source (1 = the source; each trial timed together with it)"
    return "MACs per image"


def format_cost(objective: str, value: float | None) -> str:
    if value is None:
        return "—"
    if objective == "size":
        return format_bytes(value)
    if objective == "latency":
        return f"{value:.2f}x the source's time"
    return f"{value:,.0f} MACs"


def trial_hover(outcome: TrialOutcome, objective: str) -> str:
    lines = [f"<b>run #{outcome.run_id}</b> ({outcome.technique})"]
    if outcome.accuracy is not None:
        change = "" if outcome.accuracy_change_points is None else f" ({outcome.accuracy_change_points:+.2f} points)"
        lines.append(f"accuracy {100 * outcome.accuracy:.2f}%{change}")
    lines.append(f"{OBJECTIVES[objective][0].replace('_', ' ')}: {format_cost(objective, outcome.objective_value(objective))}")
    if objective == "latency" and outcome.latency_ms is not None:
        lines.append(f"{outcome.latency_ms:.3g} ms per batch of {outcome.latency_batch_size}")
    lines += [f"{name} = {value}" for name, value in outcome.point.items()]
    return "<br>".join(lines)


def sweep_frontier_figure(
    outcomes: list[TrialOutcome], objective: str, source: tuple[float | None, float | None] = (None, None), recommended_run_id: int | None = None, title: str | None = None
) -> go.Figure:
    """`source` is the source model's (cost on this objective, accuracy as a fraction)."""
    drawn = [outcome for outcome in outcomes if outcome.status == "ok" and outcome.run_id is not None and outcome.accuracy is not None and outcome.objective_value(objective) is not None]
    by_run = {outcome.run_id: outcome for outcome in drawn}
    front_ids = [run_id for run_id in frontier(drawn, objective) if run_id in by_run]
    front = [by_run[run_id] for run_id in front_ids]
    dominated = [outcome for outcome in drawn if outcome.run_id not in set(front_ids)]
    figure = go.Figure()

    def cost(outcome: TrialOutcome) -> float:
        return outcome.objective_value(objective)

    figure.add_trace(
        go.Scatter(
            x=[cost(o) for o in dominated],
            y=[100 * o.accuracy for o in dominated],
            mode="markers",
            name="dominated",
            meta="dominated",
            marker={"size": 11, "color": DOMINATED_COLOR, "line": {"width": 1, "color": "white"}},
            customdata=[o.run_id for o in dominated],
            hovertext=[trial_hover(o, objective) for o in dominated],
            hoverinfo="text",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[cost(o) for o in front],
            y=[100 * o.accuracy for o in front],
            mode="lines+markers",
            name="Pareto frontier",
            meta="frontier",
            marker={"size": 13, "color": FRONTIER_COLOR, "line": {"width": 1, "color": "white"}},
            line={"color": FRONTIER_COLOR, "width": 2, "shape": "hv"},
            customdata=[o.run_id for o in front],
            hovertext=[trial_hover(o, objective) for o in front],
            hoverinfo="text",
        )
    )
    recommended = by_run.get(recommended_run_id)
    if recommended is not None:
        figure.add_trace(
            go.Scatter(
                x=[cost(recommended)],
                y=[100 * recommended.accuracy],
                mode="markers+text",
                name=f"recommended (run #{recommended.run_id})",
                meta="recommended",
                marker={"size": 24, "symbol": "star", "color": RECOMMENDED_COLOR, "line": {"width": 2, "color": "black"}},
                text=[f"#{recommended.run_id}"],
                textposition="top center",
                customdata=[recommended.run_id],
                hovertext=[trial_hover(recommended, objective)],
                hoverinfo="text",
            )
        )
    source_cost, source_accuracy = source
    if source_cost is not None and source_accuracy is not None:
        figure.add_trace(
            go.Scatter(
                x=[source_cost],
                y=[100 * source_accuracy],
                mode="markers+text",
                name="source",
                meta="source",
                marker={"size": 18, "symbol": "diamond", "color": SOURCE_COLOR},
                text=["source"],
                textposition="bottom center",
                hovertext=[f"<b>the source</b><br>accuracy {100 * source_accuracy:.2f}%<br>{format_cost(objective, source_cost)}"],
                hoverinfo="text",
            )
        )
    if objective == "size":
        figure.update_xaxes(type="log")
    missing = sum(1 for outcome in outcomes if outcome.status == "ok" and outcome.objective_value(objective) is None)
    if not drawn:
        figure.add_annotation(text="no finished trial with this measurement yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    elif missing:
        figure.add_annotation(
            text=f"{missing} finished trial(s) have no {OBJECTIVES[objective][0].replace('_', ' ')} figure and are not drawn",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=1.0,
            y=1.0,
            xanchor="right",
            yanchor="bottom",
            font={"size": 13},
        )
    batch = next((o.latency_batch_size for o in drawn if o.latency_batch_size), None)
    return styled(figure, title or TITLES[objective], x_title=cost_title(objective, batch), y_title="accuracy (%)", height=480)
