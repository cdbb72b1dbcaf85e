"""The demo: replay the bundled example review's timeline offline through the real flow."""

from __future__ import annotations

import datetime as dt
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from flows.update import update_review
from tasks.observe import state_result

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_REVIEW = REPO_ROOT / "reviews" / "ivig-pnp"
DEMO_MARKER = ".livingmeta-demo"


@dataclass(frozen=True)
class Step:
    name: str
    as_of: dt.datetime
    snapshot: Path
    inputs: list[Path]
    description: str


def load_timeline(review_dir: Path) -> list[Step]:
    """The recorded update steps of a review (`timeline.toml`), oldest first."""
    f = review_dir / "timeline.toml"
    data = tomllib.loads(f.read_text(encoding="utf-8"))
    steps = []
    for i, s in enumerate(data.get("steps", [])):
        try:
            as_of = s["as_of"]
            if isinstance(as_of, dt.date) and not isinstance(as_of, dt.datetime):
                as_of = dt.datetime.combine(as_of, dt.time(), dt.timezone.utc)
            if as_of.tzinfo is None:
                as_of = as_of.replace(tzinfo=dt.timezone.utc)
            steps.append(Step(s["name"], as_of, review_dir / s["snapshot"],
                              [review_dir / p for p in s.get("inputs", [])], s.get("description", "")))
        except KeyError as e:
            raise ValueError(f"{f}: steps[{i}] lacks key {e}; each step needs name, as_of and snapshot") from None
    return sorted(steps, key=lambda st: st.as_of)


def prepare_output(out_dir: Path) -> None:
    """Start the demo from an empty output folder (only ever removing a folder the demo made)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / DEMO_MARKER).exists():
            raise ValueError(f"{out_dir} exists and was not made by `livingmeta demo`; choose another --out")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DEMO_MARKER).write_text("made by livingmeta demo; removed and rebuilt by the next demo run\n")


@flow(name="demo-timeline")
def demo_timeline(review_dir: str, out_dir: str) -> list[dict]:
    """Replay every recorded step of the example review through update-review."""
    warehouse = str(Path(out_dir) / "warehouse.duckdb")
    results = []
    for step in load_timeline(Path(review_dir)):
        state = update_review(review_dir, warehouse, out_dir, as_of=step.as_of, replay_dir=str(step.snapshot),
                              recorded_inputs=[str(p) for p in step.inputs if p.exists()], return_state=True)
        summary = state_result(state)
        results.append({"step": step.name, "description": step.description, "state": state.type.value,
                        "message": state.message, **summary})
        if state.is_failed():
            # a recorded step cannot fail offline: stop, saying which step and why, instead of replaying on
            raise RuntimeError(f"demo step {step.name} failed: {state.message}")
    return results


def demo_account(warehouse: str | Path) -> tuple[str, str]:
    """A lead account on the demo review for the web app, with a fresh random password: (name, password)."""
    import secrets

    from warehouse.accounts import accounts, ensure_user

    name, password = "demo", secrets.token_urlsafe(12)
    with accounts(warehouse) as con:
        ensure_user(con, name, password, display_name="Demo lead", review_id="ivig-pnp", role="lead")
    return name, password
