"""Distillation: a good teacher, the same student trained twice (hard labels vs the teacher's soft
labels) under the same budget, and the difference measured over seeds.

The page starts from a model source (the sidebar's baseline, or a floating-point run of the
history): the distilled student replaces it, so the recorded run is the source run's child. Every
setting's range and default comes from DistillConfig's options (the presets where they say None).
On a classroom server the teacher's training and the race go through the job queue."""

from __future__ import annotations

import math
import time

import streamlit as st

from core.charts.distillation import agreement_figure, gain_per_seed_figure, race_curves_figure, size_accuracy_figure, soft_labels_figure
from core.charts.style import scale_for_presentation
from core.contract.context import RunContext
from core.contract.options import spec
from core.contract.record import record
from core.distillation import (
    DISTILLED,
    HARD,
    DistillConfig,
    available_students,
    available_teachers,
    check_teacher_not_smaller,
    default_student,
    distill,
    get_teacher,
    model_label,
    soft_label_examples,
    student_recipe,
    teacher_config,
)
from core.distillation.config import DEFAULT_PRESET, DISTILL_PRESETS, MAX_SEEDS, labelled_images
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.training.quick_evaluation import EVAL_SUBSET_SIZE
from core.jobs.kinds import distill_report_from_dict
from ui import share
from ui.diff_view import run_diff, show_run_diff
from ui.jobs_view import queued_job, queued_training, source_config
from ui.metrics import delta_or_none
from ui.opened_run import show_opened_run
from ui.source import choose_source, source_key
from ui.state import cached_baseline, classroom_mode, format_bytes, presentation_mode, progress_reporter, report_error, show_figure, workspace

REPORT_KEY = "distill_last_report"

st.title("Knowledge distillation")
st.markdown(
    "A big **teacher** is trained once. A small **student** is then trained twice with the same starting weights, "
    "the same batches in the same order and the same optimiser: once on the true labels only, once also imitating "
    "the teacher's *softened* class probabilities (temperature **T**). Whatever differs at the end is distillation."
)
show_opened_run()

source = choose_source("distill_source")
dataset, dataset_spec = source.dataset, source.dataset_spec


def without_value(widget_bounds: dict) -> dict:
    """Bounds for a widget whose value the preset puts in session state (Streamlit refuses both)."""
    return {key: value for key, value in widget_bounds.items() if key != "value"}


def bounds(name: str, default=None) -> dict:
    """min, max and default of a DistillConfig option for a number widget (`default` where the option's is None: the preset's)."""
    option_spec = spec(DistillConfig, name)
    kind = float if isinstance(option_spec.minimum, float) or isinstance(default if default is not None else option_spec.default, float) else int
    value = option_spec.default if option_spec.default is not None else default
    return {"min_value": kind(option_spec.minimum), "max_value": kind(option_spec.maximum), "value": None if value is None else kind(value), "help": option_spec.help}


# --- controls (changing them never retrains: the race runs only on the button) -------------------
# Any model the sidebar offers teaches any other, in the sidebar's groups.
students = available_students()
source_student = default_student(source.architecture)
source_student = source_student if source_student in students else students[0]
teachers = available_teachers()
default_teacher = spec(DistillConfig, "teacher").default if spec(DistillConfig, "teacher").default in teachers else teachers[0]
LABELLED_CHOICES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # shares of the training set; 1.0 = every image (no subset)


def apply_preset() -> None:
    """Set the preset's widgets (T, alpha, labelled share); the user can move any of them after."""
    chosen = DISTILL_PRESETS[st.session_state["distill_preset"]]
    st.session_state["distill_temperature"] = chosen.temperature
    st.session_state["distill_alpha"] = chosen.alpha
    st.session_state["distill_labelled"] = chosen.labelled_fraction or 1.0


if "distill_preset" not in st.session_state:
    st.session_state["distill_preset"] = DEFAULT_PRESET
    apply_preset()
