"""The sweep's driver: plan the trials, send them to Ray as slots free up, record each as it
finishes, and keep the frontier and the recommendation current.

    spec = SweepSpec(parse_grid(["prune.amount=0.5:0.9:0.1"]), parse_search("budget"), "size", budget_points=1.0)
    state = run_sweep(source, spec, RunContext(workspace, progress, stop), EngineOptions(), on_update=redraw)

Only this process writes the history. A trial is recorded the moment it comes back, so a sweep
stopped, interrupted or killed keeps every finished trial; started again with the same source,
grid and seed (the same sweep id) it runs only the trials that are missing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.contract.context import RunContext
from core.contract.record import record
from core.contract.result import TechniqueResult
from core.contract.source import ModelSource
from core.foundation.errors import UserError
from core.foundation.history import RunRecord
from core.foundation.progress import Progress
from core.foundation.workspace import config_key
from core.sweep import engine, store
from core.sweep.frontier import OBJECTIVES, Recommendation, TrialOutcome, check_objective, frontier, recommend
from core.sweep.grid import SweepGrid
from core.sweep.search import Search, candidates, next_trials, ruled_out_by
from core.sweep.trials import TrialPlan, plan_trial
from core.sweep.worker import PortableResult, TrialPayload, strip_source

POLL_SECONDS = 0.5  # how often the driver looks at the stop flag while trials run
MAX_BUDGET_POINTS = 100.0


@dataclass(frozen=True)
class SweepSpec:
    grid: SweepGrid
    search: Search = Search("grid")
    objective: str = "size"
    budget_points: float = 1.0  # the largest accuracy drop allowed, in points on the full test set
    seed: int = 0  # every trial's seed, and the random search's

    def validate(self) -> None:
        check_objective(self.objective)
        if not (0.0 <= self.budget_points <= MAX_BUDGET_POINTS):
            raise UserError(f"--budget-points must be between 0 and {MAX_BUDGET_POINTS:g}, got {self.budget_points:g}")

    def as_dict(self) -> dict:
        return {"grid": self.grid.as_texts(), "search": self.search.as_text(), "objective": self.objective, "budget_points": self.budget_points, "seed": self.seed}

    @classmethod
    def from_dict(cls, fields: dict) -> SweepSpec:
        """as_dict's inverse (a queued sweep's job configuration), validated."""
        from core.sweep.grid import parse_grid
        from core.sweep.search import parse_search

        spec = cls(parse_grid(fields["grid"]), parse_search(fields["search"]), fields["objective"], float(fields["budget_points"]), int(fields["seed"]))
        spec.validate()
        return spec


@dataclass(frozen=True)
class EngineOptions:
    address: str | None = None  # None: $RAY_ADDRESS, else a local cluster
    cpus_per_trial: int = 1
    local_cpus: int | None = None  # a local cluster's CPUs (default: all of this machine's)

    def validate(self) -> None:
        if self.cpus_per_trial < 1:
            raise UserError(f"--cpus-per-trial must be at least 1, got {self.cpus_per_trial}")
        engine.check_local_auth(self.address)  # before a baseline is trained for a cluster that would be refused


@dataclass
class SweepState:
    sweep_id: str
    spec: SweepSpec
    source_run_id: int | None
    source_accuracy: float
    source_size_bytes: int
    planned: int  # trials this search may run (the grid, or the random sample)
    outcomes: list[TrialOutcome] = field(default_factory=list)  # finished or failed, earlier starts included
    running: list[dict] = field(default_factory=list)  # the points in flight
    trials_run: int = 0  # finished or failed during this start
    skipped: list[dict] = field(default_factory=list)  # points the budget search ruled out: {"params", "reason"}
    cluster: engine.ClusterInfo | None = None
    slots: int = 0
    seconds: float = 0.0
    eta_seconds: float | None = None
    stopped: bool = False
    done: bool = False

    @property
    def recommendation(self) -> Recommendation:
        return recommend(self.outcomes, self.spec.objective, self.spec.budget_points)

    def frontier(self, objective: str | None = None) -> list[int]:
        return frontier(self.outcomes, objective or self.spec.objective)

    def as_json(self) -> dict:
        """The CLI's last line (and what a test reads)."""
        recommendation = self.recommendation
        return {
            "sweep_id": self.sweep_id,
            "engine": "ray",
            "ray_address": self.cluster.address if self.cluster else None,
            "cluster": self.cluster.as_dict() if self.cluster else None,
            "slots": self.slots,
            **self.spec.as_dict(),
            "source_run_id": self.source_run_id,
            "source_accuracy": self.source_accuracy,
            "source_size_bytes": self.source_size_bytes,
            "planned": self.planned,
            "trials_run": self.trials_run,
            "trials": [outcome.as_json() for outcome in self.outcomes],
            "frontier": self.frontier(),
            "frontiers": {objective: self.frontier(objective) for objective in OBJECTIVES},
            "recommended": recommendation.run_id,
            "recommendation": recommendation.as_dict(),
            "skipped": self.skipped,
            "stopped": self.stopped,
            "seconds": self.seconds,
        }


