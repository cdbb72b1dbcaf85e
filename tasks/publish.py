"""Publishing task: the report of the latest version, the index of versions, the dashboard snapshot."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from prefect import task

from livingmeta.report import build_report, render_html, render_index, render_json, render_markdown
from warehouse import opened
from warehouse.publish import publish_snapshot, report_document, review_versions


def _write_atomic(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


def write_report(doc: dict, review_dir: Path) -> Path:
    """Write report.{html,md,json} and the PNG figures of one version under <review_dir>/v<N>/."""
    report = build_report(doc)
    folder = review_dir / f"v{report.version}"
    folder.mkdir(parents=True, exist_ok=True)
    for p in report.plots:
        _write_atomic(folder / p.filename, p.png)
    _write_atomic(folder / "report.md", render_markdown(report))
    _write_atomic(folder / "report.json", render_json(report))
    _write_atomic(folder / "report.html", render_html(report))  # last: its presence means the set is complete
    return folder / "report.html"


def write_index(review: dict, versions: list[dict], review_dir: Path) -> Path:
    """Write <review_dir>/index.html listing every version, newest first."""
    review_dir.mkdir(parents=True, exist_ok=True)
    rows = [{**v, "href": f"v{v['version']}/report.html" if (review_dir / f"v{v['version']}" / "report.html").exists()
             else None} for v in reversed(versions)]
    path = review_dir / "index.html"
    _write_atomic(path, render_index(review, rows))
    return path


@task(name="publish")
def publish(review_dir: str, review_id: str, warehouse: str, out_dir: str) -> dict:
    """Write the report for the latest version and publish a read-only warehouse snapshot."""
    out = Path(out_dir)
    with opened(warehouse) as con:
        versions = review_versions(con, review_id)
        doc = report_document(con, review_id) if versions else None
        (title,) = con.execute("SELECT title FROM reviews WHERE review_id = ?", [review_id]).fetchone()
        # the copy runs inside this (writer) process: readers never need the live file
        snap = publish_snapshot(con, out)
    folder = out / review_id
    report = write_report(doc, folder) if doc else None
    index = write_index({"id": review_id, "title": title}, versions, folder)
    return {"report": str(report) if report else None, "index": str(index), "snapshot": snap["snapshot"],
            "parquet": snap["parquet"], "version": versions[-1]["version"] if versions else None}
