"""Compare charts: size and latency against accuracy with the Pareto front, the pipeline's size
waterfall, and the lineage of runs as a tree or a sunburst. Pure builders: data in, figure out."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.style import PALETTE, styled
from core.compare.lineage import LineageNode
from core.compare.runs import WaterfallStep
from core.contract.run_summary import RunSummary
from core.foundation.measures.pareto import pareto_front

# A technique keeps its colour on every chart.
TECHNIQUE_COLORS = {"train": PALETTE[0], "distill": PALETTE[2], "prune": PALETTE[3], "quantize": PALETTE[1], "pipeline": PALETTE[4]}
OTHER_COLOR = PALETTE[5]
WIDE_RANGE_RATIO = 20.0  # a log axis once the largest value is this many times the smallest
HOVER_PARAMS = 12  # parameters listed in a hover box; the rest are counted


def technique_color(technique: str) -> str:
    return TECHNIQUE_COLORS.get(technique, OTHER_COLOR)


def format_bytes(size_bytes: float | None) -> str:
    if size_bytes is None:
        return "—"
    for unit in ("B", "KB", "MB"):
        if abs(size_bytes) < 1000:
            return f"{size_bytes:,.0f} {unit}" if unit == "B" else f"{size_bytes:,.1f} {unit}"
        size_bytes /= 1000
    return f"{size_bytes:,.1f} GB"


def hover_text(run: RunSummary) -> str:
    """The run's headline figures and its parameters, for a hover box."""
    lines = [f"<b>{run.label}</b> · {run.architecture_label} on {run.dataset}"]
    if run.accuracy is not None:
        lines.append(f"accuracy {100 * run.accuracy:.2f}%")
    if run.size_bytes is not None:
        lines.append(f"size {format_bytes(run.size_bytes)} ({run.size_measure})")
    if run.latency_ms is not None:
        lines.append(f"latency {run.latency_ms:.3g} ms (batch {run.latency_batch_size}, {run.latency_device}, {run.latency_threads} threads)")
    if run.params is not None:
        lines.append(f"params {run.params:,}" + (f" ({run.nonzero_params:,} nonzero)" if run.nonzero_params is not None else ""))
    flat = _flatten(run.run_params)
    for key, value in list(flat.items())[:HOVER_PARAMS]:
        lines.append(f"{key} = {value}")
    if len(flat) > HOVER_PARAMS:
        lines.append(f"… {len(flat) - HOVER_PARAMS} more parameters")
    return "<br>".join(lines)


def size_accuracy_figure(runs: list[RunSummary], reference_id: int | None = None, title: str = "Size vs accuracy") -> go.Figure:
    """Honest artifact bytes against accuracy; the Pareto front (smaller and more accurate) drawn."""
    return _tradeoff_figure(runs, lambda run: run.size_bytes, "size of the honest artifact (bytes)", reference_id, title)


def latency_accuracy_figure(runs: list[RunSummary], reference_id: int | None = None, title: str = "Latency vs accuracy") -> go.Figure:
    """Latency per image (batch latency / batch size, as recorded) against accuracy, with the front."""
    return _tradeoff_figure(runs, lambda run: run.latency_ms_per_image, "latency per image (ms, batch latency / batch size)", reference_id, title)


