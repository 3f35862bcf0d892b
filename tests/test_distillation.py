"""Distillation: the KD loss, the teacher-logit cache, the fair race (core.distillation.race.run_race,
which records nothing), the technique (distill(source, config, context), recorded by core.contract.record),
the CLI and the charts."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from core.charts.distillation import agreement_figure, gain_per_seed_figure, race_curves_figure, size_accuracy_figure, soft_labels_figure
from core.cli.main import main
from core.contract.context import RunContext
from core.contract.record import record
from core.contract.source import ModelSource
from core.distillation import DistillConfig, distill, get_teacher, kd_loss, run_race, teacher_logits, teachers
from core.distillation import race as race_module
from core.distillation.config import DISTILL_PRESETS, labelled_images, student_dataset, student_recipe
from core.distillation.soft_labels import soft_label_examples
from core.distillation.teacher_logits import TeacherLogitCache, build_teacher_logit_cache
from core.foundation import history
from core.foundation.data.datasets import DatasetSpec, load_dataset
from core.foundation.errors import UserError
from core.foundation.measures.latency import THROUGHPUT_BATCH_SIZE
from core.foundation.models.registry import build_model
from core.foundation.training.loop import Batch, evaluate, predict_logits
from core.foundation.workspace import WEIGHTS_FILE

DIGITS = DatasetSpec("digits")
# A quick teacher (16 epochs, ~96% on digits; fewer leave its batch-norm statistics unsettled) shared by every test here through the session workspace.
TEACHER_EPOCHS = 16


def quick_config(**overrides) -> DistillConfig:
    settings = {"teacher_epochs": TEACHER_EPOCHS, "epochs": 2, "seeds": (0,), "device": "cpu", **overrides}
    return DistillConfig(**settings)


@pytest.fixture(scope="module")
def digits_teacher(session_workspace):
    return get_teacher(quick_config(), DIGITS, session_workspace)


# --- the loss ---------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 20.0])
def test_kd_loss_is_zero_when_student_matches_teacher_and_alpha_is_1(temperature):
    generator = torch.Generator().manual_seed(0)  # its own numbers, whatever ran before it in the session
    logits = torch.randn(16, 10, generator=generator) * 3
    labels = torch.randint(0, 10, (16,), generator=generator)
    assert kd_loss(logits, logits.clone(), labels, temperature, alpha=1.0).item() == pytest.approx(0.0, abs=1e-6)
    # Softmax ignores a shift; float32 rounding of the shifted logits is scaled by the loss's T^2 factor.
    rounding = 1e-5 * max(1.0, temperature**2 / 16)
    assert kd_loss(logits + 1.0, logits, labels, temperature, alpha=1.0).item() == pytest.approx(0.0, abs=rounding)
    assert kd_loss(logits.flip(1), logits, labels, temperature, alpha=1.0).item() > 1e-3


def test_kd_loss_with_alpha_0_is_plain_cross_entropy():
    student, teacher = torch.randn(32, 10), torch.randn(32, 10)
    labels = torch.randint(0, 10, (32,))
    assert torch.equal(kd_loss(student, teacher, labels, 4.0, alpha=0.0), F.cross_entropy(student, labels))
    smoothed = kd_loss(student, teacher, labels, 4.0, alpha=0.0, label_smoothing=0.1)
    assert torch.allclose(smoothed, F.cross_entropy(student, labels, label_smoothing=0.1))


def _soft_gradient_norm(temperature: float, scaled: bool) -> float:
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(64, 10, generator=generator).requires_grad_()
    teacher = torch.randn(64, 10, generator=generator)
    loss = kd_loss(student, teacher, torch.zeros(64, dtype=torch.long), temperature, alpha=1.0)
    if not scaled:
        loss = loss / temperature**2
    loss.backward()
    return student.grad.norm().item()


def test_t_squared_scaling_keeps_gradient_size_comparable_across_temperatures():
    norms = {t: _soft_gradient_norm(t, scaled=True) for t in (2.0, 4.0, 8.0, 16.0)}
    assert max(norms.values()) / min(norms.values()) < 2.0
    # Without T^2 the soft gradient shrinks roughly as 1 / T^2: the scaling is what keeps it comparable.
    assert _soft_gradient_norm(2.0, scaled=False) / _soft_gradient_norm(16.0, scaled=False) > 30


def test_kd_loss_does_not_backpropagate_into_the_teacher():
    student, teacher = torch.randn(8, 10, requires_grad=True), torch.randn(8, 10, requires_grad=True)
    kd_loss(student, teacher, torch.zeros(8, dtype=torch.long), 4.0, 0.5).backward()
    assert student.grad is not None and teacher.grad is None


# --- the teacher-logit cache ------------------------------------------------------------------


def test_cache_holds_the_teachers_logits_and_mirrored_copies(digits_teacher):
    dataset = digits_teacher.dataset
    cache = build_teacher_logit_cache(digits_teacher.model, dataset, torch.device("cpu"), with_flips=True)
    indices = torch.tensor([5, 0, 17, 3])
    flipped = torch.tensor([False, True, True, False])
    batch = Batch(inputs=torch.empty(0), labels=dataset.train.labels[indices], indices=indices, flipped=flipped)
    looked_up = cache.logits_for(batch)
    images = dataset.train.images[indices]
    images = torch.where(flipped.view(-1, 1, 1, 1), images.flip(-1), images)
    with torch.no_grad():
        expected = digits_teacher.model(dataset.normalize(images))
    assert torch.allclose(looked_up, expected, atol=1e-4)
    assert cache.lookups == 1
    without_flips = TeacherLogitCache(cache.plain)
    with pytest.raises(RuntimeError, match="mirrored"):
        without_flips.logits_for(batch)


def _count_teacher_images(monkeypatch):
    """Wrap get_teacher so every image the teacher model sees during a race is counted."""
    seen = {"images": 0}
    real_get_teacher = race_module.get_teacher

    def counting_get_teacher(*args, **kwargs):
        teacher = real_get_teacher(*args, **kwargs)
        teacher.model.register_forward_hook(lambda module, inputs, output: seen.__setitem__("images", seen["images"] + len(inputs[0])))
        return teacher

    monkeypatch.setattr(race_module, "get_teacher", counting_get_teacher)
    return seen


def forget_saved_teacher_logits(workspace) -> None:
    shutil.rmtree(workspace.root / "teacher-logits", ignore_errors=True)


def test_teacher_logits_are_cached_once_and_looked_up_every_step(session_workspace, digits_teacher, monkeypatch):
    forget_saved_teacher_logits(session_workspace)
    seen = _count_teacher_images(monkeypatch)
    caches = []
    real_build = teacher_logits.build_teacher_logit_cache
    monkeypatch.setattr(teacher_logits, "build_teacher_logit_cache", lambda *a, **k: caches.append(real_build(*a, **k)) or caches[-1])
    report = run_race(quick_config(epochs=2, seeds=(0, 1)), DIGITS, session_workspace)
    dataset = digits_teacher.dataset
    assert report.teacher_logits_cached and "cached" in report.teacher_note
    # The teacher saw each training image once (the cache) and each test image once (agreement), nothing per step.
    assert seen["images"] == len(dataset.train) + len(dataset.test)
    steps = 2 * -(-len(dataset.train) // report.recipe.batch_size)
    assert len(caches) == 1 and caches[0].lookups == 2 * steps  # two seeds, every step served from the one cache
    assert torch.allclose(caches[0].plain, predict_logits(digits_teacher.model, dataset, dataset.train, torch.device("cpu")), atol=1e-5)

    # The next race with the same teacher loads the logits from the workspace: the teacher does not run at all.
    seen["images"] = 0
    again = run_race(quick_config(epochs=1, temperature=2.0), DIGITS, session_workspace)
    assert seen["images"] == 0 and len(caches) == 1 and "loaded from the workspace" in again.teacher_note


def test_saved_teacher_logits_that_do_not_fit_are_recomputed(session_workspace, digits_teacher, monkeypatch):
    forget_saved_teacher_logits(session_workspace)
    run_race(quick_config(epochs=1), DIGITS, session_workspace)
    saved = teacher_logits.teacher_logits_path(digits_teacher, session_workspace, with_flips=False)
    save_file({"plain": torch.zeros(3, 10)}, str(saved))  # e.g. written for another split
    seen = _count_teacher_images(monkeypatch)
    report = run_race(quick_config(epochs=1), DIGITS, session_workspace)
    assert seen["images"] == len(digits_teacher.dataset.train) and "computed once" in report.teacher_note
    assert load_file(saved)["plain"].shape == (len(digits_teacher.dataset.train), 10)


def test_random_crops_run_the_teacher_per_batch_and_say_so(session_workspace, digits_teacher, monkeypatch):
    forget_saved_teacher_logits(session_workspace)
    seen = _count_teacher_images(monkeypatch)
    report = run_race(quick_config(epochs=1, augment="crop"), DIGITS, session_workspace)
    dataset = digits_teacher.dataset
    assert not report.teacher_logits_cached and "cannot be cached" in report.teacher_note
    assert report.teacher_logits_seconds == 0.0
    assert seen["images"] == len(dataset.train) + len(dataset.test)  # one epoch of batches, plus the test set
    assert report.summary()["teacher_logits_cached"] is False


# --- the race ---------------------------------------------------------------------------------


def test_both_students_see_identical_batches_in_identical_order(session_workspace, digits_teacher, monkeypatch):
    order: dict[str, list[list[int]]] = {}
    real_train_model = race_module.train_model

    def recording_train_model(model, dataset, recipe, device, seed, progress, stop, loss_fn=None, stage="train", **kwargs):
        batches = order.setdefault(f"{stage}-{seed}", [])
        inner = loss_fn or (lambda logits, batch: F.cross_entropy(logits, batch.labels))

        def spy(logits, batch):
            batches.append(batch.indices.tolist())
            return inner(logits, batch)

        return real_train_model(model, dataset, recipe, device, seed, progress, stop, loss_fn=spy, stage=stage, **kwargs)

    monkeypatch.setattr(race_module, "train_model", recording_train_model)
    run_race(quick_config(epochs=2, seeds=(0, 1)), DIGITS, session_workspace)
    assert order["hard-0"] == order["distilled-0"] and order["hard-1"] == order["distilled-1"]
    assert order["hard-0"] != order["hard-1"]  # the order does depend on the seed
    assert sorted(sum(order["hard-0"][: len(order["hard-0"]) // 2], [])) == list(range(len(digits_teacher.dataset.train)))


def test_with_alpha_0_both_students_end_identical(session_workspace, digits_teacher):
    """Same initial weights, data order and optimiser: with no soft loss the two runs must coincide exactly."""
    report = run_race(quick_config(alpha=0.0, epochs=2), DIGITS, session_workspace)
    hard, distilled = report.hard_runs[0], report.distilled_runs[0]
    assert hard.accuracy == distilled.accuracy and report.gain == 0.0
    assert [r.train_loss for r in hard.history] == pytest.approx([r.train_loss for r in distilled.history], rel=1e-6)


def test_race_records_nothing(session_workspace, digits_teacher):
    runs_before = history.count_runs(session_workspace.history_db)
    report = run_race(quick_config(epochs=1), DIGITS, session_workspace)
    assert history.count_runs(session_workspace.history_db) == runs_before
    assert report.run_id is None and report.model is not None and report.teacher_run_id == digits_teacher.run_id


def test_report_records_the_run_and_saves_the_distilled_student(session_workspace, digits_baseline, digits_teacher):
    on_epoch = []
    source = ModelSource.from_baseline(digits_baseline)
    result = distill(source, quick_config(epochs=3, seeds=(0, 1, 2)), RunContext(session_workspace), on_epoch=lambda kind, seed, epoch: on_epoch.append((kind, seed, epoch.epoch)))
    report = result.report
    run_id = record(result, session_workspace)
    assert on_epoch[:3] == [("hard", 0, 1), ("hard", 0, 2), ("hard", 0, 3)] and len(on_epoch) == 3 * 2 * 3
    summary = report.summary()
    for key in ("teacher_accuracy", "student_accuracy", "distilled_accuracy", "gain", "gain_std", "teacher_size_bytes", "student_size_bytes", "teacher_agreement"):
        assert key in summary
    gains = [d - h for h, d in zip(summary["student_accuracies"], summary["distilled_accuracies"])]
    assert summary["gain"] == pytest.approx(np.mean(gains)) and summary["gain_std"] == pytest.approx(np.std(gains, ddof=1))
    assert summary["teacher_size_bytes"] > summary["student_size_bytes"] > 0
    assert summary["teacher_accuracy"] > 0.9 and summary["distilled_accuracy"] > 0.5
    # Per-class agreement, weighted by class counts, is the overall agreement.
    labels = digits_teacher.dataset.test.labels
    counts = torch.bincount(labels, minlength=10).float()
    for run in report.distilled_runs:
        assert float((torch.tensor(run.per_class_agreement) * counts).sum() / counts.sum()) == pytest.approx(run.teacher_agreement, abs=1e-6)
    # The recorded run derives from the source it replaces (the baseline); the teacher is named in its params and details.
    run = history.get_run(session_workspace.history_db, run_id)
    assert run_id == result.run_id and run.technique == "distill" and run.model == "simple_cnn"
    assert run.parent_id == digits_baseline.run_id and run.parent_id != digits_teacher.run_id
    assert run.params["teacher_run_id"] == digits_teacher.run_id and run.metrics["details"]["teacher_run_id"] == digits_teacher.run_id
    assert run.params["temperature"] == DistillConfig.temperature and run.params["lineage"] == [digits_baseline.run_id]
    # The headline: the source before, the first seed's distilled student after, on the full test split.
    headline = result.headline
    assert headline.accuracy_before == pytest.approx(digits_baseline.evaluation.accuracy)
    assert headline.accuracy_after == report.distilled_runs[0].accuracy == run.metrics["accuracy_after"] == run.metrics["accuracy"]
    assert headline.eval_images == len(digits_teacher.dataset.test) and headline.latency_batch_size == THROUGHPUT_BATCH_SIZE
    assert headline.size_bytes_before == digits_baseline.metrics.size_bytes and headline.size_bytes_after == report.student_metrics.size_bytes
    # The saved student is the first seed's distilled one and scores what the report says.
    folder = session_workspace.resolve_artifact(run.artifact_path)
    assert folder == result.artifact.path and not run.artifact_path.startswith("/")  # stored relative to the workspace
    weights = load_file(str(folder / WEIGHTS_FILE))
    student = build_model("simple_cnn", 1, 8, 10)
    student.load_state_dict(weights)
    assert evaluate(student, digits_teacher.dataset, digits_teacher.dataset.test).accuracy == pytest.approx(report.distilled_runs[0].accuracy)
    # ...and reads back as a model source of its own, e.g. to prune it next.
    again = ModelSource.from_run(session_workspace, run_id, device="cpu")
    assert again.technique == "distill" and again.lineage == (digits_baseline.run_id, run_id)
    assert again.accuracy == pytest.approx(report.distilled_runs[0].accuracy)


def test_distillation_refuses_a_quantized_source_before_any_training(session_workspace, digits_baseline, monkeypatch):
    monkeypatch.setattr(race_module, "get_teacher", lambda *a, **k: pytest.fail("the teacher was looked up"))
    quantized = dataclasses.replace(ModelSource.from_baseline(digits_baseline), quantized=True)
    with pytest.raises(UserError, match="already quantized"):
        distill(quantized, quick_config(epochs=1), RunContext(session_workspace))


def test_one_seed_reports_no_spread(session_workspace, digits_teacher):
    report = run_race(quick_config(epochs=1), DIGITS, session_workspace)
    assert np.isnan(report.gain_std)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"temperature": 0.0}, "--temperature must be in 0.05..100, got 0"),
        ({"temperature": -2.0}, "--temperature must be in 0.05..100, got -2"),
        ({"temperature": 200.0}, "--temperature must be in 0.05..100, got 200"),
        ({"temperature": float("nan")}, "--temperature must be a finite number"),
        ({"alpha": 1.2}, "--alpha must be in 0..1, got 1.2"),
        ({"alpha": -0.1}, "--alpha must be in 0..1, got -0.1"),
        ({"student": "giant"}, "--student must be one of simple_cnn, simple_cnn_narrow, simple_cnn_wide, teacher, resnet18, resnet50, mobilenet_v2"),
        ({"teacher": "giant"}, "--teacher must be one of simple_cnn, simple_cnn_narrow, simple_cnn_wide, teacher, resnet18, resnet50, mobilenet_v2"),
        ({"seeds": (1, 1)}, "seeds must be different"),
        ({"seeds": tuple(range(11))}, "at most 10 seeds"),
        ({"epochs": 0}, "--epochs must be in 1..200, got 0"),
        ({"epochs": 201}, "--epochs must be in 1..200, got 201"),
    ],
)
def test_bad_settings_are_user_errors(overrides, message):
    with pytest.raises(UserError, match=re.escape(message)):
        quick_config(**overrides).validate()


# --- the command line -------------------------------------------------------------------------


def _write_tiny_rgb_folder(root, per_class=2):
    """A 32x32 colour dataset in ImageFolder layout: big enough images that the wide student outgrows the teacher."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize(
    "args, message",
    [
        (["--temperature", "0"], "--temperature must be in 0.05..100, got 0"),
        (["--alpha", "1.5"], "--alpha must be in 0..1, got 1.5"),
        (["--alpha", "-0.5"], "--alpha must be in 0..1, got -0.5"),
        (["--seeds", "0"], "--seeds must be between 1 and 10, got 0"),
        (["--seeds", "11"], "--seeds must be between 1 and 10, got 11"),
        (["--teacher", "giant"], "argument --teacher: invalid choice: 'giant'"),
        (["--epochs", "0"], "--epochs must be in 1..200, got 0"),  # the students' budget
    ],
)
def test_cli_rejects_bad_settings_with_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["distill", "--workspace", str(tmp_path), *args]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "checkpoints").exists()  # refused before any baseline or teacher was trained


