"""Deployments: one scheduled `update-review` deployment per review, built from the review's review.toml.

`livingmeta serve` (flows/cli/deploy.py) uses these (deploy/deployments.py re-exports them for workers) to run every review on one machine with `prefect.serve`.
For workers in a work pool, `prefect.yaml` at the repository root declares the same deployments
(tests/test_deploy_config.py checks that its schedules match review.toml).

The two must not overwrite each other on one server, so they have different names under the flow
`update-review`: `prefect deploy` registers `<review id>` (work pool `livingmeta`), `livingmeta serve`
registers `<review id>-serve` (`serve_name`). `prefect.serve` pauses its deployments' schedules when it stops.

Each review gets its own warehouse file by default. DuckDB allows one writer per file, and `prefect.serve`
runs every flow run in its own process, so two reviews updating at the same time cannot share one file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from livingmeta.config import load_review

FLOW_NAME = "update-review"
# `livingmeta serve` deployments are `<review id>` + this; prefect.yaml's (work pool) are the bare review id
SERVE_SUFFIX = "-serve"
ENTRYPOINT = "flows/update.py:update_review"
# Shared source rate limits (Prefect global concurrency limits with slot decay); docs/operating.md explains them.
# A slot-decay limit is a token bucket holding `limit` slots, refilled `slot_decay_per_second` a second. With
# limit 3, three requests may leave at once after a quiet spell: NCBI saw 5 within one second in
# bench/many_reviews.py. Limit 1 spaces grants at least 1/decay s apart. At exactly NCBI's 3/s, though, the
# varying delay between a grant and its request (a busy machine, the server's clock) still let 4 requests
# land within one second. So the decay is 80% of each source's rate: grants 0.42 s apart for NCBI, and no
# 1-second window holds more than the source's rate while that delay varies by less than 0.25 s.
RATE_LIMITS = {
    "ncbi": {"limit": 1, "slot_decay_per_second": 2.4, "note": "NCBI E-utilities: 3 requests/s without an API key (10 with one)"},
    "ctgov": {"limit": 1, "slot_decay_per_second": 0.8, "note": "ClinicalTrials.gov API v2: about 1 request/s (undocumented)"},
}


@dataclass(frozen=True)
class DeploymentSpec:
    """What one review's deployment is: name, schedule and the flow parameters."""

    name: str
    review_id: str
    review_dir: str
    cron: str | None
    timezone: str
    parameters: dict
    interval: int | None = None  # seconds, instead of cron
    anchor_date: str | None = None  # ISO 8601 with offset: when the interval schedule starts
    tags: list[str] = field(default_factory=list)
    description: str = ""

    def as_dict(self) -> dict:
        """A JSON-able view (what `livingmeta serve --dry-run` prints)."""
        return {"flow": FLOW_NAME, "entrypoint": ENTRYPOINT, **asdict(self)}


