"""Deployment files: the Compose stack, prefect.yaml and the deployments `livingmeta serve` builds (dry run)."""

from __future__ import annotations

import inspect
import json
import re
import shutil
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from livingmeta.config import load_review

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
PREFECT_YAML = ROOT / "prefect.yaml"
EXAMPLE = ROOT / "reviews" / "ivig-pnp"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def prefect_yaml() -> dict:
    return yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))


def serve_app() -> typer.Typer:
    """Only this area's command, so its tests do not depend on every other CLI module building."""
    from flows.cli import deploy as cli_deploy

    app = typer.Typer()
    app.add_typer(cli_deploy.app)

    @app.callback()
    def _root() -> None:  # keeps `serve` a sub-command, as in the real CLI
        pass

    return app


def test_compose_has_server_database_setup_and_worker(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "prefect-server", "setup", "worker"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert re.fullmatch(r"prefecthq/prefect:3\.8\.8-python3\.11", services["prefect-server"]["image"])
    for name in ("postgres", "prefect-server", "worker"):
        hc = services[name]["healthcheck"]
        assert hc["test"][0] in ("CMD", "CMD-SHELL") and hc["retries"] >= 3, name


def test_compose_wiring_and_dependencies(compose):
    s = compose["services"]
    db_url = s["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert db_url.startswith("postgresql+asyncpg://prefect:") and "@postgres:5432/prefect" in db_url
    assert s["prefect-server"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert s["setup"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    assert s["worker"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert s["worker"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    for name in ("setup", "worker"):
        assert s[name]["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api", name
    assert s["worker"]["image"] == s["setup"]["image"] == "livingmeta:latest"
    build = s["setup"]["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).is_file()


def test_compose_keeps_data_in_named_volumes_and_secrets_out_of_the_file(compose):
    s = compose["services"]
    volumes = set(compose["volumes"])
    assert "prefect-db:/var/lib/postgresql/data" in s["postgres"]["volumes"]
    data_mounts = [v for v in s["worker"]["volumes"] if v.endswith(":/data")]
    assert data_mounts and data_mounts[0].split(":")[0] in volumes
    assert s["worker"]["environment"]["LIVINGMETA_HOME"] == "/data"
    # secrets come from the environment (.env), never written into the compose file
    assert s["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")
    assert s["worker"]["environment"]["NCBI_API_KEY"].startswith("${NCBI_API_KEY")
    assert "prefect work-pool create livingmeta" in " ".join(s["setup"]["command"])
    for limit in ("ncbi", "ctgov"):
        assert re.search(rf"prefect gcl create {limit} --limit \d+ --slot-decay-per-second \d", " ".join(s["setup"]["command"]))
    from flows.deployments import rate_limit_commands

    for command in rate_limit_commands():  # the same numbers as `livingmeta limits` creates
        assert command in " ".join(s["setup"]["command"])
    worker_cmd = s["worker"]["command"]
    assert worker_cmd[worker_cmd.index("--pool") + 1] == "livingmeta"


# what prefect.yaml's build step (deploy/steps.py) gives in the image: `prefect deploy` runs in WORKDIR
# /opt/livingmeta, and the image sets LIVINGMETA_HOME=/data
IMAGE_PATHS = {"paths": {"code": "/opt/livingmeta", "home": "/data"}}


def filled_in(value, step_outputs: dict):
    """prefect.yaml as `prefect deploy` fills it in from its build steps' outputs (Prefect's own templating)."""
    from prefect.utilities.templating import apply_values

    return apply_values(value, step_outputs, remove_notset=False)


def schedule_entry(schedule) -> dict:
    """The prefect.yaml `schedules:` entry that copies a review.toml [schedule]."""
    if schedule.interval is not None:
        entry = {"interval": schedule.interval}
        if schedule.anchor_date is not None:
            entry["anchor_date"] = schedule.anchor_date
        return {**entry, "timezone": schedule.timezone, "active": True}
    return {"cron": schedule.cron, "timezone": schedule.timezone, "active": True}


def test_the_image_gives_the_paths_prefect_yaml_uses(prefect_yaml, compose):
    assert prefect_yaml["build"] == [{"deploy.steps.livingmeta_paths": {"id": "paths"}}]
    text = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    env_line = next(line for line in text.splitlines() if line.startswith("ENV "))
    assert f"LIVINGMETA_HOME={IMAGE_PATHS['paths']['home']}" in env_line.split()
    assert f"WORKDIR {IMAGE_PATHS['paths']['code']}" in text
    assert "COPY prefect.yaml" in text and "COPY deploy" in text
    setup = compose["services"]["setup"]
    assert "working_dir" not in setup and "LIVINGMETA_HOME" not in setup.get("environment", {}), \
        "the setup job deploys from the image's WORKDIR with its LIVINGMETA_HOME"
    used = set(re.findall(r"\{\{\s*([\w.$-]+)\s*\}\}", json.dumps(prefect_yaml)))
    assert used == {"paths.code", "paths.home"}


def test_the_paths_step_follows_a_local_checkout(tmp_path, monkeypatch):
    from deploy.steps import livingmeta_paths

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("LIVINGMETA_HOME", str(tmp_path / "home"))
    assert livingmeta_paths() == {"code": str(ROOT), "home": str(tmp_path / "home")}
    assert livingmeta_paths(code=str(ROOT), home=str(tmp_path / "h2")) == {"code": str(ROOT), "home": str(tmp_path / "h2")}
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="not a livingmeta checkout"):
        livingmeta_paths()


def test_prefect_yaml_deployments_match_their_reviews(prefect_yaml, compose):
    from flows.update import update_review

    flow_params = set(inspect.signature(update_review.fn).parameters)
    assert compose["services"]["worker"]["environment"]["LIVINGMETA_HOME"] == IMAGE_PATHS["paths"]["home"]
    prefect_yaml = filled_in(prefect_yaml, IMAGE_PATHS)
    assert "{{" not in json.dumps(prefect_yaml), "a placeholder is left after filling in the build step's outputs"
    deployments = prefect_yaml["deployments"]
    assert deployments
    names = [d["name"] for d in deployments]
    assert len(names) == len(set(names))
    for d in deployments:
        path, func = d["entrypoint"].split(":")
        assert (ROOT / path).exists() and f"def {func}(" in (ROOT / path).read_text(encoding="utf-8")
        assert set(d["parameters"]) <= flow_params and {"review_dir", "warehouse", "out_dir"} <= set(d["parameters"])
        review_dir = ROOT / Path(d["parameters"]["review_dir"]).relative_to("/opt/livingmeta")
        cfg = load_review(review_dir)
        assert d["name"] == cfg.id
        assert d["schedules"] == [schedule_entry(cfg.schedule)]
        assert d["parameters"]["warehouse"] == f"/data/warehouses/{cfg.id}.duckdb"
        assert d["parameters"]["out_dir"] == f"/data/output/{cfg.id}"
        assert d["concurrency_limit"] == 1
        assert d["work_pool"]["name"] == "livingmeta"
    pull_dir = prefect_yaml["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"]
    assert pull_dir == "/opt/livingmeta"
    assert "WORKDIR /opt/livingmeta" in (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")


def test_prefect_yaml_paths_follow_a_local_checkout(prefect_yaml, tmp_path):
    local = filled_in(prefect_yaml, {"paths": {"code": str(ROOT), "home": str(tmp_path)}})
    assert local["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(ROOT)
    for d in local["deployments"]:
        assert load_review(d["parameters"]["review_dir"]).id == d["name"]
        assert d["parameters"]["warehouse"] == str(tmp_path / "warehouses" / f"{d['name']}.duckdb")


def test_every_bundled_review_has_a_prefect_yaml_deployment(prefect_yaml):
    reviews = {load_review(p.parent).id for p in (ROOT / "reviews").glob("*/review.toml")}
    assert reviews == {d["name"] for d in prefect_yaml["deployments"]}


def test_serve_dry_run_builds_the_example_review_deployment(tmp_path):
    result = CliRunner().invoke(serve_app(), ["serve", str(EXAMPLE), "--dry-run", "--warehouse-dir", str(tmp_path / "wh"),
                                              "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    [d] = out["deployments"]
    # not prefect.yaml's `ivig-pnp`: `prefect deploy` and `serve` on one server must not overwrite each other
    assert (d["flow"], d["name"], d["cron"], d["timezone"]) == ("update-review", "ivig-pnp-serve", "0 2 * * *", "Europe/London")
    assert (d["review_id"], d["interval"], d["anchor_date"]) == ("ivig-pnp", None, None)
    assert d["parameters"] == {"review_dir": str(EXAMPLE.resolve()),
                               "warehouse": str((tmp_path / "wh" / "ivig-pnp.duckdb").resolve()),
                               "out_dir": str((tmp_path / "out" / "ivig-pnp").resolve())}
    # limit 1, 80% of 3/s: grants 0.42 s apart, never 4 in a second at NCBI (flows/deployments.py RATE_LIMITS)
    assert "prefect gcl create ncbi --limit 1 --slot-decay-per-second 2.4" in out["rate_limits"]
    assert not (tmp_path / "wh").exists(), "a dry run creates nothing"


def test_build_deployments_gives_prefect_runner_deployments(tmp_path):
    from deploy.deployments import build_deployments, deployment_specs

    [dep] = build_deployments(deployment_specs([EXAMPLE], warehouse_dir=tmp_path, out_root=tmp_path))
    assert dep.flow_name == "update-review" and dep.name == "ivig-pnp-serve"
    assert dep.entrypoint == "flows/update.py:update_review"
    [sched] = dep.schedules
    assert (sched.schedule.cron, sched.schedule.timezone) == ("0 2 * * *", "Europe/London")
    assert dep.parameters["warehouse"].endswith("ivig-pnp.duckdb")
    assert dep.concurrency_limit == 1


def second_review(tmp_path: Path, review_id: str, cron: str) -> Path:
    d = tmp_path / review_id
    d.mkdir()
    text = (EXAMPLE / "review.toml").read_text(encoding="utf-8")
    text = text.replace('id = "ivig-pnp"', f'id = "{review_id}"').replace('cron = "0 2 * * *"', f'cron = "{cron}"')
    (d / "review.toml").write_text(text, encoding="utf-8")
    return d


def test_serve_reviews_root_gives_one_deployment_per_review(tmp_path):
    root = tmp_path / "reviews"
    root.mkdir()
    shutil.copy(EXAMPLE / "review.toml", (root / "ivig-pnp").mkdir() or root / "ivig-pnp" / "review.toml")
    second_review(root, "other-review", "30 3 * * 1")
    (root / "not-a-review").mkdir()
    result = CliRunner().invoke(serve_app(), ["serve", "--reviews-root", str(root), "--dry-run",
                                              "--warehouse-dir", str(tmp_path / "wh")])
    assert result.exit_code == 0, result.output
    got = {d["name"]: (d["cron"], Path(d["parameters"]["warehouse"]).name) for d in json.loads(result.output)["deployments"]}
    assert got == {"ivig-pnp-serve": ("0 2 * * *", "ivig-pnp.duckdb"), "other-review-serve": ("30 3 * * 1", "other-review.duckdb")}


@pytest.mark.parametrize("case", ["no-reviews", "bad-folder", "shared-warehouse", "duplicate-id"])
def test_serve_user_errors_are_one_message_and_exit_code_2(tmp_path, case):
    args = {
        "no-reviews": ["serve", "--dry-run"],
        "bad-folder": ["serve", str(tmp_path / "missing"), "--dry-run"],
        "shared-warehouse": ["serve", str(EXAMPLE), str(second_review(tmp_path, "b", "0 1 * * *")),
                             "--warehouse", str(tmp_path / "one.duckdb"), "--dry-run"],
        "duplicate-id": ["serve", str(EXAMPLE), str(second_review(tmp_path, "ivig-pnp", "0 1 * * *")), "--dry-run"],
    }[case]
    result = CliRunner().invoke(serve_app(), args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    expected = {"no-reviews": "no reviews to serve", "bad-folder": "no such file", "shared-warehouse": "one writer per file",
                "duplicate-id": "must be unique"}[case]
    assert expected in result.output.replace("\n", " ")


def interval_review(tmp_path: Path, schedule: str) -> Path:
    d = tmp_path / "interval-review"
    d.mkdir()
    text = (EXAMPLE / "review.toml").read_text(encoding="utf-8")
    text = text.replace('cron = "0 2 * * *"\ntimezone = "Europe/London"', schedule)
    assert schedule in text
    (d / "review.toml").write_text(text, encoding="utf-8")
    return d


def test_an_interval_schedule_with_an_anchor_becomes_a_prefect_interval(tmp_path):
    import datetime as dt

    from deploy.deployments import build_deployments, deployment_specs

    # a local date-time is a wall-clock time in the review's zone: 10:30 in London in July is 09:30 UTC
    review = interval_review(tmp_path, 'interval = 21600\nanchor_date = 2026-07-01T10:30:00\ntimezone = "Europe/London"')
    [spec] = deployment_specs([review], warehouse_dir=tmp_path, out_root=tmp_path)
    assert (spec.cron, spec.interval, spec.anchor_date) == (None, 21600, "2026-07-01T10:30:00+01:00")
    [dep] = build_deployments([spec])
    [sched] = dep.schedules
    assert sched.schedule.interval == dt.timedelta(hours=6) and sched.schedule.timezone == "Europe/London"
    assert sched.schedule.anchor_date == dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("schedule, message", [
    ('interval = 30', "at least 60"),
    ('interval = 3600.5', "whole number of seconds"),
    ('cron = "0 2 * * *"\ninterval = 3600', "either cron or interval, not both"),
    ('cron = "0 2 * * *"\nanchor_date = 2026-01-01T00:00:00Z', "anchor_date only applies to interval"),
])
def test_bad_schedules_are_one_message_naming_the_key(tmp_path, schedule, message):
    review = interval_review(tmp_path, schedule)
    result = CliRunner().invoke(serve_app(), ["serve", str(review), "--dry-run"])
    assert result.exit_code == 2, result.output
    out = result.output.replace("\n", " ")
    assert "review.toml: schedule" in out and message in out and "Traceback" not in out