def test_cli_rejects_a_teacher_smaller_than_the_student(tmp_path, capsys):
    folder = _write_tiny_rgb_folder(tmp_path / "pets")
    assert main(["distill", "--workspace", str(tmp_path / "ws"), "--dataset", f"folder:{folder}", "--student", "simple_cnn_wide"]) == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "is smaller than student 'simple_cnn_wide'" in error_lines[0]
    assert not (tmp_path / "ws" / "checkpoints").exists()  # rejected before the baseline or any teacher was trained


def test_cli_prints_the_race_as_one_json_line(session_workspace, digits_baseline, digits_teacher, capsys):
    argv = [
        "distill",
        "--workspace",
        str(session_workspace.root),
        "--dataset",
        "digits",
        "--teacher-epochs",
        str(TEACHER_EPOCHS),
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--temperature",
        "3",
        "--alpha",
        "0.7",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out.strip().splitlines()[-1])
    assert payload["temperature"] == 3.0 and payload["alpha"] == 0.7 and payload["seeds"] == [0, 1]
    assert payload["teacher_accuracy"] == pytest.approx(digits_teacher.metrics.accuracy)
    assert payload["gain"] == pytest.approx(payload["distilled_accuracy"] - payload["student_accuracy"])
    assert payload["gain_std"] is not None and payload["teacher_agreement"] > 0.5
    assert payload["teacher_size_bytes"] == digits_teacher.metrics.size_bytes
    assert "[distilled]" in captured.err  # live progress on stderr
    # The headline: the baseline it replaces (trained at its own preset, not --epochs 2) before, the distilled student after.
    assert payload["technique"] == "distill" and payload["source_run_id"] == digits_baseline.run_id
    assert payload["accuracy_before"] == pytest.approx(digits_baseline.evaluation.accuracy)
    assert payload["accuracy_after"] == payload["distilled_accuracies"][0]
    assert payload["config"]["epochs"] == 2 and payload["config"]["teacher_run_id"] == digits_teacher.run_id
    run = history.get_run(session_workspace.history_db, payload["run_id"])
    assert run.parent_id == digits_baseline.run_id and run.metrics["gain"] == pytest.approx(payload["gain"])


