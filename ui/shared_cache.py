"""Caches every session of the server shares, bounded by the bytes they hold.

A class moves the same slider: thirty students on the Pruning page ask for the same few dozen
settings, so a setting's preview (pruned models, measured figures) and its charts are made once
and served to everyone. st.cache_resource bounds a cache by its number of entries, which is wrong
here: a digits preview holds half a megabyte, a ResNet-18 one a hundred. These caches bound the
bytes instead (cachetools.LRUCache with getsizeof), and a setting being made by one session is
waited for by the others rather than made again.

    previews = shared_cache("pruning previews", PREVIEW_CACHE_BYTES, sizeof=tensor_bytes)
    pruned, snapshot = previews.get_or_make((source_key, config_json), lambda: preview_pruning(...))

A page script runs afresh on every rerun, so its caches are kept here, by name, for the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

import numpy as np
from cachetools import LRUCache

MIB = 2**20
PREVIEW_CACHE_BYTES = 256 * MIB  # the models of previewed settings (thirty students stay well under 2 GB)
FIGURE_CACHE_BYTES = 64 * MIB  # the arrays of their charts


class SharedCache:
    def __init__(self, max_bytes: int, sizeof: Callable[[object], int]):
        self.max_bytes = max_bytes
        self._entries = LRUCache(maxsize=max_bytes, getsizeof=lambda value: max(1, sizeof(value)))
        self._lock = threading.Lock()  # guards _entries and _making
        self._making: dict[Hashable, threading.Lock] = {}  # key -> held while one session makes it

    def get_or_make(self, key: Hashable, make: Callable[[], object]):
        """The value for `key`, made by `make()` if no session has made it (or it was evicted). A
        value larger than the whole budget is returned without being kept."""
        with self._lock:
            if key in self._entries:
                return self._entries[key]
            making = self._making.setdefault(key, threading.Lock())
        with making:
            with self._lock:
                if key in self._entries:  # made by the session we waited for
                    return self._entries[key]
            try:
                value = make()
                with self._lock:
                    if self._entries.getsizeof(value) <= self.max_bytes:
                        self._entries[key] = value
            finally:
                with self._lock:
                    self._making.pop(key, None)
        return value

    @property
    def bytes_held(self) -> int:
        with self._lock:
            return int(self._entries.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_CACHES: dict[str, SharedCache] = {}
_CACHES_LOCK = threading.Lock()


def shared_cache(name: str, max_bytes: int, sizeof: Callable[[object], int]) -> SharedCache:
    """The server's one cache called `name`, made on first use."""
    with _CACHES_LOCK:
        if name not in _CACHES:
            _CACHES[name] = SharedCache(max_bytes, sizeof)
        return _CACHES[name]


def tensor_bytes(value) -> int:
    """Bytes of every distinct tensor storage reachable in `value` (modules, tensors, and the
    tuples, lists, dicts and dataclasses that hold them): models that share weights count once."""
    import dataclasses

    import torch
    from torch import nn

    seen: set[int] = set()
    total = 0

    def add(tensor: torch.Tensor) -> None:
        nonlocal total
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()

    def walk(item, depth: int = 0) -> None:
        if depth > 6 or item is None:
            return
        if isinstance(item, torch.Tensor):
            add(item)
        elif isinstance(item, nn.Module):
            for tensor in item.state_dict(keep_vars=True).values():
                add(tensor)
            for module in item.modules():  # the masks of torch.nn.utils.prune live in buffers and forward-pre-hooks
                for tensor in module.__dict__.values():
                    if isinstance(tensor, torch.Tensor):
                        add(tensor)
        elif isinstance(item, dict):
            for inner in item.values():
                walk(inner, depth + 1)
        elif isinstance(item, (list, tuple)):
            for inner in item:
                walk(inner, depth + 1)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            for field in dataclasses.fields(item):
                walk(getattr(item, field.name), depth + 1)

    walk(value)
    return total


def figure_bytes(value) -> int:
    """Bytes of the arrays in one or more Plotly figures' traces (the rest of a figure is small):
    what a cached chart holds."""
    import plotly.graph_objects as go

    figures = value if isinstance(value, (list, tuple)) else [value]
    total = 0
    for figure in figures:
        if not isinstance(figure, go.Figure):
            continue
        for trace in figure.data:
            for name in ("x", "y", "z", "text", "customdata"):
                array = getattr(trace, name, None)
                if isinstance(array, np.ndarray):
                    total += array.nbytes
                elif isinstance(array, (list, tuple)):
                    total += 8 * len(array)
    return total
