"""The plain records a trained model is described by: its recipe, its epochs, its evaluation and
what it costs. No torch here, so the sidebar and the Overview read them back from a checkpoint's
meta.json before torch is imported (core.foundation.training.loop and core.foundation.measures.metrics re-export them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from core.foundation.errors import UserError

AUGMENTATIONS = ("none", "crop", "flip_crop")
MAX_EPOCHS = 200  # the most epochs any training run takes: a page and the CLI refuse more alike
FINETUNE_LR_FACTOR = 0.3  # fine-tuning starts from trained weights: a gentler peak than training from scratch


@dataclass(frozen=True)
class TrainRecipe:
    epochs: int
    batch_size: int = 128
    optimizer: str = "adamw"  # "adamw" or "sgd" (Nesterov momentum 0.9)
    learning_rate: float = 2e-3  # peak of the one-cycle schedule
    weight_decay: float = 5e-4
    augment: str = "none"  # "none", "crop" (random 2-pixel shifts) or "flip_crop" (plus horizontal flips)
    label_smoothing: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        if not 0 <= self.epochs <= MAX_EPOCHS:
            raise UserError(f"epochs must be between 0 and {MAX_EPOCHS}, got {self.epochs}")
        if self.batch_size < 1:
            raise UserError(f"batch size must be at least 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise UserError(f"learning rate must be positive, got {self.learning_rate}")
        if self.optimizer not in ("adamw", "sgd"):
            raise UserError(f"unknown optimizer '{self.optimizer}'; choose adamw or sgd")
        if self.augment not in AUGMENTATIONS:
            raise UserError(f"unknown augmentation '{self.augment}'; choose none, crop or flip_crop")


def finetune_recipe(recipe: TrainRecipe, epochs: int) -> TrainRecipe:
    """`recipe` for fine-tuning trained weights: `epochs` epochs at FINETUNE_LR_FACTOR of its peak."""
    return TrainRecipe(**{**recipe.as_dict(), "epochs": epochs, "learning_rate": recipe.learning_rate * FINETUNE_LR_FACTOR})


# Image passes (epochs x train images) that each model family needs on a classroom budget. With
# 50,000 CIFAR-10 images this gives simple_cnn 3 epochs and the teacher 5 (measured in
# bench/bench_foundation.py to reach 65% and 78% within 90 s and 10 minutes on 2 cores).
IMAGE_PASSES = {"teacher": 250_000}
DEFAULT_IMAGE_PASSES = 150_000
# A transformer trained from scratch on a few hundred to a few thousand images needs a gentler peak
# and more, smaller steps than the CNNs' AdamW 3e-3 in batches of 64: measured on the technique
# matrix's 4-class quadrant images (384), the small ViT stays at chance with the CNN recipe, reaches
# 64% with lr 1e-3 in batches of 64 and 95% in batches of 32 (50 epochs each).
RECIPE_CHANGES = {"vit_tiny_p4": {"learning_rate": 1e-3, "batch_size": 32}}


def classroom_recipe_for_shape(train_images: int, channels: int, image_size: int, model_name: str) -> TrainRecipe:
    """The default recipe for a dataset of this size and kind: quick enough for a live demo, and
    measured (bench/bench_foundation.py) to reach the README's accuracy targets."""
    passes = IMAGE_PASSES.get(model_name, DEFAULT_IMAGE_PASSES)
    epochs = int(min(40, max(3, round(passes / max(1, train_images)))))
    natural_images = channels == 3 and image_size >= 16
    if model_name == "teacher":
        return TrainRecipe(epochs=epochs, batch_size=256, optimizer="sgd", learning_rate=0.2, weight_decay=5e-4, augment="flip_crop" if natural_images else "crop", label_smoothing=0.0)
    recipe = {"epochs": epochs, "batch_size": 128 if train_images > 5000 else 64, "optimizer": "adamw", "learning_rate": 3e-3, "weight_decay": 5e-4, "augment": "none"}
    return TrainRecipe(**{**recipe, **RECIPE_CHANGES.get(model_name, {})})


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    seconds: float


@dataclass
class Evaluation:
    accuracy: float
    per_class_accuracy: list[float]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    loss: float


@dataclass
class ModelMetrics:
    """What a trained model costs, as recorded with its checkpoint."""

    accuracy: float
    params: int
    nonzero_params: int
    macs: int
    size_bytes: int
    latency_ms: float  # one forward pass over latency_batch_size images (core.foundation.measures.latency's protocol)
    latency_batch_size: int
    latency_device: str
    latency_threads: int
    latency_ms_single: float | None = None  # one image; None in checkpoints written before the protocol
    latency_runtime: str = "torch eager"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelMetrics:
        """Read a checkpoint's metrics, old or new: unknown keys are ignored, new ones take defaults."""
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})
