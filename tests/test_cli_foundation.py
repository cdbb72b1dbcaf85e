"""The CLI's foundation commands: init, status, update errors — one message, exit code 2."""

from __future__ import annotations

from typer.testing import CliRunner

from flows.cli import app
from livingmeta.config import load_review

runner = CliRunner()


def test_help_lists_every_command():
    out = runner.invoke(app, ["--help"])
    assert out.exit_code == 0
    for cmd in ("init", "update", "status", "demo", "screen", "extract", "studies"):
        assert cmd in out.output


def test_init_writes_a_template_that_validates(tmp_path):
    out = runner.invoke(app, ["init", str(tmp_path / "rev")])
    assert out.exit_code == 0, out.output
    assert load_review(tmp_path / "rev").id == "my-review"
    again = runner.invoke(app, ["init", str(tmp_path / "rev")])
    assert again.exit_code == 2 and "already exists" in again.output


def test_update_with_a_bad_review_file_names_file_and_key(tmp_path):
    (tmp_path / "review.toml").write_text('id = "x"\ntitle = "t"\n[sources.pubmed]\nquery = ""\n')
    out = runner.invoke(app, ["update", str(tmp_path), "--warehouse", str(tmp_path / "wh.duckdb")])
    assert out.exit_code == 2
    assert "review.toml: sources.pubmed.query: the PubMed query is empty" in " ".join(out.output.split())
    assert "Traceback" not in out.output
    assert not (tmp_path / "wh.duckdb").exists()


def test_status_without_warehouse_says_what_to_do(tmp_path):
    out = runner.invoke(app, ["status", "no-such-review", "--warehouse", str(tmp_path / "wh.duckdb")])
    assert out.exit_code == 2
    assert "neither a review folder nor a review id" in " ".join(out.output.split())


def test_warehouse_env_variable_is_honoured(tmp_path, monkeypatch):
    from flows.settings import warehouse_path

    monkeypatch.setenv("LIVINGMETA_WAREHOUSE", str(tmp_path / "env.duckdb"))
    assert warehouse_path() == tmp_path / "env.duckdb"
    assert warehouse_path(str(tmp_path / "opt.duckdb")) == tmp_path / "opt.duckdb"
    monkeypatch.delenv("LIVINGMETA_WAREHOUSE")
    monkeypatch.setenv("LIVINGMETA_HOME", str(tmp_path / "home"))
    assert warehouse_path() == tmp_path / "home" / "warehouse.duckdb"