# --- soft labels, teachers and charts ---------------------------------------------------------


def test_soft_labels_get_softer_as_temperature_rises(digits_teacher):
    examples = soft_label_examples(digits_teacher.model, digits_teacher.dataset, temperature=5.0, count=4)
    assert examples.labels == [0, 1, 2, 3] and examples.images.shape == (4, 1, 8, 8)
    for sharp, soft in zip(examples.probabilities_t1, examples.probabilities_t):
        assert sum(sharp) == pytest.approx(1.0, abs=1e-5) and sum(soft) == pytest.approx(1.0, abs=1e-5)
        assert max(soft) < max(sharp) and int(np.argmax(soft)) == int(np.argmax(sharp))
    figure = soft_labels_figure(examples)
    assert sum(trace.type == "image" for trace in figure.data) == 4 and sum(trace.type == "bar" for trace in figure.data) == 8
    assert "T = 5" in " ".join(trace.name or "" for trace in figure.data)


def test_race_charts_show_every_seed_and_the_teacher(session_workspace, digits_teacher):
    report = run_race(quick_config(epochs=2, seeds=(0, 1)), DIGITS, session_workspace)
    curves = race_curves_figure([r.history for r in report.hard_runs], [r.history for r in report.distilled_runs], report.teacher_accuracy, epochs=2)
    assert len(curves.data) == 2 * 2 * 2  # (hard, distilled) x seeds x (loss, accuracy)
    assert any(f"teacher {100 * report.teacher_accuracy:.1f}%" in (a.text or "") for a in curves.layout.annotations)
    sizes = size_accuracy_figure(report)
    assert [trace.x[0] for trace in sizes.data] == pytest.approx([report.teacher_metrics.size_bytes / 1e3, report.student_metrics.size_bytes / 1e3, report.student_metrics.size_bytes / 1e3])
    assert sizes.data[2].y[0] == pytest.approx(100 * report.distilled_accuracy)
    agreement = agreement_figure(report.class_names, report.hard_runs[0].per_class_agreement, report.distilled_runs[0].per_class_agreement)
    assert list(agreement.data[1].y) == pytest.approx([100 * v for v in report.distilled_runs[0].per_class_agreement])
    gains = gain_per_seed_figure(list(report.config.seeds), report.gains)
    assert list(gains.data[0].y) == pytest.approx([100 * g for g in report.gains])


