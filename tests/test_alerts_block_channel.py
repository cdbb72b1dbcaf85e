"""A `block` alert channel delivers through a real Prefect notification block to a receiver on 127.0.0.1."""

from __future__ import annotations

import datetime as dt

from tasks.alerts import deliver_alerts
from tests.living_seed import Receiver
from warehouse import opened
from warehouse.alerts import add_alert

NOW = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)


def test_block_channel_delivers_and_an_unknown_block_is_recorded_as_failed(prefect_harness, warehouse_path):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    with Receiver() as rx:
        CustomWebhookNotificationBlock(
            name="lm-test", url=rx.url, method="POST", allow_private_urls=True,  # the receiver is on 127.0.0.1
            json_data={"title": "{{subject}}", "text": "{{body}}"},
        ).save("lm-team", overwrite=True)
        with opened(warehouse_path) as con:
            aid = add_alert(con, review_id="r1", kind="estimate_change", severity="warning", title="OR moved",
                            body="OR 2.91 (1.16 to 7.31)", now=NOW, version=3)
            out = deliver_alerts(
                con, [aid], [{"type": "block", "block": "custom-webhook/lm-team"},
                             {"type": "block", "block": "custom-webhook/no-such-block"}],
                str(warehouse_path.parent), now=NOW, backoff=0.0)
            stored = dict(con.execute("SELECT channel, status FROM alert_deliveries").fetchall())
    assert rx.received == [{"title": "OR moved", "text": "OR 2.91 (1.16 to 7.31)"}], out
    assert stored == {"block:custom-webhook/lm-team": "delivered", "block:custom-webhook/no-such-block": "failed"}
    failed = [d for d in out if d["status"] == "failed"]
    assert failed and failed[0]["attempts"] == 3 and failed[0]["error"]
