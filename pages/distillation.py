"""Distillation: a good teacher, the same student trained twice (hard labels vs the teacher's soft
labels) under the same budget, and the difference measured over seeds."""

from __future__ import annotations

import math
import time

import streamlit as st

from core.charts.distillation import agreement_figure, gain_per_seed_figure, race_curves_figure, size_accuracy_figure, soft_labels_figure
from core.charts.style import scale_for_presentation
from core.distillation import DISTILLED, HARD, DistillConfig, available_teachers, check_teacher_not_smaller, distill, get_teacher, register_teacher_models, soft_label_examples, student_recipe, teacher_config
from core.errors import UserError
from core.models import STUDENT_MODELS
from core.training import classroom_recipe
from ui.state import cached_baseline, format_bytes, presentation_mode, progress_reporter, report_error, require_baseline, show_figure, workspace

REPORT_KEY = "distill_last_report"
register_teacher_models()  # so a cached ResNet-18 teacher can be loaded

st.title("Knowledge distillation")
st.markdown(
    "A big **teacher** is trained once. A small **student** is then trained twice with the same starting weights, "
    "the same batches in the same order and the same optimiser: once on the true labels only, once also imitating "
    "the teacher's *softened* class probabilities (temperature **T**). Whatever differs at the end is distillation."
)

baseline = require_baseline()
dataset, spec = baseline.dataset, baseline.config.dataset

# --- controls (changing them never retrains: the race runs only on the button) -------------------
default_student = baseline.config.model if baseline.config.model in STUDENT_MODELS else STUDENT_MODELS[0]
with st.container(border=True):
    columns = st.columns(4)
    teacher_name = columns[0].selectbox("Teacher", available_teachers(), key="distill_teacher", help="'teacher' is the lab's small ResNet; resnet18 is torchvision's, adapted to small images")
    student_name = columns[1].selectbox("Student", STUDENT_MODELS, index=STUDENT_MODELS.index(default_student), key="distill_student")
    temperature = columns[2].slider("Temperature T", 0.5, 20.0, DistillConfig.temperature, 0.5, key="distill_temperature", help="Higher T spreads the teacher's probability over the wrong-but-plausible classes")
    alpha = columns[3].slider("Weight of the teacher (alpha)", 0.0, 1.0, DistillConfig.alpha, 0.05, key="distill_alpha", help="alpha × T² × KL(teacher ‖ student) + (1 − alpha) × cross-entropy with the true labels")
    preset = classroom_recipe(dataset, student_name)
    columns = st.columns(4)
    epochs = columns[0].number_input("Student epochs", 1, 200, preset.epochs, key="distill_epochs", help="Both students get exactly this budget")
    learning_rate = columns[1].number_input("Learning rate", 1e-5, 1.0, preset.learning_rate, step=1e-4, format="%.4f", key="distill_learning_rate")
    first_seed = columns[2].number_input("Seed", 0, 10_000, 0, key="distill_seed")
    seed_count = columns[3].slider("Seeds to race", 1, 5, 1, key="distill_seeds", help="Several seeds show whether the gain is bigger than seed-to-seed noise")
    with st.expander("Advanced"):
        augment = st.selectbox("Student augmentation", ["none", "crop", "flip_crop"], key="distill_augment", help="With random crops the teacher must run on every batch, because its logits cannot be cached")
        teacher_epochs = st.number_input("Teacher epochs (empty = classroom preset)", 1, 200, value=None, placeholder="preset", key="distill_teacher_epochs", help="Used when the teacher has to be trained")

config = DistillConfig(
    teacher=teacher_name,
    student=student_name,
    temperature=float(temperature),
    alpha=float(alpha),
    epochs=int(epochs),
    learning_rate=float(learning_rate),
    augment=augment,
    seeds=tuple(range(int(first_seed), int(first_seed) + int(seed_count))),
    teacher_epochs=None if teacher_epochs is None else int(teacher_epochs),
    device=baseline.config.device,
)
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
    teacher = cached_baseline(teacher_config(config, spec))
