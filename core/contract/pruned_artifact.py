"""A pruned model on disk: its effective weights as safetensors, and enough metadata to rebuild a
physically smaller model (which channels were cut, the layer shapes to check against)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.foundation.errors import UserError
from core.foundation.measures.metrics import effective_tensors
from core.foundation.models.channels import layer_shapes, remove_channels
from core.foundation.models.registry import build_model
from core.foundation.workspace import load_checkpoint


def pruned_artifact_meta(model: nn.Module, architecture: str, input_shape: tuple[int, int, int], num_classes: int, pruned_channels: dict[str, list[int]]) -> dict:
    """What load_pruned_model needs besides the weights. `pruned_channels` index the full architecture."""
    return {
        "input_shape": list(input_shape),
        "num_classes": num_classes,
        "channels_removed": bool(pruned_channels),
        "pruned_channels": pruned_channels,
        "layer_shapes": [shape.as_dict() for shape in layer_shapes(model)],
    }


def pruned_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors the model computes with (masks folded in), contiguous for safetensors."""
    return {name: t.contiguous() for name, t in effective_tensors(model).items()}


def load_pruned_model(folder: Path) -> nn.Module:
    """Rebuild a saved pruned model: the architecture, cut down as recorded, then its weights."""
    loaded = load_checkpoint(Path(folder))
    if loaded is None:
        raise UserError(f"{folder} holds no complete pruned checkpoint")
    state_dict, meta = loaded
    channels, side, _ = meta["input_shape"]
    model = build_model(meta["architecture"], channels, side, meta["num_classes"]).eval()
    if meta["channels_removed"]:
        model = remove_channels(model, meta["pruned_channels"], torch.zeros(1, channels, side, side))
    expected = {shape["name"]: shape["weight_shape"] for shape in meta["layer_shapes"]}
    rebuilt = {shape.name: shape.weight_shape for shape in layer_shapes(model)}
    if expected != rebuilt:
        raise UserError(f"{folder}: rebuilt layer shapes do not match the saved ones")
    model.load_state_dict(state_dict)
    return model.eval()