# A share link's settings, before the widgets: its preset fills them first, then its own values win.
share.apply_page_link("distillation", on_preset=apply_preset, teachers=teachers, students=students, labelled_choices=LABELLED_CHOICES, student=source_student, teacher=default_teacher)
with st.container(border=True):
    preset_name = st.selectbox(
        "Preset",
        list(DISTILL_PRESETS),
        format_func=lambda name: DISTILL_PRESETS[name].title,
        key="distill_preset",
        on_change=apply_preset,
        help="A starting point for T, alpha and how many labelled images the students see",
    )
    st.caption(DISTILL_PRESETS[preset_name].why)
    columns = st.columns(5)
    teacher_name = columns[0].selectbox(
        "Teacher",
        teachers,
        index=teachers.index(default_teacher),
        format_func=model_label,
        key="distill_teacher",
        help="Any architecture teaches any other: it is trained once on these images (the students' own), then cached; 'teacher' is the lab's small ResNet",
    )
    student_name = columns[1].selectbox(
        "Student",
        students,
        index=students.index(source_student),
        format_func=model_label,
        key="distill_student",
        help="The architecture that replaces the source (default: the source's own, when it is one of the lab's small students)",
    )
    temperature = columns[2].number_input(
        "Temperature T",
        **{**without_value(bounds("temperature")), "help": "Higher T spreads the teacher's probability over the wrong-but-plausible classes"},
        step=0.5,
        format="%.2f",
        key="distill_temperature",
    )
    alpha = columns[3].slider(
        "Weight of the teacher (alpha)",
        step=0.05,
        key="distill_alpha",
        **{**without_value(bounds("alpha")), "help": "alpha × T² × KL(teacher ‖ student) + (1 − alpha) × cross-entropy with the true labels"},
    )
    labelled_share = columns[4].select_slider(
        "Labelled images",
        LABELLED_CHOICES,
        key="distill_labelled",
        format_func=lambda share: f"{share:.0%} ({labelled_images(DistillConfig(labelled_fraction=None if share >= 1.0 else share), dataset):,})",
        help="Both students learn from the same class-balanced share of the training images; the teacher saw them all",
    )
    labelled_fraction = None if labelled_share >= 1.0 else float(labelled_share)
    preset = student_recipe(DistillConfig(student=student_name, labelled_fraction=labelled_fraction), dataset)
    columns = st.columns(4)
    epochs = columns[0].number_input("Student epochs", **{**bounds("epochs", preset.epochs), "help": "Both students get exactly this budget (default: the classroom preset)"}, key="distill_epochs")
    learning_rate = columns[1].number_input("Learning rate", **bounds("learning_rate", float(preset.learning_rate)), step=1e-4, format="%.4f", key="distill_learning_rate")
    first_seed = columns[2].number_input("Seed", 0, 10_000, source.seed, key="distill_seed")
    seed_count = columns[3].slider("Seeds to race", 1, MAX_SEEDS, 1, key="distill_seeds", help="Several seeds show whether the gain is bigger than seed-to-seed noise")
    with st.expander("Advanced"):
        augmentations = [None, *spec(DistillConfig, "augment").choices]
        augment = st.selectbox(
            "Student augmentation",
            augmentations,
            key="distill_augment",
            format_func=lambda name: f"the preset's ({preset.augment})" if name is None else name,
            help="With random crops the teacher must run on every batch, because its logits cannot be cached",
        )
        teacher_epochs = st.number_input(
            "Teacher epochs (empty = classroom preset)", **{**bounds("teacher_epochs"), "help": "Used when the teacher has to be trained"}, placeholder="preset", key="distill_teacher_epochs"
        )

config = DistillConfig(
    labelled_fraction=labelled_fraction,
    teacher=teacher_name,
    student=student_name,
    temperature=float(temperature),
    alpha=float(alpha),
    epochs=int(epochs),
    learning_rate=float(learning_rate),
    augment=augment,
    seeds=tuple(range(int(first_seed), int(first_seed) + int(seed_count))),
    teacher_epochs=None if teacher_epochs is None else int(teacher_epochs),
    device=source.device,
)
share.write_page_link("distillation", config, student=source_student, teacher=default_teacher, learning_rate=float(preset.learning_rate))  # the current settings back into the URL
try:
    config.validate()
    check_teacher_not_smaller(config, dataset)
    recipe = student_recipe(config, dataset)
