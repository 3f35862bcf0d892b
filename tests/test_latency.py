"""The one latency protocol (core.foundation.measures.latency): both batch sizes for every model, one thread count and
one runtime for all of them, interleaved rounds, and an all-or-nothing fall back to eager when
this machine cannot compile."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.contract.result import latency_pair
from core.foundation.measures import compile as quantization_latency
from core.foundation.measures.latency import BATCH_SIZES, BUDGET_SECONDS, COMPILED, EAGER, ROUNDS, SINGLE_BATCH_SIZE, THROUGHPUT_BATCH_SIZE, latency_budget_seconds, latency_rounds, measure_latencies
from core.foundation.models.registry import build_model

EXAMPLE = torch.zeros(1, 1, 8, 8)  # a digits-sized image


class Recorder(nn.Module):
    """A model that notes the batch size of every forward pass, in order, under its name."""

    def __init__(self, name: str, calls: list[tuple[str, int]], width: int = 8):
        super().__init__()
        self.name, self.calls = name, calls
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.name, x.shape[0]))
        return self.net(x)


def blocks(calls: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Consecutive calls of one model at one batch size, merged into one entry."""
    merged: list[tuple[str, int]] = []
    for call in calls:
        if not merged or merged[-1] != call:
            merged.append(call)
    return merged


def test_batch_sizes_are_one_image_and_a_throughput_batch():
    assert BATCH_SIZES == (SINGLE_BATCH_SIZE, THROUGHPUT_BATCH_SIZE) == (1, 256)


def test_every_model_gets_both_batch_sizes_with_one_thread_count_and_runtime():
    calls: list[tuple[str, int]] = []
    models = {"small": Recorder("small", calls), "wide": Recorder("wide", calls, width=256), "cnn": build_model("simple_cnn", 1, 8, 10).eval()}
    figures, runtime = measure_latencies(models, EXAMPLE, rounds=1)
    assert runtime == EAGER
    assert set(figures) == set(models)
    for name, figure in figures.items():
        assert figure.single_ms > 0 and figure.throughput_ms > 0, name
        assert figure.throughput_batch_size == THROUGHPUT_BATCH_SIZE
        assert figure.per_image_ms == pytest.approx(figure.throughput_ms / THROUGHPUT_BATCH_SIZE)
        assert figure.as_dict()["runtime"] == runtime
    assert {figure.threads for figure in figures.values()} == {torch.get_num_threads()}
    assert {figure.runtime for figure in figures.values()} == {EAGER}
    assert {figure.device for figure in figures.values()} == {"cpu"}
    # Each model really ran at both sizes (the throughput figure is not a scaled single image).
    assert {size for name, size in calls if name == "small"} == {1, 256} == {size for name, size in calls if name == "wide"}


def test_the_time_budget_is_the_default_unless_a_shorter_one_is_set(monkeypatch):
    monkeypatch.delenv("MEL_LATENCY_BUDGET_S", raising=False)
    assert latency_budget_seconds() == BUDGET_SECONDS == 0.2
    for text, budget in (("0", 0.0), ("0.05", 0.05), ("5", BUDGET_SECONDS), ("-1", BUDGET_SECONDS), ("fast", BUDGET_SECONDS)):
        monkeypatch.setenv("MEL_LATENCY_BUDGET_S", text)
        assert latency_budget_seconds() == budget, text


def test_the_rounds_are_the_protocols_unless_fewer_are_set(monkeypatch):
    monkeypatch.delenv("MEL_LATENCY_ROUNDS", raising=False)
    assert latency_rounds() == ROUNDS == 3
    for text, rounds in (("1", 1), ("2", 2), ("9", ROUNDS), ("0", ROUNDS), ("few", ROUNDS)):
        monkeypatch.setenv("MEL_LATENCY_ROUNDS", text)
        assert latency_rounds() == rounds, text
    monkeypatch.setenv("MEL_LATENCY_ROUNDS", "2")
    calls: list[tuple[str, int]] = []
    measure_latencies({"a": Recorder("a", calls)}, EXAMPLE)  # no rounds given: the environment's
    assert len(blocks(calls)) == 2 * len(BATCH_SIZES)


