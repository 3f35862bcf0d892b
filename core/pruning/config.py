"""What to prune and how: one frozen configuration, validated before any work starts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from core.errors import UserError

METHODS = ("l1", "random", "ln")
GRANULARITIES = ("unstructured", "channel")
SCOPES = ("layer", "global")
LN_NORM = 2  # the n of "Ln-norm" filter ranking (the seed notebook used L2)


@dataclass(frozen=True)
class PruneConfig:
    method: str = "l1"  # l1: smallest |w| (or filter L1 norm); ln: filter L2 norm; random
    granularity: str = "unstructured"  # unstructured: single weights; channel: whole filters/neurons
    amount: float = 0.5  # fraction of each chosen layer (scope "layer") or of all chosen layers together (scope "global")
    scope: str = "layer"
    layers: tuple[str, ...] | None = None  # None: every prunable layer
    layer_amounts: tuple[tuple[str, float], ...] = ()  # per-layer overrides, e.g. chosen from a sensitivity scan
    remove: bool = False  # channel pruning only: cut the pruned channels out of the network
    seed: int = 0  # for method "random"

    def validate(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"unknown pruning method '{self.method}'; choose one of {', '.join(METHODS)}")
        if self.granularity not in GRANULARITIES:
            raise UserError(f"unknown granularity '{self.granularity}'; choose one of {', '.join(GRANULARITIES)}")
        if self.scope not in SCOPES:
            raise UserError(f"unknown scope '{self.scope}'; choose one of {', '.join(SCOPES)}")
        _check_amount(self.amount, "amount")
        for layer, amount in self.layer_amounts:
            _check_amount(amount, f"amount for layer {layer}")
        if self.method == "ln" and self.granularity == "unstructured":
            raise UserError("method 'ln' ranks whole channels by their Ln norm; use --granularity channel, or l1/random for unstructured pruning")
        if self.remove and self.granularity != "channel":
            raise UserError("removal needs --granularity channel: unstructured zeros are scattered, so no row or column can be cut out")
        if self.layer_amounts and self.scope != "layer":
            raise UserError("per-layer amounts need scope 'layer'; global scope uses one threshold across layers")
        if self.layers is not None and not self.layers:
            raise UserError("no layers chosen; name at least one layer or use 'all'")

    def amount_for(self, layer: str) -> float:
        return dict(self.layer_amounts).get(layer, self.amount)

    def scaled(self, fraction: float) -> "PruneConfig":
        """The same pruning at `fraction` of every target amount (one step of an iterative schedule)."""
        return PruneConfig(
            self.method, self.granularity, self.amount * fraction, self.scope, self.layers,
            tuple((layer, amount * fraction) for layer, amount in self.layer_amounts), self.remove, self.seed,
        )

    def as_dict(self) -> dict:
        values = asdict(self)
        values["layers"] = list(self.layers) if self.layers is not None else "all"
        values["layer_amounts"] = dict(self.layer_amounts)
        return values


@dataclass(frozen=True)
class ScheduleConfig:
    finetune_epochs: int = 0  # fine-tuning epochs after pruning (per step when iterative)
    iterative_steps: int = 1  # 1: one-shot; N: prune a little, fine-tune, repeat N times up to the target

    def validate(self) -> None:
        if self.finetune_epochs < 0:
            raise UserError(f"fine-tuning epochs must be 0 or more, got {self.finetune_epochs}")
        if self.iterative_steps < 1:
            raise UserError(f"iterative steps must be at least 1, got {self.iterative_steps}")
        if self.iterative_steps > 1 and self.finetune_epochs < 1:
            raise UserError("an iterative schedule fine-tunes between steps; give at least 1 fine-tuning epoch")

    def fraction_at(self, step: int) -> float:
        """Share of the target pruned after `step` of `iterative_steps`: the cubic schedule of
        Zhu & Gupta (2017), which prunes most while the network is still redundant."""
        return 1.0 - (1.0 - step / self.iterative_steps) ** 3

    def as_dict(self) -> dict:
        return asdict(self)


def _check_amount(amount: float, what: str) -> None:
    if not isinstance(amount, (int, float)) or math.isnan(amount) or not 0.0 <= amount < 1.0:
        raise UserError(f"{what} must be in [0, 1), got {amount}")