UpdateCallback = Callable[[SweepState], None]


def sweep_id_for(source: ModelSource, grid: SweepGrid, seed: int) -> str:
    """The same source, grid and seed are the same sweep (whatever the search, objective or budget)."""
    source_identity = {"run": source.run_id} if source.run_id is not None else {"checkpoint": source.checkpoint}
    return "sweep-" + config_key({"source": source_identity, "dataset": source.dataset_spec.as_dict(), "grid": grid.as_texts(), "seed": seed})


def plan_sweep(source: ModelSource, spec: SweepSpec, device: str = "cpu") -> list[TrialPlan]:
    """Every grid point as a trial plan (refused combinations carry their reason)."""
    return [plan_trial(point, spec.grid.techniques, source.architecture, spec.seed, device) for point in spec.grid.points()]


def run_sweep(source: ModelSource, spec: SweepSpec, context: RunContext, options: EngineOptions = EngineOptions(), on_update: UpdateCallback | None = None) -> SweepState:
    started = time.perf_counter()
    spec.validate()
    options.validate()
    source.check_compressible("a sweep")
    db = context.workspace.history_db
    plans = plan_sweep(source, spec)
    sweep_id = sweep_id_for(source, spec.grid, spec.seed)
    store.register_sweep(db, sweep_id, {**spec.as_dict(), "source_run_id": source.run_id, "dataset": source.dataset_spec.as_dict()})
    chosen = candidates(plans, spec.search, spec.seed)
    state = SweepState(sweep_id, spec, source.run_id, source.accuracy, source.size_bytes(), len(chosen))
    finished = earlier_outcomes(db, sweep_id, plans)
    for plan in chosen:  # combinations the configs refuse fail here, without a worker
        if plan.error is not None and plan.key not in finished:
            store.record_failure(db, sweep_id, plan.key, plan.point, plan.error)
            finished[plan.key] = TrialOutcome(plan.key, plan.point, "failed", plan.technique, error=plan.error)
            state.trials_run += 1
    _refresh(state, chosen, finished, {}, started)

    in_flight: dict = {}  # Ray reference -> (plan, submitted at)
    durations: list[float] = []
    try:
        if next_trials(spec.search, chosen, finished, set(), 1, spec.budget_points):
            state.cluster = engine.connect(options.address, options.local_cpus)
            if options.cpus_per_trial > state.cluster.cpus:
                raise UserError(f"each trial asks for {options.cpus_per_trial} CPUs but the Ray cluster at {state.cluster.address} has {state.cluster.cpus}; lower --cpus-per-trial")
            state.slots = state.cluster.cpus // options.cpus_per_trial
            gpus = 1 if state.cluster.gpus > 0 else 0
            _prepare_teachers(chosen, source, context)
            dataset_reference = engine.put_dataset(source.dataset)
            payload_source = strip_source(source)
            context.progress(Progress("sweep", 0, state.planned, f"Ray at {state.cluster.address}: {state.slots} trial(s) at a time, {options.cpus_per_trial} CPU each"))
            while True:
                if context.stop is not None and context.stop.is_set():
                    state.stopped = True
                    break
                busy = {plan.key for plan, _ in in_flight.values()}
                for plan in next_trials(spec.search, chosen, finished, busy, state.slots - len(in_flight), spec.budget_points):
                    payload = TrialPayload(plan.key, plan.steps, plan.config, payload_source, str(context.workspace.root), options.cpus_per_trial, "cuda" if gpus else "cpu")
                    in_flight[engine.submit_trial(payload, dataset_reference, options.cpus_per_trial, gpus)] = (plan, time.time())
                if not in_flight:
                    break
                _refresh(state, chosen, finished, in_flight, started, durations)
                for reference in engine.wait(list(in_flight), POLL_SECONDS):
                    plan, submitted_at = in_flight.pop(reference)
                    finished[plan.key] = _collect(reference, plan, submitted_at, source, context, sweep_id, durations)
                    state.trials_run += 1
                    _refresh(state, chosen, finished, in_flight, started, durations)
                    # The budget search's total shrinks as trials rule points out.
                    context.progress(
                        Progress("sweep", _done_count(chosen, finished), state.planned - len(state.skipped), _trial_message(finished[plan.key]), {"eta_seconds": state.eta_seconds or 0.0})
                    )
                    if on_update is not None:
                        on_update(state)
    finally:
        if in_flight:  # stopped or interrupted: the unfinished trials are dropped, the finished ones stay recorded
            engine.cancel(list(in_flight))
            in_flight.clear()
    state.done = not state.stopped
    _refresh(state, chosen, finished, {}, started, durations)
    if on_update is not None:
        on_update(state)
    return state


