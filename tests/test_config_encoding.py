"""review.toml and extraction files in the encodings people actually save: a UTF-8 BOM is accepted, Latin-1 is
named (file, line, byte offset, "save it as UTF-8"), an oversized file is refused before it is read, and a
header-only extraction file is refused instead of reporting "0 rows"."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from flows.cli import app
from livingmeta.config import ConfigError, load_review, parse_review
from livingmeta.userfiles import MAX_CONFIG_BYTES, UserFileError, decode_user_bytes, read_user_text

runner = CliRunner()
TOML = 'id = "rv"\ntitle = "Göttingen trial of IVIG"\n[sources.pubmed]\nquery = "q"\n'


def folder_with(tmp_path, data: bytes):
    d = tmp_path / "review"
    d.mkdir(exist_ok=True)
    (d / "review.toml").write_bytes(data)
    return d


def test_utf8_bom_is_accepted_silently(tmp_path, warehouse_path):
    d = folder_with(tmp_path, b"\xef\xbb\xbf" + TOML.encode("utf-8"))
    assert load_review(d).title == "Göttingen trial of IVIG"
    assert parse_review("\ufeff" + TOML).id == "rv"  # text that kept its BOM
    r = runner.invoke(app, ["status", str(d), "-w", str(warehouse_path)])
    assert r.exit_code == 0 and "rv  records: 0" in r.output, r.output


def test_latin1_review_toml_names_file_line_offset_and_fix(tmp_path):
    d = folder_with(tmp_path, TOML.encode("latin-1"))
    with pytest.raises(ConfigError) as e:
        load_review(d)
    msg = str(e.value)
    offset = TOML.encode("latin-1").index(b"\xf6")
    assert msg.startswith(str(d / "review.toml"))
    assert "line 2" in msg and f"offset {offset}" in msg and "0xf6" in msg
    assert "Latin-1" in msg and "save it as UTF-8" in msg
    assert "codec can't decode" not in msg
    r = runner.invoke(app, ["status", str(d), "-w", str(tmp_path / "wh.duckdb")])
    assert r.exit_code == 2 and r.output.strip() == f"error: {msg}"


def test_utf16_and_bytes_that_are_no_known_encoding(tmp_path):
    d = folder_with(tmp_path, TOML.encode("utf-16"))
    with pytest.raises(ConfigError, match="UTF-16 text; save it as UTF-8"):
        load_review(d)
    with pytest.raises(UserFileError, match=r"x, line 1, column 3: not UTF-8 text \(byte 0x81 at offset 2\); save it"):
        decode_user_bytes(b"ab\x81\x8d\x8f", "x")  # undefined in cp1252 too: no Latin-1 guess


def test_oversized_review_toml_is_refused_before_reading(tmp_path):
    big = TOML + "# padding\n" * (MAX_CONFIG_BYTES // 10 + 10)
    d = folder_with(tmp_path, big.encode("utf-8"))
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"review.toml: 1\.0 MiB is larger than the 1\.0 MiB a review.toml may have"):
        load_review(d)
    # a limit, not a timing assertion: the refusal comes from stat, so even a 5 GiB sparse file is refused
    f = d / "review.toml"
    with f.open("r+b") as fh:
        fh.truncate(5 * 1024 ** 3)
    with pytest.raises(ConfigError, match="5120.0 MiB is larger"):
        load_review(d)
    assert time.perf_counter() - started < 60  # sanity only (parsing 5 GiB would never finish)


def test_empty_and_whitespace_review_toml(tmp_path):
    d = folder_with(tmp_path, b"\n  \n")
    with pytest.raises(ConfigError, match="the file is empty; write the review's settings"):
        load_review(d)


def test_crlf_review_toml_reads_like_lf(tmp_path):
    d = folder_with(tmp_path, TOML.replace("\n", "\r\n").encode("utf-8"))
    assert load_review(d).id == "rv"


def test_read_user_text_keeps_text_and_drops_bom(tmp_path):
    f = tmp_path / "a.csv"
    f.write_bytes(b"\xef\xbb\xbfstudy\r\nG\xc3\xb6\r\n")
    assert read_user_text(f) == "study\nGö\n"


def test_header_only_extraction_is_refused_and_changes_nothing(tmp_path):
    from living_seed import HEADER, binary_csv, link_and_include, register, write_review
    from warehouse import opened

    review = write_review(tmp_path / "review")
    wh = tmp_path / "warehouse.duckdb"
    rid = register(review, wh)
    link_and_include(wh, rid, ["Jann2020"], __import__("living_seed").T0)
    good = binary_csv(tmp_path / "good.csv", ["Jann2020"])
    r = runner.invoke(app, ["extract", "import", str(review), str(good), "-w", str(wh)])
    assert r.exit_code == 0, r.output
    with opened(wh, read_only=True) as con:
        before = con.execute("SELECT count(*) FROM extraction_rows").fetchone()
    for text in (HEADER, HEADER + "\n,,,,,,,,,,,,,,,,,,\n\n"):
        only = tmp_path / "header.csv"
        only.write_text(text, encoding="utf-8")
        r = runner.invoke(app, ["extract", "import", str(review), str(only), "-w", str(wh)])
        assert r.exit_code == 2, r.output
        assert "holds no data rows" in r.output and "nothing was imported" in r.output and "0 rows" not in r.output
    with opened(wh, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM extraction_rows").fetchone() == before


def test_latin1_extraction_csv_names_the_line(tmp_path):
    from living_seed import HEADER, register, write_review

    review = write_review(tmp_path / "review")
    wh = tmp_path / "warehouse.duckdb"
    register(review, wh)
    f = tmp_path / "x.csv"
    f.write_bytes((HEADER + "M\u00fcller2020,responders,treatment,IVIG,3,10,,,,,,,,,,AB,2024-01-02,t2,\n").encode("latin-1"))
    r = runner.invoke(app, ["extract", "import", str(review), str(f), "-w", str(wh)])
    assert r.exit_code == 2
    assert f"{f}, line 2, column 2: not UTF-8 text (byte 0xfc" in r.output and "save it as UTF-8" in r.output
