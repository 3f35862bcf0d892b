"""What a distillation race is asked to do, and the checks that keep it meaningful."""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import asdict, dataclass

import torch

from core.contract.options import check_ranges, option
from core.distillation.teachers import DEFAULT_STUDENT, DEFAULT_TEACHER, DISTILLATION_MODELS
from core.foundation.baseline.trained import BaselineConfig
from core.foundation.data.datasets import Dataset, DatasetSpec, ImageSplit, class_balanced_indices
from core.foundation.errors import UserError
from core.foundation.measures.metrics import count_parameters
from core.foundation.models.registry import ARCHITECTURE_BY_NAME, STUDENT_MODELS, build_model
from core.foundation.training.loop import AUGMENTATIONS, MAX_EPOCHS, TrainRecipe, classroom_recipe

HARD, DISTILLED = "hard", "distilled"
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 100.0
MAX_SEEDS = 10
LABELLED_SUBSET_SEED = 0  # the same labelled images for every seed's race: the seeds vary the students, not the data


@dataclass(frozen=True)
class DistillConfig:
    # Any offered architecture teaches any other (a ResNet-18 teacher for a MobileNetV2 x0.5 student):
    # both are built for, and see, the same dataset tensors (channels, image side, classes).
    teacher: str = option(DEFAULT_TEACHER, "teacher model, trained once on the students' images", choices=DISTILLATION_MODELS)
    student: str = option(
        DEFAULT_STUDENT, f"student model (default: the source's architecture when it is one of the lab's students, {', '.join(STUDENT_MODELS)}; else {DEFAULT_STUDENT})", choices=DISTILLATION_MODELS
    )
    # Measured on CIFAR-10 (simple_cnn, 3 epochs, seed 0): T=2/alpha=0.5 gained +0.9 points over hard
    # labels, T=4/0.5 +0.7, T=4/0.9 -0.1, T=8/0.9 -0.6. A short-trained student learns more when
    # the true labels keep half the weight and the teacher's targets stay fairly sharp.
    temperature: float = option(2.0, "softmax temperature T of the soft targets", minimum=MIN_TEMPERATURE, maximum=MAX_TEMPERATURE)
    alpha: float = option(0.5, "weight of the soft (teacher) loss; 1 - alpha weighs the true labels", minimum=0.0, maximum=1.0)
    labelled_fraction: float | None = option(
        None, "share of the training images the students learn from, class-balanced (default: all); with few labels a teacher's soft targets help most", minimum=0.001, maximum=1.0
    )
    epochs: int | None = option(None, "the students' training epochs (default: the classroom preset for the images they train on)", minimum=1, maximum=MAX_EPOCHS, cli=False)
    learning_rate: float | None = option(None, "the students' peak learning rate", minimum=1e-6, maximum=10.0)
    augment: str | None = option(None, "the students' augmentation; crops make teacher logits uncacheable", choices=AUGMENTATIONS)
    seeds: tuple[int, ...] = option((0,), "one race per seed; several show whether the gain is more than noise", cli=False)
    teacher_seed: int = option(0, "seed of the teacher's training", minimum=0)
    teacher_epochs: int | None = option(None, "teacher training epochs when it must be trained", minimum=1, maximum=MAX_EPOCHS)
    device: str = option("auto", "device", cli=False)

    def validate(self) -> None:
        """The checks that need no data; the teacher-versus-student size check needs the dataset."""
        check_ranges(self)
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise UserError(f"temperature must be greater than 0, got {self.temperature}")
        if not (0.0 <= self.alpha <= 1.0):
            raise UserError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.epochs is not None and self.epochs < 1:
            raise UserError(f"epochs must be at least 1, got {self.epochs}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise UserError(f"learning rate must be positive, got {self.learning_rate}")
        if not self.seeds:
            raise UserError("at least one seed is needed")
        if len(self.seeds) > MAX_SEEDS:
            raise UserError(f"at most {MAX_SEEDS} seeds, got {len(self.seeds)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"seeds must be different from each other, got {list(self.seeds)}")

    def as_dict(self) -> dict:
        return {**asdict(self), "seeds": list(self.seeds)}


@dataclass(frozen=True)
class DistillPreset:
    """A named starting point for the race: the settings, and one sentence on what it shows."""

    title: str
    temperature: float
    alpha: float
    labelled_fraction: float | None
    why: str

    def config_fields(self) -> dict:
        return {"temperature": self.temperature, "alpha": self.alpha, "labelled_fraction": self.labelled_fraction}


# Measured on CIFAR-10 (JPEG copy, simple_cnn students, the lab's 81% teacher; bench/bench_distillation.py):
# with every label the race's gain is within seed noise at the classroom budget; with 5% of the
# labels the distilled student gains several points over the hard-label one on every seed.
DISTILL_PRESETS = {
    "few-labels": DistillPreset(
        "Few labels (5% of the training images)",
        4.0,
        0.9,
        0.05,
        "Both students learn from the same 5% of the training images. With so few labels the hard-label student memorises them, "
        "while the teacher's soft targets (it saw every image) say how alike the classes look, which a few labels cannot: "
        "the setting where Hinton et al. (2015) found distillation helps most.",
    ),
    "all-labels": DistillPreset(
        "All labels",
        2.0,
        0.5,
        None,
        "Both students learn from every training image. With this many labels the true labels already teach most of what the "
        "teacher knows, so at the classroom budget the gain is small and close to seed-to-seed noise: race several seeds to see it.",
    ),
}
DEFAULT_PRESET = "few-labels"


def preset_config(name: str, **overrides) -> DistillConfig:
    """A DistillConfig with a preset's settings (and any overrides)."""
    if name not in DISTILL_PRESETS:
        raise UserError(f"unknown distillation preset '{name}'; choose one of {', '.join(DISTILL_PRESETS)}")
    return DistillConfig(**{**DISTILL_PRESETS[name].config_fields(), **overrides})


def teacher_config(config: DistillConfig, dataset_spec: DatasetSpec) -> BaselineConfig:
    return BaselineConfig(dataset_spec, model=config.teacher, epochs=config.teacher_epochs, seed=config.teacher_seed, device=config.device)


def labelled_images(config: DistillConfig, dataset: Dataset) -> int:
    """How many training images the students learn from: the fraction of the training set, at least one per class."""
    if config.labelled_fraction is None:
        return len(dataset.train)
    return min(len(dataset.train), max(dataset.num_classes, round(config.labelled_fraction * len(dataset.train))))


def student_dataset(config: DistillConfig, dataset: Dataset) -> tuple[Dataset, torch.Tensor | None]:
    """The dataset the students train on, and which training images it kept (None: all of them).
    Both students see the same labelled images; the test split and the normalisation stay the full
    dataset's, so accuracies compare with every other run."""
    count = labelled_images(config, dataset)
    if count >= len(dataset.train):
        return dataset, None
    kept = class_balanced_indices(dataset.train, count, dataset.num_classes, LABELLED_SUBSET_SEED, "labelled images")
    return dataclasses.replace(dataset, train=ImageSplit(dataset.train.images[kept], dataset.train.labels[kept])), kept


def student_recipe(config: DistillConfig, dataset: Dataset) -> TrainRecipe:
    """The students' recipe: the classroom preset for the images they train on (fewer images, more
    epochs over them), with the config's overrides."""
    dataset = student_dataset(config, dataset)[0]
    preset = classroom_recipe(dataset, config.student).as_dict()
    overrides = {"epochs": config.epochs, "learning_rate": config.learning_rate, "augment": config.augment}
    recipe = TrainRecipe(**{**preset, **{name: value for name, value in overrides.items() if value is not None}})
    recipe.validate()
    return recipe


@functools.lru_cache(maxsize=64)
def _parameter_count(model_name: str, channels: int, image_size: int, num_classes: int) -> int:
    return count_parameters(build_model(model_name, channels, image_size, num_classes))


def default_student(source_architecture: str) -> str:
    """The student when none is named: the source's own architecture when it is one of the lab's
    students (the distilled student then replaces it like for like), else DistillConfig's default."""
    return source_architecture if source_architecture in STUDENT_MODELS else DEFAULT_STUDENT


def check_images_fit(config: DistillConfig, dataset: Dataset) -> None:
    """Teacher and student see the same dataset tensors: a model whose smallest image is bigger than
    these is refused in one line naming its minimum (1 or 3 channels are adapted, never refused)."""
    for role, name in (("teacher", config.teacher), ("student", config.student)):
        architecture = ARCHITECTURE_BY_NAME[name]
        if dataset.image_size < architecture.min_image_size:
            side, minimum = dataset.image_size, architecture.min_image_size
            raise UserError(
                f"{role} '{name}' needs images of at least {minimum}x{minimum} pixels ({architecture.min_reason}); these are {side}x{side}, "
                f"and teacher and student see the same images: choose another {role} or a dataset with bigger images"
            )


def check_teacher_not_smaller(config: DistillConfig, dataset: Dataset) -> None:
    """The checks that need the data's shape, before anything is trained: both models take these
    images, and the teacher has at least as many parameters as the student."""
    check_images_fit(config, dataset)
    sizes = {name: _parameter_count(name, dataset.channels, dataset.image_size, dataset.num_classes) for name in (config.teacher, config.student)}
    if sizes[config.teacher] < sizes[config.student]:
        raise UserError(
            f"teacher '{config.teacher}' ({sizes[config.teacher]:,} parameters) is smaller than student '{config.student}' ({sizes[config.student]:,}); choose a bigger teacher or a smaller student"
        )