@pytest.mark.parametrize("channels, side", [(1, 8), (3, 32)])
def test_resnet18_teacher_fits_small_images(channels, side):
    model = build_model("resnet18", channels, side, 10).eval()  # in core.foundation.models.registry' one registry: no registration step
    assert model(torch.randn(2, channels, side, side)).shape == (2, 10)
    assert "resnet18" in teachers.available_teachers() and "teacher" in teachers.available_teachers()


def test_the_retired_resnet18_imagenet_is_no_teacher_choice():
    """Its ImageNet start is resnet18 with --pretrained now (tests/test_pretrained.py); the name is kept for old runs only."""
    assert "resnet18_imagenet" not in teachers.available_teachers()
    assert "resnet18_imagenet" not in teachers.available_students()


def test_digits_dataset_subsets_keep_the_teacher_and_students_on_the_same_images(session_workspace):
    """The teacher is looked up with the students' dataset spec, so a subset gives a teacher trained on that subset."""
    spec = DatasetSpec("digits", train_size=300, test_size=100)
    report = run_race(quick_config(epochs=1), spec, session_workspace, dataset=load_dataset(spec, session_workspace))
    teacher = get_teacher(quick_config(), spec, session_workspace)
    assert teacher.from_cache and len(teacher.dataset.train) == 300
    assert report.teacher_metrics.accuracy == teacher.metrics.accuracy


