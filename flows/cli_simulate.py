"""CLI commands for screening simulation; `register` adds them to the app built in flows/cli.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from livingmeta.screening.ranking import DEFAULT_MODEL, RANKERS
from livingmeta.screening.simulation import LabelledDataError, parse_labelled_csv, simulate

# Exit code for unusable input, as click uses for usage errors.
EXIT_BAD_INPUT = 2


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def simulate_command(
    data: Path = typer.Argument(..., help="CSV with columns title, abstract, label_included (1/0)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the prior knowledge and the model."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", help=f"Ranking model: {', '.join(sorted(RANKERS))}."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print one JSON object {"wss95", "rrf10", "atd", "loss", "seconds"} instead of a table '
        "(metrics as fractions; wss95 in ASReview's definition, see below).",
    ),
) -> None:
    """Simulate screening a fully labelled review and print how early the includes were found.

    WSS@95 is ASReview insights' definition (the one the benchmark's reference figures use):
    k = floor(0.95 R) includes found, work saved against the expected random curve. The table
    also prints the strict one, (N - n95)/N - 0.05 with recall at least 95% (k = ceil(0.95 R)).
    RRF@10: share of includes found in the first 10% screened; ATD: mean share screened before
    an include is found; loss: normalised area between the recall curve and the perfect one.
    N counts the records after the two priors.
    """
    if model not in RANKERS:
        _fail(f"--model {model!r} is not a known ranking model; choose one of: {', '.join(sorted(RANKERS))}")
    try:
        text = data.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(f"{data}: no such file; give the path of a labelled CSV")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{data}: cannot be read as UTF-8 text ({exc}); save the CSV as UTF-8")
    try:
        dataset = parse_labelled_csv(text, str(data))
        started = time.perf_counter()
        result = simulate(dataset.texts, dataset.labels, {"name": model}, seed=seed)
        seconds = time.perf_counter() - started
    except (LabelledDataError, ValueError) as exc:
        _fail(f"{data}: {exc}" if not str(exc).startswith(str(data)) else str(exc))
    m = result.metrics
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "wss95": m["wss95"],
                    "rrf10": m["rrf10"],
                    "atd": m["atd"],
                    "loss": m["loss"],
                    "seconds": round(seconds, 3),
                }
            )
        )
        return
    typer.echo(f"{data.name}: {result.n_records} records, {result.n_included} included; model {result.model}; seed {seed}")
    typer.echo(f"WSS@95  {m['wss95']:.3f}  (ASReview's definition; strict, recall >= 95%: {m['wss95_strict']:.3f})")
    typer.echo(f"RRF@10  {m['rrf10']:.3f}")
    typer.echo(f"ATD     {m['atd']:.3f}")
    typer.echo(f"loss    {m['loss']:.3f}")
    typer.echo(f"seconds {seconds:.2f}")


def register(app: typer.Typer, subapps: dict[str, typer.Typer]) -> None:
    """Add screening simulation's commands to the CLI."""
    subapps["screen"].command("simulate")(simulate_command)
