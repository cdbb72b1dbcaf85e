"""The read-only snapshot: readable copies and Parquet views, published while a reader process keeps reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import duckdb

from test_report_seed import seed_review
from warehouse import connect, opened
from warehouse.publish import publish_snapshot


def test_snapshot_copies_the_warehouse_and_exports_every_view(tmp_path):
    wh, out = tmp_path / "warehouse.duckdb", tmp_path / "out"
    seed_review(wh)
    res = publish_snapshot(wh, out)
    snap = out / "snapshot"
    assert res["snapshot"] == str(snap / "warehouse.duckdb")
    with opened(wh, read_only=True) as live, opened(res["snapshot"], read_only=True) as copy:
        for table in ("records", "estimates", "review_versions", "screening_decisions", "_migrations"):
            q = f"SELECT count(*), hash(list(t ORDER BY t)) FROM {table} t"
            assert live.execute(q).fetchall() == copy.execute(q).fetchall(), table
        views = [v for (v,) in live.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                                            "AND starts_with(view_name, 'v_') ORDER BY 1").fetchall()]
        assert views and res["views"] == views
        for v in views:
            pq = snap / "parquet" / f"{v}.parquet"
            n_pq = duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [str(pq)]).fetchall()[0][0]
            assert n_pq == live.execute(f"SELECT count(*) FROM {v}").fetchone()[0], v
    assert (snap / "parquet").is_symlink()
    manifest = json.loads((snap / "manifest.json").read_text())
    assert manifest["latest_versions"] == {"rev": 2} and manifest["views"] == views
    assert sorted(p.name for p in snap.iterdir() if p.name.startswith(".")) == []  # no temporary files left


def test_a_reader_uses_the_snapshot_while_the_writer_holds_the_live_file(tmp_path):
    wh, out = tmp_path / "warehouse.duckdb", tmp_path / "out"
    seed_review(wh)
    con = connect(wh)  # the writer keeps the file open (and locked) throughout
    try:
        publish_snapshot(con, out)
        probe = ("import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
                 "print(c.execute('SELECT count(*) FROM review_versions').fetchone()[0])")
        live = subprocess.run([sys.executable, "-c", probe, str(wh)], capture_output=True, text=True)
        assert live.returncode != 0 and "lock" in live.stderr.lower()  # why snapshots exist at all
        snap = subprocess.run([sys.executable, "-c", probe, str(out / "snapshot" / "warehouse.duckdb")],
                              capture_output=True, text=True)
        assert snap.returncode == 0 and snap.stdout.strip() == "2", snap.stderr
    finally:
        con.close()


READER = textwrap.dedent("""
    import duckdb, json, os, sys, time
    snap, parquet, stop = sys.argv[1], sys.argv[2], sys.argv[3]
    seen, reads, errors, last = set(), 0, [], None
    while True:
        stopping = os.path.exists(stop)  # one more full read after the writer finished: it must see the end state
        try:
            con = duckdb.connect(snap, read_only=True)
            try:
                s, c, total, rows = con.execute(
                    "SELECT (SELECT coalesce(sum(n), 0) FROM test_counter), (SELECT count(*) FROM test_counter), "
                    "total, rows FROM test_checksum").fetchone()
            finally:
                con.close()
            if (s, c) != (total, rows):
                errors.append(f"snapshot inconsistent: sum {s} count {c} vs checksum {total} {rows}")
            mem = duckdb.connect()
            ps, pc, pt, pr = mem.execute("SELECT s, c, t, r FROM read_parquet(?)",
                                         [parquet + "/v_test_pair.parquet"]).fetchall()[0]
            mem.close()
            if (ps, pc) != (pt, pr):
                errors.append(f"parquet inconsistent: {ps} {pc} vs {pt} {pr}")
            seen.add(c)
            reads += 1
            last = c
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
        if stopping or len(errors) > 20:
            break
    print(json.dumps({"reads": reads, "states": sorted(seen), "errors": errors, "last": last}))
