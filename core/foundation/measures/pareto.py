"""The Pareto front: the runs no other run beats on both size (or latency) and accuracy."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(costs: Sequence[float | None], accuracies: Sequence[float | None]) -> list[int]:
    """Indices of the non-dominated points (lower cost and higher accuracy are better), ordered by
    cost. A point is dominated when another is at least as good on both and strictly better on
    one; identical points are all kept. Points with a missing value are left out."""
    if len(costs) != len(accuracies):
        raise ValueError(f"{len(costs)} costs but {len(accuracies)} accuracies")
    points = [(cost, accuracy, index) for index, (cost, accuracy) in enumerate(zip(costs, accuracies)) if _present(cost) and _present(accuracy)]
    # Cheapest first, and among equal costs the most accurate first: then one pass keeps each
    # point that is more accurate than everything cheaper (or as accurate at the same cost).
    points.sort(key=lambda point: (point[0], -point[1], point[2]))
    front: list[int] = []
    best_accuracy = float("-inf")
    best_cost = None
    for cost, accuracy, index in points:
        if accuracy > best_accuracy:
            front.append(index)
            best_accuracy, best_cost = accuracy, cost
        elif accuracy == best_accuracy and cost == best_cost:
            front.append(index)  # a twin of a front point
    return front


def _present(value) -> bool:
    return value is not None and value == value
