"""The sweep's frontier chart: which trial lands in which trace, in which order, and what is left out."""

from __future__ import annotations

import pytest

from core.charts.sweep import sweep_frontier_figure
from core.sweep.frontier import TrialOutcome, frontier


def trial(run_id, accuracy, size, latency=None, macs=1000, status="ok") -> TrialOutcome:
    return TrialOutcome(
        key=f"k{run_id}",
        point={"prune.amount": run_id / 10},
        status=status,
        technique="prune",
        run_id=run_id if status == "ok" else None,
        accuracy=accuracy,
        accuracy_change_points=100 * (accuracy - 0.98) if accuracy is not None else None,
        size_bytes=size,
        latency_ms=latency,
        latency_ms_before=5.0 if latency is not None else None,
        latency_batch_size=256,
        macs=macs,
    )


OUTCOMES = [
    trial(1, 0.98, 120_000, latency=4.0),  # most accurate, biggest: frontier
    trial(2, 0.97, 60_000, latency=3.0),  # frontier
    trial(3, 0.90, 20_000, latency=None),  # smallest: frontier on size; no latency
    trial(4, 0.95, 90_000, latency=3.5),  # beaten by run 2 (smaller and more accurate): dominated
    trial(5, None, None, status="failed"),  # no model: never drawn
]


def traces(figure) -> dict:
    return {trace.meta: trace for trace in figure.data}


def test_frontier_trace_holds_exactly_the_frontier_in_cost_order_and_the_rest_is_grey():
    figure = sweep_frontier_figure(OUTCOMES, "size", source=(160_000, 0.98), recommended_run_id=2)
    by_role = traces(figure)
    assert list(by_role["frontier"].customdata) == [3, 2, 1] == frontier(OUTCOMES, "size")
    assert list(by_role["frontier"].x) == sorted(by_role["frontier"].x)
    assert list(by_role["frontier"].y) == pytest.approx([90.0, 97.0, 98.0])
    assert list(by_role["dominated"].customdata) == [4]
    assert by_role["dominated"].marker.color != by_role["frontier"].marker.color
    assert list(by_role["recommended"].customdata) == [2]
    assert list(by_role["source"].x) == [160_000] and list(by_role["source"].y) == pytest.approx([98.0])
    assert figure.layout.xaxis.type == "log"
    drawn = {run_id for trace in figure.data if trace.customdata is not None for run_id in trace.customdata}
    assert drawn == {1, 2, 3, 4}  # the failed trial is absent


def test_missing_latency_leaves_the_trial_out_and_says_so():
    figure = sweep_frontier_figure(OUTCOMES, "latency", source=(None, 0.98))
    by_role = traces(figure)
    assert list(by_role["frontier"].customdata) == [2, 1]
    assert list(by_role["dominated"].customdata) == [4]
    assert "source" not in by_role  # no source latency known: no source point rather than a wrong one
    assert any("1 finished trial(s) have no latency ratio figure" in annotation.text for annotation in figure.layout.annotations)
    assert figure.layout.xaxis.type != "log"
    assert "256" in figure.layout.xaxis.title.text


def test_macs_ties_and_no_trials():
    figure = sweep_frontier_figure(OUTCOMES, "macs")
    # every trial has the same MACs: only the most accurate is on the frontier
    assert list(traces(figure)["frontier"].customdata) == [1]
    empty = sweep_frontier_figure([], "size")
    assert list(traces(empty)["frontier"].customdata or []) == []
    assert any("no finished trial" in annotation.text for annotation in empty.layout.annotations)
