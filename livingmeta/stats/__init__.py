"""Statistics engine: effect sizes, pooling, heterogeneity, small-study effects.

Numbers reproduce R's metafor 3.8-1 (see tests/test_stats_metafor.py). Pure numpy/scipy.

The engine's modules (and scipy, about a second of imports) load when a name is first used
(`livingmeta.stats.meta_analyze`, PEP 562): code that only needs `ENGINE_VERSION` or `StatsInputError`, such as a
nightly that finds its analyses' inputs unchanged, does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from livingmeta.stats.errors import StatsInputError

if TYPE_CHECKING:
    from livingmeta.stats.analysis import cumulative, leave_one_out, meta_analyze, subgroup_analysis
    from livingmeta.stats.bias import egger_test, trim_and_fill
    from livingmeta.stats.inputs import read_meta_csv
    from livingmeta.stats.result import RESULT_KEYS, MetaResult

_LAZY = {
    "cumulative": "analysis",
    "leave_one_out": "analysis",
    "meta_analyze": "analysis",
    "subgroup_analysis": "analysis",
    "egger_test": "bias",
    "trim_and_fill": "bias",
    "read_meta_csv": "inputs",
    "RESULT_KEYS": "result",
    "MetaResult": "result",
}

# Part of the hash of analysis inputs: bump whenever any number the engine returns may change or the
# stored result JSON changes shape.
# 1.1.0: studies rows gain n, yi_bt, ci_lower_bt, ci_upper_bt
# 1.2.0: PETO studies rows hold Peto's log odds ratios; studies rows gain not_estimable; results gain
#        i2_ci_*/h2_ci_*; subgroups gain `moderator`; an empty data cell makes its row not estimable
ENGINE_VERSION = "1.2.0"

__all__ = [
    "ENGINE_VERSION",
    "MetaResult",
    "RESULT_KEYS",
    "StatsInputError",
    "cumulative",
    "egger_test",
    "leave_one_out",
    "meta_analyze",
    "read_meta_csv",
    "subgroup_analysis",
    "trim_and_fill",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"livingmeta.stats.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
