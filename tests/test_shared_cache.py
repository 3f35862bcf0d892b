"""The classroom's shared caches (ui/shared_cache.py): bounded by bytes, made once per key."""

from __future__ import annotations

import threading
import time

import numpy as np
import plotly.graph_objects as go
from torch import nn
from torch.nn.utils import prune

from ui.shared_cache import SharedCache, figure_bytes, tensor_bytes


def test_the_cache_keeps_the_most_recent_values_within_its_bytes():
    cache = SharedCache(max_bytes=100, sizeof=len)
    for key in "abcd":
        cache.get_or_make(key, lambda key=key: key * 30)  # 30 bytes each: three fit
    assert cache.bytes_held == 90 and len(cache) == 3
    made = []
    cache.get_or_make("a", lambda: made.append("a") or "a" * 30)  # evicted first, so made again
    cache.get_or_make("d", lambda: made.append("d") or "d" * 30)  # still there
    assert made == ["a"]


def test_a_value_larger_than_the_budget_is_returned_and_not_kept():
    cache = SharedCache(max_bytes=10, sizeof=len)
    assert cache.get_or_make("big", lambda: "x" * 50) == "x" * 50
    assert len(cache) == 0


def test_sessions_asking_the_same_key_at_once_wait_for_one_make():
    cache = SharedCache(max_bytes=1000, sizeof=lambda value: 1)
    calls, release = [], threading.Event()

    def make():
        calls.append(1)
        release.wait(10)
        return "preview"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_make("same", make))) for _ in range(5)]
    for thread in threads:
        thread.start()
    deadline = time.time() + 10
    while not calls and time.time() < deadline:  # the first session is making it
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    assert calls == [1] and results == ["preview"] * 5


def test_a_make_that_fails_raises_and_the_next_ask_makes_it_again():
    cache = SharedCache(max_bytes=1000, sizeof=lambda value: 1)

    def fail():
        raise ValueError("bad setting")

    for _ in range(2):
        try:
            cache.get_or_make("key", fail)
        except ValueError as error:
            assert str(error) == "bad setting"
        else:
            raise AssertionError("the failure was swallowed")
    assert cache.get_or_make("key", lambda: "ok") == "ok"


def test_tensor_bytes_counts_shared_weights_once_and_finds_prune_masks():
    layer = nn.Linear(100, 10)  # 1000 + 10 floats
    plain = 4 * 1010
    assert tensor_bytes(layer) == plain
    assert tensor_bytes((layer, [layer], {"again": layer})) == plain
    prune.l1_unstructured(layer, "weight", amount=0.5)  # weight becomes weight_orig, plus weight_mask and the masked weight
    assert tensor_bytes(layer) == plain + 2 * 4 * 1000


def test_figure_bytes_counts_the_trace_arrays():
    z = np.zeros((20, 50), dtype=np.float32)
    figure = go.Figure([go.Heatmap(z=z), go.Heatmap(z=z)])
    assert figure_bytes(figure) >= 2 * z.nbytes
    assert figure_bytes((figure, None)) == figure_bytes(figure)


def test_a_cache_is_found_again_by_its_name_as_a_page_reruns():
    from ui.shared_cache import shared_cache

    first = shared_cache("test cache", 100, sizeof=len)
    first.get_or_make("key", lambda: "value")
    again = shared_cache("test cache", 100, sizeof=len)
    assert again is first and again.get_or_make("key", lambda: "made again") == "value"
