"""Publishing task: the report of the latest version, the index of versions, the dashboard snapshot."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from prefect import task

from tasks.observe import redacts_exceptions

from tasks import observe, runtime
from warehouse import opened
from warehouse.publish import publish_review


def _write_atomic(path: Path, data: bytes | str) -> None:
    # the writer's PID in the name: a temporary file left by a killed writer is recognised and removed later
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove `.<name>.<pid>-<hex>.tmp` files of writers that are gone (killed mid-write); returns them."""
    gone = []
    for p in folder.glob(".*.tmp") if folder.is_dir() else []:
        pid = p.name.rsplit(".", 2)[-2].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def write_report(doc: dict, review_dir: Path) -> Path:
    """Write report.{html,md,json} and the PNG figures of one version under <review_dir>/v<N>/."""
    # the report stack (matplotlib) loads only when a version is written: an unchanged nightly never imports it
    from livingmeta.report import build_report, render_html, render_json, render_markdown

    report = build_report(doc)
    folder = review_dir / f"v{report.version}"
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(folder)
    files = [(p.filename, p.png) for p in report.plots]
    files += [
        ("report.md", render_markdown(report)),
        ("report.json", render_json(report)),
        ("report.html", render_html(report)),
    ]  # html last: its presence means the set is complete
    for name, data in files:
        _write_atomic(folder / name, data)
        runtime.kill_point("report-file-written")  # crash tests: part of the set written
    return folder / "report.html"


def write_index(review: dict, versions: list[dict], review_dir: Path) -> Path:
    """Write <review_dir>/index.html listing every version, newest first."""
    review_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(review_dir)
    rows = [
        {
            **v,
            "href": f"v{v['version']}/report.html"
            if (review_dir / f"v{v['version']}" / "report.html").exists()
            else None,
        }
        for v in reversed(versions)
    ]
    path = review_dir / "index.html"
    from livingmeta.report import render_index  # the report stack loads only when something is written

    _write_atomic(path, render_index(review, rows))
    return path


@task(name="publish")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def publish(review_dir: str, review_id: str, warehouse: str, out_dir: str) -> dict:
    """Write the report for the latest version and publish a read-only warehouse snapshot."""
    out = Path(out_dir)
    folder = out / review_id
    with opened(warehouse) as con:
        pub = publish_review(
            con, review_id, out, lambda v: (folder / f"v{v}" / "report.html").exists(), checkpoint=runtime.kill_point
        )
    versions, doc, missing, title, snap = (
        pub["versions"],
        pub["document"],
        pub["missing"],
        pub["title"],
        pub["snapshot"],
    )
    runtime.kill_point("snapshot-published")  # crash tests: snapshot done, reports not written yet
    for old in missing:
        write_report(old, folder)
    report = write_report(doc, folder) if doc else None
    index = write_index({"id": review_id, "title": title}, versions, folder)
    observe.log(
        "published the report of version %s to %s and the snapshot to %s",
        versions[-1]["version"] if versions else "none",
        report or index,
        snap["snapshot"],
    )
    runtime.kill_point("published")  # crash tests: everything written, the update not closed yet
    return {
        "report": str(report) if report else None,
        "index": str(index),
        "snapshot": snap["snapshot"],
        "parquet": snap["parquet"],
        "version": versions[-1]["version"] if versions else None,
        "snapshot_unchanged": snap["unchanged"],
    }


# display scale (back-transformed, as the report shows them); v_estimate_history documents each column
ESTIMATE_COLUMNS = (
    "analysis_id",
    "version",
    "measure",
    "method",
    "k",
    "participants",
    "estimate",
    "ci_lower",
    "ci_upper",
    "pi_lower",
    "pi_upper",
    "p_value",
    "tau2",
    "i2",
    "tsa_status",
)


@task(name="publish-run-artifacts")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def publish_run_artifacts(review_id: str, warehouse: str, outputs: dict) -> dict:
    """Attach the current estimates (table) and the report (link) to this flow run as Prefect artifacts."""
    from prefect.artifacts import create_link_artifact, create_table_artifact

    from livingmeta.redaction import redact_data, redact_text
    from warehouse.analysis import version_estimates

    slug = observe.artifact_slug(review_id)
    with opened(warehouse) as con:
        rows = version_estimates(con, review_id)
    table = [{c: r.get(c) for c in ESTIMATE_COLUMNS if c in r} for r in rows]
    table = [{k: (v if v is None or isinstance(v, (int, float, str)) else str(v)) for k, v in r.items()} for r in table]
    version = rows[0]["version"] if rows else None
    create_table_artifact(
        key=f"{slug}-estimates",
        table=redact_data(table),
        description=redact_text(
            f"{review_id}: current estimates (version {version})"
            if version
            else f"{review_id}: no version published yet, no estimates"
        ),
    )
    keys = {"estimates": f"{slug}-estimates"}
    observe.log("artifact %s-estimates: %s analyses of version %s", slug, len(table), version or "none")
    report = outputs.get("report") or outputs.get("index")
    if report:
        link = Path(report).resolve().as_uri()
        create_link_artifact(
            key=f"{slug}-report",
            link=redact_text(link),
            link_text=redact_text(f"{review_id} report, version {outputs.get('version') or 'none'}"),
            description=redact_text(f"{review_id}: the latest report"),
        )
        keys["report"] = f"{slug}-report"
        observe.log("artifact %s-report: %s", slug, link)
    return keys