""")


def test_a_reader_process_never_sees_a_half_published_state(tmp_path):
    wh, out = tmp_path / "warehouse.duckdb", tmp_path / "out"
    con = connect(wh)
    con.execute("CREATE TABLE test_counter (n INTEGER)")
    con.execute("CREATE TABLE test_checksum (total BIGINT, rows BIGINT)")
    con.execute("INSERT INTO test_checksum VALUES (0, 0)")
    con.execute("CREATE VIEW v_test_pair AS SELECT (SELECT coalesce(sum(n), 0) FROM test_counter) AS s, "
                "(SELECT count(*) FROM test_counter) AS c, total AS t, rows AS r FROM test_checksum")
    publish_snapshot(con, out)
    snap = out / "snapshot"
    stop = tmp_path / "stop"
    script = tmp_path / "reader.py"
    script.write_text(READER)
    reader = subprocess.Popen([sys.executable, str(script), str(snap / "warehouse.duckdb"), str(snap / "parquet"),
                               str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        updates, timings = 8, []
        for i in range(1, updates + 1):
            con.execute("BEGIN TRANSACTION")
            con.executemany("INSERT INTO test_counter VALUES (?)", [[i * 10 + j] for j in range(50)])
            con.execute("UPDATE test_checksum SET total = (SELECT sum(n) FROM test_counter), "
                        "rows = (SELECT count(*) FROM test_counter)")
            con.execute("COMMIT")
            t = time.perf_counter()
            publish_snapshot(con, out)  # the writer is never blocked by the reader
            timings.append(time.perf_counter() - t)
            time.sleep(0.05)
        stop.write_text("done")
        stdout, stderr = reader.communicate(timeout=120)
    finally:
        if reader.poll() is None:
            reader.kill()
        con.close()
    assert reader.returncode == 0, stderr
    result = json.loads(stdout)
    assert result["errors"] == []
    assert result["reads"] >= 5 and len(result["states"]) >= 2, result  # it read while updates happened
    assert set(result["states"]) <= {50 * i for i in range(updates + 1)}
    assert result["last"] == 50 * updates
    print(f"reader: {result['reads']} reads, states {result['states']}; publish took "
          f"{min(timings):.3f}-{max(timings):.3f} s")
    generations = [p for p in snap.iterdir() if p.name.startswith("parquet-")]
    assert len(generations) <= 2  # old exports are cleaned up, the previous one kept for slow readers
    assert os.readlink(snap / "parquet") in {p.name for p in generations}


def _published_state(snap):
    st = (snap / "warehouse.duckdb").stat()
    return st.st_ino, st.st_mtime_ns, os.readlink(snap / "parquet")


def test_an_unchanged_warehouse_is_not_published_again_and_any_change_is(tmp_path):
    wh, out = tmp_path / "warehouse.duckdb", tmp_path / "out"
    seed_review(wh)
    snap = out / "snapshot"
    con = connect(wh)
    try:
        first = publish_snapshot(con, out)
        assert first["unchanged"] is False
        before = _published_state(snap)
        manifest = json.loads((snap / "manifest.json").read_text())
        # only the run log moves (what every update writes whatever it finds): nothing is copied or exported
        con.execute("INSERT INTO update_runs (review_id, started_at, status) "
                    "SELECT review_id, now(), 'running' FROM reviews LIMIT 1")
        con.execute("UPDATE reviews SET updated_at = now()")
        again = publish_snapshot(con, out)
        assert again["unchanged"] is True and _published_state(snap) == before
        after = json.loads((snap / "manifest.json").read_text())
        assert after["checked_at"] > manifest["checked_at"]
        assert {k: v for k, v in after.items() if k != "checked_at"} == \
            {k: v for k, v in manifest.items() if k != "checked_at"}
        # a changed value in a table the snapshot shows (same row count) is published
        con.execute("UPDATE screening_decisions SET reason = 'changed by the test' WHERE decision_id = "
                    "(SELECT min(decision_id) FROM screening_decisions)")
        changed = publish_snapshot(con, out)
        assert changed["unchanged"] is False and _published_state(snap) != before
        with duckdb.connect(changed["snapshot"], read_only=True) as copy:
            assert copy.execute("SELECT count(*) FROM screening_decisions WHERE reason = 'changed by the test'"
                                ).fetchone()[0] == 1
        # a row added to a large table (counted, not hashed) is published too
        con.execute("INSERT INTO raw_records (source, source_id, run_id, fetched_at, payload, payload_hash) "
                    "VALUES ('pubmed', '999', NULL, now(), '<x/>', 'h')")
        assert publish_snapshot(con, out)["unchanged"] is False
        assert publish_snapshot(con, out, force=True)["unchanged"] is False
    finally:
        con.close()


def test_a_publish_killed_before_its_manifest_is_redone(tmp_path):
    wh, out = tmp_path / "warehouse.duckdb", tmp_path / "out"
    seed_review(wh)
    snap = out / "snapshot"
    publish_snapshot(wh, out)
    with opened(wh) as con:
        con.execute("UPDATE screening_decisions SET reason = 'new' WHERE decision_id = "
                    "(SELECT min(decision_id) FROM screening_decisions)")

    def killed(step):
        if step == "snapshot-replaced":
            raise KeyboardInterrupt  # the database file is swapped in, its Parquet and manifest are not

    try:
        publish_snapshot(wh, out, checkpoint=killed)
    except KeyboardInterrupt:
        pass
    # the new file is in place but the manifest still describes the old state: the next publish redoes it all
    redo = publish_snapshot(wh, out)
    assert redo["unchanged"] is False
    linked = json.loads((snap / "parquet" / "manifest.json").read_text())
    assert linked["content_digest"] == json.loads((snap / "manifest.json").read_text())["content_digest"]
    assert publish_snapshot(wh, out)["unchanged"] is True
