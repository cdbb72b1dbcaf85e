"""Several reviews on one real Prefect server (`prefect server start`), one process work pool, two process
workers, each review its own warehouse: every run completes, and every NCBI / CT.gov request first takes a
slot of the shared Prefect global concurrency limit, so the sources never see more than the limits allow.

The bound (bench/many_reviews.py explains it): Prefect's slot-decay limit is a token bucket of `limit` slots
refilled `slot_decay_per_second` a second, so any 1-second window holds at most limit - 1 + ceil(decay)
grants. The project's limits are limit 1 at 80% of the source's rate (NCBI 2.4/s, CT.gov 0.8/s): at most 3
NCBI and 1 CT.gov grant in any second, the sources' own rules, and the same for the requests as received
while the delay between a grant and its request varies by less than 0.25 s. Both are asserted: the grants
(the server's `concurrency-limit.acquired` events) and the requests the fake servers received.

This drives the real scenario of bench/many_reviews.py at its smallest (3 reviews) and takes 1-3 minutes
on a shared 2-core machine: marked `slow`, but it runs in the default suite.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO_ROOT


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_many_reviews", REPO_ROOT / "bench" / "many_reviews.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_window_stats_counts_the_busiest_second():
    bench = load_bench()
    s = bench.window_stats([0.0, 0.1, 0.2, 0.9, 1.0, 1.05, 3.0])
    assert s["requests"] == 7 and s["max_in_1s"] == 5  # [0.1, 1.1) holds 0.1, 0.2, 0.9, 1.0 and 1.05
    assert s["span_s"] == 3.0 and s["mean_per_s"] == 2.0 and s["min_gap_s"] == 0.05
    assert bench.window_stats([]) == {"requests": 0, "max_in_1s": 0, "span_s": 0.0, "mean_per_s": None, "min_gap_s": None}
    assert bench.rate_bound({"limit": 1, "slot_decay_per_second": 2.4}) == 3  # grants 0, 0.42, 0.83 s; next at 1.25
    assert bench.rate_bound({"limit": 1, "slot_decay_per_second": 8.0}) == 8
    assert bench.rate_bound({"limit": 3, "slot_decay_per_second": 3.0}) == 5  # the burst of 3, then 1/3 s apart


def test_ensure_rate_limits_creates_corrects_and_keeps_the_shared_limits(prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from flows.deployments import RATE_LIMITS, ensure_rate_limits

    def have() -> dict:
        with get_client(sync_client=True) as c:
            return {n: (c.read_global_concurrency_limit_by_name(n).limit,
                        c.read_global_concurrency_limit_by_name(n).slot_decay_per_second) for n in RATE_LIMITS}

    with get_client(sync_client=True) as client:
        # an operator's own tighter NCBI budget already on the server
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="ncbi", limit=2, slot_decay_per_second=2.0))
        try:
            assert ensure_rate_limits(update=False) == {"ncbi": "kept (limit 2, decay 2/s)", "ctgov": "created"}
            assert have() == {"ncbi": (2, 2.0), "ctgov": (1, 0.8)}
            assert ensure_rate_limits() == {"ncbi": "updated", "ctgov": "unchanged"}
            assert have() == {"ncbi": (1, 2.4), "ctgov": (1, 0.8)}
            assert ensure_rate_limits() == {"ncbi": "unchanged", "ctgov": "unchanged"}
            assert ensure_rate_limits(ncbi_api_key=True) == {"ncbi": "updated", "ctgov": "unchanged"}
            assert have() == {"ncbi": (1, 8.0), "ctgov": (1, 0.8)}
        finally:  # other tests share this server and create their own "ncbi" limit
            for name in RATE_LIMITS:
                client.delete_global_concurrency_limit_by_name(name)


def test_limits_command_prints_the_commands_and_refuses_without_a_server(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.delenv("LIVINGMETA_NCBI_API_KEY_BLOCK", raising=False)
    out = CliRunner().invoke(app, ["limits", "--dry-run"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["prefect gcl create ncbi --limit 1 --slot-decay-per-second 2.4",
                                       "prefect gcl create ctgov --limit 1 --slot-decay-per-second 0.8"]
    monkeypatch.setenv("NCBI_API_KEY", "not-a-real-key")
    out = CliRunner().invoke(app, ["limits", "--dry-run"])
    assert "prefect gcl create ncbi --limit 1 --slot-decay-per-second 8" in out.output
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # even inside the session harness
        out = CliRunner().invoke(app, ["limits"])
    assert out.exit_code == 2 and "PREFECT_API_URL is not set" in out.output


@pytest.mark.slow
def test_reviews_on_one_server_complete_and_keep_to_the_shared_source_limits():
    bench = load_bench()
    r = bench.run_bench(reviews=3, workers=2, worker_limit=2, pubmed_records=10, ctgov_records=8, ctgov_page_size=4,
                        poll_seconds=1, timeout=600, log=lambda *a: None)
    assert [run["state"] for run in r["runs"]] == ["COMPLETED"] * 3, r["runs"]
    for run in r["runs"]:  # the flow completes even when a search fails: the warehouse says whether they worked
        assert run["searches"] == {"ctgov": "succeeded", "pubmed": "succeeded"}, run
        assert run["records"] == {"ctgov": 8, "pubmed": 10}, run
        assert run["update_runs"] == ["succeeded"], run

    ncbi, ctgov = r["rates"]["ncbi"], r["rates"]["ctgov"]
    assert ncbi["limit"] == {"limit": 1, "slot_decay_per_second": 2.4}  # flows.deployments.RATE_LIMITS, no key
    assert ctgov["limit"] == {"limit": 1, "slot_decay_per_second": 0.8}
    assert (ncbi["bound_1s"], ctgov["bound_1s"]) == (3, 1)  # NCBI's 3 requests/s, CT.gov's 1
    # esearch for new records, esearch for revised ones, one efetch from the history server: per review
    assert ncbi["requests"] == 9
    assert ctgov["requests"] == 3 * 2  # 8 studies, 4 a page
    # each request took one slot of the shared limit first (no retries against these servers)
    assert ncbi["slots"]["requests"] == ncbi["requests"]
    assert ctgov["slots"]["requests"] == ctgov["requests"]
    for name, s in (("ncbi", ncbi), ("ctgov", ctgov)):
        assert s["slots"]["max_in_1s"] <= s["bound_1s"], (name, s)
        assert s["max_in_1s"] <= s["bound_1s"], (name, s)
    assert bench.check_rates(r) == []
