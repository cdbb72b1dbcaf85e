"""Bad input: one clear message naming row (or file and line) and column; the CLI exits with 2."""

import json

import pytest
import typer
from typer.testing import CliRunner

from flows.cli import meta as cli_meta
from livingmeta.stats import StatsInputError, meta_analyze, read_meta_csv

HEADER = "study,year,treat_events,treat_total,control_events,control_total,alloc\n"
GOOD = ("Aronson,1948,4,123,11,139,random\nFerguson,1949,6,306,29,303,random\n"
        "Rosenthal,1960,3,231,11,220,random\nHart,1977,62,13598,248,12867,systematic\n")


@pytest.fixture()
def app():
    app = typer.Typer()
    app.add_typer(cli_meta.app)

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


def test_an_empty_count_makes_the_row_not_estimable_instead_of_refusing_the_file(tmp_path, app):
    # issue 16: as metafor drops a row with NA (with a note) and RevMan shows it as "Not estimable"
    path = write(tmp_path, HEADER + GOOD + "Gap,1950,1,100,,100,random\n")
    rows = read_meta_csv(path)
    assert rows.attrs["not_estimable"] == [{"study": "Gap", "line": 6,
                                            "reason": "not estimable: cell 'control_events' is empty"}]
    with_gap = meta_analyze(rows, measure="RR", method="DL")
    without = meta_analyze(read_meta_csv(write(tmp_path, HEADER + GOOD, name="good.csv")), measure="RR", method="DL")
    assert with_gap.k == without.k == 4 and with_gap.estimate == pytest.approx(without.estimate, rel=1e-12)
    assert with_gap.studies[-1]["not_estimable"] == "not estimable: cell 'control_events' is empty"
    assert any(f"{path}, line 6" in w and "'control_events' is empty" in w for w in with_gap.warnings)
    run = CliRunner().invoke(app, ["meta", str(path), "--measure", "RR", "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["not_estimable"][0]["reason"] == "not estimable: cell 'control_events' is empty"


def test_rows_api_accepts_escalc_names_and_missing_values():
    ours = [dict(study="A", treat_events=4, treat_total=123, control_events=11, control_total=139),
            dict(study="B", treat_events=6, treat_total=306, control_events=29, control_total=303),
            dict(study="C", treat_events=3, treat_total=231, control_events=11, control_total=220)]
    escalc = [dict(study=r["study"], ai=r["treat_events"], bi=r["treat_total"] - r["treat_events"],
                   ci=r["control_events"], di=r["control_total"] - r["control_events"]) for r in ours]
    a, b = meta_analyze(ours, measure="OR", method="FE"), meta_analyze(escalc, measure="OR", method="FE")
    assert a.to_dict() == b.to_dict()
    gap = escalc + [dict(study="D", ai=None, bi=10, ci=2, di=10)]
    r = meta_analyze(gap, measure="OR", method="FE")
    assert r.k == 3 and r.estimate == pytest.approx(a.estimate, rel=1e-12) and r.participants == a.participants
    assert r.studies[-1]["not_estimable"] == "not estimable: cell 'ai' is empty"
    with pytest.raises(StatsInputError, match=r"row 4, column 'bi': -1 is not a count"):
        meta_analyze(escalc + [dict(study="D", ai=1, bi=-1, ci=2, di=10)], measure="OR", method="FE")
