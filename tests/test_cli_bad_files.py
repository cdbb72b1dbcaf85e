"""Every command that reads a user's file answers a bad file with one line naming the file and the problem
(exit code 2, no traceback, nothing stored): a folder where a file was expected, a missing file, an unreadable
one (chmod 000), Latin-1 or UTF-16 text, a binary file, an empty file — through the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4

CSV_LATIN1 = "study,treat_events,treat_total,control_events,control_total\nG\u00f6ttingen,3,20,5,20\n".encode("latin-1")
TOML_TEXT = 'id = "rv"\ntitle = "G\u00f6ttingen trial"\n[sources.pubmed]\nquery = "q"\n'

# bad input -> (how to make it at `path`, words the message must contain)
BAD = {
    "folder": (lambda p: p.mkdir(), ("is a folder",)),
    "missing": (lambda p: None, ("not found",)),
    "latin1": (lambda p: p.write_bytes(CSV_LATIN1 if p.suffix == ".csv" else TOML_TEXT.encode("latin-1")),
               ("line 2", "not UTF-8", "byte 0xf6", "save it as UTF-8")),
    "utf16": (lambda p: p.write_bytes((CSV_LATIN1.decode("latin-1") if p.suffix == ".csv" else TOML_TEXT)
                                      .encode("utf-16")), ("UTF-16", "save it as UTF-8")),
    "binary": (lambda p: p.write_bytes(PNG), ("binary file",)),
    "empty": (lambda p: p.write_bytes(b""), ("empty",)),
}


def review_folder(tmp_path: Path) -> Path:
    d = tmp_path / "review"
    d.mkdir()
    (d / "review.toml").write_text('id = "rv"\ntitle = "t"\n[sources.pubmed]\nquery = "q"\n'
                                   '[[outcomes]]\nid = "responders"\nlabel = "R"\nkind = "binary"\n', encoding="utf-8")
    return d


def commands(tmp_path: Path) -> dict[str, tuple[list[str], Path]]:
    """command name -> (argv with FILE at its place, the bad path)."""
    review = review_folder(tmp_path)
    wh = ["-w", str(tmp_path / "wh.duckdb")]
    f = tmp_path / "input.csv"
    return {
        "meta": (["meta", str(f)], f),
        "extract import": (["extract", "import", str(review), str(f), *wh], f),
        "screen import": (["screen", "import", str(review), str(f), "-r", "ana", *wh], f),
        "screen simulate": (["screen", "simulate", str(f)], f),
    }


def review_commands(review: str, wh: str) -> dict[str, list[str]]:
    """Commands that read REVIEW's review.toml."""
    w = ["-w", wh]
    return {"status": ["status", review, *w], "update": ["update", review, *w],
            "extract template": ["extract", "template", review, "responders", *w],
            "screen next": ["screen", "next", review, "-r", "ana", *w],
            "studies list": ["studies", "list", review, *w], "estimates": ["estimates", review, *w],
            "diff": ["diff", review, *w], "report": ["report", review, *w, "--out", str(Path(wh).parent / "out")],
            "extract import": ["extract", "import", review, str(Path(wh).parent / "x.csv"), *w]}


def one_line_error(output: str, path: Path, words: tuple[str, ...]) -> None:
    assert "Traceback" not in output, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ") and str(path) in lines[0], output
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("command", ["meta", "extract import", "screen import", "screen simulate"])
def test_file_commands_refuse_bad_files_in_one_line(tmp_path, command, bad):
    argv, path = commands(tmp_path)[command]
    make, words = BAD[bad]
    make(path)
    r = runner.invoke(app, argv)
    assert r.exit_code == 2, r.output
    one_line_error(r.output, path, words)
    assert not (tmp_path / "wh.duckdb").exists()  # refused before the warehouse was opened