# --- few labels: the preset where distillation shows -------------------------------------------


def test_few_labels_students_learn_from_one_class_balanced_subset_with_its_own_teacher_logits(session_workspace, digits_teacher, monkeypatch):
    dataset = digits_teacher.dataset
    config = quick_config(labelled_fraction=0.1, alpha=1.0)
    subset, kept = student_dataset(config, dataset)
    assert len(subset.train) == labelled_images(config, dataset) == round(0.1 * len(dataset.train))
    counts = torch.bincount(subset.train.labels, minlength=dataset.num_classes)
    assert int(counts.max() - counts.min()) <= 1  # class-balanced
    assert torch.equal(subset.train.images, dataset.train.images[kept]) and len(set(kept.tolist())) == len(kept)
    assert subset.test is dataset.test  # accuracies stay comparable with every other run
    preset_epochs = student_recipe(dataclasses.replace(config, epochs=None), dataset).epochs
    assert preset_epochs >= student_recipe(dataclasses.replace(config, epochs=None, labelled_fraction=None), dataset).epochs  # fewer images, at least as many passes over them

    # Every batch the distilled student sees gets the teacher's logits of exactly those images.
    checked = []
    real_loss = race_module.distillation_loss

    def checking_loss(source, *args):
        loss = real_loss(source, *args)

        def wrapped(logits, batch):
            expected = predict_logits(digits_teacher.model, dataset, type(dataset.train)(subset.train.images[batch.indices], subset.train.labels[batch.indices]), torch.device("cpu"))
            assert torch.allclose(source.logits_for(batch), expected, atol=1e-4)
            checked.append(len(batch.indices))
            return loss(logits, batch)

        return wrapped

    monkeypatch.setattr(race_module, "distillation_loss", checking_loss)
    report = run_race(dataclasses.replace(config, epochs=1), DIGITS, session_workspace)
    assert sum(checked) == len(subset.train)  # one epoch over the subset, every batch checked
    assert f"same {len(subset.train):,} labelled images" in report.teacher_note


def test_the_cli_preset_sets_what_the_page_s_preset_sets_and_flags_win(tmp_path):
    from core.cli.distill import config_from_args
    from core.cli.main import build_parser

    args = build_parser().parse_args(["distill", "--workspace", str(tmp_path), "--preset", "few-labels"])
    config = config_from_args(args, "simple_cnn")
    preset = DISTILL_PRESETS["few-labels"]
    assert (config.temperature, config.alpha, config.labelled_fraction) == (preset.temperature, preset.alpha, preset.labelled_fraction)
    args = build_parser().parse_args(["distill", "--workspace", str(tmp_path), "--preset", "few-labels", "--temperature", "3", "--labelled-fraction", "0.2"])
    config = config_from_args(args, "simple_cnn")
    assert (config.temperature, config.alpha, config.labelled_fraction) == (3.0, preset.alpha, 0.2)
    plain = config_from_args(build_parser().parse_args(["distill", "--workspace", str(tmp_path)]), "simple_cnn")
    assert plain.labelled_fraction is None  # without a preset every label is used, as in a pipeline's distill step


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_a_labelled_fraction_out_of_range_is_one_line(fraction):
    with pytest.raises(UserError, match="--labelled-fraction"):
        quick_config(labelled_fraction=fraction).validate()
