"""Everyday data commands: convert, split, validate, demo."""
from pathlib import Path
from typing import Dict, List, Optional

import typer
from spacy.tokens import Doc
from wasabi import msg

from spacy_dgemma.cli._util import EXIT_BAD_INPUT, app, command, data_dir, list_lines, report_skipped
from spacy_dgemma.cli.evaluate import print_scores
from spacy_dgemma.cli.predict import exit_interrupted
from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe.corpus import DEV_FRACTION, split_documents
from spacy_dgemma.hipe.read import AlignmentReport, ReadStats, expand_paths, iter_records, record_to_doc
from spacy_dgemma.hipe.write import check_output_path, write_docbin, write_error
from spacy_dgemma.predict import BASELINE, load_pipeline, predict_files, stop_on_signals
from spacy_dgemma.scorer import evaluate_files


def _print_alignment(report: AlignmentReport) -> None:
    msg.info(
        f"{report.n_docs} documents, {report.n_mentions} mentions: {report.n_aligned} aligned "
        f"({', '.join(f'{n} {method}' for method, n in report.by_method.items())}), "
        f"{len(report.unaligned)} not found; {report.n_spans} mention spans"
    )
    list_lines([f"not found: {doc_id}  {kind} {mention!r} ({entity_id})" for doc_id, kind, entity_id, mention in report.unaligned])


@command(app, "convert", example='dgemma convert corpus/split/gold-dev-en.jsonl corpus/dev')
def convert_cli(
    inputs: List[Path] = typer.Argument(..., help="HIPE-2026 JSONL files or folders"),
    output_dir: Path = typer.Argument(..., help="Folder for the .spacy files (one per input file, same name)"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip invalid documents instead of stopping"),
) -> None:
    """Convert HIPE-2026 JSONL to .spacy DocBins and report how the mentions were aligned."""
    files = expand_paths(inputs)
    paths = {file: Path(output_dir) / f"{file.stem}.spacy" for file in files}
    for path in paths.values():
        check_output_path(path)
    stats = ReadStats()
    report = AlignmentReport()
    docs: Dict[Path, List[Doc]] = {file: [] for file in files}
    try:
        with stop_on_signals() as shield:
            for item in iter_records(files, skip_invalid=skip_invalid, stats=stats):
                docs[item.file].append(record_to_doc(item.record, report=report, copy=False))
            empty = next((file for file, file_docs in docs.items() if not file_docs), None)
            if empty is not None:  # never replace a DocBin with an empty one
                report_skipped(stats.skipped)
                raise InputError.of("E105", str(empty), output=str(paths[empty]))
            shield()  # from here signals are ignored: the files are being written
            for file, file_docs in docs.items():
                try:
                    write_docbin(paths[file], file_docs)
                except OSError as err:
                    raise write_error(paths[file], err) from err
                msg.good(f"{paths[file]}: {len(file_docs)} documents")
    except KeyboardInterrupt as err:
        exit_interrupted(err, Path(output_dir))
    _print_alignment(report)
    report_skipped(stats.skipped)


@command(app, "split", example='dgemma split --gold ../shared/hipe2026/newspapers --output corpus/split')
def split_cli(
    gold: Optional[Path] = typer.Option(None, "--gold", help="Gold train files' folder [default: $HIPE2026_DATA/newspapers]"),
    silver: Optional[Path] = typer.Option(None, "--silver", help="Sandbox folder [default: $HIPE2026_DATA/sandbox]"),
    output_dir: Path = typer.Option(Path("corpus"), "--output", "-o", help="Folder for the split files"),
    dev_fraction: float = typer.Option(DEV_FRACTION, "--dev-fraction", help="Share of gold train per language held out as dev"),
    no_silver: bool = typer.Option(False, "--no-silver", help="Split gold only"),
) -> None:
    """Write the stable by-document split: gold train/dev and silver train/dev per language."""
    gold = gold or data_dir() / "newspapers"
    silver = None if no_silver else (silver or data_dir() / "sandbox")
    summary = split_documents(gold, silver, output_dir, dev_fraction=dev_fraction)
    for path, n in summary.files.items():
        msg.good(f"{path}: {n} documents")
    if summary.n_silver_excluded:
        msg.info(f"{summary.n_silver_excluded} silver documents left out: they are in gold train")


@command(app, "validate", example='dgemma validate ../shared/hipe2026/newspapers')
def validate_cli(files: List[Path] = typer.Argument(..., help="HIPE-2026 JSONL files or folders")) -> None:
    """Check files against the official HIPE-2026 schema; list every problem (exit code 2 if any)."""
    paths = expand_paths(files)
    stats = ReadStats()
    for _ in iter_records(paths, skip_invalid=True, stats=stats):
        pass
    for problem in stats.skipped:
        typer.echo(str(problem), err=True)
    if stats.skipped:
        msg.fail(f"{len(stats.skipped)} problem(s) in {len(paths)} file(s); {stats.n_docs} valid documents")
        raise typer.Exit(EXIT_BAD_INPUT)
    msg.good(f"{stats.n_docs} documents in {len(paths)} file(s) are valid HIPE-2026")


@command(app, "demo", example='dgemma demo --data ../shared/hipe2026 --output corpus')
def demo_cli(
    data: Optional[Path] = typer.Option(None, "--data", help="HIPE-2026 data folder [default: $HIPE2026_DATA or ../shared/hipe2026]"),
    output_dir: Path = typer.Option(Path("corpus"), "--output", "-o", help="Folder for the split and the predictions"),
    n_process: int = typer.Option(1, "--n-process", help="Processes for nlp.pipe"),
) -> None:
    """Split the shared data, run the rule baseline over the gold dev split, print the scores."""
    data = data or data_dir()
    msg.divider("1. Split the data")
    summary = split_documents(data / "newspapers", data / "sandbox", output_dir)
    for path, n in summary.files.items():
        msg.text(f"{path}: {n} documents")
    msg.divider("2. Predict the gold dev split with the rule baseline")
    nlp = load_pipeline(BASELINE)
    gold_files = sorted(p for p in summary.files if p.name.startswith("gold-dev-"))
    pred_files = [output_dir / "predictions" / f"baseline-{p.name}" for p in gold_files]
    for gold_file, pred_file in zip(gold_files, pred_files):
        predict_files([gold_file], pred_file, nlp, n_process=n_process)
        msg.text(f"{pred_file}")
    msg.divider("3. Scores (official HIPE-2026 metric, gold dev split)")
    print_scores(evaluate_files(gold_files, pred_files))
