"""Shared source rate limits (docs/operating.md §5): each choke point takes a slot of the Prefect global
rate limit ("ncbi" / "ctgov") before every HTTP request, only when the flow configured it.

The choke points run against real HTTP servers on 127.0.0.1; the limiter is a recording function, and
once Prefect's own `rate_limit` against the session's test server (a real global concurrency limit).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ncbi_server import FakeNCBI, Fault, fixture_articles
from tasks import runtime
from tasks.ctgov import CtgovClient
from test_pubmed_search import RATE_LIMIT_JSON, make_client, run, write_review


class TinyCtgov:
    """Answers /api/v2/studies: the queued statuses first (503 ...), then an empty last page."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.hits = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                fake.hits += 1
                status = fake.statuses.pop(0) if fake.statuses else 200
                body = b'{"studies": [], "totalCount": 0}' if status == 200 else b'{"error": "busy"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def ctgov():
    server = TinyCtgov([503])
    yield server
    server.close()


@pytest.fixture(autouse=True)
def reset_runtime():
    yield
    runtime.configure(ncbi={})


def ctgov_page(server: TinyCtgov) -> int:
    with CtgovClient(server.url, min_interval=0.0, backoff=0.001, max_tries=3, timeout=5.0) as client:
        assert client.get_page({"query.term": "x", "pageSize": "10"}).studies == []
        return client.requests


def test_no_shared_slot_is_taken_unless_configured(tmp_path, warehouse_path, ctgov):
    taken: list[str] = []
    runtime.configure(rate_limiter=taken.append)  # shared_rate_limits defaults to False
    assert runtime.take_rate_limit_slot("ncbi") is False
    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        result = run(write_review(tmp_path / "review"), warehouse_path, make_client(ncbi))
    assert result["status"] == "succeeded" and result["requests"] == 3
    assert ctgov_page(ctgov) == 2
    assert taken == []


def test_every_request_and_retry_takes_a_slot_first_when_configured(tmp_path, warehouse_path, ctgov):
    taken: list[tuple[str, int]] = []
    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        # the limiter notes how many requests had reached the server: a slot must come before its request
        runtime.configure(shared_rate_limits=True, rate_limiter=lambda name: taken.append((name, len(ncbi.requests))))
        ncbi.add_fault("esearch.fcgi", Fault(status=429, body=RATE_LIMIT_JSON))
        result = run(write_review(tmp_path / "review"), warehouse_path, make_client(ncbi))
    assert result["status"] == "succeeded" and result["requests"] == 4 and result["retries"] == 1
    assert taken == [("ncbi", 0), ("ncbi", 1), ("ncbi", 2), ("ncbi", 3)]

    taken.clear()
    runtime.configure(shared_rate_limits=True, rate_limiter=lambda name: taken.append((name, ctgov.hits)))
    assert ctgov_page(ctgov) == 2  # 503, then the page
    assert taken == [("ctgov", 0), ("ctgov", 1)]


def test_prefect_global_rate_limit_gets_a_slot_per_request(prefect_harness, tmp_path, warehouse_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        # slow decay: the slots this run occupies are still visible when the test reads them
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="ncbi", limit=100, slot_decay_per_second=0.001))
        runtime.configure(shared_rate_limits=True)  # Prefect's rate_limit("ncbi", occupy=1, strict=False)
        with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
            result = run(write_review(tmp_path / "review"), warehouse_path, make_client(ncbi))
        assert result["status"] == "succeeded" and result["requests"] == 3
        limit = client.read_global_concurrency_limit_by_name("ncbi")
        client.delete_global_concurrency_limit_by_name("ncbi")
    assert limit.active_slots == 3
    assert result["new"] == 4