def _collect(reference, plan: TrialPlan, submitted_at: float, source: ModelSource, context: RunContext, sweep_id: str, durations: list[float]) -> TrialOutcome:
    db = context.workspace.history_db
    try:
        portable: PortableResult = engine.get(reference)
    except Exception as error:  # the trial raised in its worker: recorded as failed, the sweep goes on
        reason = engine.failure_reason(error)
        store.record_failure(db, sweep_id, plan.key, plan.point, reason)
        return TrialOutcome(plan.key, plan.point, "failed", plan.technique, error=reason, seconds=time.time() - submitted_at)
    durations.append(portable.worker_seconds)
    result = TechniqueResult(
        technique=portable.technique,
        config=portable.config,
        headline=portable.headline,
        details=portable.details,
        artifact=portable.artifact,
        model=None,
        architecture=portable.architecture,
        source=source,
        pruned_channels=portable.pruned_channels,
        quantized=portable.quantized,
        seconds=portable.seconds,
    )
    run_id = record(result, context.workspace, started_at=submitted_at, extra_params={"sweep": {"id": sweep_id, "trial": plan.key, "point": plan.point}})
    from core.foundation import history

    return outcome_from_run(history.get_run(db, run_id), plan)


def outcome_from_run(run: RunRecord, plan: TrialPlan | None = None, previous: bool = False) -> TrialOutcome:
    metrics = run.metrics
    sweep = run.params.get("sweep", {})
    return TrialOutcome(
        key=sweep.get("trial", plan.key if plan else ""),
        point=sweep.get("point", plan.point if plan else {}),
        status="ok",
        technique=run.technique,
        run_id=run.id,
        accuracy=metrics.get("accuracy"),
        accuracy_change_points=metrics.get("accuracy_change_points"),
        size_bytes=metrics.get("size_bytes_after"),
        latency_ms=metrics.get("latency_ms_after"),
        latency_ms_before=metrics.get("latency_ms_before"),
        latency_batch_size=metrics.get("latency_batch_size"),
        speedup=metrics.get("speedup"),
        macs=metrics.get("macs_after"),
        compression_ratio=metrics.get("compression_ratio"),
        seconds=metrics.get("seconds"),
        previous=previous,
    )


def earlier_outcomes(db, sweep_id: str, plans: list[TrialPlan]) -> dict[str, TrialOutcome]:
    """The sweep's trials already in the history (finished runs and recorded failures), by trial key."""
    by_key = {plan.key: plan for plan in plans}
    outcomes: dict[str, TrialOutcome] = {}
    for key, run in store.finished_trials(db, sweep_id).items():
        if key in by_key:
            outcomes[key] = outcome_from_run(run, by_key[key], previous=True)
    for key, (point, reason) in store.failed_trials(db, sweep_id).items():
        if key in by_key and key not in outcomes:
            outcomes[key] = TrialOutcome(key, point, "failed", by_key[key].technique, error=reason, previous=True)
    return outcomes


def _refresh(state: SweepState, chosen: list[TrialPlan], finished: dict[str, TrialOutcome], in_flight: dict, started: float, durations: list[float] | None = None) -> None:
    """The state's lists in grid order, the skipped points and the ETA."""
    state.outcomes = [finished[plan.key] for plan in chosen if plan.key in finished]
    state.running = [plan.point for plan, _ in in_flight.values()]
    state.seconds = time.perf_counter() - started
    if state.spec.search.kind == "budget":
        state.skipped = []
        for plan in chosen:
            if plan.key in finished:
                continue
            because = ruled_out_by(plan, chosen, finished, state.spec.budget_points)
            if because is not None:
                state.skipped.append({"params": plan.point, "reason": f"ruled out by run #{because.run_id} ({because.accuracy_change_points:+.2f} points)"})
    remaining = state.planned - len(state.outcomes) - len(state.skipped)
    if durations:
        state.eta_seconds = statistics.fmean(durations) * max(0, remaining) / max(1, state.slots or 1)
    else:
        state.eta_seconds = None


def _done_count(chosen: list[TrialPlan], finished: dict[str, TrialOutcome]) -> int:
    return sum(1 for plan in chosen if plan.key in finished)


def _trial_message(outcome: TrialOutcome) -> str:
    settings = ", ".join(f"{name}={value}" for name, value in outcome.point.items())
    if outcome.status != "ok":
        return f"{settings}: failed: {outcome.error}"
    return f"{settings}: run #{outcome.run_id}, {outcome.accuracy_change_points:+.2f} points, {outcome.compression_ratio:.1f}x smaller"


def _prepare_teachers(plans: list[TrialPlan], source: ModelSource, context: RunContext) -> None:
    """Distillation trials read their teacher and its logits from the workspace: the driver trains
    or loads each teacher once, here, so no worker writes."""
    from core.distillation.config import student_recipe
    from core.distillation.race import get_teacher
    from core.distillation.teacher_logits import teacher_logit_source, teacher_test_logits

    done = set()
    for plan in plans:
        if plan.config is None or "distill" not in plan.steps:
            continue
        config = plan.config.distill if len(plan.steps) > 1 else plan.config
        key = (config.teacher, config.teacher_seed, config.teacher_epochs, config.augment, config.student)
        if key in done:
            continue
        done.add(key)
        teacher = get_teacher(config, source.dataset_spec, context.workspace, context.progress, context.stop, source.dataset)
        teacher_logit_source(teacher, source.dataset, student_recipe(config, source.dataset), teacher.device, context.workspace)
        teacher_test_logits(teacher, source.dataset, teacher.device, context.workspace)