def _tradeoff_figure(runs: list[RunSummary], cost_of, cost_title: str, reference_id: int | None, title: str) -> go.Figure:
    plotted = [run for run in runs if cost_of(run) is not None and run.accuracy is not None]
    figure = go.Figure()
    by_technique: dict[str, list[RunSummary]] = {}
    for run in plotted:
        by_technique.setdefault(run.technique, []).append(run)
    for technique, group in by_technique.items():
        figure.add_trace(
            go.Scatter(
                x=[cost_of(run) for run in group],
                y=[100 * run.accuracy for run in group],
                mode="markers",
                name=technique,
                marker={"size": 11, "color": technique_color(technique), "line": {"width": 1, "color": "white"}},
                hovertext=[hover_text(run) for run in group],
                hoverinfo="text",
                customdata=[run.run_id for run in group],
            )
        )
    front = [plotted[i] for i in pareto_front([cost_of(run) for run in plotted], [run.accuracy for run in plotted])]
    if front:
        figure.add_trace(
            go.Scatter(
                x=[cost_of(run) for run in front],
                y=[100 * run.accuracy for run in front],
                mode="lines",
                name="Pareto front",
                line={"color": "black", "dash": "dash", "width": 2, "shape": "hv"},
                hoverinfo="skip",
            )
        )
    pinned = [run for run in plotted if run.pinned and run.run_id != reference_id]
    if pinned:
        figure.add_trace(
            go.Scatter(
                x=[cost_of(run) for run in pinned],
                y=[100 * run.accuracy for run in pinned],
                mode="markers+text",
                name="pinned",
                marker={"size": 20, "symbol": "diamond-open", "color": "black", "line": {"width": 2}},
                text=[f"📌 #{run.run_id}" for run in pinned],
                textposition="top center",
                hovertext=[hover_text(run) for run in pinned],
                hoverinfo="text",
            )
        )
    reference = next((run for run in plotted if run.run_id == reference_id), None)
    if reference is not None:
        figure.add_trace(
            go.Scatter(
                x=[cost_of(reference)],
                y=[100 * reference.accuracy],
                mode="markers+text",
                name=f"baseline #{reference.run_id}",
                marker={"size": 22, "symbol": "star", "color": technique_color(reference.technique), "line": {"width": 2, "color": "black"}},
                text=["baseline"],
                textposition="bottom center",
                hovertext=[hover_text(reference)],
                hoverinfo="text",
            )
        )
    costs = [cost_of(run) for run in plotted if cost_of(run) > 0]
    if costs and max(costs) / min(costs) >= WIDE_RANGE_RATIO:
        figure.update_xaxes(type="log")
    if not plotted:
        figure.add_annotation(text="no runs with these measurements yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return styled(figure, title, x_title=cost_title, y_title="accuracy (%)", height=480)


def pipeline_waterfall_figure(steps: list[WaterfallStep], title: str = "Size after each pipeline step") -> go.Figure:
    """Bars fall by what each step saves; accuracy after each step rides on the right axis."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    if steps:
        deltas = [steps[0].size_bytes] + [after.size_bytes - before.size_bytes for before, after in zip(steps, steps[1:])]
        figure.add_trace(
            go.Waterfall(
                x=[step.name for step in steps],
                y=deltas,
                measure=["absolute"] + ["relative"] * (len(steps) - 1),
                name="size",
                text=[format_bytes(step.size_bytes) for step in steps],
                textposition="outside",
                hovertext=[f"{step.name}: {format_bytes(step.size_bytes)} ({step.size_measure or 'bytes'})" for step in steps],
                hoverinfo="text",
                decreasing={"marker": {"color": PALETTE[2]}},
                increasing={"marker": {"color": PALETTE[3]}},
                totals={"marker": {"color": PALETTE[0]}},
                connector={"line": {"color": "#888", "dash": "dot"}},
            ),
            secondary_y=False,
        )
        measured = [step for step in steps if step.accuracy is not None]
        figure.add_trace(
            go.Scatter(
                x=[step.name for step in measured],
                y=[100 * step.accuracy for step in measured],
                name="accuracy",
                mode="lines+markers+text",
                text=[f"{100 * step.accuracy:.1f}%" for step in measured],
                textposition="top center",
                line={"color": PALETTE[1], "width": 3},
                marker={"size": 12},
            ),
            secondary_y=True,
        )
        accuracies = [100 * step.accuracy for step in measured] or [0.0, 100.0]
        figure.update_yaxes(title_text="accuracy (%)", secondary_y=True, range=[max(0.0, min(accuracies) - 10), min(100.0, max(accuracies) + 5)])
        figure.update_yaxes(title_text="size (bytes)", secondary_y=False, range=[0, max(step.size_bytes for step in steps) * 1.18])
    return styled(figure, title, x_title="pipeline step", height=460)


def lineage_tree_figure(nodes: list[LineageNode], reference_id: int | None = None, title: str = "Lineage of runs") -> go.Figure:
    """Each run a dot, joined to the run it derives from; depth left to right."""
    figure = go.Figure()
    positions = {node.run_id: (node.depth, -node.row) for node in nodes}
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for node in nodes:
        if node.parent_id is not None:
            (x0, y0), (x1, y1) = positions[node.parent_id], positions[node.run_id]
            edge_x += [x0, (x0 + x1) / 2, (x0 + x1) / 2, x1, None]
            edge_y += [y0, y0, y1, y1, None]
    figure.add_trace(go.Scatter(x=edge_x, y=edge_y, mode="lines", line={"color": "#999", "width": 2}, hoverinfo="skip", showlegend=False))
    by_technique: dict[str, list[LineageNode]] = {}
    for node in nodes:
        by_technique.setdefault(node.run.technique, []).append(node)
    for technique, group in by_technique.items():
        figure.add_trace(
            go.Scatter(
                x=[node.depth for node in group],
                y=[-node.row for node in group],
                mode="markers+text",
                name=technique,
                marker={
                    "size": [22 if node.run_id == reference_id else 14 for node in group],
                    "symbol": ["star" if node.run_id == reference_id else ("diamond" if node.run.pinned else "circle") for node in group],
                    "color": technique_color(technique),
                    "line": {"width": 1, "color": "black"},
                },
                text=[f"#{node.run_id}" + (f" {100 * node.run.accuracy:.1f}%" if node.run.accuracy is not None else "") for node in group],
                textposition="middle right",
                hovertext=[hover_text(node.run) for node in group],
                hoverinfo="text",
            )
        )
    leaves = max((node.row for node in nodes), default=0) + 1
    figure.update_xaxes(showgrid=False, zeroline=False, tickmode="array", tickvals=list(range(max((n.depth for n in nodes), default=0) + 1)), title_text="derivation depth")
    figure.update_yaxes(showgrid=False, zeroline=False, showticklabels=False)
    return styled(figure, title, height=int(min(1600, max(320, 60 + 34 * leaves))))


def lineage_sunburst_figure(nodes: list[LineageNode], title: str = "Lineage of runs") -> go.Figure:
    """The same tree as rings: a baseline in the centre, what derives from it outwards."""
    figure = go.Figure(
        go.Sunburst(
            ids=[str(node.run_id) for node in nodes],
            parents=[str(node.parent_id) if node.parent_id is not None else "" for node in nodes],
            labels=[f"#{node.run_id} {node.run.technique}" for node in nodes],
            marker={"colors": [technique_color(node.run.technique) for node in nodes]},
            hovertext=[hover_text(node.run) for node in nodes],
            hoverinfo="text",
            branchvalues="remainder",
        )
    )
    return styled(figure, title, height=520)


def _flatten(values: dict, prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            text = str(value)
            flat[name] = text if len(text) <= 60 else text[:57] + "…"
    return flat
