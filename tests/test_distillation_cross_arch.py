"""Cross-architecture distillation (issue 26, item 5): any architecture the registry offers teaches any
other, both see the same dataset tensors, and the teacher-logit cache is keyed by the teacher's run.

The torchvision ResNet-18 (small-image stem) teaches here; a non-offered architecture (MobileNetV2
x0.5) learns through the race's own pieces (build_model, the cache, distillation_loss, train_model),
which do not depend on the registry offering it."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pytest
import torch

from core.cli.main import main
from core.contract.options import spec
from core.distillation import DistillConfig, check_teacher_not_smaller, default_student, distillation_loss, get_teacher, run_race, teacher_logits
from core.distillation import race as race_module
from core.distillation.config import student_recipe
from core.distillation.teacher_logits import TeacherLogitCache, teacher_logit_source, teacher_logits_key, teacher_logits_path
from core.distillation.teachers import DEFAULT_TEACHER, DISTILLATION_MODELS, available_students, available_teachers, grouped_names, model_label
from core.foundation import history
from core.foundation.baseline.trained import BaselineConfig, get_baseline
from core.foundation.data.datasets import DatasetSpec
from core.foundation.errors import UserError
from core.foundation.models.names import MODEL_GROUPS, MODEL_NAMES, RETIRED_MODELS, STUDENT_MODELS, available_model_groups
from core.foundation.models.registry import build_model
from core.foundation.training.loop import train_model
from tests.conftest import open_app_page

# 200 training images (the sidebar's "Train images"), the whole test split: the ResNet-18 teacher trains in seconds.
SMALL_DIGITS = DatasetSpec("digits", train_size=200)
TEACHER_EPOCHS = 1  # the mechanics need a trained teacher run, not a good one
RESNET18 = "resnet18"


def cross_config(**overrides) -> DistillConfig:
    settings = {"teacher": RESNET18, "student": "simple_cnn_narrow", "teacher_epochs": TEACHER_EPOCHS, "epochs": 1, "augment": "none", "seeds": (0,), "device": "cpu", **overrides}
    return DistillConfig(**settings)


@pytest.fixture(scope="module")
def resnet18_teacher(session_workspace):
    return get_teacher(cross_config(), SMALL_DIGITS, session_workspace)


# --- the choices: the registry's offered list, grouped ---------------------------------------


def test_teachers_and_students_are_the_registrys_offered_models_in_its_groups():
    assert spec(DistillConfig, "teacher").choices == DISTILLATION_MODELS == spec(DistillConfig, "student").choices
    assert set(MODEL_NAMES) - set(DISTILLATION_MODELS) == set(RETIRED_MODELS)  # every registry name but the retired
    grouped = [name for names in available_model_groups().values() for name in names]
    assert available_teachers() == grouped == available_students() and RESNET18 in grouped
    assert spec(DistillConfig, "teacher").default == DEFAULT_TEACHER == "teacher"  # the default teacher is unchanged
    # The default student stays the source's own architecture when it is one of the lab's students, else simple_cnn.
    assert [default_student(name) for name in STUDENT_MODELS] == list(STUDENT_MODELS)
    assert default_student(RESNET18) == default_student("teacher") == spec(DistillConfig, "student").default == "simple_cnn"
    assert model_label(RESNET18) == "resnet18 · torchvision" and model_label("teacher") == "teacher · the lab's own"
    text = grouped_names(DISTILLATION_MODELS)
    assert text.startswith("the lab's own: simple_cnn, ") and "; torchvision: resnet18" in text
    assert text.count(";") == sum(bool(set(names) & set(DISTILLATION_MODELS)) for names in MODEL_GROUPS.values()) - 1


def test_a_student_that_was_refused_before_is_a_valid_choice_now():
    cross_config(student="teacher").validate()  # the lab's small ResNet learns from torchvision's ResNet-18
    cross_config(teacher="simple_cnn_wide", student="simple_cnn").validate()


def test_an_unknown_teacher_or_student_is_one_line():
    for field in ("teacher", "student"):
        with pytest.raises(UserError) as refused:
            cross_config(**{field: "giant"}).validate()
        assert str(refused.value).startswith(f"--{field} must be one of simple_cnn, simple_cnn_narrow, simple_cnn_wide, teacher, resnet18") and "\n" not in str(refused.value)


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_a_model_whose_smallest_image_exceeds_the_data_is_refused_naming_the_minimum(resnet18_teacher, role):
    """convnext_tiny halves the image four times (16 px at least); digits are 8x8. The check needs only
    the data's shape, so it runs before anything trains, whether or not the registry offers the model yet."""
    config = dataclasses.replace(cross_config(), **{role: "convnext_tiny"})
    with pytest.raises(UserError) as refused:
        check_teacher_not_smaller(config, resnet18_teacher.dataset)
    line = str(refused.value)
    assert line.startswith(f"{role} 'convnext_tiny' needs images of at least 16x16 pixels (") and "these are 8x8" in line and "\n" not in line