except UserError as error:
    report_error(error)
    st.stop()

# --- the teacher ------------------------------------------------------------------------------
st.subheader("The teacher")
try:
    teacher = cached_baseline(teacher_config(config, dataset_spec))
except UserError as error:
    report_error(error)
    st.stop()
if teacher is None:
    st.info(f"No '{teacher_name}' teacher is trained on {dataset.name} yet. It is trained once, then cached for every page and the CLI.")
    if classroom_mode():  # a classroom server trains it in the job queue, once for every student who asks
        queued_training(teacher_config(config, dataset_spec), str(workspace().root), "Train teacher", "distill_teacher")
        st.stop()
    if st.button("Train teacher", key="distill_train_teacher", type="primary"):
        try:
            get_teacher(config, dataset_spec, workspace(), progress_reporter("Training the teacher"), dataset=dataset)
        except UserError as error:
            report_error(error)
            st.stop()
        st.rerun()
    st.stop()

teacher_metrics = teacher.metrics
columns = st.columns(5)
columns[0].metric("Teacher accuracy", f"{teacher_metrics.accuracy:.1%}")
columns[1].metric("Teacher size (fp32)", format_bytes(teacher_metrics.size_bytes))
columns[2].metric("Teacher parameters", f"{teacher_metrics.params:,}")
columns[3].metric("Teacher MACs per image", f"{teacher_metrics.macs / 1e6:.2f} M")
columns[4].metric(f"Teacher latency (batch {teacher_metrics.latency_batch_size})", f"{teacher_metrics.latency_ms:.2f} ms")
run_name = f"run #{teacher.run_id}" if teacher.run_id is not None else "an unrecorded run"
st.caption(
    f"The teacher is {run_name}: {model_label(teacher_name)} trained on the same {len(dataset.train):,} {dataset.image_size}x{dataset.image_size} images the students see. "
    "Its logits are cached under that run, so another teacher, or this one retrained, never reuses them."
)

show_figure(soft_labels_figure(soft_label_examples(teacher.model, dataset, config.temperature)), key="distill_soft_labels")
st.caption("At T = 1 the teacher is nearly certain; at higher T the small probabilities it gives to look-alike classes (the 'dark knowledge') become visible, and that is what the student is taught.")

# --- the race ---------------------------------------------------------------------------------
st.subheader("The race")
st.caption(
    f"Both students: {labelled_images(config, dataset):,} labelled training images, {recipe.epochs} epochs, batch {recipe.batch_size}, {recipe.optimizer} at peak learning rate {recipe.learning_rate:g}, "
    f"augmentation '{recipe.augment}', seeds {', '.join(map(str, config.seeds))}."
)


def race_in_page() -> None:
    """The race inside this script run, its curves drawn epoch by epoch (outside a classroom)."""
    live_chart = st.empty()
    curves = {HARD: {}, DISTILLED: {}}
    redraws = [0]

    def draw_epoch(kind: str, seed: int, record) -> None:
        curves[kind].setdefault(seed, []).append(record)
        redraws[0] += 1
        figure = race_curves_figure(list(curves[HARD].values()), list(curves[DISTILLED].values()), teacher_metrics.accuracy, recipe.epochs)
        live_chart.plotly_chart(scale_for_presentation(figure, presentation_mode()), width="stretch", key=f"distill_live_{redraws[0]}")

    started = time.perf_counter()
    try:
        result = distill(source, config, RunContext(workspace(), progress_reporter("Racing")), on_epoch=draw_epoch)
        run_id = record(result, workspace())
    except UserError as error:
        report_error(error)
        st.stop()
    st.session_state[REPORT_KEY] = (source_key(source), result.report, run_id)  # the run id: what "What changed" compares
    live_chart.empty()
    st.success(f"Race finished in {time.perf_counter() - started:.0f} s. Saved as run {run_id}: the first seed's distilled student, which replaces run #{source.run_id}.")


