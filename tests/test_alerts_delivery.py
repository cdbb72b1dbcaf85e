"""Every alert a cycle raises reaches every configured channel, exactly once.

Alerts are raised by many steps (screening: records wait; linking: merges, registry results; versioning:
versions, registry events, failed searches; people's commands between cycles). A real webhook receiver on
127.0.0.1 counts deliveries per alert kind over real flow runs of the example review's timeline; the
warehouse's alerts and alert_deliveries must agree with what arrived, and a re-run sends nothing again.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from tests import prefect_reads as pr
from tests.living_seed import Receiver, ingest, new_update, register, write_review
from warehouse import opened
from warehouse.alerts import add_alert

REVIEW = "ivig-delivery"  # its own review id: artifacts and events on the shared test server are per review
HOOK_ENV = "LM_DELIVERY_HOOK"
CHANNELS = {"file:alerts.log", f"webhook:{HOOK_ENV}"}
STEPS = {"2010": dt.datetime(2010, 12, 31, tzinfo=dt.timezone.utc),
         "2020": dt.datetime(2020, 12, 31, tzinfo=dt.timezone.utc),
         "2021": dt.datetime(2021, 12, 31, tzinfo=dt.timezone.utc)}


def _alerts_and_deliveries(wh):
    with opened(wh, read_only=True) as con:
        alerts = con.execute("SELECT alert_id, kind FROM alerts ORDER BY alert_id").fetchall()
        deliveries = con.execute("SELECT alert_id, channel, status FROM alert_deliveries").fetchall()
    return alerts, deliveries


def test_every_alert_of_a_flow_run_reaches_every_channel_once(prefect_harness, tmp_path, monkeypatch):
    from flows.update import update_review

    review = pr.copy_review(tmp_path, REVIEW)
    toml = review / "review.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + f'\n[[alerts.channels]]\ntype = "webhook"\nurl_env = "{HOOK_ENV}"\n',
                    encoding="utf-8")
    wh, out = tmp_path / "wh.duckdb", tmp_path / "out"
    with Receiver() as hook:
        monkeypatch.setenv(HOOK_ENV, hook.url)

        def cycle(step):
            state = update_review(str(review), str(wh), str(out), as_of=STEPS[step],
                                  replay_dir=str(review / "snapshots" / step),
                                  recorded_inputs=pr.step_inputs(review, step), return_state=True)
            assert state.is_completed(), state.message

        for step in STEPS:
            cycle(step)
        alerts, deliveries = _alerts_and_deliveries(wh)
        kinds = Counter(k for _, k in alerts)
        # the screening alert used to be written and never sent; versions and registry events as before
        assert kinds["new_candidates"] >= 2 and kinds["estimate_change"] == 3, kinds
        assert Counter(m["kind"] for m in hook.received) == kinds
        assert sorted(m["alert_id"] for m in hook.received) == [a for a, _ in alerts]  # each once
        assert {(a, c) for a, c, s in deliveries if s == "delivered"} == {(a, c) for a, _ in alerts for c in CHANNELS}
        assert len(deliveries) == len(alerts) * len(CHANNELS)
        log = (out / REVIEW / "alerts.log").read_text(encoding="utf-8")
        assert log.count("\n## [") + log.startswith("## [") == len(alerts)

        # re-running the last cycle raises nothing new and sends nothing again
        n = len(hook.received)
        cycle("2021")
        assert len(hook.received) == n
        assert _alerts_and_deliveries(wh) == (alerts, deliveries)


def test_alerts_raised_between_cycles_and_failed_deliveries_go_out_with_the_next_cycle(tmp_path, warehouse_path):
    from tasks.versions import record_review_version

    review = write_review(tmp_path / "review", webhook=True)
    rid = register(review, warehouse_path)
    t1 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)
    day = dt.timedelta(days=1)

    def cycle(when, url, fail=None):
        uid = new_update(warehouse_path, rid, when)
        ingest(warehouse_path, rid, uid, [], when, fail=fail)
        return record_review_version(str(review), rid, str(warehouse_path), uid, when, now=when,
                                     environ={"LM_TEST_WEBHOOK": url})

    with Receiver(status=500) as down:
        first = cycle(t1, down.url, fail="HTTP 500 from esearch")
    assert first["deliveries"] == {"delivered": 1, "failed": 1}  # the file worked, the webhook did not
    with opened(warehouse_path) as con:
        # a person merges studies between cycles: the linking step's alert is raised outside any cycle
        merged = add_alert(con, review_id=rid, kind="study_merged", severity="warning", title="studies merged",
                           body="A and B are one study", now=t1 + day, dedupe_key="merge:A:B")
    with Receiver() as up:
        second = cycle(t1 + 2 * day, up.url)
        assert Counter(m["kind"] for m in up.received) == {"search_failed": 1, "study_merged": 1}
        # the file had the failed-search alert already: only the merge is new there
        assert second["deliveries"] == {"delivered": 3, "failed": 0}
        third = cycle(t1 + 3 * day, up.url)
        assert len(up.received) == 2 and third["deliveries"] == {"delivered": 0, "failed": 0}
    with opened(warehouse_path) as con:
        rows = con.execute("SELECT alert_id, channel, status FROM alert_deliveries ORDER BY alert_id, channel").fetchall()
    assert [r for r in rows if r[0] == merged] == [(merged, "file:alerts.log", "delivered"),
                                                   (merged, "webhook:LM_TEST_WEBHOOK", "delivered")]
    assert {r[2] for r in rows} == {"delivered"}
    assert (review / "alerts.log").read_text().count("## [") == 2


def test_alerts_of_cycles_killed_before_delivering_go_out_with_the_next_cycle_that_delivers(tmp_path, warehouse_path):
    """Two cycles in a row die before their delivery step: what they raised (without queuing it, as linking and
    screening raise alerts) is still delivered by the next cycle, and a finished cycle's old alerts are not."""
    from tasks.alerts import deliver_cycle_alerts
    from warehouse.reviews import finish_update

    review = write_review(tmp_path / "review")
    rid = register(review, warehouse_path)
    t1 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    day = dt.timedelta(days=1)
    channels = [{"type": "file", "path": "alerts.log"}]

    def alert(key, when):
        with opened(warehouse_path) as con:
            return add_alert(con, review_id=rid, kind="study_merged", severity="warning", title=f"merged {key}",
                             body=key, now=when, dedupe_key=f"merge:{key}")

    old = alert("before-any-cycle", t1 - day)  # delivered by nobody before channels existed: outside every window
    first = new_update(warehouse_path, rid, t1)
    with opened(warehouse_path) as con:
        finish_update(con, first, "succeeded", {}, t1)
    killed_a = new_update(warehouse_path, rid, t1 + day)
    a = alert("killed-a", t1 + day)
    killed_b = new_update(warehouse_path, rid, t1 + 2 * day)  # marks killed_a interrupted
    b = alert("killed-b", t1 + 2 * day)
    last = new_update(warehouse_path, rid, t1 + 3 * day)  # marks killed_b interrupted
    with opened(warehouse_path) as con:
        statuses = dict(con.execute("SELECT update_id, status FROM update_runs").fetchall())
        out = deliver_cycle_alerts(con, rid, last, channels, str(review), now=t1 + 3 * day)
    assert statuses[killed_a] == statuses[killed_b] == "interrupted"
    assert sorted(d["alert_id"] for d in out if d["status"] == "delivered") == [a, b]
    assert old not in {d["alert_id"] for d in out}
    text = (review / "alerts.log").read_text()
    assert text.count("merged killed-a") == 1 and text.count("merged killed-b") == 1
    assert "before-any-cycle" not in text
