"""A module imported when it is first used, not when the module naming it is imported.

pandas costs about 0.4 CPU-s to import; the warehouse builds frames (to hand a batch to DuckDB in one statement)
only when there is a batch, so an update step with nothing to write, or a read-only command, never needs it::

    from warehouse.lazy import pandas as pd
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class _LazyModule:
    """Stands for a module: the first attribute read imports it (then Python's module cache answers)."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (loaded)' if self._module is not None else ''}>"


def lazy_module(name: str) -> Any:
    """A stand-in for `import name` that imports it on first use."""
    return _LazyModule(name)


if TYPE_CHECKING:
    import pandas as pandas  # the type checker sees the real module
else:
    pandas = lazy_module("pandas")  # frames only when there is a batch to hand DuckDB
