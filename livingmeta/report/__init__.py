"""The living report: build it from a report document, render HTML/Markdown/JSON, draw its figures.

Pure: no warehouse, no network, no clock. `warehouse.publish.report_document` assembles the document.
"""

from livingmeta.report.build import build_report
from livingmeta.report.document import Plot, Report, ReportInputError, check_document
from livingmeta.report.render import render_html, render_index, render_json, render_markdown

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
