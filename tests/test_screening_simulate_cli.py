"""`livingmeta screen simulate` through a CliRunner on an app holding only the `screen simulate` area."""

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from flows.cli import simulate as cli_simulate
from livingmeta.screening.metrics import wss_asreview
from livingmeta.screening.simulation import parse_labelled_csv, simulate


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(cli_simulate.app, name="screen")
    return root


@pytest.fixture
def review_csv(tmp_path):
    rng = np.random.default_rng(1)
    topic = ["statin", "ldl", "cholesterol", "atorvastatin", "lipid"]
    other = ["asthma", "fracture", "malaria", "depression", "caries", "glaucoma", "burn", "kidney"]
    rows = ["title,abstract,label_included"]
    for i in range(40):
        included = i % 5 == 0
        words = list(rng.choice(other, 4)) + (list(rng.choice(topic, 3)) if included else [])
        rows.append(f"Record {i},{' '.join(words)},{int(included)}")
    path = tmp_path / "review.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_json_output_has_exactly_the_documented_keys(app, review_csv):
    result = CliRunner().invoke(app, ["screen", "simulate", str(review_csv), "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"wss95", "rrf10", "atd", "loss", "seconds", "stop"}
    assert set(payload["stop"]) == {"rule", "target", "confidence", "screened", "recall", "work_saved"}
    for key in ("rrf10", "atd", "loss"):
        assert 0.0 <= payload[key] <= 1.0
    assert payload["wss95"] > 0.5 and payload["seconds"] >= 0


def test_json_wss95_is_asreviews_definition(app, review_csv):
    # The benchmark's reference figures use ASReview's WSS@95, so the CLI's wss95 must be that one.
    result = CliRunner().invoke(app, ["screen", "simulate", str(review_csv), "--seed", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = parse_labelled_csv(review_csv.read_text(encoding="utf-8"), str(review_csv))
    run = simulate(data.texts, data.labels, {}, seed=2)
    payload = json.loads(result.stdout)
    assert payload["wss95"] == wss_asreview(run.order)
    # On this order the strict definition gives a different number, so the check above has teeth.
    assert payload["wss95"] != run.metrics["wss95_strict"]
    assert payload["loss"] == run.metrics["loss"]


def test_json_stop_is_the_stopping_rule_on_the_simulated_order(app, review_csv):
    from livingmeta.screening.stopping import RULE, simulate_stop

    result = CliRunner().invoke(app, ["screen", "simulate", str(review_csv), "--seed", "2", "--json"])
    assert result.exit_code == 0, result.output
    stop = json.loads(result.stdout)["stop"]
    data = parse_labelled_csv(review_csv.read_text(encoding="utf-8"), str(review_csv))
    run = simulate(data.texts, data.labels, {}, seed=2)
    expected = simulate_stop(run.order, known_records=2, known_includes=1, n_records=40, seed=2)
    assert stop["rule"] == RULE and (stop["target"], stop["confidence"]) == (0.95, 0.95)
    assert stop["screened"] == expected["screened"] and 2 < stop["screened"] <= 40
    # recall and work saved as a person would count them on the file: includes found / 8, 1 - screened / 40
    assert stop["recall"] == pytest.approx(expected["found"] / 8)
    assert stop["work_saved"] == pytest.approx(1 - stop["screened"] / 40)


def test_table_output_names_every_metric(app, review_csv):
    result = CliRunner().invoke(app, ["screen", "simulate", str(review_csv), "--model", "tfidf-svm"])
    assert result.exit_code == 0, result.output
    for label in ("WSS@95", "strict", "RRF@10", "ATD", "loss", "seconds", "stop", "Callaghan"):
        assert label in result.stdout


def test_bad_label_exits_2_with_one_message(app, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("title,abstract,label_included\nA,x,1\nB,y,maybe\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["screen", "simulate", str(path)])
    assert result.exit_code == 2
    assert "line 3" in result.output and "label_included" in result.output
    assert "Traceback" not in result.output


def test_missing_file_and_unknown_model_exit_2(app, tmp_path, review_csv):
    result = CliRunner().invoke(app, ["screen", "simulate", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "no such file" in result.output
    result = CliRunner().invoke(app, ["screen", "simulate", str(review_csv), "--model", "bert"])
    assert result.exit_code == 2 and "not a known ranking model" in result.output