def queued_race() -> None:
    """A classroom server races in the job queue, once for every student with these settings;
    when the job is done its recorded run is shown as after an in-page race."""
    job_config = {"source": source_config(source), "distill": config.as_dict(), "seed": source.seed}
    result = queued_job("distill", job_config, str(workspace().root), "Run the race", "distill", button_key="distill_run", work="race")
    stored = st.session_state.get(REPORT_KEY)
    if result is None or (stored is not None and stored[2] == result["run_id"]):
        return
    if history.get_run(workspace().history_db, result["run_id"]) is None:
        st.warning(f"The race for these settings was saved as run #{result['run_id']}, which is no longer in the history; press **Run the race** to race again.")
        return
    st.session_state[REPORT_KEY] = (source_key(source), distill_report_from_dict(result["report"]), result["run_id"])
    st.success(f"Race finished on the server. Saved as run {result['run_id']}: the first seed's distilled student, which replaces run #{source.run_id}.")


if classroom_mode():
    queued_race()
elif st.button("Run the race", key="distill_run", type="primary"):
    race_in_page()

stored = st.session_state.get(REPORT_KEY)
if stored is None or stored[0] != source_key(source):
    st.info("Press **Run the race** to train both students and compare them.")
    st.stop()
report, recorded_run_id = stored[1], stored[2]
if report.config != config:
    st.warning("These results are from the last race; the settings above have changed since. Press **Run the race** to update them.")

columns = st.columns(5)
columns[0].metric("Teacher", f"{report.teacher_accuracy:.1%}")
columns[1].metric("Student, hard labels", f"{report.student_accuracy:.1%}")
columns[2].metric("Student, distilled", f"{report.distilled_accuracy:.1%}")
spread = "" if math.isnan(report.gain_std) else f" ± {100 * report.gain_std:.2f}"
columns[3].metric(
    "Gain, points (distilled − hard)", f"{100 * report.gain:+.2f}{spread}", help="mean ± standard deviation over seeds" if len(report.gains) > 1 else "one seed: race more seeds to see the spread"
)
columns[4].metric(
    "Agreement with the teacher", f"{report.teacher_agreement:.1%}", delta=delta_or_none(100 * (report.teacher_agreement - report.hard_teacher_agreement), "{:+.1f} points vs hard labels")
)
st.caption(
    f"{report.teacher_note} Time per epoch: {report.summary()['student_seconds_per_epoch']:.2f} s plain, "
    f"{report.summary()['distilled_seconds_per_epoch']:.2f} s distilled ({report.epoch_time_ratio:.2f}×)"
    + (f"; building the cache took {report.teacher_logits_seconds:.1f} s once." if report.teacher_logits_cached else ".")
)

show_figure(race_curves_figure([r.history for r in report.hard_runs], [r.history for r in report.distilled_runs], report.teacher_accuracy, report.recipe.epochs), key="distill_curves")
if len(dataset.test) > EVAL_SUBSET_SIZE:
    st.caption(f"The curves: accuracy on {EVAL_SUBSET_SIZE:,} class-balanced test images after each epoch (quick); the metrics above: all {len(dataset.test):,} test images.")
left, right = st.columns(2)
with left:
    show_figure(size_accuracy_figure(report), key="distill_size_accuracy")
with right:
    hard_agreement = report.summary()["student_per_class_agreement"]
    distilled_agreement = report.summary()["per_class_agreement"]
    show_figure(agreement_figure(report.class_names, hard_agreement, distilled_agreement), key="distill_agreement")
if len(report.gains) > 1:
    show_figure(gain_per_seed_figure(list(report.config.seeds), report.gains), key="distill_gains")

# --- what changed: the recorded student against the run it replaces -----------------------------
# A lazy expander: the whole-test-set comparison runs only when someone opens it.
what_changed = st.expander(f"What changed: run #{recorded_run_id}, the distilled student, against the run it replaces", key="distill_diff_open", on_change="rerun")
if what_changed.open:
    with what_changed:
        comparison = run_diff(recorded_run_id)
        if comparison is not None:
            show_run_diff(comparison, key="distill_diff")
