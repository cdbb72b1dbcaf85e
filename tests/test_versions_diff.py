"""One diff of review versions for every face: `warehouse.versions.compare_versions` is what `livingmeta diff`
shows, for consecutive versions (the diff stored with the newer one) and for any other pair (recomputed from
the versions' runs with the review's stored thresholds), over the demo's warehouse (versions 1, 2, 3)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from warehouse import opened
from warehouse.versions import compare_versions

KEYS = ("analysis_id", "from_version", "to_version", "changes", "studies_added", "studies_removed",
        "studies_retracted")


def _cli_rows(wh, *args):
    from flows.cli import app

    r = CliRunner().invoke(app, ["diff", "ivig-pnp", "--warehouse", str(wh), "--json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


@pytest.mark.parametrize("pair", [(None, None), (1, 2), (2, 3), (1, 3), (None, 1)])
def test_compare_versions_is_what_livingmeta_diff_shows(demo_run, pair):
    wh = demo_run[0] / "warehouse.duckdb"
    from_v, to_v = pair
    with opened(wh, read_only=True) as con:
        got = compare_versions(con, "ivig-pnp", from_v, to_v)
    args = [*(["--from", str(from_v)] if from_v else []), *(["--to", str(to_v)] if to_v else [])]
    shown = _cli_rows(wh, *args)
    assert got["to_version"] == (to_v or 3)
    assert [{k: r.get(k) for k in KEYS} for r in got["rows"]] == [{k: r.get(k) for k in KEYS} for r in shown]
    assert got["rows"], "every pair of the demo's versions differs in some estimate"


def test_compare_versions_refuses_what_the_cli_refuses(demo_run):
    wh = demo_run[0] / "warehouse.duckdb"
    with opened(wh, read_only=True) as con:
        with pytest.raises(ValueError, match="must be older"):
            compare_versions(con, "ivig-pnp", 3, 2)
        with pytest.raises(ValueError, match="no version 9; published versions: 1, 2, 3"):
            compare_versions(con, "ivig-pnp", None, 9)
        with pytest.raises(ValueError, match="no published version yet"):
            compare_versions(con, "no-such-review")
