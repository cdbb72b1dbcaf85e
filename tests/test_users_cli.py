"""`livingmeta users add|role|passwd|remove|list`: accounts of the web app from the shell."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from flows.cli import app
from warehouse.accounts import accounts

runner = CliRunner()


def test_users_commands_manage_accounts_and_never_print_a_hash(tmp_path):
    wh = str(tmp_path / "wh.duckdb")
    r = runner.invoke(app, ["users", "add", "ana", "--review", "rev", "--role", "lead", "--name", "Ana Silva",
                            "--password-stdin", "-w", wh], input="correct-horse-9\n")
    assert r.exit_code == 0, r.output
    assert "Added ana as lead of rev." in r.output
    r = runner.invoke(app, ["users", "add", "ana", "--password-stdin", "-w", wh], input="another-pass-9\n")
    assert r.exit_code == 2 and "exists already" in r.output
    r = runner.invoke(app, ["users", "add", "Bad Name", "--password-stdin", "-w", wh], input="another-pass-9\n")
    assert r.exit_code == 2 and "user name 'Bad Name'" in r.output
    r = runner.invoke(app, ["users", "add", "bo", "--password-stdin", "-w", wh], input="short\n")
    assert r.exit_code == 2 and "at least 10 characters" in r.output
    r = runner.invoke(app, ["users", "add", "bo", "--review", "rev", "--role", "boss", "--password-stdin", "-w", wh],
                      input="long-enough-1\n")
    assert r.exit_code == 2 and "role 'boss'" in r.output
    assert runner.invoke(app, ["users", "add", "bo", "--password-stdin", "-w", wh], input="long-enough-1\n").exit_code == 0
    assert runner.invoke(app, ["users", "role", "bo", "--review", "rev", "-w", wh]).exit_code == 0
    r = runner.invoke(app, ["users", "list", "--json", "-w", wh])
    rows = json.loads(r.output)
    assert [(u["username"], u["display_name"], u["reviews"]) for u in rows] == [
        ("ana", "Ana Silva", {"rev": "lead"}), ("bo", "bo", {"rev": "reviewer"})]
    assert "argon2" not in r.output and "password" not in r.output
    with accounts(wh) as con:
        (before,) = con.execute("SELECT password_hash FROM app_users WHERE username = 'bo'").fetchone()
    assert before.startswith("$argon2id$")
    assert runner.invoke(app, ["users", "passwd", "bo", "--password-stdin", "-w", wh],
                         input="new-password-2\n").exit_code == 0
    with accounts(wh) as con:
        assert con.execute("SELECT password_hash FROM app_users WHERE username = 'bo'").fetchone()[0] != before
    r = runner.invoke(app, ["users", "remove", "bo", "--review", "rev", "-w", wh])
    assert r.exit_code == 0 and "removed bo from review rev" in r.output
    r = runner.invoke(app, ["users", "remove", "bo", "--review", "rev", "-w", wh])
    assert r.exit_code == 2 and "not on review 'rev'" in r.output
    assert runner.invoke(app, ["users", "remove", "bo", "-w", wh]).exit_code == 0
    r = runner.invoke(app, ["users", "list", "-w", wh])
    assert "bo" not in r.output.split() and "ana  Ana Silva  rev (lead)" in r.output