except UserError as error:
    report_error(error)
    st.stop()
if teacher is None:
    st.info(f"No '{teacher_name}' teacher is trained on {dataset.name} yet. It is trained once, then cached for every page and the CLI.")
    if st.button("Train teacher", key="distill_train_teacher", type="primary"):
        try:
            get_teacher(config, spec, workspace(), progress_reporter("Training the teacher"), dataset=dataset)
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

show_figure(soft_labels_figure(soft_label_examples(teacher.model, dataset, config.temperature)), key="distill_soft_labels")
st.caption("At T = 1 the teacher is nearly certain; at higher T the small probabilities it gives to look-alike classes (the 'dark knowledge') become visible, and that is what the student is taught.")

# --- the race ---------------------------------------------------------------------------------
st.subheader("The race")
st.caption(
    f"Both students: {recipe.epochs} epochs, batch {recipe.batch_size}, {recipe.optimizer} at peak learning rate {recipe.learning_rate:g}, "
    f"augmentation '{recipe.augment}', seeds {', '.join(map(str, config.seeds))}."
)
if st.button("Run the race", key="distill_run", type="primary"):
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
        report = distill(config, spec, workspace(), progress_reporter("Racing"), dataset=dataset, on_epoch=draw_epoch)
    except UserError as error:
        report_error(error)
        st.stop()
    st.session_state[REPORT_KEY] = (spec, report)
    live_chart.empty()
    st.success(f"Race finished in {time.perf_counter() - started:.0f} s and saved to the run history (run {report.run_id}).")

stored = st.session_state.get(REPORT_KEY)
if stored is None or stored[0] != spec:
    st.info("Press **Run the race** to train both students and compare them.")
    st.stop()
report = stored[1]
if report.config != config:
    st.warning("These results are from the last race; the settings above have changed since. Press **Run the race** to update them.")

columns = st.columns(5)
columns[0].metric("Teacher", f"{report.teacher_accuracy:.1%}")
columns[1].metric("Student, hard labels", f"{report.student_accuracy:.1%}")
columns[2].metric("Student, distilled", f"{report.distilled_accuracy:.1%}")
spread = "" if math.isnan(report.gain_std) else f" ± {100 * report.gain_std:.2f}"
columns[3].metric("Gain, points (distilled − hard)", f"{100 * report.gain:+.2f}{spread}", help="mean ± standard deviation over seeds" if len(report.gains) > 1 else "one seed: race more seeds to see the spread")
columns[4].metric("Agreement with the teacher", f"{report.teacher_agreement:.1%}", delta=f"{100 * (report.teacher_agreement - report.hard_teacher_agreement):+.1f} points vs hard labels")
st.caption(
    f"{report.teacher_note} Time per epoch: {report.summary()['student_seconds_per_epoch']:.2f} s plain, "
    f"{report.summary()['distilled_seconds_per_epoch']:.2f} s distilled ({report.epoch_time_ratio:.2f}×)"
    + (f"; building the cache took {report.teacher_logits_seconds:.1f} s once." if report.teacher_logits_cached else ".")
)

show_figure(race_curves_figure([r.history for r in report.hard_runs], [r.history for r in report.distilled_runs], report.teacher_accuracy, report.recipe.epochs), key="distill_curves")
left, right = st.columns(2)
with left:
    show_figure(size_accuracy_figure(report), key="distill_size_accuracy")
with right:
    hard_agreement = report.summary()["student_per_class_agreement"]
    distilled_agreement = report.summary()["per_class_agreement"]
    show_figure(agreement_figure(report.class_names, hard_agreement, distilled_agreement), key="distill_agreement")
if len(report.gains) > 1:
    show_figure(gain_per_seed_figure(list(report.config.seeds), report.gains), key="distill_gains")
