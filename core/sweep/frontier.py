"""A sweep's answer: each trial's figures, the Pareto frontier per objective, and the
recommendation: the best trial on the objective whose accuracy drop is within the budget.

Pure functions over TrialOutcome, so the page, the CLI and the tests compute the same answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.foundation.measures.pareto import pareto_front

OBJECTIVES = {
    "size": ("size_bytes", "smallest file"),
    # Relative to the source, both timed together inside the trial (interleaved rounds, one
    # protocol): trials run side by side on a shared machine, so their absolute milliseconds are
    # not comparable with each other, but each trial's ratio is.
    "latency": ("latency_ratio", "lowest latency"),
    "macs": ("macs", "fewest MACs"),
}
BUDGET_TOLERANCE_POINTS = 1e-9  # an accuracy drop equal to the budget is within it


@dataclass
class TrialOutcome:
    key: str
    point: dict
    status: str  # "ok" or "failed"
    technique: str
    run_id: int | None = None
    accuracy: float | None = None  # on the full test set
    accuracy_change_points: float | None = None  # against the sweep's source, on the same images
    size_bytes: int | None = None
    latency_ms: float | None = None  # one forward pass over latency_batch_size images
    latency_batch_size: int | None = None
    latency_ms_before: float | None = None  # the source, timed together with the trial's model
    speedup: float | None = None  # source / trial, timed together in the trial
    macs: int | None = None
    compression_ratio: float | None = None
    seconds: float | None = None
    error: str | None = None
    previous: bool = False  # finished by an earlier start of the sweep

    @property
    def latency_ratio(self) -> float | None:
        """The trial's latency as a fraction of the source's (1 / speedup), timed together."""
        if self.latency_ms is None or not self.latency_ms_before:
            return None
        return self.latency_ms / self.latency_ms_before

    def objective_value(self, objective: str) -> float | None:
        return getattr(self, OBJECTIVES[objective][0])

    def as_json(self) -> dict:
        """The CLI's per-trial object."""
        return {name: value for name, value in asdict(self).items() if name not in ("key", "point")} | {"params": self.point, "latency_ratio": self.latency_ratio}


@dataclass
class Recommendation:
    run_id: int | None
    reason: str  # why this one, or why none
    objective: str
    budget_points: float
    value: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def check_objective(objective: str) -> None:
    from core.foundation.errors import UserError

    if objective not in OBJECTIVES:
        raise UserError(f"unknown objective '{objective}'; choose {', '.join(OBJECTIVES)}")


def within_budget(outcome: TrialOutcome, budget_points: float) -> bool:
    return outcome.status == "ok" and outcome.accuracy_change_points is not None and outcome.accuracy_change_points >= -budget_points - BUDGET_TOLERANCE_POINTS


def frontier(outcomes: list[TrialOutcome], objective: str) -> list[int]:
    """Run ids of the finished trials no other beats on both the objective and accuracy, cheapest first."""
    finished = [outcome for outcome in outcomes if outcome.status == "ok"]
    indices = pareto_front([outcome.objective_value(objective) for outcome in finished], [outcome.accuracy for outcome in finished])
    return [finished[index].run_id for index in indices]


def recommend(outcomes: list[TrialOutcome], objective: str, budget_points: float) -> Recommendation:
    """The trial with the best objective among those that lose at most `budget_points`; ties go to
    the more accurate, then the earlier run."""
    label = OBJECTIVES[objective][1]
    finished = [outcome for outcome in outcomes if outcome.status == "ok"]
    if not finished:
        return Recommendation(None, "no trial has finished yet" if not outcomes else "every trial failed", objective, budget_points)
    measured = [outcome for outcome in finished if outcome.objective_value(objective) is not None]
    if not measured:
        return Recommendation(None, f"no finished trial has a {OBJECTIVES[objective][0]} figure", objective, budget_points)
    eligible = [outcome for outcome in measured if within_budget(outcome, budget_points)]
    if not eligible:
        closest = max(measured, key=lambda outcome: outcome.accuracy_change_points)
        return Recommendation(
            None, f"no trial loses at most {budget_points:g} points; the closest, run #{closest.run_id}, changes accuracy by {closest.accuracy_change_points:+.2f} points", objective, budget_points
        )
    best = min(eligible, key=lambda outcome: (outcome.objective_value(objective), -outcome.accuracy, outcome.run_id))
    return Recommendation(
        best.run_id,
        f"the {label} of the {len(eligible)} trial(s) within {budget_points:g} points ({best.accuracy_change_points:+.2f} points)",
        objective,
        budget_points,
        best.objective_value(objective),
    )
