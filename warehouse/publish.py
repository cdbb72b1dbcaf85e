"""Published outputs from the warehouse: the report document of a review version, and the read-only
snapshot (DuckDB file + Parquet of the dashboard views) that dashboards read while flows write.

DuckDB lets one process write a file or many processes read it, never both. So readers never open the live
warehouse: after each update the writer process itself copies the database into a new file and swaps it in
with an atomic rename. A reader holding the old snapshot keeps reading the old (complete) file; the next open
sees the new one; neither blocks the writer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from warehouse.db import WarehouseError, opened, query, rows_as_dicts, schema_version, transaction

SNAPSHOT_DIR = "snapshot"
SNAPSHOT_FILE = "warehouse.duckdb"
PARQUET_LINK = "parquet"
KEEP_PARQUET_GENERATIONS = 2  # the current export and the one before it, for readers still listing files

# What decides whether a new snapshot is needed (`content_fingerprint`). Every update writes its run log whatever
# it finds: these tables and columns change on every cycle and alone never make a new snapshot (no dashboard view
# reads them; the snapshot's copies of them are those of the last publish).
RUN_LOG_TABLES = frozenset({"update_runs", "search_runs", "source_watermarks", "analysis_runs"})
RUN_LOG_COLUMNS = {"reviews": ("updated_at",), "review_records": ("last_run_id",), "study_link_state": ("linked_at",)}
# Large tables counted, not hashed: hashing them would be work in proportion to the warehouse on every cycle.
# Each changes only together with a row added elsewhere or a change in a hashed table: records with a new
# record_versions row (ingest), review_records / raw_records / record_versions only by inserts, screening_queue
# by new queue rows, decisions (screening_decisions, screening_undos), new record versions or a new ranking
# (screening_rank_state), study_links / _evidence / _keys / _inputs / studies by relinking, which runs only for
# new, changed or gone records, new link decisions or new rules (study_link_state.rules).
COUNTED_TABLES = frozenset(
    {
        "records",
        "raw_records",
        "record_versions",
        "review_records",
        "screening_queue",
        "study_links",
        "study_link_evidence",
        "study_link_keys",
        "study_link_inputs",
        "studies",
    }
)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else value


def _view_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    (n,) = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND NOT internal", [name]).fetchone()
    return n > 0


def review_versions(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    """Every version of a review, oldest first: version, created_at, as_of, update_id, trigger, summary."""
    rows = rows_as_dicts(
        con,
        "SELECT version, created_at, as_of, update_id, trigger, summary FROM review_versions "
        "WHERE review_id = ? ORDER BY version",
        [review_id],
    )
    for r in rows:
        r["trigger"] = _json(r["trigger"])
        r["created_at"], r["as_of"] = _iso(r["created_at"]), _iso(r["as_of"])
    return rows


def versions_of_unfinished_updates(con: duckdb.DuckDBPyConnection, review_id: str) -> set[int]:
    """Versions made by an update that did not succeed (killed or failed after committing the version)."""
    return {
        int(v)
        for (v,) in con.execute(
            "SELECT v.version FROM review_versions v JOIN update_runs u USING (update_id) WHERE v.review_id = ? "
            "AND u.status <> 'succeeded'",
            [review_id],
        ).fetchall()
    }


def _review(con: duckdb.DuckDBPyConnection, review_id: str) -> tuple[dict, dict]:
    rows = rows_as_dicts(con, "SELECT review_id, title, config_json FROM reviews WHERE review_id = ?", [review_id])
    if not rows:
        known = [r for (r,) in con.execute("SELECT review_id FROM reviews ORDER BY 1").fetchall()]
        raise WarehouseError(
            f"review {review_id!r} is not in this warehouse (reviews here: {', '.join(known) or 'none'}); "
            "run `livingmeta update REVIEW_FOLDER` first, or check --warehouse"
        )
    config = _json(rows[0]["config_json"]) or {}
    return {"id": review_id, "title": rows[0]["title"], "question": config.get("question")}, config


def _prisma(
    con, review_id: str, version: int, previous: int | None, latest: bool, n_studies: int, notes: list[str]
) -> dict | None:
    if _view_exists(con, "v_prisma_by_version"):
        rows = rows_as_dicts(
            con,
            "SELECT * FROM v_prisma_by_version WHERE review_id = ? AND version IN (?, ?)",
            [review_id, version, previous if previous is not None else version],
        )
        by_v = {r["version"]: r for r in rows}
        cur = by_v.get(version)
        if cur is not None:
            return {
                "current": _plain_counts(cur),
                "previous": _plain_counts(by_v.get(previous)) if previous else None,
                "source": "v_prisma_by_version",
            }
    if not latest:
        notes.append(
            f"PRISMA counts per version are not recorded in this warehouse; version {version} is not the "
            "latest, so its flow diagram is left out rather than shown with today's counts."
        )
        return None
    rows = rows_as_dicts(con, "SELECT * FROM v_prisma_counts WHERE review_id = ?", [review_id])
    if not rows:
        return None
    cur = _plain_counts(rows[0])
    cur.setdefault("studies_included", n_studies)
    reasons = con.execute(
        "SELECT coalesce(nullif(trim(full_text_reason), ''), 'no reason given'), count(*) FROM v_record_screening "
        "WHERE review_id = ? AND full_text = 'exclude' GROUP BY 1 ORDER BY 2 DESC, 1",
        [review_id],
    ).fetchall()
    if reasons and "excluded_reasons" not in cur:
        cur["excluded_reasons"] = {r: int(n) for r, n in reasons}
    notes.append(
        "PRISMA counts show the current screening state (v_prisma_counts); previous-version counts "
        "appear once the warehouse records counts per version (v_prisma_by_version)."
    )
    return {"current": cur, "previous": None, "source": "v_prisma_counts"}


_COUNT_NAMES = {
    "included_studies": "studies_included",
    "included_reports": "included",
    "excluded_full_text_reasons": "excluded_reasons",
}


def _plain_counts(row: dict | None) -> dict | None:
    """One PRISMA row in the report document's names (the screening views name a few counts differently)."""
    if row is None:
        return None
    out = {}
    for k, v in row.items():
        if k in ("review_id", "version", "version_created_at") or k.startswith("previous_"):
            continue
        v = _json(v)
        out[_COUNT_NAMES.get(k, k)] = int(v) if isinstance(v, float) and v.is_integer() else v
    return out


