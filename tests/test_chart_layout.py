"""Chart legends never overlap their titles: the title hangs from the figure's top edge, the legend
stands on its bottom edge (Plotly reserves the legend's rows there), checked on the layout values."""

from __future__ import annotations

import dataclasses

import plotly.graph_objects as go
import pytest

from core.charts.compare import latency_accuracy_figure, size_accuracy_figure
from core.charts.style import scale_for_presentation, styled
from core.contract.run_summary import RunSummary


def summary(run_id: int, technique: str, size_bytes: int, latency_ms: float, accuracy: float, pinned: bool = False) -> RunSummary:
    """A run summary with only what the trade-off charts plot; every other field empty."""
    names = {field.name for field in dataclasses.fields(RunSummary)}
    required = {field.name: None for field in dataclasses.fields(RunSummary) if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING}
    values = {
        **required,
        "run_id": run_id,
        "technique": technique,
        "dataset": "digits",
        "model": "simple_cnn",
        "pinned": pinned,
        "created_at": 0.0,
        "accuracy": accuracy,
        "size_bytes": size_bytes,
        "size_measure": "zip",
        "latency_ms": latency_ms,
        "latency_batch_size": 1,
        "latency_runtime": "torch eager",
    }
    return RunSummary(**{name: value for name, value in values.items() if name in names})


# Every technique, the front, a pinned run and the baseline: nine legend entries, which wrap.
RUNS = [
    summary(1, "train", 160_000, 0.9, 0.98),
    summary(2, "prune", 90_000, 0.8, 0.97),
    summary(3, "prune", 60_000, 0.7, 0.95, pinned=True),
    summary(4, "quantize", 45_000, 0.5, 0.975),
    summary(5, "distill", 30_000, 0.3, 0.96),
    summary(6, "pipeline", 12_000, 0.25, 0.955),
    summary(7, "cluster", 70_000, 0.6, 0.9),
]


def assert_legend_and_title_apart(figure: go.Figure) -> None:
    layout = figure.layout
    legend, title = layout.legend, layout.title
    # The legend: rows standing on the figure's bottom edge (container coordinates), below the x axis.
    assert legend.orientation == "h"
    assert (legend.yref, legend.y, legend.yanchor) == ("container", 0, "bottom")
    # The title: hanging from the figure's top edge, and small enough to stay inside the top margin.
    assert (title.yref, title.y, title.yanchor) == ("container", 1, "top")
    assert title.pad.t + 1.5 * title.font.size <= layout.margin.t


@pytest.mark.parametrize("build", [size_accuracy_figure, latency_accuracy_figure])
@pytest.mark.parametrize("presentation", [False, True])
def test_compare_charts_keep_the_legend_away_from_the_title(build, presentation):
    figure = scale_for_presentation(build(RUNS, reference_id=1), presentation)
    assert len([trace for trace in figure.data if trace.showlegend is not False]) == 9
    assert_legend_and_title_apart(figure)


def test_every_chart_gets_the_same_legend_placement_from_the_shared_style():
    figure = styled(go.Figure([go.Scatter(x=[0, 1], y=[0, 1], name=f"series {i}") for i in range(12)]), "A long title for a chart with many series")
    assert_legend_and_title_apart(figure)
