"""``dgemma predict``: a pipeline over HIPE-2026 JSONL, official-format JSONL out."""
from pathlib import Path
from typing import List

import typer
from wasabi import msg

from spacy_dgemma.cli._util import app, command, report_skipped
from spacy_dgemma.hipe.read import expand_paths
from spacy_dgemma.predict import load_pipeline, predict_files


@command(app, "predict", example='dgemma predict corpus/split/gold-dev-en.jsonl predictions/dev-en.jsonl --model xx_dgemma_relations')
def predict_cli(
    paths: List[Path] = typer.Argument(..., help="Input JSONL files or folders, then the output file or folder"),
    model: str = typer.Option(..., "--model", "-m", help="Pipeline folder, installed package, or 'baseline'"),
    n_process: int = typer.Option(1, "--n-process", help="Processes for nlp.pipe"),
    batch_size: int = typer.Option(32, "--batch-size", help="Documents per batch"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip invalid documents (counted) instead of stopping"),
) -> None:
    """Predict at/isAt for every pair of HIPE-2026 JSONL input: INPUT... OUTPUT.

    One output line per valid input document, in input order, with every field and pair of the
    input; only at, isAt and the explanations are filled.
    """
    if len(paths) < 2:
        raise typer.BadParameter("give at least one input and the output", param_hint="PATHS")
    *inputs, output = paths
    files = expand_paths(inputs)  # check the inputs before loading a model
    nlp = load_pipeline(model)
    summary = predict_files(files, output, nlp, n_process=n_process, batch_size=batch_size, skip_invalid=skip_invalid)
    for path, n in summary.outputs.items():
        msg.good(f"{path}: {n} documents")
    msg.info(f"{sum(summary.outputs.values())} documents, {summary.n_pairs} pairs predicted with {model}")
    report_skipped(summary.skipped)