def report_document(con: duckdb.DuckDBPyConnection, review_id: str, version: int | None = None) -> dict:
    """Assemble the report document of one review version (schema: livingmeta.report.document).

    Args:
        con: a warehouse connection (read-only is enough).
        review_id: the review.
        version: the version to report; None for the latest.
    Returns:
        the report document dict.
    Raises:
        WarehouseError: unknown review, no version yet, or no such version (the message lists what exists).
    """
    review, config = _review(con, review_id)
    versions = review_versions(con, review_id)
    if not versions:
        raise WarehouseError(
            f"review {review_id!r} has no version yet: a version is recorded when analyses run "
            "on included studies with extracted data; run `livingmeta update` after extraction"
        )
    by_v = {v["version"]: v for v in versions}
    if version is None:
        version = versions[-1]["version"]
    if version not in by_v:
        raise WarehouseError(
            f"review {review_id!r} has no version {version}; versions: {', '.join(str(v) for v in by_v)}"
        )
    this = by_v[version]
    earlier = [v for v in versions if v["version"] < version]
    prev = earlier[-1] if earlier else None
    latest = version == versions[-1]["version"]
    notes: list[str] = []

    runs = {r["analysis_id"]: r for r in rows_as_dicts(con, query("report_analyses"), [review_id, version])}
    history: dict[str, list] = {}
    for h in rows_as_dicts(
        con,
        "SELECT analysis_id, version, as_of, estimate, ci_lower, ci_upper, k, participants "
        "FROM v_estimate_history WHERE review_id = ? AND version <= ? ORDER BY version",
        [review_id, version],
    ):
        history.setdefault(h.pop("analysis_id"), []).append({k: _iso(v) for k, v in h.items()})
    configured = {a["id"]: a for a in config.get("analyses") or []}
    kinds = {o.get("id"): o.get("kind") for o in config.get("outcomes") or []}
    order = list(configured) + sorted(a for a in runs if a not in configured)
    analyses = []
    for aid in order:
        cfg, run = configured.get(aid, {}), runs.get(aid)
        analyses.append(
            {
                "analysis_id": aid,
                "label": cfg.get("label") or aid,
                "role": cfg.get("role"),
                "outcome": cfg.get("outcome"),
                "measure": (run or {}).get("measure") or cfg.get("measure") or "GEN",
                "method": (run or {}).get("method") or cfg.get("method") or "",
                "test": (run or {}).get("test") or cfg.get("test"),
                "status": run["status"] if run else "not_in_version",
                "error": (run or {}).get("error"),
                "result": _json(run["result"]) if run and run["result"] is not None else None,
                "history": history.get(aid, []),
                "kind": kinds.get(cfg.get("outcome")),
                "settings": cfg or None,
            }
        )
    changes = rows_as_dicts(
        con,
        "SELECT analysis_id, from_version, to_version, changes, studies_added, studies_removed "
        "FROM estimate_diffs WHERE review_id = ? AND to_version = ? ORDER BY analysis_id",
        [review_id, version],
    )
    for c in changes:
        for k in ("changes", "studies_added", "studies_removed"):
            c[k] = _json(c[k]) or []

    studies: dict[str, dict] = {}
    (published_at,) = con.execute(
        "SELECT created_at FROM review_versions WHERE review_id = ? AND version = ?", [review_id, version]
    ).fetchone()
    for r in rows_as_dicts(con, query("report_studies"), [review_id, version, published_at]):
        st = studies.setdefault(
            r["study_id"], {"study_id": r["study_id"], "label": r["label"], "retracted": False, "records": []}
        )
        if r["record_id"] is None:
            continue
        st["retracted"] = st["retracted"] or bool(r["retracted"])
        st["records"].append(
            {
                "record_id": r["record_id"],
                "source": r["source"],
                "source_id": r["source_id"],
                "title": r["title"],
                "authors": _json(r["authors"]) or [],
                "journal": r["journal"],
                "year": r["year"],
                "doi": r["doi"],
                "pmid": r["source_id"] if r["source"] == "pubmed" else None,
                "registry_ids": _json(r["registry_ids"]) or [],
                "retracted": bool(r["retracted"]),
                "deleted": bool(r["deleted"]),
            }
        )
    if not latest:
        notes.append(
            f"Included studies of version {version} are those included when it was published; their "
            "titles are shown as they are now."
        )

    searches = [
        {k: _iso(v) for k, v in s.items()}
        for s in rows_as_dicts(con, query("report_search_runs"), [review_id, this["update_id"]])
    ]
    definitions = [
        {k: _iso(v) for k, v in d.items()}
        for d in rows_as_dicts(
            con,
            "SELECT source, query, earliest_date, first_used_at FROM search_definitions WHERE review_id = ? "
            "ORDER BY source, first_used_at",
            [review_id],
        )
    ]
    engine = sorted({r["engine_version"] for r in runs.values() if r.get("engine_version")})
    return {
        "review": review,
        "version": this,
        "previous_version": prev,
        "changes": changes,
        "analyses": analyses,
        "outcomes": list(config.get("outcomes") or []),
        "prisma": _prisma(con, review_id, version, prev["version"] if prev else None, latest, len(studies), notes),
        "searches": searches,
        "search_definitions": definitions,
        "studies": list(studies.values()),
        "screening_automation": _screening_automation(con, review_id) if latest else None,
        "engine_version": ", ".join(engine) or None,
        "notes": notes,
    }


