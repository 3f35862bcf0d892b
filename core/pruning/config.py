"""What to prune and how: one frozen configuration, validated before any work starts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from core.contract.options import check_ranges, option
from core.foundation.errors import UserError

METHODS = ("l1", "random", "ln")
GRANULARITIES = ("unstructured", "channel")
SCOPES = ("layer", "global")
LN_NORM = 2  # the n of "Ln-norm" filter ranking (the seed notebook used L2)
MAX_FINETUNE_EPOCHS = 50
MAX_ITERATIVE_STEPS = 10


@dataclass(frozen=True)
class PruneConfig:
    """What to prune, how, and how to recover: the one source of the pruning defaults and ranges."""

    method: str = option("l1", "l1: smallest |w| (channels: filter L1 norm); ln: filter L2 norm (channel only); random", choices=METHODS)
    granularity: str = option("unstructured", "unstructured: single weights; channel: whole filters/neurons", choices=GRANULARITIES)
    amount: float = option(0.5, "fraction to prune, of each chosen layer (scope layer) or of all of them together (scope global)", minimum=0.0, below=1.0)
    scope: str = option("layer", "layer: the amount of each layer; global: one threshold across layers", choices=SCOPES)
    layers: tuple[str, ...] | None = option(None, "comma-separated layer names such as conv1,conv2; all when left out", cli=False)
    layer_amounts: tuple[tuple[str, float], ...] = option((), "per-layer amounts, e.g. chosen from a sensitivity scan", cli=False)
    remove: bool = option(False, "channel pruning: cut the pruned channels out, giving a smaller dense model")
    finetune_epochs: int = option(0, "fine-tuning epochs after pruning, masks fixed (per step when iterative)", minimum=0, maximum=MAX_FINETUNE_EPOCHS)
    iterative_steps: int = option(1, "prune in N steps up to the amount, fine-tuning after each (1: one-shot)", minimum=1, maximum=MAX_ITERATIVE_STEPS)
    seed: int = option(0, "seed of method random", cli=False)

    def validate(self) -> None:
        check_ranges(self)
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
        if self.iterative_steps > 1 and self.finetune_epochs < 1:
            raise UserError("an iterative schedule fine-tunes between steps; give at least 1 fine-tuning epoch")

    def amount_for(self, layer: str) -> float:
        return dict(self.layer_amounts).get(layer, self.amount)

    def scaled(self, fraction: float) -> PruneConfig:
        """The same pruning at `fraction` of every target amount (one step of an iterative schedule)."""
        return replace(self, amount=self.amount * fraction, layer_amounts=tuple((layer, amount * fraction) for layer, amount in self.layer_amounts))

    def fraction_at(self, step: int) -> float:
        """Share of the target pruned after `step` of `iterative_steps`: the cubic schedule of
        Zhu & Gupta (2017), which prunes most while the network is still redundant."""
        return 1.0 - (1.0 - step / self.iterative_steps) ** 3

    def pruning_only(self) -> PruneConfig:
        """The same masks without the recovery schedule: what a preview or a cache key of masks needs."""
        return replace(self, finetune_epochs=0, iterative_steps=1)

    def as_dict(self) -> dict:
        values = asdict(self)
        values["layers"] = list(self.layers) if self.layers is not None else "all"
        values["layer_amounts"] = dict(self.layer_amounts)
        return values


def parse_layers(text: str | None) -> tuple[str, ...] | None:
    """'all' (or nothing) means every prunable layer; else comma-separated names."""
    if text is None or text.strip() == "all":
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _check_amount(amount: float, what: str) -> None:
    if not isinstance(amount, (int, float)) or math.isnan(amount) or not 0.0 <= amount < 1.0:
        raise UserError(f"{what} must be in [0, 1), got {amount}")
