"""`livingmeta screen simulate`: how early a ranking model finds the includes of a labelled review.

flows/cli/screen.py mounts this module's app in the `screen` group."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from flows.cli.common import fail
from flows.cli.output import print_json, say

# The ranking models (sklearn, scipy) are imported when a simulation runs, not to build `--help`: the names are
# repeated here, and tests/test_cli_startup.py fails when they drift from livingmeta.screening.ranking.
DEFAULT_MODEL = "tfidf-svm"
RANKER_NAMES = ("tfidf-svm", "tfidf-svm-1gram", "tfidf-svm-rankavg")

app = typer.Typer()


@app.command("simulate")
def simulate_command(
    data: Path = typer.Argument(..., help="CSV with columns title, abstract, label_included (1/0).", readable=False),
    seed: int = typer.Option(0, "--seed", help="Seed for the prior knowledge and the model."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", help=f"Ranking model: {', '.join(sorted(RANKER_NAMES))}."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print one JSON object {"wss95", "rrf10", "atd", "loss", "seconds", "stop"} instead of a table '
        "(metrics as fractions; wss95 in ASReview's definition, see below; stop: the stopping rule's result).",
    ),
) -> None:
    """Simulate screening a fully labelled review and print how early the includes were found.

    WSS@95 is ASReview insights' definition (the one the benchmark's reference figures use):
    k = floor(0.95 R) includes found, work saved against the expected random curve. The table
    also prints the strict one, (N - n95)/N - 0.05 with recall at least 95% (k = ceil(0.95 R)).
    RRF@10: share of includes found in the first 10% screened; ATD: mean share screened before
    an include is found; loss: normalised area between the recall curve and the perfect one.
    N counts the records after the two priors.

    The stopping rule (Callaghan & Müller-Hansen 2020, livingmeta.screening.stopping) is applied to the
    simulated order at its defaults: rank until 100 excludes in a row, then screen random records from the
    rest until the hypergeometric test says recall >= 95% with 95% confidence. "stop" reports where it
    stopped: records screened (priors included), the recall reached and the work saved (1 - screened/records).
    """
    from livingmeta.screening.ranking import RANKERS
    from livingmeta.screening.simulation import LabelledDataError, parse_labelled_csv, simulate
    from livingmeta.userfiles import MAX_DECISIONS_BYTES, UserFileError, read_user_text

    if model not in RANKERS:
        fail(f"--model {model!r} is not a known ranking model; choose one of: {', '.join(sorted(RANKERS))}")
    try:
        text = read_user_text(data, what="labelled CSV", max_bytes=MAX_DECISIONS_BYTES,
                              empty_hint="it needs the columns title, abstract, label_included and one row per record")
    except UserFileError as exc:
        fail(str(exc))
    try:
        dataset = parse_labelled_csv(text, str(data))
        started = time.perf_counter()
        result = simulate(dataset.texts, dataset.labels, {"name": model}, seed=seed)
        seconds = time.perf_counter() - started
    except (LabelledDataError, ValueError) as exc:
        fail(f"{data}: {exc}" if not str(exc).startswith(str(data)) else str(exc))
    from livingmeta.screening.stopping import simulate_stop

    m = result.metrics
    # the random sample's order is drawn with the simulation's seed, so a run is reproducible
    stop = simulate_stop(result.order, known_records=2, known_includes=1, n_records=result.n_records, seed=seed)
    stop_json = {k: stop[k] for k in ("rule", "target", "confidence", "screened", "recall", "work_saved")}
    if as_json:
        print_json({"wss95": m["wss95"], "rrf10": m["rrf10"], "atd": m["atd"], "loss": m["loss"],
                    "seconds": round(seconds, 3), "stop": stop_json})
        return
    echo = say
    echo(f"{data.name}: {result.n_records} records, {result.n_included} included; model {result.model}; seed {seed}")
    echo(f"WSS@95  {m['wss95']:.3f}  (ASReview's definition; strict, recall >= 95%: {m['wss95_strict']:.3f})")
    echo(f"RRF@10  {m['rrf10']:.3f}")
    echo(f"ATD     {m['atd']:.3f}")
    echo(f"loss    {m['loss']:.3f}")
    echo(f"seconds {seconds:.2f}")
    echo(f"stop    {stop['rule']}, recall >= {stop['target']:.0%} at {stop['confidence']:.0%} confidence: "
         f"stopped after {stop['screened']} of {result.n_records} records ({stop['ranked']} ranked after the 2 priors, "
         f"{stop['sampled']} at random); recall {stop['recall']:.3f}, work saved {stop['work_saved']:.3f}")