def find_reviews(root: Path) -> list[Path]:
    """Review folders under `root`: the root itself when it holds review.toml, else each child that does.

    Raises:
        FileNotFoundError: when `root` is not a folder or holds no review.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: reviews root is not a folder; give the folder that holds the review folders")
    if (root / "review.toml").exists():
        return [root]
    found = sorted(p for p in root.iterdir() if (p / "review.toml").is_file())
    if not found:
        raise FileNotFoundError(f"{root}: no review folders (folders holding review.toml) found here")
    return found


def serve_name(review_id: str) -> str:
    """The name `livingmeta serve` gives a review's deployment (distinct from prefect.yaml's `<review id>`)."""
    return f"{review_id}{SERVE_SUFFIX}"


def deployment_spec(review_dir: Path, *, warehouse_dir: Path, out_root: Path, warehouse: Path | None = None) -> DeploymentSpec:
    """The `livingmeta serve` deployment of one review: its schedule and time zone come from review.toml [schedule].

    Args:
        review_dir: the review folder (holding review.toml).
        warehouse_dir: where per-review warehouse files live (`<warehouse_dir>/<review id>.duckdb`).
        out_root: reports, snapshots and alert files go to `<out_root>/<review id>`.
        warehouse: one explicit warehouse file instead of the per-review default.
    Raises:
        ConfigError: when review.toml is missing or invalid.
    """
    review_dir = Path(review_dir).resolve()
    cfg = load_review(review_dir)
    wh = Path(warehouse) if warehouse else Path(warehouse_dir) / f"{cfg.id}.duckdb"
    params = {"review_dir": str(review_dir), "warehouse": str(Path(wh).resolve()),
              "out_dir": str((Path(out_root) / cfg.id).resolve())}
    sched = cfg.schedule
    anchor = None
    if sched.anchor_date is not None:
        # a TOML local date-time (no offset) is a wall-clock time in the review's time zone
        a = sched.anchor_date if sched.anchor_date.tzinfo else sched.anchor_date.replace(tzinfo=ZoneInfo(sched.timezone))
        anchor = a.isoformat()
    return DeploymentSpec(name=serve_name(cfg.id), review_id=cfg.id, review_dir=str(review_dir), cron=sched.cron,
                          timezone=sched.timezone, parameters=params, interval=sched.interval, anchor_date=anchor,
                          tags=["livingmeta", f"review:{cfg.id}"], description=f"Living review update: {cfg.title}")


def prefect_schedule(spec: DeploymentSpec):
    """The Prefect schedule of a spec: Cron(cron, timezone) or Interval(seconds, anchor_date, timezone)."""
    import datetime as dt

    from prefect.schedules import Cron, Interval

    if spec.interval is not None:
        anchor = dt.datetime.fromisoformat(spec.anchor_date) if spec.anchor_date else None
        return Interval(spec.interval, anchor_date=anchor, timezone=spec.timezone)
    return Cron(spec.cron, timezone=spec.timezone)


def deployment_specs(review_dirs: list[Path], *, warehouse_dir: Path, out_root: Path,
                     warehouse: Path | None = None) -> list[DeploymentSpec]:
    """Deployment specs for several reviews; refuses duplicate review ids and a shared file for several reviews.

    Raises:
        ValueError: two folders with the same review id, or one `warehouse` for more than one review.
    """
    if warehouse is not None and len(review_dirs) > 1:
        raise ValueError("one warehouse file cannot serve several reviews that may update at the same time "
                         "(DuckDB allows one writer per file); drop --warehouse to give each review its own file")
    specs = [deployment_spec(d, warehouse_dir=warehouse_dir, out_root=out_root, warehouse=warehouse) for d in review_dirs]
    seen: dict[str, str] = {}
    for s in specs:
        if s.review_id in seen:
            raise ValueError(f"review id {s.review_id!r} is used by both {seen[s.review_id]} and {s.review_dir}; "
                             "review ids must be unique (change `id` in one review.toml)")
        seen[s.review_id] = s.review_dir
    return specs


def build_deployments(specs: list[DeploymentSpec]) -> list:
    """Prefect RunnerDeployments for `prefect.serve`: one per review, at most one run of a review at a time."""
    from flows.update import update_review

    return [
        update_review.to_deployment(
            name=s.name,
            schedules=[prefect_schedule(s)],
            parameters=s.parameters,
            tags=s.tags,
            description=s.description,
            # a second run of the same review would wait for the warehouse file anyway; never stack them up
            concurrency_limit=1,
        )
        for s in specs
    ]


def serve_deployments(deployments: list, *, limit: int | None = None, grace_seconds: float = 60.0) -> None:
    """Serve the deployments until SIGTERM or Ctrl-C (what `prefect.serve` does), then stop cleanly.

    On SIGTERM it takes no new runs, lets the runs in progress finish (up to `grace_seconds`; then they are sent
    SIGTERM and end Crashed), pauses the served schedules and exits with 0.
    """
    import asyncio
    import signal

    from prefect.exceptions import TerminationSignal

    runner = _draining_runner_class()(pause_on_shutdown=True, limit=limit)
    # from now on (Runner.start installs the same handler again): a SIGTERM while registering still stops cleanly
    signal.signal(signal.SIGTERM, runner.handle_sigterm)
    runner.grace_seconds = grace_seconds
    for d in deployments:
        runner.add_deployment(d)
    names = ", ".join(f"{FLOW_NAME}/{d.name}" for d in deployments)
    print(f"Serving {names}: polling for scheduled runs. Stop with Ctrl-C or SIGTERM.", flush=True)
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, TerminationSignal):
        pass


def _draining_runner_class():
    """A Prefect Runner whose SIGTERM lets the runs in progress finish instead of killing them mid-write."""
    import asyncio
    import time

    from prefect.runner import Runner

    class DrainingRunner(Runner):
        grace_seconds: float = 60.0

        _stop_requested: bool = False

        def handle_sigterm(self, *args, **kwargs) -> None:
            # Prefect 3.8.8's own handler exits at once: the flow-run processes die with the runner, the run stays
            # Running on the server for ever and its update cycle is left half done. Here: take no new runs, let
            # the event loop keep watching the runs in progress, and stop once they have ended.
            if self._stop_requested:
                return
            self._stop_requested = True
            self.stopping = True
            poller = getattr(self, "_scheduled_run_poller", None)
            if poller is not None:
                poller.stopping = True
            busy = len(self._runs_in_progress())
            self._logger.info(f"SIGTERM received: waiting up to {self.grace_seconds:g} s for {busy} flow run(s) in "
                              "progress, then shutting down..." if busy else "SIGTERM received, shutting down...")
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not serving yet: start() sees the request
                return
            # a signal handler must not touch the loop's internals directly: hand the work to the loop
            loop.call_soon_threadsafe(lambda: loop.create_task(self._drain_and_stop()))

        async def start(self, *args, **kwargs) -> None:
            if self._stop_requested:  # SIGTERM while registering: only pause the schedules on the way out
                async with self:
                    return
            await super().start(*args, **kwargs)

        def _runs_in_progress(self) -> dict:
            """flow run id -> pid of the runs this runner still has a process for."""
            runs = {k: v.get("pid") for k, v in list(self._flow_run_process_map.items())}
            manager = getattr(self, "_process_manager", None)
            for k, handle in list(getattr(manager, "_process_map", {}).items()):
                runs.setdefault(k, getattr(handle, "pid", None))
            return runs

        async def _drain_and_stop(self) -> None:
            import os
            import signal

            deadline = time.monotonic() + self.grace_seconds
            while self._runs_in_progress() and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            left = self._runs_in_progress()
            for run_id, pid in left.items():
                self._logger.warning(f"flow run {run_id} still running after {self.grace_seconds:g} s: sending SIGTERM")
                if pid:
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            stop_by = time.monotonic() + 10
            while left and self._runs_in_progress() and time.monotonic() < stop_by:
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.5)  # let the runs' control-channel connections close before the runner does
            started_by = time.monotonic() + 30
            while not (self.started and getattr(self, "_loops_task_group", None)) and time.monotonic() < started_by:
                await asyncio.sleep(0.2)  # the signal came while start() was still setting up
            # what Runner.astop does, minus cancelling the runs: start() returns, the runner's exit pauses the
            # served schedules, and serve exits with 0
            group = getattr(self, "_loops_task_group", None)
            if group is not None:
                self.started = False
                group.cancel_scope.cancel()

    return DrainingRunner


# With an NCBI API key, NCBI allows 10 requests/s instead of 3 (80% of it, as above).
NCBI_WITH_KEY = {"limit": 1, "slot_decay_per_second": 8.0, "note": "NCBI E-utilities with an API key: 10 requests/s"}


def rate_limits(ncbi_api_key: bool = False) -> dict[str, dict]:
    """The shared source rate limits to create: RATE_LIMITS, with NCBI's keyed budget when `ncbi_api_key`."""
    out = {name: dict(v) for name, v in RATE_LIMITS.items()}
    if ncbi_api_key:
        out["ncbi"] = dict(NCBI_WITH_KEY)
    return out


