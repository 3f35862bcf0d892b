"""Explore: many settings at once, as a sweep on Ray, and the best model within an accuracy budget.

The form makes the same `--grid` texts as `python -m core sweep` (shown, with the whole command);
the trials run as Ray tasks (a local cluster on this machine, or the cluster at the address), and
each finished trial is a run in the history. The results are always read back from the history by
the sweep's id (same source, grid and seed), so a reopened page shows what finished and Start
runs only the missing trials. On a classroom server (MEL_CLASSROOM=1) Start asks the server's job
queue instead (core.jobs, kind "sweep"): one job per sweep for every student who asks for it. The
computation lives in core.sweep; this page is layout."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core.charts.sweep import sweep_frontier_figure
from core.contract.context import RunContext
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.progress import Progress
from core.jobs.queue import default_max_running
from core.sweep.estimate import estimate_sweep
from core.sweep.explore import (
    AMOUNT_STEP_MIN,
    FORM_ALPHAS,
    FORM_AMOUNT_RANGE,
    FORM_QUANTIZE_BITS,
    FORM_QUANTIZE_MODE,
    FORM_RANDOM_COUNT,
    FORM_TEMPERATURES,
    FORM_VARY,
    MAX_CPUS_PER_TRIAL,
    MAX_RANDOM_COUNT,
    amount_bounds,
    cli_command,
    expected_slots,
    list_axis,
    parse_number_list,
    preview_sweep,
    range_axis,
    recorded_outcomes,
    run_download,
    run_download_name,
    source_point,
    trial_rows,
)
from core.sweep.frontier import OBJECTIVES, TrialOutcome, recommend
from core.sweep.grid import parse_grid, technique_parameters
from core.sweep.run import MAX_BUDGET_POINTS, EngineOptions, SweepSpec, run_sweep
from core.sweep.search import SEARCH_HELP, parse_search
from ui import share
from ui.jobs_view import queued_job, source_config
from ui.opened_run import OPEN_RUN_KEY
from ui.source import choose_source
from ui.state import SessionStopFlag, baseline_config, cached_baseline, classroom_mode, report_error, show_figure, workspace

STOP_KEY = "explore_stop_requested"
FINISHED_KEY = "explore_last_message"
QUEUED = classroom_mode()  # a classroom server runs sweeps through its job queue (ui/jobs_view.py)
TECHNIQUE_PAGES = {"prune": "pages/pruning.py", "quantize": "pages/quantization.py", "distill": "pages/distillation.py", "pipeline": "pages/compare.py"}
OBJECTIVE_TABS = {"size": "Size", "latency": "Latency", "macs": "MACs"}

st.title("🧭 Explore")
st.markdown(
    "Try **many settings at once**: every combination you tick below is a *trial*, run as a task on a "
    "[Ray](https://www.ray.io) cluster (by default a local one on this machine). Each finished trial is a run in the history; "
    "the chart shows which trials are worth it (the **Pareto frontier**) and the page recommends the best one within your accuracy budget."
)
stop_requested = bool(st.session_state.pop(STOP_KEY, False))
source = choose_source("explore_source")
parameters = technique_parameters()
share.apply_page_link("explore")  # a share link's sweep settings, before the widgets


def default_only(values: list, default) -> bool:
    return len(values) == 1 and values[0] == default


def prune_axes() -> list[str]:
    bottom, top = amount_bounds()
    low_default, high_default, step_default = FORM_AMOUNT_RANGE
    help_text = parameters["prune"]["amount"].help
    columns = st.columns(3)
    low = columns[0].number_input("Amount from", bottom, top, low_default, 0.05, format="%.2f", key="explore_amount_min", help=help_text)
    high = columns[1].number_input("Amount to", bottom, top, high_default, 0.05, format="%.2f", key="explore_amount_max", help="inclusive")
    step = columns[2].number_input("Amount step", AMOUNT_STEP_MIN, top, step_default, 0.05, format="%.2f", key="explore_amount_step")
    columns = st.columns(3)
    prune = parameters["prune"]
    granularity = columns[0].multiselect("Granularity", prune["granularity"].choices, [prune["granularity"].default], key="explore_granularity", help=prune["granularity"].help)
    scope = columns[1].multiselect("Scope", prune["scope"].choices, [prune["scope"].default], key="explore_scope", help=prune["scope"].help)
    epochs_option = prune["finetune_epochs"]
    epochs = columns[2].multiselect(
        "Fine-tune epochs", list(range(int(epochs_option.minimum), int(epochs_option.maximum) + 1)), [epochs_option.default], key="explore_finetune_epochs", help=epochs_option.help
    )
    texts = [range_axis("prune.amount", low, high, step)]
    for name, values in (("granularity", granularity), ("scope", scope), ("finetune_epochs", epochs)):
        if not default_only(values, prune[name].default):  # one value that is the default is the default: left out of the grid
            texts.append(list_axis(f"prune.{name}", values))
    return texts


def quantize_axes() -> list[str]:
    columns = st.columns(3)
    modes = ["auto", *parameters["quantize"]["mode"].choices]
    mode = columns[0].selectbox("Mode", modes, modes.index(FORM_QUANTIZE_MODE), key="explore_quantize_mode", help="auto: 8 bits is the real int8 model (static), fewer bits are simulated")
    bits_option = parameters["quantize"]["bits"]
    bits = columns[1].multiselect("Bits", list(range(int(bits_option.maximum), int(bits_option.minimum) - 1, -1)), list(FORM_QUANTIZE_BITS), key="explore_quantize_bits", help=bits_option.help)
    per_channel_option = parameters["quantize"]["per_channel"]
    per_channel = columns[2].multiselect(
        "Per channel", [True, False], [per_channel_option.default], key="explore_quantize_per_channel", format_func=lambda value: "true" if value else "false", help=per_channel_option.help
    )
    texts = [] if mode == FORM_QUANTIZE_MODE else [f"quantize.mode={mode}"]
    texts.append(list_axis("quantize.bits", bits))
    if not default_only(per_channel, per_channel_option.default):
        texts.append(list_axis("quantize.per_channel", per_channel))
    return texts


def distill_axes() -> list[str]:
    columns = st.columns(2)
    temperatures = columns[0].text_input("Temperatures", FORM_TEMPERATURES, key="explore_temperatures", help=parameters["distill"]["temperature"].help)
    alphas = columns[1].text_input("Alphas (weight of the teacher)", FORM_ALPHAS, key="explore_alphas", help=parameters["distill"]["alpha"].help)
    return [list_axis("distill.temperature", parse_number_list(temperatures)), list_axis("distill.alpha", parse_number_list(alphas))]


# --- what to vary --------------------------------------------------------------------------------
st.subheader("What to vary")
texts: list[str | None] = []
errors: list[str] = []
for label, technique, axes in (("Pruning", "prune", prune_axes), ("Quantization", "quantize", quantize_axes), ("Distillation", "distill", distill_axes)):
    with st.container(border=True):
        if st.checkbox(f"Vary {label.lower()}", FORM_VARY[technique], key=f"explore_vary_{technique}"):
            try:
                chosen = [text for text in axes() if text]
            except UserError as error:
                errors.append(str(error))
                continue
            if not chosen:
                errors.append(f"{label} is ticked but varies nothing: choose at least one value, or untick it")
            texts += chosen
st.caption("Several techniques ticked make each trial a pipeline (distill, prune, quantize, in that order). An empty choice keeps the technique's default.")

# --- how to search -------------------------------------------------------------------------------
with st.container(border=True):
    columns = st.columns(4)
    search_kind = columns[0].radio("Search", ["grid", "random", "budget"], horizontal=True, key="explore_search", help=SEARCH_HELP)
    random_count = columns[0].number_input("Random trials (N)", 1, MAX_RANDOM_COUNT, FORM_RANDOM_COUNT, key="explore_random_count", disabled=search_kind != "random")
    objective = columns[1].selectbox(
        "Objective",
        list(OBJECTIVES),
        key="explore_objective",
        format_func=lambda name: f"{name}: {OBJECTIVES[name][1]}",
        help="What the recommendation minimises: file bytes, latency at the batch, or MACs per image",
    )
    budget_points = columns[2].number_input(
        "Accuracy budget (points)", 0.0, MAX_BUDGET_POINTS, SweepSpec.budget_points, 0.5, key="explore_budget", help="The largest accuracy drop allowed, in points on the full test set"
    )
    cpus_per_trial = columns[3].number_input(
        "CPUs per trial", 1, MAX_CPUS_PER_TRIAL, EngineOptions.cpus_per_trial, key="explore_cpus_per_trial", help="CPUs each trial asks Ray for; torch uses as many threads"
    )
    if QUEUED:
        # A classroom server's sweeps run on its job queue's cluster (local, or $RAY_ADDRESS), never one a student names.
        address = ""
        st.caption(
            f"On this classroom server the sweep is a job in the server's queue: its trials run on the queue's Ray cluster, at most {default_max_running()} CPU(s) of work at once with everyone's other jobs."
        )
    else:
        address = st.text_input(
            "Ray address",
            key="explore_ray_address",
            placeholder="empty: a local cluster on this machine (or the cluster in $RAY_ADDRESS)",
            help="host:port of an existing Ray cluster. Empty: $RAY_ADDRESS when it is set, else a local cluster started on this machine",
        ).strip()

share.write_page_link("explore", grid=None if errors else [text for text in texts if text])  # the current settings back into the URL

seed = int(baseline_config().seed)
try:
    if errors:
        raise UserError(errors[0])
    texts = [text for text in texts if text]
    grid = parse_grid(texts)
    spec = SweepSpec(grid, parse_search(f"random:{int(random_count)}" if search_kind == "random" else search_kind), objective, float(budget_points), seed)
    spec.validate()
    options = EngineOptions(address or None, int(cpus_per_trial))
    options.validate()
    preview = preview_sweep(source, spec, workspace().history_db)
except UserError as error:
    report_error(error)
    st.stop()

config = baseline_config()
st.markdown("**The same sweep from a terminal**")
st.code(
    cli_command(spec, config.dataset.name, config.model, None if source.run_id == getattr(cached_baseline(), "run_id", None) else source.run_id, address or None, int(cpus_per_trial), texts),
    language="bash",
    wrap_lines=True,
)

slots = expected_slots(address or None, int(cpus_per_trial), default_max_running() if QUEUED else None)
estimate = estimate_sweep(workspace(), preview.technique, source.dataset.name, source.architecture, preview.to_run, slots or 1)
columns = st.columns(4)
columns[0].metric("Trials planned", preview.planned, help=f"the grid has {preview.grid_size} point(s)")
columns[1].metric("Already in the history", preview.done)
columns[2].metric("Refused combinations", preview.refused, help="settings the technique configs refuse: recorded as failed with their reason, without a worker")
columns[3].metric("To run", preview.to_run)
st.caption(estimate.sentence() + ("" if slots else " On a remote cluster the trials at a time are known once connected."))


# --- results ---------------------------------------------------------------------------------------
def show_results(outcomes: list[TrialOutcome], suffix: str, interactive: bool, running: list[dict] | None = None) -> None:
    db = workspace().history_db
    recommendation = recommend(outcomes, spec.objective, spec.budget_points)
    if recommendation.run_id is not None:
        st.success(f"**Recommended: run #{recommendation.run_id}**: {recommendation.reason}.", icon=":material/star:")
    else:
        st.warning(f"No recommendation yet: {recommendation.reason}.")
    if interactive and recommendation.run_id is not None:
        run = history.get_run(db, recommendation.run_id)
        if run is not None:
            left, right, _ = st.columns([1, 1, 2])
            baseline = cached_baseline()
            dataset = baseline.dataset if baseline is not None and baseline.dataset.name == run.dataset else None
            left.download_button(
                "⬇️ Download its model",
                data=lambda: run_download(run, workspace(), dataset),
                file_name=run_download_name(run, workspace()),
                mime="application/zip",
                key="explore_download",
                help="The model zip (safetensors + JSON) the compare page exports; a quantize run's checkpoint folder, zipped",
            )
            if right.button("Open on its technique page", key="explore_open", icon=":material/open_in_new:"):
                st.session_state[OPEN_RUN_KEY] = run.id
                st.switch_page(TECHNIQUE_PAGES.get(run.technique, "pages/compare.py"))
    tabs = st.tabs([OBJECTIVE_TABS[name] for name in OBJECTIVES])
    for tab, name in zip(tabs, OBJECTIVES):
        with tab:
            show_figure(sweep_frontier_figure(outcomes, name, source_point(db, outcomes, name), recommendation.run_id), key=f"explore_frontier_{name}_{suffix}")
    if running:
        st.caption("Running now: " + "; ".join(", ".join(f"{key}={value}" for key, value in point.items()) for point in running))
    st.dataframe(
        pd.DataFrame(trial_rows(outcomes)),
        hide_index=True,
        width="stretch",
        column_config={"size (bytes)": st.column_config.NumberColumn(format="localized"), "MACs": st.column_config.NumberColumn(format="localized")},
    )
    st.caption("Click a column header to sort. Accuracy and its change are on the full test set, against the source; latency is one forward pass over the batch.")


def queued_sweep() -> None:
    """A classroom server's sweep: one job in the server's queue for every student who asks for the
    same sweep (source, grid, search, objective, budget); its trials are recorded as they finish, so
    the results below fill in as the page follows the job, and stay when it is done."""
    if preview.to_run == 0:
        return
    job_config = {"source": source_config(source), "sweep": spec.as_dict(), "cpus_per_trial": int(cpus_per_trial), "seed": source.seed}
    label = "Start the sweep" if preview.done == 0 else "Resume the sweep"
    queued_job("sweep", job_config, str(workspace().root), label, "explore", button_key="explore_start", work="sweep")


st.subheader("Run")
if QUEUED:
    queued_sweep()
    outcomes = recorded_outcomes(source, spec, workspace().history_db)
    if not outcomes:
        st.info("No trial of this sweep is in the history yet. Press **Start the sweep**.")
        st.stop()
    show_results(outcomes, "recorded", interactive=True)
    st.stop()

buttons = st.columns([1, 1, 4])
start = buttons[0].button(
    "Start the sweep" if preview.done == 0 else "Resume the sweep", key="explore_start", type="primary", disabled=preview.to_run == 0, help="Runs only the trials not yet in the history"
)
stop_slot = buttons[1].empty()
if stop_requested:
    st.warning("Sweep stopped. Every trial that had finished is recorded; press the button again to run only the missing ones.")
message = st.session_state.pop(FINISHED_KEY, None)
if message:
    st.success(message)

if start:
    stop = SessionStopFlag(STOP_KEY)
    stop_slot.button("Stop", key="explore_stop", on_click=stop.set, icon=":material/stop:")
    bar = st.progress(0.0, text="Starting Ray…")
    live = st.empty()
    started = time.perf_counter()
    shown = {"fraction": 0.0, "text": "Starting Ray…", "at": 0.0, "redraws": 0}

    def draw_bar(fraction: float | None = None, text: str | None = None) -> None:
        if fraction is not None:
            shown["fraction"], shown["text"] = fraction, text
        shown["at"] = time.perf_counter()
        bar.progress(min(1.0, shown["fraction"]), text=f"{shown['text']} · {time.perf_counter() - started:.0f} s")

    def report(progress: Progress) -> None:
        eta = progress.metrics.get("eta_seconds")
        draw_bar(progress.fraction, f"{progress.done}/{progress.total} trials · {progress.message}" + (f" · ETA {eta:.0f} s" if eta else ""))

    class HeartbeatStop:
        """The Stop flag, read every 0.5 s by the driver; redrawing the bar each second lets Streamlit
        end this script run when a button press (Stop, or any other) asks for a rerun."""

        def is_set(self) -> bool:
            if time.perf_counter() - shown["at"] >= 1.0:
                draw_bar()
            return stop.is_set()

    def redraw(state) -> None:
        shown["redraws"] += 1
        with live.container():
            show_results(state.outcomes, f"live_{shown['redraws']}", interactive=False, running=state.running)

    try:
        state = run_sweep(source, spec, RunContext(workspace(), report, HeartbeatStop()), options, on_update=redraw)
    except UserError as error:
        stop_slot.empty()
        report_error(error)
        st.stop()
    where = f"Ray at {state.cluster.address}" if state.cluster else "no worker needed"
    st.session_state[FINISHED_KEY] = f"Sweep {'stopped' if state.stopped else 'finished'}: {state.trials_run} trial(s) run this time ({where}, {state.slots or 1} at a time) in {state.seconds:.0f} s."
    st.rerun()

outcomes = recorded_outcomes(source, spec, workspace().history_db)
if not outcomes:
    st.info("No trial of this sweep is in the history yet. Press **Start the sweep**.")
    st.stop()
show_results(outcomes, "recorded", interactive=True)
