"""How the pages state a latency measured under the one protocol (core.foundation.measures.latency)."""

from __future__ import annotations

from core.foundation.measures.latency_protocol import BATCH_SIZES, LatencyFigures


def protocol_text(runtime: str, threads: int | None = None) -> str:
    """ "batch 1 and 256 images, 2 threads, torch eager": what every latency on the pages was measured with."""
    sizes = " and ".join(map(str, BATCH_SIZES))
    where = "" if threads is None else f", {threads} thread{'s' if threads != 1 else ''}"
    return f"batch {sizes} images{where}, {runtime}"


def figures_caption(figures: dict[str, LatencyFigures], runtime: str) -> str:
    threads = next(iter(figures.values())).threads if figures else None
    return f"Measured at {protocol_text(runtime, threads)}; the models took turns (interleaved rounds, each keeps its fastest round's median)."
