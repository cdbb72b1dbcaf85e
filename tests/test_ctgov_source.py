"""The ClinicalTrials.gov search task against a real HTTP server on 127.0.0.1 playing API v2.

The server holds recorded studies (tests/fixtures/ctgov), filters them by
AREA[LastUpdatePostDate]RANGE[...], pages with nextPageToken, refuses a later page that does not repeat the
first page's parameters, and can be told to answer 429, 500, a truncated body or too slowly first, or to page
wrongly (`paging_fault`): "repeat_page" (the third page serves the second page's studies again), "early_end"
(the third page carries no nextPageToken), "token_loop" (the third page's nextPageToken is the second page's).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tasks.ctgov import CtgovClient, CtgovError, run_ctgov_search, search_ctgov
from warehouse import opened

FIXTURES = Path(__file__).parent / "fixtures" / "ctgov"
UTC = dt.timezone.utc


def study(name: str) -> dict:
    return json.loads((FIXTURES / f"study_{name}.json").read_text(encoding="utf-8"))


class FakeCtgov:
    """A tiny ClinicalTrials.gov v2 `/api/v2/studies` endpoint."""

    def __init__(self):
        self.studies: dict[str, dict] = {}
        self.faults: list[str | tuple[int, str]] = []  # consumed one per request before normal answers
        self.requests: list[dict[str, str]] = []
        self.paging_fault: str | None = None
        self._first: dict[str, dict[str, str]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append(params)
                if fake.faults:
                    fault = fake.faults.pop(0)
                    if fault == "timeout":
                        time.sleep(0.6)
                        return self._send(200, b'{"studies": []}')
                    if fault == "truncated":
                        return self._send(200, b'{"studies": [{"protocolSection": {"identi')
                    status, body = fault
                    return self._send(status, body.encode(), {"Retry-After": "0"} if status == 429 else None)
                if url.path != "/api/v2/studies":
                    return self._send(404, b'{"message": "not found"}')
                self._send(*fake.answer(params))

            def _send(self, status, body, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, params: dict[str, str]) -> tuple[int, bytes]:
        token = params.get("pageToken")
        if token:
            first = self._first.get(token)
            repeated = {k: v for k, v in params.items() if k != "pageToken"}
            if first is None or repeated != {k: v for k, v in first.items() if k != "countTotal"}:
                return 400, b'{"message": "pageToken does not match the query parameters"}'
            offset = int(token.split("-")[1])
        else:
            first, offset = params, 0
        since = None
        m = re.fullmatch(r"AREA\[LastUpdatePostDate\]RANGE\[(\d{4}-\d{2}-\d{2}),MAX\]", params.get("filter.advanced", ""))
        if params.get("filter.advanced") and not m:
            return 400, b'{"message": "bad filter.advanced"}'
        if m:
            since = m.group(1)
        hits = [s for _, s in sorted(self.studies.items())
                if since is None or s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] >= since]
        size = int(params.get("pageSize", "10"))
        third = offset == 2 * size
        served = offset - size if third and self.paging_fault == "repeat_page" else offset
        page: dict = {"studies": hits[served:served + size]}
        if params.get("countTotal") == "true":
            page["totalCount"] = len(hits)
        if offset + size < len(hits) and not (third and self.paging_fault == "early_end"):
            nxt = f"tok-{offset + size}" if not (third and self.paging_fault == "token_loop") else f"tok-{size}"
            self._first[nxt] = first
            page["nextPageToken"] = nxt
        return 200, json.dumps(page).encode()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def fake():
    f = FakeCtgov()
    yield f
    f.close()


REVIEW_TOML = '''
id = "ivig-test"
title = "IVIG test review"
[sources.ctgov]
condition = "small fiber neuropathy"
intervention = "immunoglobulin"
earliest_date = 2000-01-01
overlap_days = 7
page_size = {page_size}
'''


@pytest.fixture()
def review(tmp_path):
    def make(page_size: int = 2) -> str:
        d = tmp_path / "review"
        d.mkdir(exist_ok=True)
        (d / "review.toml").write_text(REVIEW_TOML.format(page_size=page_size), encoding="utf-8")
        return str(d)
    return make


def fast(fake: FakeCtgov, **kw) -> dict:
    return {"base_url": fake.url, "min_interval": 0.0, "max_tries": 3, "backoff": 0.01, "timeout": 5.0, **kw}


def run(review_dir, wh, fake, as_of, **kw):
    with CtgovClient(**fast(fake, **kw)) as client:
        return run_ctgov_search(review_dir, str(wh), None, as_of, client=client)


def test_paging_repeats_the_first_page_and_stores_everything(fake, review, warehouse_path):
    for name in ("NCT09000001_v1", "NCT09000002", "NCT09000003"):
        s = study(name)
        fake.studies[s["protocolSection"]["identificationModule"]["nctId"]] = s
    out = run(review(page_size=2), warehouse_path, fake, dt.datetime(2022, 1, 1, tzinfo=UTC))
    assert out["status"] == "succeeded", out
    assert (out["found"], out["new"], out["requests"]) == (3, 3, 2)
    assert fake.requests[0]["countTotal"] == "true" and "countTotal" not in fake.requests[1]
    assert fake.requests[0]["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2000-01-01,MAX]"
    with opened(warehouse_path) as con:
        assert con.execute("SELECT count(*) FROM records WHERE source = 'ctgov'").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM raw_records WHERE source = 'ctgov'").fetchone()[0] == 3
        (wm,) = con.execute("SELECT watermark FROM source_watermarks WHERE source = 'ctgov'").fetchone()
        assert wm == dt.datetime(2022, 1, 1, tzinfo=UTC)
        extra = json.loads(con.execute("SELECT extra FROM records WHERE record_id = 'ctgov:NCT09000003'").fetchone()[0])
        assert extra["overall_status"] == "TERMINATED"


def test_incremental_window_status_change_and_results_posted(fake, review, warehouse_path):
    rd = review()
    fake.studies["NCT09000001"] = study("NCT09000001_v1")
    fake.studies["NCT09000002"] = study("NCT09000002")
    first = run(rd, warehouse_path, fake, dt.datetime(2021, 6, 1, tzinfo=UTC))
    assert first["new"] == 2 and first["events"] == []
    # the trial completes and posts results; the second run searches from watermark - overlap only
    fake.studies["NCT09000001"] = study("NCT09000001_v2")
    fake.requests.clear()
    second = run(rd, warehouse_path, fake, dt.datetime(2022, 5, 12, tzinfo=UTC))
    assert fake.requests[0]["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2021-05-25,MAX]"
    assert (second["found"], second["new"], second["changed"]) == (1, 0, 1)
    kinds = {(e["kind"], e["old_value"], e["new_value"]) for e in second["events"]}
    assert kinds == {("status_change", "RECRUITING", "COMPLETED"), ("results_posted", None, "2022-05-10")}
    assert second["results_problems"] == 5  # the malformed values of the recorded results, each named
    with opened(warehouse_path) as con:
        assert con.execute("SELECT version FROM records WHERE record_id = 'ctgov:NCT09000001'").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM registry_events").fetchone()[0] == 2
    # the overlapping window sees the trial again: nothing changes and no event is recorded twice
    third = run(rd, warehouse_path, fake, dt.datetime(2022, 5, 13, tzinfo=UTC))
    assert fake.requests[-1]["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2022-05-05,MAX]"
    assert (third["changed"], third["unchanged"], third["events"]) == (0, 1, [])


def test_429_and_500_are_retried_with_backoff(fake, review, warehouse_path):
    fake.studies["NCT09000002"] = study("NCT09000002")
    fake.faults = [(429, '{"error": "rate limit exceeded"}'), (500, "oops"), "truncated"]
    out = run(review(), warehouse_path, fake, dt.datetime(2022, 1, 1, tzinfo=UTC), max_tries=4)
    assert out["status"] == "succeeded" and out["new"] == 1 and out["requests"] == 4


def test_timeouts_are_retried(fake):
    fake.faults = ["timeout"]
    with CtgovClient(fake.url, min_interval=0.0, backoff=0.01, max_tries=2, timeout=0.2) as client:
        page = client.get_page({"query.term": "x", "pageSize": "10"})
    assert page.studies == [] and client.requests == 2 and client.retries == 1


def test_failure_marks_the_run_failed_and_keeps_the_watermark(fake, review, warehouse_path):
    rd = review()
    fake.studies["NCT09000002"] = study("NCT09000002")
    ok = run(rd, warehouse_path, fake, dt.datetime(2022, 1, 1, tzinfo=UTC))
    fake.faults = [(500, "down")] * 3
    out = run(rd, warehouse_path, fake, dt.datetime(2023, 1, 1, tzinfo=UTC))
    assert out["status"] == "failed" and "after 3 attempts" in out["error"] and "HTTP 500" in out["error"]
    with opened(warehouse_path) as con:
        (wm, run_id) = con.execute("SELECT watermark, run_id FROM source_watermarks").fetchone()
        assert wm == dt.datetime(2022, 1, 1, tzinfo=UTC) and run_id == ok["run_id"]
        status, error = con.execute("SELECT status, error FROM search_runs WHERE run_id = ?", [out["run_id"]]).fetchone()
        assert status == "failed" and "HTTP 500" in error


def test_failed_second_page_stores_nothing(fake, review, warehouse_path):
    for name in ("NCT09000001_v1", "NCT09000002", "NCT09000003"):
        s = study(name)
        fake.studies[s["protocolSection"]["identificationModule"]["nctId"]] = s
    orig = fake.answer
    calls = []

    def second_page_broken(params):
        calls.append(params)
        if params.get("pageToken"):
            return 500, b"broken"
        return orig(params)

    fake.answer = second_page_broken
    out = run(review(page_size=2), warehouse_path, fake, dt.datetime(2022, 1, 1, tzinfo=UTC))
    assert out["status"] == "failed"
    with opened(warehouse_path) as con:
        assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM source_watermarks").fetchone()[0] == 0


def test_a_refused_request_is_not_retried(fake):
    with CtgovClient(fake.url + "/nowhere", min_interval=0.0, backoff=0.01, max_tries=3) as client:
        with pytest.raises(CtgovError, match="HTTP 404"):
            client.get_page({"query.term": "x"})
        assert client.requests == 1


def test_rate_limit_spaces_requests(fake):
    with CtgovClient(fake.url, min_interval=0.15, backoff=0.01) as client:
        start = time.monotonic()
        for _ in range(3):
            client.get_page({"query.term": "x", "pageSize": "10"})
        assert time.monotonic() - start >= 0.3


def test_base_url_comes_from_the_environment(fake, review, warehouse_path, monkeypatch):
    from flows.settings import ctgov_settings

    fake.studies["NCT09000002"] = study("NCT09000002")
    monkeypatch.setenv("LIVINGMETA_CTGOV_URL", fake.url)
    monkeypatch.setenv("LIVINGMETA_CTGOV_MIN_INTERVAL", "0")
    settings = ctgov_settings()
    assert settings["base_url"] == fake.url and settings["min_interval"] == 0.0 and settings["max_tries"] == 5
    # the flow hands the settings to the task in-process (tasks.runtime), as it does PubMed's
    from tasks import runtime

    runtime.configure(ctgov=settings)
    try:
        out = search_ctgov.fn(review(), str(warehouse_path), None, dt.datetime(2022, 1, 1, tzinfo=UTC))
    finally:
        runtime.configure(ctgov={})
    assert out["status"] == "succeeded" and out["new"] == 1
    monkeypatch.setenv("LIVINGMETA_CTGOV_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="LIVINGMETA_CTGOV_TIMEOUT"):
        ctgov_settings()


def test_replay_reads_recorded_pages_through_the_same_path(review, warehouse_path, tmp_path):
    rd = review()
    replay = tmp_path / "replay"
    replay.mkdir()
    (replay / "page_1.json").write_bytes((FIXTURES / "replay_page_1.json").read_bytes())
    (replay / "page_2.json").write_bytes((FIXTURES / "study_NCT09000003.json").read_bytes())
    out = search_ctgov.fn(rd, str(warehouse_path), None, dt.datetime(2020, 6, 1, tzinfo=UTC), str(replay))
    assert out["status"] == "succeeded" and out["mode"] == "replay" and out["new"] == 3 and out["requests"] == 0
    again = search_ctgov.fn(rd, str(warehouse_path), None, dt.datetime(2020, 6, 1, tzinfo=UTC), str(replay))
    assert again["new"] == 0 and again["unchanged"] == 3
    missing = search_ctgov.fn(rd, str(warehouse_path), None, dt.datetime(2020, 6, 1, tzinfo=UTC), str(tmp_path / "no"))
    assert missing["status"] == "failed" and "replay folder not found" in missing["error"]
    (replay / "page_3.json").write_text('{"studies": [', encoding="utf-8")
    broken = search_ctgov.fn(rd, str(warehouse_path), None, dt.datetime(2020, 7, 1, tzinfo=UTC), str(replay))
    assert broken["status"] == "failed" and "page_3.json" in broken["error"]