def _screening_automation(con: duckdb.DuckDBPyConnection, review_id: str) -> str | None:
    """The report's statement on screening automation (ranking model, stopping rule and its result), or None
    before any title/abstract decision. It describes screening as it stands now, so only the latest
    version's report carries it."""
    from livingmeta.screening.stopping import automation_statement
    from warehouse.screening import screening_status

    st = screening_status(con, review_id)
    return automation_statement(st["stopping"], st["ranker"]) if st["screened"] else None


def version_report(con: duckdb.DuckDBPyConnection, review_id: str, version: int | None = None) -> dict:
    """`livingmeta report`: {"document": `report_document` of a version (default: the latest), "versions":
    `review_versions`, for the index of versions} — what the report files are written from."""
    return {"document": report_document(con, review_id, version), "versions": review_versions(con, review_id)}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def content_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A digest of what a snapshot publishes: the schema (every table's definition, every view's columns), the row count of
    every table, and the contents of every table but the large ones (COUNTED_TABLES) and the run log
    (RUN_LOG_TABLES / RUN_LOG_COLUMNS). Equal digests: the last snapshot already shows this state.

    Cost: one scan of the small tables and a count of the large ones, whatever the warehouse's size.
    """
    tables = con.execute(
        "SELECT table_name, sql FROM duckdb_tables() WHERE database_name = current_database() AND NOT temporary "
        "AND schema_name = 'main' ORDER BY table_name"
    ).fetchall()
    # views by name and columns: DuckDB renders a view's SQL with EXCLUDE lists in no fixed order, and views only
    # change by migration, whose files' checksums are in _migrations (hashed below)
    views = con.execute(
        "SELECT c.table_name, list(c.column_name || ' ' || c.data_type ORDER BY c.column_index) FROM duckdb_columns() c "
        "JOIN duckdb_views() v ON v.database_name = c.database_name AND v.schema_name = c.schema_name "
        "AND v.view_name = c.table_name WHERE v.database_name = current_database() AND NOT v.internal "
        "AND NOT v.temporary AND v.schema_name = 'main' GROUP BY c.table_name ORDER BY c.table_name"
    ).fetchall()
    parts = []
    for name, _ in tables:
        t = _ident(name)
        if name in COUNTED_TABLES or name in RUN_LOG_TABLES:
            parts.append(f"SELECT {_sql_str(name)} AS t, count(*)::VARCHAR AS d FROM {t}")
            continue
        skip = [_ident(c) for c in RUN_LOG_COLUMNS.get(name, ())]
        inner = f"SELECT * EXCLUDE ({', '.join(skip)}) FROM {t}" if skip else f"SELECT * FROM {t}"
        parts.append(
            f"SELECT {_sql_str(name)} AS t, count(*)::VARCHAR || ':' || coalesce(sum(hash(x)), 0)::VARCHAR AS d "
            f"FROM ({inner}) x"
        )
    rows = con.execute(" UNION ALL ".join(parts) + " ORDER BY t").fetchall() if parts else []
    digest = {
        "tables": [(n, sql) for n, sql in tables],
        "views": views,
        "rows": [(n, d) for n, d in rows if n not in RUN_LOG_TABLES],
    }
    return hashlib.sha256(json.dumps(digest, default=str).encode("utf-8")).hexdigest()


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _published(snap_dir: Path) -> dict | None:
    """The manifest of the last complete publish (database file in place, Parquet link and manifest agreeing)."""
    try:
        manifest = json.loads((snap_dir / "manifest.json").read_text(encoding="utf-8"))
        linked = json.loads((snap_dir / PARQUET_LINK / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (snap_dir / SNAPSHOT_FILE).is_file() or linked.get("content_digest") != manifest.get("content_digest"):
        return None
    return manifest


def _file_state(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def _copy_settled_file(con: duckdb.DuckDBPyConnection, source_db: str, target: Path) -> bool:
    """Copy the checkpointed database file byte for byte (the kernel copies; nothing is decoded or held in
    memory); False when that copy would not be one committed state, so the caller copies table by table.

    After `CHECKPOINT` with an empty write-ahead log, the main file holds every committed change and DuckDB
    writes to it again only when something commits. The writer is this process (publish runs inside it, under
    the update lock), so nothing commits during the copy; that is checked anyway: the file and its WAL must be
    the same (size, mtime) before and after, else the copy is thrown away.
    """
    rows = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = ?", [source_db]).fetchall()
    if not rows or not rows[0][0]:
        return False
    source = Path(rows[0][0])
    wal = Path(f"{source}.wal")
    before = (_file_state(source), _file_state(wal))
    if before[0] is None or (before[1] is not None and before[1][0] > 0):
        return False  # in-memory database, or changes still in the WAL (a checkpoint another transaction blocked)
    # In a child process: DuckDB's lock on the live file is a POSIX record lock, which the kernel drops for the
    # whole process as soon as the process closes ANY descriptor of that file, so this process must not open it.
    # shutil.copyfile uses copy_file_range/sendfile on Linux: the kernel copies, no user-space buffer.
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])",
            str(source),
            str(target),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise WarehouseError(f"copying {source} to {target} failed: {done.stderr.strip()[-500:]}")
    if (_file_state(source), _file_state(wal)) != before:
        target.unlink(missing_ok=True)
        return False
    return True


def _export_parquet(snapshot: Path, target: Path) -> list[str]:
    """Write every dashboard view (v_*) of the snapshot file to <target>/<view>.parquet."""
    target.mkdir(parents=True)
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        views = [
            v
            for (v,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' "
                "AND starts_with(view_name, 'v_') ORDER BY view_name"
            ).fetchall()
        ]
        for v in views:
            con.execute(f"COPY (SELECT * FROM {_ident(v)}) TO ? (FORMAT parquet)", [str(target / f"{v}.parquet")])
    finally:
        con.close()
    return views


def _swap_parquet(snap_dir: Path, new_dir: Path) -> Path:
    """Point <snapshot>/parquet at the new export with one atomic rename of a symbolic link."""
    link = snap_dir / PARQUET_LINK
    if link.exists() and not link.is_symlink():  # a plain folder from a manual copy: move it aside once
        link.rename(snap_dir / f"parquet-old-{uuid.uuid4().hex[:8]}")
    tmp_link = snap_dir / f".{PARQUET_LINK}-{new_dir.name}.link"
    os.symlink(new_dir.name, tmp_link)
    os.replace(tmp_link, link)
    generations = sorted(
        (p for p in snap_dir.glob("parquet-*") if p.is_dir() and not p.is_symlink()),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    keep = {new_dir.name} | {p.name for p in generations[:KEEP_PARQUET_GENERATIONS]}
    for p in generations:
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    return link


def _remove_leftovers(snap_dir: Path) -> None:
    """Remove what a publisher killed mid-way left: temporary copies, links and manifests, and Parquet exports
    newer than the one `parquet` points at (the link always moves to the newest complete export, so a newer
    folder was never published and no reader can be using it). Only the writer of the warehouse publishes, one
    at a time, so nothing here belongs to a live publisher."""
    for pattern in (".warehouse-*.duckdb", ".warehouse-*.duckdb.wal", f".{PARQUET_LINK}-*.link", ".manifest-*.json"):
        for p in snap_dir.glob(pattern):
            p.unlink(missing_ok=True)
    link = snap_dir / PARQUET_LINK
    if not link.is_symlink() or not link.resolve().is_dir():
        return
    current = link.resolve().stat().st_mtime_ns
    for p in snap_dir.glob("parquet-*"):
        if p.is_dir() and not p.is_symlink() and p.resolve() != link.resolve() and p.stat().st_mtime_ns > current:
            shutil.rmtree(p, ignore_errors=True)


def publish_snapshot(
    con_or_path: duckdb.DuckDBPyConnection | str | Path,
    out_dir: str | Path,
    now: dt.datetime | None = None,
    checkpoint: Callable[[str], None] | None = None,
    force: bool = False,
) -> dict:
    """Publish a read-only copy of the warehouse and a Parquet export of its dashboard views.

    Runs in the writer: pass the open writable connection (or the warehouse path, opened here). The copy is
    made with `COPY FROM DATABASE` into a new file, which then replaces `<out>/snapshot/warehouse.duckdb` with
    one atomic rename; the Parquet files are written from that copy into a new folder that
    `<out>/snapshot/parquet` (a symbolic link) is switched to. A reader sees the previous or the new state,
    never a mixture, and never holds a lock the writer needs.

    When the warehouse holds what the last complete snapshot holds (`content_fingerprint`: only the run log
    changed, e.g. an update that found nothing new), nothing is copied or exported: the snapshot stays, and
    `manifest.json` gets `checked_at` (when an update last found it current).

    Args:
        con_or_path: the writer connection, or the warehouse file.
        out_dir: the output folder; the snapshot goes to `<out_dir>/snapshot/`.
        now: the publication time written to the manifest (default: the current UTC time).
        checkpoint: called with a step name between the steps (crash tests kill the process there).
        force: publish even when nothing changed.
    Returns:
        {"snapshot": path, "parquet": dir, "views": [...], "manifest": path, "unchanged": bool}
    Raises:
        WarehouseError: the copy failed (the previous snapshot is left untouched).
    """
    if isinstance(con_or_path, (str, Path)):
        with opened(con_or_path) as con:
            return publish_snapshot(con, out_dir, now, checkpoint, force)
    con = con_or_path
    now = now or dt.datetime.now(dt.timezone.utc)
    snap_dir = Path(out_dir) / SNAPSHOT_DIR
    snap_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(snap_dir)
    content = content_fingerprint(con)
    last = None if force else _published(snap_dir)
    if last is not None and last.get("content_digest") == content and last.get("schema_version") == schema_version(con):
        last["checked_at"] = now.isoformat()
        tmp_manifest = snap_dir / f".manifest-{uuid.uuid4().hex[:8]}.json"
        tmp_manifest.write_text(json.dumps(last, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp_manifest, snap_dir / "manifest.json")
        return {
            "snapshot": str(snap_dir / SNAPSHOT_FILE),
            "parquet": str(snap_dir / PARQUET_LINK),
            "views": last.get("views", []),
            "manifest": str(snap_dir / "manifest.json"),
            "unchanged": True,
        }
    token = f"{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = snap_dir / f".warehouse-{token}.duckdb"
    parquet_dir = snap_dir / f"parquet-{token}"
    alias = f"livingmeta_snapshot_{uuid.uuid4().hex[:8]}"
    (source_db,) = con.execute("SELECT current_database()").fetchone()
    try:
        # fold the WAL into the main file first: the copy then reads a settled file and the WAL stays small
        con.execute("CHECKPOINT")
        if not _copy_settled_file(con, source_db, tmp):
            con.execute(f"ATTACH ? AS {alias}", [str(tmp)])
            try:
                con.execute(f"COPY FROM DATABASE {_ident(source_db)} TO {alias}")
                con.execute(f"CHECKPOINT {alias}")
            finally:
                con.execute(f"DETACH {alias}")
        if Path(f"{tmp}.wal").exists():
            raise WarehouseError(f"{tmp}: the copy left a write-ahead log behind; not publishing a partial file")
        views = _export_parquet(tmp, parquet_dir)
        versions = dict(con.execute("SELECT review_id, max(version) FROM review_versions GROUP BY 1").fetchall())
        manifest = {
            "published_at": now.isoformat(),
            "schema_version": schema_version(con),
            "snapshot": SNAPSHOT_FILE,
            "parquet": PARQUET_LINK,
            "views": views,
            "latest_versions": versions,
            "content_digest": content,
            "checked_at": now.isoformat(),
        }
        (parquet_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _fsync(tmp)
        os.replace(tmp, snap_dir / SNAPSHOT_FILE)
        if checkpoint:
            checkpoint("snapshot-replaced")  # the new database file is in place, its Parquet export not yet
        link = _swap_parquet(snap_dir, parquet_dir)
        tmp_manifest = snap_dir / f".manifest-{token}.json"
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp_manifest, snap_dir / "manifest.json")
    except duckdb.Error as e:
        raise WarehouseError(
            f"publishing the snapshot to {snap_dir} failed: {e}; the previous snapshot is unchanged"
        ) from e
    finally:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            if leftover.exists():
                leftover.unlink()
        if parquet_dir.exists() and not (snap_dir / PARQUET_LINK).resolve() == parquet_dir.resolve():
            shutil.rmtree(parquet_dir, ignore_errors=True)
    return {
        "snapshot": str(snap_dir / SNAPSHOT_FILE),
        "parquet": str(link),
        "views": views,
        "manifest": str(snap_dir / "manifest.json"),
        "unchanged": False,
    }


def publish_review(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    out_dir: str | Path,
    report_written: Callable[[int], bool],
    checkpoint: Callable[[str], None] | None = None,
) -> dict:
    """What publishing a review takes from the warehouse: the report documents to write, read in one
    transaction (one consistent state), then the read-only snapshot (`publish_snapshot`, which cannot run in a
    transaction: it checkpoints the file first).

    Args:
        report_written: whether version N's report is already complete on disk.
        checkpoint: as for `publish_snapshot` (crash tests).
    Returns:
        {"title", "versions" (oldest first), "document" (of the latest version, None without a version),
         "missing": documents of earlier versions whose cycle never finished (killed after committing the version,
         before its report) and whose report is incomplete — written now, so no version stays unpublished,
         "snapshot": `publish_snapshot`'s result}.
    """
    with transaction(con):
        versions = review_versions(con, review_id)
        doc = report_document(con, review_id) if versions else None
        unfinished = versions_of_unfinished_updates(con, review_id)
        missing = [
            report_document(con, review_id, v["version"])
            for v in versions[:-1]
            if v["version"] in unfinished and not report_written(v["version"])
        ]
        (title,) = con.execute("SELECT title FROM reviews WHERE review_id = ?", [review_id]).fetchone()
    # the copy runs inside this (writer) process: readers never need the live file
    snap = publish_snapshot(con, out_dir, checkpoint=checkpoint)
    return {"title": title, "versions": versions, "document": doc, "missing": missing, "snapshot": snap}