@pytest.mark.parametrize("bad", sorted(BAD))
def test_review_commands_refuse_a_bad_review_toml_in_one_line(tmp_path, bad):
    review = tmp_path / "review"
    review.mkdir()
    toml = review / "review.toml"
    make, words = BAD[bad]
    make(toml)
    if bad == "missing":
        words = ("no such file", "livingmeta init")
    (tmp_path / "x.csv").write_text("study\n", encoding="utf-8")
    for name, argv in review_commands(str(review), str(tmp_path / "wh.duckdb")).items():
        r = runner.invoke(app, argv)
        assert r.exit_code == 2, (name, r.output)
        one_line_error(r.output, toml, words)


def _run_unprivileged(argv: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI in a real process that file permissions apply to (as root: without the capabilities that
    bypass them)."""
    cmd = [sys.executable, "-m", "flows.cli", *argv]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: chmod 000 cannot make a file unreadable")
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search",
               "--inh-caps=-dac_override,-dac_read_search", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def test_unreadable_files_in_one_line(tmp_path):
    argv_by_command = commands(tmp_path)
    f = tmp_path / "input.csv"
    f.write_text("study,treat_events,treat_total,control_events,control_total\nA,1,10,2,10\n", encoding="utf-8")
    toml = tmp_path / "review" / "review.toml"
    f.chmod(0)
    try:
        for name in ("meta", "extract import"):
            p = _run_unprivileged(argv_by_command[name][0])
            assert p.returncode == 2, (name, p.stdout, p.stderr)
            one_line_error(p.stderr, f, ("permission denied",))
        f.chmod(0o644)
        toml.chmod(0)
        p = _run_unprivileged(["status", str(toml.parent), "-w", str(tmp_path / "wh.duckdb")])
        assert p.returncode == 2, (p.stdout, p.stderr)
        one_line_error(p.stderr, toml, ("permission denied",))
    finally:
        f.chmod(0o644)
        toml.chmod(0o644)


def test_init_on_a_file_and_export_to_a_folder(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x", encoding="utf-8")
    r = runner.invoke(app, ["init", str(f)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert str(f) in r.output and "not a folder" in r.output, r.output


def test_oversized_user_files_are_refused_before_reading(tmp_path):
    from livingmeta.userfiles import MAX_CSV_BYTES, MAX_DECISIONS_BYTES

    argv = commands(tmp_path)
    path = argv["meta"][1]
    with path.open("wb") as fh:  # sparse: large by stat, no time to write
        fh.truncate(max(MAX_CSV_BYTES, MAX_DECISIONS_BYTES) + 1)
    for name in ("meta", "extract import", "screen import", "screen simulate"):
        r = runner.invoke(app, argv[name][0])
        assert r.exit_code == 2, (name, r.output)
        one_line_error(r.output, path, ("MiB", "larger than"))


@pytest.mark.parametrize("bad", ["folder", "text", "random bytes"])
def test_a_bad_warehouse_file_is_one_line(tmp_path, bad):
    review = review_folder(tmp_path)
    wh = tmp_path / "wh.duckdb"
    if bad == "folder":
        wh.mkdir()
    elif bad == "text":
        wh.write_text("study,events\nA,1\n", encoding="utf-8")
    else:
        wh.write_bytes(bytes(range(256)) * 40)
    before = sorted(p.name for p in tmp_path.iterdir())
    csv = tmp_path / "x.csv"
    csv.write_text("study\n", encoding="utf-8")
    for argv in (["status", str(review)], ["studies", "list", str(review)], ["estimates", str(review)],
                 ["screen", "next", str(review), "-r", "ana"], ["screen", "export", str(review)],
                 ["diff", str(review)], ["report", str(review), "--out", str(tmp_path / "out")]):
        r = runner.invoke(app, [*argv, "-w", str(wh)])
        assert r.exit_code == 2, (argv, r.output)
        one_line_error(r.output, wh, ("cannot open the warehouse",))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "x.csv") == before


def test_writing_to_a_folder_is_one_line(tmp_path, warehouse_path):
    review = review_folder(tmp_path)
    out = tmp_path / "afolder"
    out.mkdir()
    r = runner.invoke(app, ["screen", "export", str(review), "-w", str(warehouse_path), "-o", str(out)])
    assert r.exit_code == 2, r.output
    one_line_error(r.output, out, ("is a folder",))
