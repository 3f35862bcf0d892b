"""How the pages state a latency measured under the one protocol (core.foundation.measures.latency)."""

from __future__ import annotations

from core.foundation.measures.latency_protocol import SINGLE_BATCH_SIZE, THROUGHPUT_BATCH_SIZE, LatencyFigures


def protocol_text(runtime: str, threads: int | None = None, throughput_batch_size: int | None = None) -> str:
    """ "batch 1 and 256 images, 2 threads, torch eager": what every latency on the pages was measured
    with (images at their real size are timed in batches of 32: pass the recorded batch)."""
    sizes = f"{SINGLE_BATCH_SIZE} and {throughput_batch_size or THROUGHPUT_BATCH_SIZE}"
    where = "" if threads is None else f", {threads} thread{'s' if threads != 1 else ''}"
    return f"batch {sizes} images{where}, {runtime}"


def figures_caption(figures: dict[str, LatencyFigures], runtime: str) -> str:
    first = next(iter(figures.values()), None)
    return f"Measured at {protocol_text(runtime, first and first.threads, first and first.throughput_batch_size)}; the models took turns (interleaved rounds, each keeps its fastest round's median)."
