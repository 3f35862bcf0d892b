"""Training and evaluation: one readable loop shared by the baseline, fine-tuning, QAT and distillation.

Batches are served from the uint8 tensors in memory (no per-image decoding), augmented on the
device, and standardised on the fly. The loop reports through one Progress callback and checks a
cooperative stop flag between batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from core.foundation.data.datasets import Dataset, ImageSplit
from core.foundation.errors import UserError
from core.foundation.models.memory import check_training_memory
from core.foundation.models.names import SMALL_IMAGE_MAX_SIDE
from core.foundation.progress import Progress, ProgressCallback, StopFlag, no_progress
from core.foundation.training.records import AUGMENTATIONS, DEFAULT_IMAGE_PASSES, IMAGE_PASSES, MAX_EPOCHS, EpochRecord, Evaluation, TrainRecipe, classroom_recipe_for_shape  # noqa: F401 (re-exported)


def resolve_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is available; use --device auto or cpu")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("device 'mps' was asked for but Apple's MPS backend is not available; use --device auto or cpu")
    if requested not in ("cpu", "cuda", "mps"):
        raise UserError(f"unknown device '{requested}'; choose auto, cpu, cuda or mps")
    return torch.device(requested)


def classroom_recipe(dataset: Dataset, model_name: str) -> TrainRecipe:
    """The default recipe for this dataset (core.foundation.training.records.classroom_recipe_for_shape)."""
    return classroom_recipe_for_shape(len(dataset.train), dataset.channels, dataset.image_size, model_name)


@dataclass
class Batch:
    inputs: torch.Tensor  # standardised float [B, C, H, W] on the training device
    labels: torch.Tensor
    indices: torch.Tensor  # positions in the training split (for per-example caches such as teacher logits)
    flipped: torch.Tensor  # bool [B]: which images were mirrored by augmentation


# A loss gets the model's logits and the batch it came from; the default is cross-entropy.
BatchLoss = Callable[[torch.Tensor, Batch], torch.Tensor]


@dataclass
class TrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    train_seconds: float = 0.0  # time spent in training steps only
    eval_seconds: float = 0.0  # time spent measuring test accuracy after each epoch
    stopped: bool = False  # the stop flag ended training early
    images_seen: int = 0

    @property
    def images_per_second(self) -> float:
        return self.images_seen / self.train_seconds if self.train_seconds else 0.0


def augment_batch(images: torch.Tensor, mode: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random shifts (pad 2, crop back) and optional horizontal flips of a uint8 batch."""
    count, _, height, width = images.shape
    flipped = torch.zeros(count, dtype=torch.bool)
    if mode == "none":
        return images, flipped.to(images.device)
    if mode == "flip_crop":
        flipped = torch.rand(count, generator=generator) < 0.5
        images = torch.where(flipped.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)
    pad = 2 if min(height, width) < 16 else 4
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect" if images.is_floating_point() else "constant")
    dy = torch.randint(0, 2 * pad + 1, (count,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (count,), generator=generator).to(images.device)
    rows = (torch.arange(height, device=images.device)[None, :] + dy[:, None])[:, None, :, None]
    cols = (torch.arange(width, device=images.device)[None, :] + dx[:, None])[:, None, None, :]
    batch_index = torch.arange(count, device=images.device)[:, None, None, None]
    channel_index = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch_index, channel_index, rows, cols], flipped.to(images.device)


