"""``dgemma evaluate``: the official HIPE-2026 metric over prediction files."""
import json
from pathlib import Path
from typing import Any, Dict, List

import typer
from wasabi import msg

from spacy_dgemma.cli._util import app, command
from spacy_dgemma.errors import InputError, Warnings
from spacy_dgemma.hipe.read import expand_paths
from spacy_dgemma.scorer import evaluate_files


def print_scores(result: Dict[str, Any]) -> None:
    """The per-file table of `evaluate_files` output and the mean over files."""
    header = ("file", "lang", "docs", "pairs", "at", "isAt", "mean", "binary")
    rows = [
        (Path(f["prediction"]).name, f["language"], f["n_docs"], f["n_pairs"], *(f"{f[k]:.4f}" for k in ("at", "isAt", "mean", "binary_mean")))
        for f in result["files"]
    ]
    mean = result["mean"]
    footer = ("mean over files", "", mean["n_docs"], mean["n_pairs"], *(f"{mean[k]:.4f}" for k in ("at", "isAt", "mean", "binary_mean")))
    msg.table(rows, header=header, footer=footer, divider=True, aligns=("l", "l", "r", "r", "r", "r", "r", "r"))


@command(
    app,
    "evaluate",
    example="dgemma evaluate corpus/split/gold-dev-en.jsonl corpus/split/gold-dev-fr.jsonl pred/gold-dev-en.jsonl pred/gold-dev-fr.jsonl",
)
def evaluate_cli(
    files: List[Path] = typer.Argument(..., help="Gold files (or folders), then as many prediction files in the same order"),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON"),
    allow_missing: bool = typer.Option(
        False, "--allow-missing", help="Score gold documents/pairs without a prediction as FALSE (the official scorer's reading) instead of refusing"
    ),
) -> None:
    """Score predictions with the official HIPE-2026 metric: GOLD... PRED..., per file and on average.

    Refuses (exit 2) when a prediction file does not hold the documents and pairs of its gold file.
    """
    if len(files) % 2:
        raise InputError.of("E022", "evaluate", n=len(files))
    half = len(files) // 2
    result = evaluate_files(expand_paths(files[:half]), expand_paths(files[half:]), allow_missing=allow_missing)
    for entry in result["files"]:
        if entry["n_missing_docs"] or entry["n_missing_pairs"]:
            typer.echo(Warnings.W014.format(file=entry["prediction"], n_docs=entry["n_missing_docs"], n_pairs=entry["n_missing_pairs"]), err=True)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_scores(result)
