"""Seeding a real warehouse for the living-analysis tests: a review, records through warehouse.ingest, study
links and full-text decisions inserted as the linking and screening steps would, extraction CSVs written
here, and a webhook receiver on 127.0.0.1.

The trials: Jann 2020 (7/11 vs 0/12 responders) and Geerts 2021 (12/30 vs 9/30) are the example review's
placebo-controlled trials; "Novak2023" is a made-up third trial used to move the estimate.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from pathlib import Path

from livingmeta.config import load_review
from livingmeta.records import Record
from warehouse import opened
from warehouse.ingest import Fetched, finish_search_run, start_search_run
from warehouse.reviews import start_update, upsert_review

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
HEADER = "study,outcome,arm,group_label,events,total,mean,sd,n,estimate,se,ci_lower,ci_upper,scale,subgroup,extractor,extracted_on,source_ref,notes\n"

REVIEW_TOML = '''
id = "ivig-test"
title = "IVIG test review"

[sources.pubmed]
query = "immunoglobulin AND neuropathic pain"

[[outcomes]]
id = "responders"
label = "Responders"
kind = "binary"

[[outcomes]]
id = "relief-share"
label = "Share with relief"
kind = "proportion"

[[outcomes]]
id = "pain"
label = "Pain score"
kind = "continuous"

[[analyses]]
id = "responders-or-mh"
outcome = "responders"
measure = "OR"
method = "MH"

[analyses.tsa]
alpha = 0.05
beta = 0.20
control_event_rate = 0.25
anticipated_effect = 0.5
effect_direction = "increase"

[[analyses]]
id = "responders-rr-re"
outcome = "responders"
measure = "RR"
method = "REML"

[[analyses]]
id = "relief-share-pft"
outcome = "relief-share"
measure = "PFT"
method = "REML"

[alerts.rules]
relative_change = 0.10
ci_width_change = 0.20

[[alerts.channels]]
type = "file"
path = "alerts.log"
'''

WEBHOOK_CHANNEL = '''
[[alerts.channels]]
type = "webhook"
url_env = "LM_TEST_WEBHOOK"
'''

TRIALS = {
    "Jann2020": {"pmid": "1001", "author": "Jann S", "year": 2020, "t": (7, 11), "c": (0, 12)},
    "Geerts2021": {"pmid": "1002", "author": "Geerts M", "year": 2021, "t": (12, 30), "c": (9, 30)},
    "Novak2023": {"pmid": "1003", "author": "Novak P", "year": 2023, "t": (30, 50), "c": (12, 50)},
}


def write_review(folder: Path, webhook: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "review.toml").write_text(REVIEW_TOML + (WEBHOOK_CHANNEL if webhook else ""), encoding="utf-8")
    return folder


def register(review_dir: Path, warehouse: Path) -> str:
    cfg = load_review(review_dir)
    with opened(warehouse) as con:
        upsert_review(con, cfg, str(review_dir), T0)
    return cfg.id


def new_update(warehouse: Path, review_id: str, when: dt.datetime) -> int:
    with opened(warehouse) as con:
        return start_update(con, review_id, when, when, None)


def record_for(study: str, retracted: bool = False) -> Record:
    t = TRIALS[study]
    return Record(source="pubmed", source_id=t["pmid"], title=f"IVIG for painful neuropathy ({study})",
                  authors=[t["author"]], year=t["year"], publication_types=["Randomized Controlled Trial"],
                  is_rct=True, retracted=retracted)


def ingest(warehouse: Path, review_id: str, update_id: int, records: list[Record], when: dt.datetime,
           fail: str | None = None) -> int:
    from warehouse.ingest import fail_search_run

    with opened(warehouse) as con:
        run = start_search_run(con, review_id=review_id, source="pubmed", query="q", mode="replay",
                               window_start=None, window_end=when, now=when, update_id=update_id)
        if fail:
            fail_search_run(con, run, fail, when)
            return run
        finish_search_run(con, run_id=run, review_id=review_id, source="pubmed",
                          fetched=[Fetched(r, f"<PubmedArticle>{r.source_id}</PubmedArticle>") for r in records],
                          watermark=when, now=when)
    return run


def link_and_include(warehouse: Path, review_id: str, studies: list[str], when: dt.datetime) -> None:
    """What linking and screening would do: one study per record, included at full text."""
    with opened(warehouse) as con:
        for s in studies:
            rid = f"pubmed:{TRIALS[s]['pmid']}"
            con.execute("INSERT INTO studies VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", [review_id, s, s, when])
            con.execute("INSERT INTO study_links VALUES (?, ?, ?, 'pmid', 1.0, ?) ON CONFLICT DO NOTHING",
                        [review_id, rid, s, when])
            con.execute("INSERT INTO screening_decisions (review_id, record_id, reviewer, decided_at, stage, decision, "
                        "origin) VALUES (?, ?, 'AB', ?, 'full_text', 'include', 'terminal')", [review_id, rid, when])


def binary_csv(path: Path, studies: list[str], extra: str = "") -> Path:
    lines = [HEADER]
    for s in studies:
        t = TRIALS[s]
        lines.append(f"{s},responders,treatment,IVIG,{t['t'][0]},{t['t'][1]},,,,,,,,,,AB,2024-01-02,Table 2,\n")
        lines.append(f"pubmed:{t['pmid']},responders,control,placebo,{t['c'][0]},{t['c'][1]},,,,,,,,,,AB,2024-01-02,Table 2,\n")
    path.write_text("".join(lines) + extra, encoding="utf-8")
    return path


class Receiver:
    """A real HTTP server on 127.0.0.1 that records POSTed JSON (status: what it answers)."""

    def __init__(self, status: int = 200):
        received = self.received = []
        answer = status

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(answer)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def build_two_versions(tmp_path: Path, when0: dt.datetime = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)):
    """A review with two published versions (Jann + Geerts, then + Novak), extraction imported through the CLI.

    Returns:
        (review_dir, warehouse path as str, review id).
    """
    from typer.testing import CliRunner

    from flows.cli import app
    from tasks.analysis import analyze
    from tasks.versions import record_review_version

    warehouse_path = tmp_path / "warehouse.duckdb"
    review_dir = write_review(tmp_path / "review")
    rid = register(review_dir, warehouse_path)
    wh = str(warehouse_path)
    for i, (studies, new) in enumerate(((["Jann2020", "Geerts2021"], ["Jann2020", "Geerts2021"]),
                                        (["Jann2020", "Geerts2021", "Novak2023"], ["Novak2023"]))):
        when = when0 + dt.timedelta(days=30 * i)
        uid = new_update(warehouse_path, rid, when)
        ingest(warehouse_path, rid, uid, [record_for(s) for s in new], when)
        link_and_include(warehouse_path, rid, new, when)
        f = binary_csv(tmp_path / f"x{i}.csv", studies)
        r = CliRunner().invoke(app, ["extract", "import", str(review_dir), str(f), "--warehouse", wh, "--json"])
        assert r.exit_code == 0, r.output
        analyze.fn(str(review_dir), rid, wh, uid)
        record_review_version(str(review_dir), rid, wh, uid, when, now=when, environ={})
    return review_dir, wh, rid
