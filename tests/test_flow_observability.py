"""What a cycle tells the Prefect server, read back through the API as an operator or an Automation sees it:
INFO log lines from every step (with the CLI's quiet console settings), the estimates table, the report link
and the change log as artifacts, and `livingmeta.*` events about the review — all redacted.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests import prefect_reads as pr

REVIEW = "ivig-observe"  # its own review id: artifacts and events on the shared test server are per review
AS_OF = dt.datetime(2010, 12, 31, tzinfo=dt.timezone.utc)
RESOURCE = f"livingmeta.review.{REVIEW}"


def test_run_logger_lines_reach_the_api_at_info_while_the_console_stays_at_warning():
    # the CLI's and the tests' settings (flows/settings.quiet_prefect_defaults; tests/conftest.py)
    import logging

    import prefect.main  # noqa: F401 - configures Prefect's logging, as any flow import does
    from prefect.logging.handlers import PrefectConsoleHandler

    assert logging.getLogger("prefect").getEffectiveLevel() == logging.WARNING
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.INFO
    consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    assert consoles and all(h.level == logging.WARNING for h in consoles)


def test_a_published_cycle_logs_each_step_and_leaves_artifacts_and_events(prefect_harness, tmp_path):
    from flows.update import update_review

    review = pr.copy_review(tmp_path, REVIEW)
    state = update_review(str(review), str(tmp_path / "wh.duckdb"), str(tmp_path / "out"), as_of=AS_OF,
                          replay_dir=str(review / "snapshots" / "2010"),
                          recorded_inputs=pr.step_inputs(review, "2010"), return_state=True)
    run_id = state.state_details.flow_run_id
    assert state.is_completed()

    lines = [(r.level, r.message) for r in pr.logs(run_id)]
    text = "\n".join(m for _, m in lines)
    info = [m for lvl, m in lines if lvl == 20]
    assert any(m.startswith("pubmed: searched recorded answers in ") and "found: " in m and " new, " in m for m in info), text
    assert any(m.startswith("ctgov: searched recorded answers in ") for m in info), text
    assert any(m.startswith("linked ") and " studies " in m for m in info), text
    assert any(m.startswith("queued ") and "wait for screening" in m for m in info), text
    assert any(m.startswith("applied recorded decisions file decisions.csv") for m in info), text
    # 2010: only the share with relief has data (the Sjögren case series)
    assert "analyses recomputed: relief-share-pft; unchanged: none; no data: responders-or-mh, responders-rr-re" in info
    assert any(m.startswith(f"published version 1 of {REVIEW}") for m in info), text
    assert any(m.startswith("published the report of version 1 to ") for m in info), text
    assert f"published version 1 of {REVIEW}" in info  # the flow run's own closing line

    arts = pr.artifacts(run_id)
    (table,) = arts[f"{REVIEW}-estimates"]
    assert table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    by_id = {r["analysis_id"]: r for r in rows}
    assert set(by_id) == {"relief-share-pft"} and by_id["relief-share-pft"]["version"] == 1
    assert all("estimate" in r and "ci_lower" in r and "k" in r for r in rows)
    (link,) = arts[f"{REVIEW}-report"]
    assert link.type == "markdown"  # Prefect stores a link artifact as markdown [text](link)
    assert "v1/report.html" in str(link.data)
    (changes,) = arts[f"{REVIEW}-changes"]
    assert changes.type == "markdown" and "version 1" in changes.data

    events = pr.events(RESOURCE, run_id, expect={"livingmeta.version.published", "livingmeta.estimate.shifted",
                                                  "livingmeta.candidates.waiting"})
    names = [e.event for e in events]
    assert names.count("livingmeta.version.published") == 1, names
    published = next(e for e in events if e.event == "livingmeta.version.published")
    assert published.payload["version"] == 1 and published.payload["kind"] == "estimate_change"
    assert published.resource["prefect.resource.id"] == RESOURCE
    (shifted,) = [e.payload for e in events if e.event == "livingmeta.estimate.shifted"]
    assert shifted["analysis_id"] == "relief-share-pft" and shifted["version"] == 1
    assert "analysis_added" in shifted["changes"] and shifted["new"]["k"] >= 1
    waiting = next(e for e in events if e.event == "livingmeta.candidates.waiting")
    assert "wait for screening" in waiting.payload["title"]


@pytest.fixture()
def refusing_ctgov(monkeypatch):
    with pr.refusing_ctgov(monkeypatch) as srv:
        yield srv


def test_a_failed_source_is_an_event_and_nothing_sent_to_prefect_holds_the_secret(prefect_harness, tmp_path,
                                                                                   refusing_ctgov):
    from flows.update import update_review

    review = pr.live_ctgov_review(tmp_path, REVIEW)
    state = update_review(str(review), str(tmp_path / "wh.duckdb"), str(tmp_path / "out"), as_of=AS_OF,
                          return_state=True)
    run_id = state.state_details.flow_run_id
    assert state.is_failed()

    events = pr.events(RESOURCE, run_id, expect={"livingmeta.source.failed"})
    (failed,) = [e for e in events if e.event == "livingmeta.source.failed"]
    assert failed.payload["kind"] == "search_failed" and failed.payload["severity"] == "critical"
    assert "ctgov search failed" in failed.payload["title"] and "HTTP 400" in failed.payload["body"]
    check_documented_automation(failed)  # docs/operating.md's Automation routes exactly this event

    logs = pr.logs(run_id)
    assert any(r.level == 40 and r.message.startswith("ctgov search failed: ") for r in logs)
    run = pr.flow_run_of(state)
    sent = [run.state.message, *(r.message for r in logs), *(json.dumps(e.payload) for e in events)]
    sent += [str(a.data) + str(a.description) for arts in pr.artifacts(run_id).values() for a in arts]
    sent += [t.state.message or "" for runs in pr.task_runs(run_id).values() for t in runs]
    assert not [s for s in sent if pr.SECRET in s]
    assert any("[REDACTED]" in s for s in sent)


def documented_automation() -> str:
    """The YAML of the Automation documented in docs/operating.md, section "Automations"."""
    from tests.conftest import REPO_ROOT

    doc = (REPO_ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    section = doc[doc.index("## 8. Automations"):]
    return section[section.index("```yaml\n") + 8:section.index("```", section.index("```yaml\n") + 8)]


def check_documented_automation(source_failed_event) -> None:
    """The documented Automation validates, is accepted by the server, and its trigger matches the real
    `livingmeta.source.failed` event of a run."""
    import yaml
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.events.schemas.automations import AutomationCore
    from prefect.events.schemas.events import matches

    block_id = CustomWebhookNotificationBlock(name="lm-doc", url="http://127.0.0.1:9/hook", allow_private_urls=True,
                                              json_data={"text": "{{body}}"}).save("lm-doc-alerts", overwrite=True)
    text = documented_automation().replace("00000000-0000-0000-0000-000000000000", str(block_id))
    (spec,) = yaml.safe_load(text)["automations"]
    automation = AutomationCore.model_validate(spec)
    trigger = automation.trigger
    assert any(matches(e, source_failed_event.event) for e in trigger.expect)
    assert trigger.match.matches(source_failed_event.resource)
    with pr.client() as c:
        created = c.create_automation(automation)
        stored = c.read_automation(created)
    assert stored.name == "livingmeta-source-failed" and stored.actions[0].type == "send-notification"


def test_prefect_s_own_log_lines_and_tracebacks_are_redacted_before_they_reach_the_api(prefect_harness):
    # not only our lines: Prefect's engine quotes exceptions and state messages in its own log records
    from prefect import flow, get_run_logger

    # install_log_redaction: what runtime.configure does at the start of update-review
    from livingmeta.redaction import forget_secrets, install_log_redaction, register_secret

    @flow(name="lm-redaction-check")
    def leaky():
        install_log_redaction()
        get_run_logger().info("connecting with %s", pr.SECRET)
        raise RuntimeError(f"server said: bad key {pr.SECRET}")

    register_secret(pr.SECRET)
    try:
        state = leaky(return_state=True)
    finally:
        forget_secrets()
    assert state.is_failed()
    logs = pr.logs(state.state_details.flow_run_id)
    assert any(r.message == "connecting with [REDACTED]" for r in logs), [r.message for r in logs]
    assert any("Traceback" in r.message and "bad key [REDACTED]" in r.message for r in logs)
    assert not [r.message for r in logs if pr.SECRET in r.message]
