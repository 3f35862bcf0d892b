"""A package's public names, imported from their submodules on first use (PEP 562).

core.pruning and core.quantization export their configs beside torch-heavy code; with this, the
share link and the sidebar read the configs before torch is imported."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str], namespace: dict) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level __getattr__ and __dir__ for `package`, whose names live in the submodules
    `exports` maps them to; a name once loaded is kept in the package's `namespace`."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