def train_model(
    model: nn.Module,
    dataset: Dataset,
    recipe: TrainRecipe,
    device: torch.device,
    seed: int = 0,
    progress: ProgressCallback = no_progress,
    stop: StopFlag | None = None,
    loss_fn: BatchLoss | None = None,
    stage: str = "train",
    evaluate_each_epoch: bool = True,
) -> TrainResult:
    """Train `model` in place. The data order and augmentation depend only on `seed`, so two runs
    with the same seed see the same batches in the same order, whatever their loss."""
    recipe.validate()
    result = TrainResult()
    if recipe.epochs == 0:
        model.to(device)
        return result
    check_training_memory(model, type(model).__name__, dataset.channels, dataset.image_size, recipe.batch_size, device)  # before any step: refused with the estimate
    model.to(device)
    channels_last = _prefers_channels_last(model, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    loss_fn = loss_fn or (lambda logits, batch: F.cross_entropy(logits, batch.labels, label_smoothing=recipe.label_smoothing))
    train = dataset.train
    steps_per_epoch = (len(train) + recipe.batch_size - 1) // recipe.batch_size
    total_steps = steps_per_epoch * recipe.epochs
    optimizer = _make_optimizer(model, recipe)
    if total_steps >= 8:
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.learning_rate, total_steps=total_steps, pct_start=0.25, anneal_strategy="linear")
    else:  # too few steps to warm up and anneal (OneCycleLR divides by zero): a constant rate
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    order_generator = torch.Generator().manual_seed(seed)
    augment_generator = torch.Generator().manual_seed(seed + 1)
    images_on_device, labels_on_device = train.images.to(device), train.labels.to(device)
    step = 0
    last_report = 0.0
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        order = torch.randperm(len(train), generator=order_generator)
        for start in range(0, len(train), recipe.batch_size):
            if stop is not None and stop.is_set():
                result.stopped = True
                break
            indices = order[start : start + recipe.batch_size]
            device_indices = indices.to(device)
            raw, flipped = augment_batch(images_on_device[device_indices], recipe.augment, augment_generator)
            batch = Batch(dataset.normalize(raw), labels_on_device[device_indices], indices, flipped)
            logits = model(batch.inputs.contiguous(memory_format=torch.channels_last) if channels_last else batch.inputs)
            loss = loss_fn(logits, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            loss_sum += loss.item() * len(indices)
            correct += (logits.argmax(1) == batch.labels).sum().item()
            seen += len(indices)
            now = time.perf_counter()
            if now - last_report > 0.25 or start + recipe.batch_size >= len(train):
                last_report = now
                elapsed = result.train_seconds + (now - epoch_start)
                progress(
                    Progress(
                        stage,
                        step,
                        total_steps,
                        f"epoch {epoch}/{recipe.epochs}",
                        {"epoch": epoch, "loss": loss_sum / seen, "running_accuracy": correct / seen, "eta_seconds": elapsed / step * (total_steps - step)},
                    )
                )
        result.train_seconds += time.perf_counter() - epoch_start
        result.images_seen += seen
        if seen == 0:
            break
        test_accuracy = float("nan")
        if evaluate_each_epoch:
            eval_start = time.perf_counter()
            test_accuracy = evaluate(model, dataset, dataset.test, device).accuracy
            result.eval_seconds += time.perf_counter() - eval_start
        result.history.append(EpochRecord(epoch, loss_sum / seen, correct / seen, test_accuracy, time.perf_counter() - epoch_start))
        progress(
            Progress(stage, step, total_steps, f"epoch {epoch}/{recipe.epochs} done", {"epoch": epoch, "loss": loss_sum / seen, "running_accuracy": correct / seen, "test_accuracy": test_accuracy})
        )
        if result.stopped:
            break
    model.to(memory_format=torch.contiguous_format)  # safetensors stores contiguous tensors only
    model.eval()
    return result


def _prefers_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Batch-norm CNNs train about 1.2x faster on the CPU with channels-last (NHWC) tensors, which
    oneDNN's convolutions use natively (measured on the teacher); simple_cnn gains nothing."""
    return device.type == "cpu" and any(isinstance(module, nn.BatchNorm2d) for module in model.modules())


def _make_optimizer(model: nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    parameters = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=recipe.learning_rate, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay)
    return torch.optim.AdamW(parameters, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)


@torch.no_grad()
def predict_logits(model: nn.Module, dataset: Dataset, split: ImageSplit, device: torch.device, batch_size: int = 1000, progress: ProgressCallback = no_progress) -> torch.Tensor:
    """Logits for every image of `split`, in order, on the CPU: batches of uint8 images become float
    one at a time (memory stays bounded at any image size), each reported with an ETA."""
    model.eval()
    model.to(device)
    batch_size = evaluation_batch_size(dataset.image_size, batch_size)
    # Images at their real size through a batch-norm CNN: channels-last (NHWC), oneDNN's own layout,
    # took 31 ms an image for ResNet-18 at 224 px on 2 cores instead of 44. Small images keep the
    # layout every other path evaluates them in, so their figures stay exactly as recorded before.
    memory_format = torch.channels_last if dataset.image_size > SMALL_IMAGE_MAX_SIDE and _prefers_channels_last(model, device) else torch.contiguous_format
    if memory_format == torch.channels_last:
        model.to(memory_format=memory_format)
    started, outputs, done = time.perf_counter(), [], 0
    for chunk in split.images.split(batch_size):
        outputs.append(model(dataset.normalize(chunk.to(device)).contiguous(memory_format=memory_format)).float().cpu())
        done += len(chunk)
        elapsed = time.perf_counter() - started
        progress(Progress("evaluate", done, len(split), f"evaluating {done:,}/{len(split):,} test images", {"eta_seconds": elapsed / done * (len(split) - done)}))
    return torch.cat(outputs) if outputs else torch.empty(0, dataset.num_classes)


def evaluation_batch_size(image_size: int, batch_size: int = 1000) -> int:
    """`batch_size` images of 32 px, fewer of larger ones: the same pixels per batch (at least 16 images)."""
    return max(16, min(batch_size, batch_size * 32 * 32 // (image_size * image_size)))


def evaluate(model: nn.Module, dataset: Dataset, split: ImageSplit, device: torch.device | None = None, progress: ProgressCallback = no_progress) -> Evaluation:
    device = device or next((p.device for p in model.parameters()), torch.device("cpu"))
    logits = predict_logits(model, dataset, split, device, progress=progress)
    return evaluation_from_logits(logits, split.labels, dataset.num_classes)


def evaluation_from_logits(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> Evaluation:
    predictions = logits.argmax(1)
    confusion = torch.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes).view(num_classes, num_classes)
    per_class_total = confusion.sum(1).clamp_min(1)
    return Evaluation(
        accuracy=(predictions == labels).float().mean().item() if len(labels) else 0.0,
        per_class_accuracy=(confusion.diag().float() / per_class_total).tolist(),
        confusion=confusion.tolist(),
        loss=F.cross_entropy(logits, labels).item() if len(labels) else 0.0,
    )
