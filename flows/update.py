"""The `update-review` flow: one cycle of a living review."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import State

from livingmeta.redaction import redact_exception

from flows import settings
from tasks import runtime
from tasks.alerts import deliver_pending_alerts
from tasks.analysis import analyze
from tasks.ctgov import search_ctgov
from tasks.inputs import apply_recorded_inputs
from tasks.linking import link_studies
from tasks.observe import cycle_message, cycle_state, state_result
from tasks.publish import publish, publish_run_artifacts
from tasks.pubmed import search_pubmed
from tasks.reviews import finish_update, register_review, start_update
from tasks.screening import flag_candidates
from tasks.versions import record_version
from warehouse.lock import update_lock

settings.apply_warehouse_wait()  # how long a step waits for another process's turn on the warehouse


@flow(name="update-review")
def update_review(
    review_dir: str,
    warehouse: str,
    out_dir: str,
    as_of: dt.datetime | None = None,
    replay_dir: str | None = None,
    recorded_inputs: list[str] | None = None,
) -> State:
    """Search sources, link studies, flag candidates, re-analyse and publish what changed.

    Ends FAILED (after committing everything that succeeded and delivering the alerts) when a source search
    or an analysis failed, COMPLETED otherwise; the state's message says what happened and its data is the
    cycle's summary (callers: `update_review(..., return_state=True)` then `tasks.observe.state_result`).
    """
    # one cycle per warehouse at a time, held for the whole cycle (CLI, `serve`, workers alike): warehouse/lock.py
    with update_lock(warehouse):
        as_of = as_of or dt.datetime.now(dt.timezone.utc)
        runtime.configure_kill_at(settings.test_kill_at())  # crash tests only; a no-op when unset
        # secrets stay out of parameters; shared rate limits (Prefect global concurrency limits) need a server
        settings.register_environment_secrets()  # before anything can store, log or print them (redaction)
        runtime.configure(ncbi=settings.ncbi_settings(), ctgov=settings.ctgov_settings(),
                          secret_lookup=settings.secret, shared_rate_limits=settings.prefect_server_configured())
        # review.toml is read and validated once per cycle, here: every step below uses this config
        cfg = register_review(review_dir, warehouse)
        review_id = cfg.id
        update_id = start_update(review_id, warehouse, as_of, str(flow_run.get_id() or ""))
        replay = {s: (str(Path(replay_dir) / s) if replay_dir else None) for s in ("pubmed", "ctgov")}
        try:
            # a failed search is a FAILED task run carrying its summary; the cycle goes on with the other source
            searches = [
                state_result(search_pubmed(review_dir, warehouse, update_id, as_of, replay["pubmed"], cfg=cfg,
                                           return_state=True)),
                state_result(search_ctgov(review_dir, warehouse, update_id, as_of, replay["ctgov"], cfg=cfg,
                                          return_state=True)),
            ]
            studies = link_studies(review_id, warehouse)
            queue = flag_candidates(review_dir, review_id, warehouse, cfg)
            inputs = apply_recorded_inputs(review_dir, review_id, warehouse, recorded_inputs or [], cfg)
            analyses = analyze(review_dir, review_id, warehouse, update_id, cfg)
            version = record_version(review_dir, review_id, warehouse, update_id, as_of, out_dir, cfg)
            outputs = publish(review_dir, review_id, warehouse, out_dir)
        except Exception as e:
            # every task redacts what it raises (tasks.observe.redacts_exceptions); the flow's own code may raise
            # too, and Prefect makes the FAILED message from this exception's text
            redact_exception(e)
            finish_update(update_id, warehouse, "failed", {}, f"{type(e).__name__}: {e}")
            # alerts that steps before the failure raised still go out
            deliver_pending_alerts(review_dir, review_id, warehouse, update_id, out_dir, cfg, return_state=True)
            raise
        summary = {"review_id": review_id, "update_id": update_id, "as_of": as_of.isoformat(),
                   "searches": searches, "studies": studies, "queue": queue, "inputs": inputs, "analyses": analyses,
                   "version": version, "outputs": outputs}
        # the artifacts describe what is already committed: a Prefect hiccup there must not fail the cycle
        artifacts = publish_run_artifacts(review_id, warehouse, outputs, return_state=True)
        summary["artifacts"] = artifacts.result() if artifacts.is_completed() else {}
        failed, message = cycle_message(summary)
        finish_update(update_id, warehouse, "failed" if failed else "succeeded", summary,
                      message if failed else None)
        return cycle_state(summary)