def rate_limit_commands(ncbi_api_key: bool = False) -> list[str]:
    """The commands that create the shared source rate limits on a Prefect server (run once per server)."""
    return [f"prefect gcl create {name} --limit {v['limit']} --slot-decay-per-second {v['slot_decay_per_second']:g}"
            for name, v in rate_limits(ncbi_api_key).items()]


def ensure_rate_limits(ncbi_api_key: bool = False, update: bool = True) -> dict[str, str]:
    """Create (or correct) the shared source rate limits on the configured Prefect server (PREFECT_API_URL).

    Safe to re-run: an existing limit with other numbers is updated (left alone when `update` is False, so an
    operator's own tighter budget survives), an equal one is left alone.
    Returns:
        {limit name: "created" | "updated" | "unchanged" | "kept (...)"}.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    done: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        for name, v in rate_limits(ncbi_api_key).items():
            want = {"limit": v["limit"], "slot_decay_per_second": v["slot_decay_per_second"]}
            try:
                have = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, active=True, **want))
                done[name] = "created"
                continue
            if (have.limit, have.slot_decay_per_second, have.active) == (want["limit"], want["slot_decay_per_second"], True):
                done[name] = "unchanged"
            elif not update:
                done[name] = f"kept (limit {have.limit}, decay {have.slot_decay_per_second:g}/s)"
            else:
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active=True, **want))
                done[name] = "updated"
    return done
