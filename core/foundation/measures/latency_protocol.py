"""The latency protocol's constants and its figures (core.foundation.measures.latency measures them). Torch-free, so
a page can state how a recorded latency was measured before torch is imported."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from core.foundation.models.names import SMALL_IMAGE_MAX_SIDE

SINGLE_BATCH_SIZE = 1
THROUGHPUT_BATCH_SIZE = 256
BATCH_SIZES = (SINGLE_BATCH_SIZE, THROUGHPUT_BATCH_SIZE)
# Images at their real size (above SMALL_IMAGE_MAX_SIDE) are timed in batches of 32, as deployments
# of 224-px models are quoted (32 images of 224 px hold as many pixels as 1,568 of 32 px; 256 of them
# would take seconds a pass on 2 cores). Runs of one dataset share its image size, so they compare.
REAL_SIZE_THROUGHPUT_BATCH_SIZE = 32


def throughput_batch_size(image_side: int) -> int:
    """The protocol's throughput batch for images of this side."""
    return THROUGHPUT_BATCH_SIZE if image_side <= SMALL_IMAGE_MAX_SIDE else REAL_SIZE_THROUGHPUT_BATCH_SIZE


def batch_sizes(image_side: int) -> tuple[int, int]:
    """(one image, the throughput batch) for images of this side."""
    return SINGLE_BATCH_SIZE, throughput_batch_size(image_side)


ROUNDS = 3
BUDGET_SECONDS = 0.2  # per model, batch size and round, after at least 5 timed passes
# A shorter budget for quick, noisier figures: the test suite sets 0 (each figure is then the median
# of the 5 timed passes every measurement makes). Figures to present use the default.
BUDGET_ENV = "MEL_LATENCY_BUDGET_S"
# Fewer interleaved rounds, likewise: the test suite sets 1 (it checks what is measured and how it
# is labelled, never the figures). Figures to present use ROUNDS.
ROUNDS_ENV = "MEL_LATENCY_ROUNDS"
EAGER = "torch eager"
COMPILED = "torch.compile (inductor)"


def latency_budget_seconds() -> float:
    """BUDGET_SECONDS, or $MEL_LATENCY_BUDGET_S when it holds a number from 0 to BUDGET_SECONDS."""
    try:
        chosen = float(os.environ.get(BUDGET_ENV, BUDGET_SECONDS))
    except ValueError:
        return BUDGET_SECONDS
    return chosen if 0 <= chosen <= BUDGET_SECONDS else BUDGET_SECONDS


def latency_rounds() -> int:
    """ROUNDS, or $MEL_LATENCY_ROUNDS when it holds a whole number from 1 to ROUNDS."""
    try:
        chosen = int(os.environ.get(ROUNDS_ENV, ROUNDS))
    except ValueError:
        return ROUNDS
    return chosen if 1 <= chosen <= ROUNDS else ROUNDS


@dataclass
class LatencyFigures:
    """One model's latency under the protocol."""

    single_ms: float  # one image
    throughput_ms: float  # one forward pass over THROUGHPUT_BATCH_SIZE images
    throughput_batch_size: int
    threads: int
    runtime: str
    device: str

    @property
    def per_image_ms(self) -> float:
        return self.throughput_ms / self.throughput_batch_size

    def timing_fields(self, suffix: str = "") -> dict:
        """The two timings under the names every record uses (latency_ms is the throughput batch)."""
        return {f"latency_ms{suffix}": self.throughput_ms, f"latency_ms_single{suffix}": self.single_ms}

    def setup_fields(self) -> dict:
        """How they were measured, under the names every record uses."""
        return {"latency_batch_size": self.throughput_batch_size, "latency_threads": self.threads, "latency_runtime": self.runtime, "latency_device": self.device}

    def as_dict(self) -> dict:
        return asdict(self)
