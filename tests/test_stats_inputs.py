"""Bad input: one clear message naming row (or file and line) and column; the CLI exits with 2."""

import json

import pytest
import typer
from typer.testing import CliRunner

from flows.cli_meta import register
from livingmeta.stats import StatsInputError, meta_analyze, read_meta_csv

HEADER = "study,year,treat_events,treat_total,control_events,control_total,alloc\n"
GOOD = ("Aronson,1948,4,123,11,139,random\nFerguson,1949,6,306,29,303,random\n"
        "Rosenthal,1960,3,231,11,220,random\nHart,1977,62,13598,248,12867,systematic\n")


@pytest.fixture()
def app():
    app = typer.Typer()
    register(app, {})

    @app.command("noop")
    def noop():
        pass

    return app


def write(tmp_path, text, name="studies.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("bad_row,line_no,column,phrase", [
    ("Bad,1950,x,100,3,100,random", 6, "treat_events", "is not a number"),
    ("Bad,1950,120,100,3,100,random", 6, "treat_events", "more than"),
    ("Bad,1950,1,-100,3,100,random", 6, "treat_total", "negative"),
    ("Bad,1950,1,100,,100,random", 6, "control_events", "empty"),
    ("Bad,1950,1.5,100,3,100,random", 6, "treat_events", "whole number"),
    (",1950,1,100,3,100,random", 6, "study", "empty"),
])
def test_bad_csv_names_file_line_and_column(tmp_path, app, bad_row, line_no, column, phrase):
    path = write(tmp_path, HEADER + GOOD + bad_row + "\n")
    with pytest.raises(StatsInputError) as err:
        read_meta_csv(path)
    msg = str(err.value)
    assert f"{path}, line {line_no}, column '{column}'" in msg and phrase in msg
    run = CliRunner().invoke(app, ["meta", str(path), "--measure", "RR"])
    assert run.exit_code == 2
    assert f"line {line_no}, column '{column}'" in run.output
    assert "Traceback" not in run.output
    assert isinstance(run.exception, SystemExit)  # a clean exit, not an uncaught error


def test_line_numbers_count_blank_lines(tmp_path):
    path = write(tmp_path, HEADER + "\n" + GOOD + "\nBad,1950,x,100,3,100,random\n")
    with pytest.raises(StatsInputError, match=r"line 8, column 'treat_events'"):
        read_meta_csv(path)


def test_continuous_sd_must_be_positive(tmp_path):
    text = ("study,treat_mean,treat_sd,treat_n,control_mean,control_sd,control_n\n"
            "A,10,2,20,12,2,20\nB,10,0,20,12,2,20\n")
    with pytest.raises(StatsInputError, match=r"line 3, column 'treat_sd'.*greater than 0"):
        read_meta_csv(write(tmp_path, text))


def test_missing_column_and_ragged_rows(tmp_path, app):
    path = write(tmp_path, "study,treat_events,treat_total,control_events\nA,1,10,2\n")
    with pytest.raises(StatsInputError, match="control_total"):
        read_meta_csv(path)
    ragged = write(tmp_path, HEADER + "A,1948,4,123,11\n", name="ragged.csv")
    with pytest.raises(StatsInputError, match=r"line 2: 5 cells but the header has 7"):
        read_meta_csv(ragged)
    run = CliRunner().invoke(app, ["meta", str(tmp_path / "nope.csv")])
    assert run.exit_code == 2 and "file not found" in run.output


def test_rows_api_errors_name_row_and_column():
    rows = [dict(study="A", treat_events=1, treat_total=10, control_events=2, control_total=10),
            dict(study="B", treat_events=11, treat_total=10, control_events=2, control_total=10)]
    with pytest.raises(StatsInputError, match=r"row 2, column 'treat_events'"):
        meta_analyze(rows, measure="RR", method="DL")
    good = rows[:1]
    with pytest.raises(StatsInputError, match="unknown measure 'XX'"):
        meta_analyze(good, measure="XX")
    with pytest.raises(StatsInputError, match="unknown method 'FOO'"):
        meta_analyze(good, measure="RR", method="FOO")
    with pytest.raises(StatsInputError, match="measure MD does not fit binary data"):
        meta_analyze(good, measure="MD", method="DL")
    with pytest.raises(StatsInputError, match="MH .* pools 2x2 counts"):
        meta_analyze([dict(study="A", events=3, total=10)], measure="PLO", method="MH")
    with pytest.raises(StatsInputError, match="unknown option"):
        meta_analyze(good, measure="RR", method="DL", bogus=1)
    with pytest.raises(StatsInputError, match="ci_lower must be below ci_upper"):
        meta_analyze([dict(study="A", estimate=1.0, ci_lower=2.0, ci_upper=1.5)], measure="GEN", method="FE")


def test_cli_table_and_subgroup_json(tmp_path, app):
    path = write(tmp_path, HEADER + GOOD)
    run = CliRunner().invoke(app, ["meta", str(path), "--measure", "RR", "--method", "DL"])
    assert run.exit_code == 0, run.output
    assert "Aronson" in run.output and "Pooled RR" in run.output and "I2" in run.output
    run = CliRunner().invoke(app, ["meta", str(path), "--measure", "RR", "--method", "DL", "--subgroup", "alloc",
                                   "--json"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.stdout)
    assert out["k"] == 4 and set(out["subgroups"]["groups"]) == {"random", "systematic"}
    assert out["subgroups"]["q_between_df"] == 1
    run = CliRunner().invoke(app, ["meta", str(path), "--subgroup", "missing_column"])
    assert run.exit_code == 2 and "subgroup column 'missing_column' does not exist" in run.output