# --- the race across architectures -------------------------------------------------------------


def test_a_resnet18_teacher_distils_another_architecture_from_the_same_tensors(session_workspace, resnet18_teacher, monkeypatch):
    """The distilled student's soft targets are the ResNet-18's logits for the very inputs the student sees."""
    checked = []
    real_loss = race_module.distillation_loss

    def spying_loss(source, temperature, alpha, label_smoothing=0.0):
        inner = real_loss(source, temperature, alpha, label_smoothing)

        def loss(student_logits, batch):
            with torch.no_grad():
                looked_up = source.logits_for(batch)
                from_the_teacher = resnet18_teacher.model(batch.inputs)  # the teacher on the student's own batch
            value = inner(student_logits, batch)
            checked.append((torch.allclose(looked_up, from_the_teacher, atol=1e-4), batch.inputs.shape[1:], bool(torch.isfinite(value))))
            return value

        return loss

    monkeypatch.setattr(race_module, "distillation_loss", spying_loss)
    report = run_race(cross_config(), SMALL_DIGITS, session_workspace)
    assert report.teacher_run_id == resnet18_teacher.run_id and report.summary()["teacher"] == RESNET18 and report.summary()["student"] == "simple_cnn_narrow"
    assert report.teacher_logits_cached and f"run #{resnet18_teacher.run_id}" in report.teacher_note
    assert len(checked) == -(-200 // report.recipe.batch_size)  # one check per distillation step of the one epoch
    assert all(same for same, _, _ in checked), "the soft targets are the teacher's logits for the student's inputs"
    assert {shape for _, shape, _ in checked} == {torch.Size([1, 8, 8])} and all(finite for _, _, finite in checked)
    assert report.teacher_metrics.params > 10 * report.student_metrics.params  # ResNet-18 (11 M) teaches the narrow CNN
    assert all(torch.isfinite(torch.tensor([record.train_loss for run in report.distilled_runs for record in run.history])))


def test_a_non_offered_architecture_learns_from_the_resnet18_teachers_cached_logits(session_workspace, resnet18_teacher):
    """MobileNetV2 x0.5 (a torchvision network the registry builds) as the student, through the race's own pieces."""
    dataset = resnet18_teacher.dataset
    recipe = student_recipe(cross_config(), dataset)
    source, _ = teacher_logit_source(resnet18_teacher, dataset, recipe, torch.device("cpu"), session_workspace)
    assert isinstance(source, TeacherLogitCache)
    torch.manual_seed(0)
    student = build_model("mobilenet_v2_x0_5", dataset.channels, dataset.image_size, dataset.num_classes)
    seen = []

    def loss(student_logits, batch):
        soft = source.logits_for(batch)
        seen.append(torch.equal(soft, source.plain[batch.indices]))
        return distillation_loss(source, 2.0, 0.5)(student_logits, batch)

    result = train_model(student, dataset, recipe, torch.device("cpu"), 0, loss_fn=loss)
    assert seen and all(seen) and source.lookups == 2 * len(seen)  # every step's soft targets are the teacher's cached logits
    assert all(torch.isfinite(torch.tensor([record.train_loss for record in result.history])))


# --- the cache is keyed by the teacher's run ---------------------------------------------------


def test_the_logit_cache_key_names_the_teachers_run(session_workspace, resnet18_teacher):
    key = teacher_logits_key(resnet18_teacher)
    assert key.startswith(f"run{resnet18_teacher.run_id}-{resnet18_teacher.checkpoint.name}-")
    assert resnet18_teacher.checkpoint.name.startswith("resnet18-")
    another_run = dataclasses.replace(resnet18_teacher, run_id=resnet18_teacher.run_id + 1000)
    assert teacher_logits_key(another_run) != key  # same weights, another run: never the same logits file
    assert teacher_logits_path(another_run, session_workspace, with_flips=False) != teacher_logits_path(resnet18_teacher, session_workspace, with_flips=False)


def test_two_teacher_runs_never_share_logits_and_a_retrained_teacher_computes_them_anew(workspace, monkeypatch):
    """The lab's small teacher (cheap to train three times): seeds 0 and 1 are two runs with two cache
    files; retraining seed 0 (its checkpoint gone) is a third run whose logits are computed, not loaded."""
    built = []
    real_build = teacher_logits.build_teacher_logit_cache
    monkeypatch.setattr(teacher_logits, "build_teacher_logit_cache", lambda *a, **k: built.append(1) or real_build(*a, **k))
    config = cross_config(teacher=DEFAULT_TEACHER)
    first = run_race(config, SMALL_DIGITS, workspace)
    second = run_race(dataclasses.replace(config, teacher_seed=1), SMALL_DIGITS, workspace)
    assert first.teacher_run_id != second.teacher_run_id and len(built) == 2
    files = sorted(path.name for path in (workspace.root / "teacher-logits").glob("*.safetensors") if ".test." not in path.name)
    assert len(files) == 2 and {name.split("-")[0] for name in files} == {f"run{first.teacher_run_id}", f"run{second.teacher_run_id}"}
    again = run_race(config, SMALL_DIGITS, workspace)
    assert "loaded from the workspace" in again.teacher_note and len(built) == 2  # the same run: its logits are read back

    shutil.rmtree(get_teacher(config, SMALL_DIGITS, workspace).checkpoint)  # the teacher is retrained: a new run
    retrained = run_race(config, SMALL_DIGITS, workspace)
    assert retrained.teacher_run_id not in (first.teacher_run_id, second.teacher_run_id)
    assert "computed once" in retrained.teacher_note and len(built) == 3
    runs = [run for run in history.list_runs(workspace.history_db, model=DEFAULT_TEACHER)]
    assert {run.id for run in runs} == {first.teacher_run_id, second.teacher_run_id, retrained.teacher_run_id}


# --- the command line and the page -------------------------------------------------------------


def test_the_cli_distils_a_resnet18_teacher_into_another_architecture(session_workspace, resnet18_teacher, capsys):
    argv = ["distill", "--workspace", str(session_workspace.root), "--dataset", "digits", "--train-size", "200", "--device", "cpu"]
    argv += ["--teacher", RESNET18, "--student", "teacher", "--teacher-epochs", str(TEACHER_EPOCHS), "--epochs", "1", "--augment", "none"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["teacher"] == RESNET18 and payload["student"] == "teacher" and payload["config"]["teacher_run_id"] == resnet18_teacher.run_id
    run = history.get_run(session_workspace.history_db, payload["run_id"])
    assert run.technique == "distill" and run.model == "teacher" and run.params["teacher"] == RESNET18 and run.params["teacher_run_id"] == resnet18_teacher.run_id


def test_the_cli_offers_the_registrys_list_grouped_and_refuses_an_unknown_model_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["distill", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"--teacher MODEL teacher model, any of {grouped_names(DISTILLATION_MODELS)} (default: teacher)" in help_text
    assert f"--student MODEL student model, any of {grouped_names(DISTILLATION_MODELS)}" in help_text
    assert main(["distill", "--workspace", str(tmp_path), "--student", "giant"]) == 2
    error = capsys.readouterr().err
    assert "argument --student: invalid choice: 'giant'" in error and error.count("\n") == 1
    assert not (tmp_path / "checkpoints").exists()


def test_the_page_races_a_resnet18_teacher_against_another_architecture(session_workspace, resnet18_teacher):
    get_baseline(BaselineConfig(SMALL_DIGITS), session_workspace)  # the sidebar's baseline on 200 images

    def small_sidebar(at):
        at.number_input(key="sidebar_train_size").set_value(200).run()

    at = open_app_page("pages/distillation.py", timeout_s=300, before_switch=small_sidebar)
    assert not at.exception
    teacher_box, student_box = at.selectbox(key="distill_teacher"), at.selectbox(key="distill_student")
    assert teacher_box.options == [model_label(name) for name in available_teachers()] == student_box.options
    assert teacher_box.value == DEFAULT_TEACHER and student_box.value == "simple_cnn"  # the defaults are unchanged
    teacher_box.set_value(RESNET18)
    student_box.set_value("teacher")
    at.number_input(key="distill_teacher_epochs").set_value(TEACHER_EPOCHS)
    at.select_slider(key="distill_labelled").set_value(1.0)
    at.number_input(key="distill_epochs").set_value(1).run()
    assert not at.exception and not at.error
    assert any(f"The teacher is run #{resnet18_teacher.run_id}: resnet18 · torchvision" in caption.value for caption in at.caption)
    at.button(key="distill_run").click().run()
    assert not at.exception and not at.error
    run = [run for run in history.list_runs(session_workspace.history_db) if run.technique == "distill"][-1]
    assert run.model == "teacher" and run.params["teacher"] == RESNET18 and run.params["teacher_run_id"] == resnet18_teacher.run_id
    assert any(re.search(rf"Saved as run {run.id}\b", success.value) for success in at.success)
