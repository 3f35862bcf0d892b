"""What names a baseline: its configuration, and the checkpoint folder its training writes.

Torch-free, so the sidebar and the share link build and check a configuration, and the Overview
finds its checkpoint, before torch is imported; core.foundation.baseline.trained (which trains and loads the model)
re-exports these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.foundation.data.names import DatasetSpec, check_image_side
from core.foundation.errors import UserError
from core.foundation.models.names import MODEL_NAMES, RETIRED_MODELS, pretrained_refusal
from core.foundation.training.records import MAX_EPOCHS, TrainRecipe, finetune_recipe
from core.foundation.workspace import Workspace, config_key

CHECKPOINT_FORMAT_VERSION = 1
# A seed torch's generators take (up to 2**64 - 1, and the loop seeds augmentation with seed + 1),
# and a size a browser's number box can hold (2**53 - 1): larger values crashed the CLI and the sidebar.
MAX_SEED = 2**32 - 1
MAX_SUBSET_SIZE = 10**9  # images; more than any dataset here, so "at most" this is "all"


@dataclass(frozen=True)
class BaselineConfig:
    dataset: DatasetSpec = DatasetSpec()
    model: str = "simple_cnn"
    epochs: int | None = None  # None: the dataset's classroom preset
    seed: int = 0
    device: str = "auto"
    # A model the user brought (core.foundation.baseline.brought): the file's name as brought and
    # the SHA-256 of its bytes, which names its copy in the workspace. Empty: trained from scratch.
    brought_weights_name: str = ""
    brought_weights_sha256: str = ""
    # Started from torchvision's ImageNet weights for the architecture (core.foundation.models.pretrained).
    pretrained: bool = False

    @property
    def brought(self) -> bool:
        return bool(self.brought_weights_sha256)

    def validate(self) -> None:
        """What can be checked before any data is loaded: the sidebar and the CLI refuse alike."""
        if self.model not in MODEL_NAMES:
            raise UserError(f"unknown model '{self.model}'; choose one of {', '.join(MODEL_NAMES)}")
        if self.epochs is not None and not 0 <= self.epochs <= MAX_EPOCHS:
            raise UserError(f"--epochs must be between 0 and {MAX_EPOCHS}, got {self.epochs}")
        if self.seed < 0:
            raise UserError(f"--seed must be 0 or more, got {self.seed}")
        if self.seed > MAX_SEED:
            raise UserError(f"--seed must be at most {MAX_SEED}, got {self.seed}")
        if bool(self.brought_weights_name) != bool(self.brought_weights_sha256) or (self.brought and not _is_sha256(self.brought_weights_sha256)):
            raise UserError("a brought model needs both its file name and the SHA-256 of its bytes")
        if self.model in RETIRED_MODELS:
            raise UserError(f"{self.model} is retired: {RETIRED_MODELS[self.model]} (its recorded runs still open with --from-run N)")
        if self.pretrained and self.brought:
            raise UserError("--pretrained and --weights both say what the baseline starts from; choose one")
        if self.pretrained and pretrained_refusal(self.model):
            raise UserError(pretrained_refusal(self.model))
        check_image_side(self.dataset.image_size)
        for name, value in (("train-size", self.dataset.train_size), ("test-size", self.dataset.test_size)):
            if value is not None and value < 1:
                raise UserError(f"--{name} must be at least 1, got {value}")
            if value is not None and value > MAX_SUBSET_SIZE:
                raise UserError(f"--{name} must be at most {MAX_SUBSET_SIZE}, got {value}")


def recipe_with_epochs(config: BaselineConfig, preset: TrainRecipe) -> TrainRecipe:
    """The dataset's classroom preset, with the configuration's epochs when it names them. A brought
    model is recorded as it is (0 epochs) unless epochs are named, and is fine-tuned, not trained
    from scratch: the preset's peak rate times FINETUNE_LR_FACTOR. A pretrained start is fine-tuned
    too, but for the preset's epochs unless others are named: its head is new for these classes and
    must be trained, while the gentler peak keeps the ImageNet features from being trained away in
    the first steps, as a from-scratch peak would."""
    if config.brought:
        recipe = finetune_recipe(preset, config.epochs or 0)
    elif config.pretrained:
        recipe = finetune_recipe(preset, preset.epochs if config.epochs is None else config.epochs)
    else:
        recipe = preset if config.epochs is None else TrainRecipe(**{**preset.as_dict(), "epochs": config.epochs})
    recipe.validate()
    return recipe


def checkpoint_folder(config: BaselineConfig, recipe: TrainRecipe, workspace: Workspace) -> Path:
    named = {"v": CHECKPOINT_FORMAT_VERSION, "dataset": config.dataset.as_dict(), "model": config.model, "recipe": recipe.as_dict(), "seed": config.seed}
    if config.brought:  # only then: a trained baseline keeps the folder older versions named
        named["brought_weights_sha256"] = config.brought_weights_sha256
    if config.pretrained:  # likewise
        named["pretrained"] = True
    return workspace.checkpoint_dir / f"{config.model}-{config_key(named)}"


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(character in "0123456789abcdef" for character in text)
