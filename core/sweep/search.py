"""How a sweep walks its grid: every point, N random points, or a budget-driven search.

The budget search assumes what holds for these techniques: a more aggressive setting (more
pruning, fewer bits, fewer fine-tuning epochs or steps) never makes the model bigger, slower or
costlier, and never makes it more accurate. Two points are comparable when they agree on every
other setting. Then a trial within the accuracy budget rules out every less aggressive point (none
can beat it on the objective), and a trial over the budget rules out every more aggressive one
(each would lose at least as much). It runs next the point that rules out the most whichever way
it turns out, a binary search along each chain, and stops when no point is left that could
improve the recommendation. The points it skipped are reported with the trial that ruled them out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from core.foundation.errors import UserError
from core.sweep.frontier import TrialOutcome, within_budget
from core.sweep.trials import TrialPlan, step_options

# +1: a larger value is more aggressive; -1: a smaller one is.
AGGRESSIVE_DIRECTION = {
    "prune.amount": +1,
    "prune.finetune_epochs": -1,
    "prune.iterative_steps": -1,
    "quantize.bits": -1,
    "quantize.qat_epochs": -1,
    "quantize.calibration_size": -1,
}
SEARCH_HELP = "grid: every point; random:N: N points drawn from the grid (seeded); budget: stop once no further trial can improve the recommendation"


@dataclass(frozen=True)
class Search:
    kind: str  # "grid", "random" or "budget"
    count: int | None = None  # random:N

    def as_text(self) -> str:
        return f"random:{self.count}" if self.kind == "random" else self.kind


def parse_search(text: str) -> Search:
    text = (text or "grid").strip()
    if text in ("grid", "budget"):
        return Search(text)
    kind, _, count = text.partition(":")
    if kind == "random":
        try:
            number = int(count)
        except ValueError:
            raise UserError(f"--search '{text}': random needs a count, e.g. random:8") from None
        if number < 1:
            raise UserError(f"--search '{text}': the count must be at least 1")
        return Search("random", number)
    raise UserError(f"unknown --search '{text}'; choose grid, random:N or budget")


def candidates(plans: list[TrialPlan], search: Search, seed: int) -> list[TrialPlan]:
    """The points this search may run, in grid order (the budget search picks among them)."""
    if search.kind == "random" and search.count < len(plans):
        chosen = set(random.Random(seed).sample(range(len(plans)), search.count))
        return [plan for index, plan in enumerate(plans) if index in chosen]
    return list(plans)


def next_trials(search: Search, plans: list[TrialPlan], finished: dict[str, TrialOutcome], in_flight: set[str], slots: int, budget_points: float) -> list[TrialPlan]:
    """Up to `slots` plans to start now."""
    waiting = [plan for plan in plans if plan.key not in finished and plan.key not in in_flight]
    if search.kind != "budget":
        return waiting[:slots]
    live = [plan for plan in waiting if ruled_out_by(plan, plans, finished, budget_points) is None]
    chosen: list[TrialPlan] = []
    while live and len(chosen) < slots:
        best = max(live, key=lambda plan: (_information(plan, live), -plans.index(plan)))
        chosen.append(best)
        live = [plan for plan in live if plan is not best]
    return chosen


def ruled_out_by(plan: TrialPlan, plans: list[TrialPlan], finished: dict[str, TrialOutcome], budget_points: float) -> TrialOutcome | None:
    """The finished trial that makes `plan` pointless under the budget search's assumption, if any."""
    for other in plans:
        outcome = finished.get(other.key)
        if outcome is None or outcome.status != "ok" or other.key == plan.key:
            continue
        if within_budget(outcome, budget_points) and at_least_as_aggressive(other, plan):
            return outcome
        if not within_budget(outcome, budget_points) and at_least_as_aggressive(plan, other):
            return outcome
    return None


def at_least_as_aggressive(a: TrialPlan, b: TrialPlan) -> bool:
    """Whether `a` is `b` with every ordered setting at least as aggressive (and the rest equal)."""
    if a.steps != b.steps or set(a.point) != set(b.point):
        return False
    if _effective_mode(a) != _effective_mode(b):
        return False
    for name, value in a.point.items():
        direction = AGGRESSIVE_DIRECTION.get(name)
        if direction is None:
            if value != b.point[name]:
                return False
        elif direction * (value - b.point[name]) < 0:
            return False
    return True


def _effective_mode(plan: TrialPlan) -> str | None:
    return step_options(plan.point, "quantize")["mode"] if "quantize" in plan.steps else None


def _information(plan: TrialPlan, live: list[TrialPlan]) -> int:
    """How many live points this trial rules out in the worse of its two outcomes."""
    above = sum(1 for other in live if at_least_as_aggressive(other, plan))  # out if `plan` loses too much
    below = sum(1 for other in live if at_least_as_aggressive(plan, other))  # out if `plan` is within budget
    return min(above, below)
