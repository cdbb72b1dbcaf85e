"""The living report: build it from a report document, render HTML/Markdown/JSON, draw its figures.

Pure: no warehouse, no network, no clock. `warehouse.publish.report_document` assembles the document.

`build_report` (matplotlib and the TSA boundaries, about a second of imports) loads on first use (PEP 562), so
rendering the index of versions, as every cycle does, does not pay for the figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from livingmeta.report.document import Plot, Report, ReportInputError, check_document
from livingmeta.report.render import render_html, render_index, render_json, render_markdown

if TYPE_CHECKING:
    from livingmeta.report.build import build_report

__all__ = [
    "Plot",
    "Report",
    "ReportInputError",
    "build_report",
    "check_document",
    "render_html",
    "render_index",
    "render_json",
    "render_markdown",
]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from livingmeta.report.build import build_report

        globals()[name] = build_report
        return build_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