def test_with_no_budget_each_model_still_gets_warmup_and_five_timed_passes(monkeypatch):
    monkeypatch.setenv("MEL_LATENCY_BUDGET_S", "0")
    calls: list[tuple[str, int]] = []
    measure_latencies({"a": Recorder("a", calls)}, EXAMPLE, rounds=1)
    assert calls == [("a", 1)] * 8 + [("a", 256)] * 8  # 3 warm-up and 5 timed passes at each size


def test_models_take_turns_round_after_round():
    calls: list[tuple[str, int]] = []
    models = {"a": Recorder("a", calls), "b": Recorder("b", calls)}
    measure_latencies(models, EXAMPLE, rounds=2)
    one_round = [("a", 1), ("b", 1), ("a", 256), ("b", 256)]
    assert blocks(calls) == one_round * 2


def test_latency_pair_times_before_and_after_together():
    calls: list[tuple[str, int]] = []
    before, after = latency_pair(Recorder("before", calls), Recorder("after", calls), EXAMPLE)
    assert before.runtime == after.runtime == EAGER and before.threads == after.threads
    assert {name for name, _ in calls} == {"before", "after"}


def test_a_machine_that_cannot_compile_times_every_model_eager_together(monkeypatch):
    asked: list[int] = []

    def cannot_compile(model, example_input, batch_size=32):
        asked.append(batch_size)
        return "no C++ compiler found"

    monkeypatch.setattr(quantization_latency, "try_compile", cannot_compile)
    calls: list[tuple[str, int]] = []
    figures, runtime = measure_latencies({"fp32": Recorder("fp32", calls), "int8": Recorder("int8", calls)}, EXAMPLE, compiled=True, rounds=1)
    assert asked  # compiling was tried
    assert runtime == f"{EAGER} (torch.compile unavailable: no C++ compiler found)"
    assert {figure.runtime for figure in figures.values()} == {runtime}
    assert all(figure.single_ms > 0 and figure.throughput_ms > 0 for figure in figures.values())
    assert {name for name, _ in calls} == {"fp32", "int8"}  # the eager models themselves were timed


def test_when_one_model_cannot_compile_none_is_timed_compiled(monkeypatch):
    """fp32 compiled beside int8 eager would compare runtimes, not models: all fall back together."""
    compiled_calls: list[tuple[str, int]] = []

    class Compiled(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            compiled_calls.append((self.model.name, x.shape[0]))
            return self.model(x)

    def compile_all_but_int8(model, example_input, batch_size=32):
        if model.name == "int8":
            return "int8 kernels need VNNI"
        return Compiled(model), 0.0

    monkeypatch.setattr(quantization_latency, "try_compile", compile_all_but_int8)
    calls: list[tuple[str, int]] = []
    figures, runtime = measure_latencies({"fp32": Recorder("fp32", calls), "int8": Recorder("int8", calls)}, EXAMPLE, compiled=True, rounds=1)
    assert runtime == f"{EAGER} (torch.compile unavailable: int8 kernels need VNNI)"
    assert {figure.runtime for figure in figures.values()} == {runtime}
    assert compiled_calls == []  # the compiled fp32 model was never timed
    assert {name for name, _ in calls} == {"fp32", "int8"}


def test_compiled_models_are_timed_on_the_cpu_at_their_compiled_batch_size(monkeypatch):
    compiled_for: list[tuple[str, int]] = []
    timed: list[tuple[str, int, int]] = []

    class Compiled(nn.Module):
        def __init__(self, model, batch_size):
            super().__init__()
            self.model, self.batch_size = model, batch_size

        def forward(self, x):
            timed.append((self.model.name, self.batch_size, x.shape[0]))
            return self.model(x)

    def fake_compile(model, example_input, batch_size=32):
        compiled_for.append((model.name, batch_size))
        return Compiled(model, batch_size), 0.0

    monkeypatch.setattr(quantization_latency, "try_compile", fake_compile)
    calls: list[tuple[str, int]] = []
    figures, runtime = measure_latencies({"fp32": Recorder("fp32", calls), "int8": Recorder("int8", calls)}, EXAMPLE, compiled=True, rounds=1)
    assert runtime == COMPILED and {figure.runtime for figure in figures.values()} == {COMPILED}
    assert {figure.device for figure in figures.values()} == {"cpu"}
    assert sorted(compiled_for) == sorted((name, size) for name in ("fp32", "int8") for size in BATCH_SIZES)
    assert timed and all(compiled_size == batch for _, compiled_size, batch in timed)  # each compiled graph sees only its own shape
