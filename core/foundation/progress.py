"""One progress type for all long work: the pages draw it, the CLI prints it, the tests record it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Progress:
    stage: str  # what is running, e.g. "train", "download", "finetune"
    done: int  # units finished (batches, bytes, layers...)
    total: int  # units in all; 0 when unknown
    message: str = ""
    metrics: dict = field(default_factory=dict)  # e.g. loss, running accuracy, eta_seconds, epoch

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


ProgressCallback = Callable[[Progress], None]


class StopFlag(Protocol):
    """Anything with is_set(), e.g. threading.Event: checked between batches to stop cooperatively."""

    def is_set(self) -> bool: ...


def no_progress(_: Progress) -> None:
    return None


def stderr_progress(every_fraction: float = 0.1) -> ProgressCallback:
    """A CLI callback that prints a line per stage each time another `every_fraction` is done."""
    last_printed: dict[str, float] = {}

    def report(progress: Progress) -> None:
        previous = last_printed.get(progress.stage, -1.0)
        if progress.fraction - previous >= every_fraction or progress.done == progress.total:
            last_printed[progress.stage] = progress.fraction
            shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in progress.metrics.items())
            print(f"[{progress.stage}] {progress.fraction:5.0%} {progress.message} {shown}".rstrip(), file=sys.stderr, flush=True)

    return report
