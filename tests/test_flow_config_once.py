"""review.toml is read and validated once per update cycle: an edit while a cycle runs changes nothing in
that cycle (every step uses the config the cycle started with) and takes effect in the next one.

The edit is made by a person's hand, as it were, at the moment the cycle has registered the review (the
`review-registered` point of tasks.runtime): first a file that is not TOML at all (any step reading it again
would fail the cycle), then a valid file with another title, analyses and thresholds (any step reading it again
would leave its trace in the alerts, the analyses run or the stored config).
"""

from __future__ import annotations

import shutil

import pytest

from flows.demo import load_timeline
from livingmeta.config import load_review
from livingmeta.records import hash_json
from tests.conftest import REPO_ROOT
from warehouse import opened

EXAMPLE = REPO_ROOT / "reviews" / "ivig-pnp"


@pytest.fixture()
def edit_when_registered():
    """edit(text): when the next cycle has read review.toml, replace the file with `text` (once)."""
    from tasks import runtime

    def arm(path, text):
        done = []

        def hook(point):
            if point == "review-registered" and not done:
                path.write_text(text, encoding="utf-8")
                done.append(point)

        runtime.configure_point_hook(hook)
        return done

    yield arm
    runtime.configure_point_hook(None)


def _cycle(review, wh, out, step):
    from flows.update import update_review
    from tasks.observe import state_result

    state = update_review(str(review), str(wh), str(out), as_of=step.as_of, replay_dir=str(step.snapshot),
                          recorded_inputs=[str(p) for p in step.inputs if p.exists()], return_state=True)
    return state, state_result(state)


def _ran(summary) -> set[str]:
    a = summary["analyses"]
    return set(a["computed"]) | set(a["unchanged"]) | set(a["no_data"]) | {f["analysis"] for f in a["failed"]}


def test_an_edit_of_review_toml_during_a_cycle_waits_for_the_next_cycle(prefect_harness, tmp_path,
                                                                         edit_when_registered):
    review = tmp_path / "ivig-pnp"
    shutil.copytree(EXAMPLE, review)
    toml = review / "review.toml"
    # an id of its own: the session's Prefect server also holds the demo's artifacts, keyed by review id
    text = toml.read_text(encoding="utf-8")
    assert text.count('id = "ivig-pnp"\n') == 1
    toml.write_text(text.replace('id = "ivig-pnp"\n', 'id = "ivig-pnp-config-once"\n'), encoding="utf-8")
    original_text = toml.read_text(encoding="utf-8")
    original = load_review(review)
    steps = {s.name: s for s in load_timeline(review)}
    wh, out = tmp_path / "wh.duckdb", tmp_path / "out"

    # 1. the file stops being TOML right after the cycle read it: no later step may read it again
    edited = edit_when_registered(toml, "this is [not toml\n")
    state, summary = _cycle(review, wh, out, steps["2010"])
    assert edited, "the edit was never made: the review-registered point was not reached"
    assert toml.read_text(encoding="utf-8") == "this is [not toml\n"
    assert state.is_completed(), state.message
    assert all(s["status"] == "succeeded" for s in summary["searches"]), summary["searches"]
    assert _ran(summary) == {a.id for a in original.analyses}
    assert summary["version"]["version"] == 1

    # 2. a valid edit before the next cycle is what that cycle uses ...
    second_text = original_text.replace(f'title = "{original.title}"', 'title = "Second title"')
    assert second_text != original_text
    toml.write_text(second_text, encoding="utf-8")
    second = load_review(review)
    # ... and an edit during it (another title, one analysis fewer, other thresholds) is not
    third_text = (second_text.replace('title = "Second title"', 'title = "Third title"')
                  .replace('id = "responders-rr-re"', 'id = "responders-rr-renamed"')
                  .replace("relative_change = 0.10", "relative_change = 5.0")
                  .replace("ci_width_change = 0.20", "ci_width_change = 5.0"))
    third = load_review_text(tmp_path, third_text)
    assert {a.id for a in third.analyses} != {a.id for a in second.analyses}
    edited = edit_when_registered(toml, third_text)
    state, summary = _cycle(review, wh, out, steps["2020"])
    assert edited and toml.read_text(encoding="utf-8") == third_text
    assert state.is_completed(), state.message
    assert _ran(summary) == {a.id for a in second.analyses}
    assert summary["version"]["version"] == 2, summary["version"]
    with opened(wh, read_only=True) as con:
        titles = [t for (t,) in con.execute("SELECT title FROM alerts WHERE kind = 'estimate_change' "
                                            "ORDER BY version").fetchall()]
        (stored_title, stored_hash) = con.execute("SELECT title, config_hash FROM reviews").fetchone()
        analysed = {a for (a,) in con.execute("SELECT DISTINCT analysis_id FROM analysis_runs").fetchall()}
    assert titles == [f"{original.title}: version 1", "Second title: version 2"]
    assert stored_title == "Second title"
    assert stored_hash == hash_json(second.model_dump(mode="json"))
    assert "responders-rr-renamed" not in analysed

    # 3. the next cycle reads the edited file: the edit was real, it only waited for its cycle
    state, summary = _cycle(review, wh, out, steps["2021"])
    assert state.is_completed(), state.message
    assert _ran(summary) == {a.id for a in third.analyses}


def load_review_text(tmp_path, text):
    """The config a review.toml text validates to (in a folder of its own)."""
    folder = tmp_path / "scratch-review"
    folder.mkdir(exist_ok=True)
    (folder / "review.toml").write_text(text, encoding="utf-8")
    return load_review(folder)
