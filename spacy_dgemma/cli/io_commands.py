"""Data commands: convert, split, predict, evaluate, validate, demo.

Each command checks its arguments and calls a plain function of this module or of the library
(`load_pipeline`, `predict_files`, `evaluate_files`, `split_documents`). Bad input ends a
command with one line ``file:line: what is wrong — how to fix it`` and exit code 2.
"""
import functools
import json
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import spacy
import typer
from spacy.language import Language
from spacy.tokens import Doc
from tqdm import tqdm
from wasabi import msg

from ..corpus import DEV_FRACTION, split_documents
from ..errors import InputError, Warnings
from ..hipe.read import AlignmentReport, DocMaker, ReadStats, expand_paths, iter_records, record_to_doc
from ..hipe.write import RecordWriter, doc_to_record, write_docbin
from ..scorer import average_scores, score_documents
from . import app

EXIT_BAD_INPUT = 2
BASELINE = "baseline"
RELATIONS_FACTORY = "dgemma_relations"
DATA_ENV = "HIPE2026_DATA"
DEFAULT_DATA = Path("../shared/hipe2026")
MAX_LISTED = 20  # problems or unaligned mentions listed one per line before "… and N more"


def exits_on_bad_input(command):
    """Turn an InputError into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InputError as err:
            typer.echo(str(err), err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def data_dir() -> Path:
    """The shared HIPE-2026 data: $HIPE2026_DATA, else ../shared/hipe2026."""
    return Path(os.environ.get(DATA_ENV, DEFAULT_DATA))


# ---------------------------------------------------------------- library functions


def load_pipeline(model: str) -> Language:
    """A pipeline with a ``dgemma_relations`` component.

    model: a pipeline folder, an installed pipeline package, or ``baseline`` (a blank ``xx``
        pipeline with the component and its default rule model).
    Raises InputError if the pipeline cannot be loaded or has no such component.
    """
    if model == BASELINE:
        nlp = spacy.blank("xx")
        nlp.add_pipe(RELATIONS_FACTORY)
        return nlp
    try:
        nlp = spacy.load(model)
    except (OSError, ValueError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError.of("E020", model, model=model, detail=detail) from err
    factories = [nlp.get_pipe_meta(name).factory for name in nlp.pipe_names]
    if RELATIONS_FACTORY not in factories:
        raise InputError.of("E021", model, model=model, pipes=", ".join(nlp.pipe_names) or "none")
    return nlp


def output_paths(inputs: List[Path], output: Path) -> List[Path]:
    """The output file of each input file of `predict`.

    One input file: `output` is the output file (or, if it is a folder, the file of the same
    name in it). Several: `output` is a folder with one file per input (same names), unless it
    ends in ``.jsonl``, in which case all predictions go to that one file, in input order.
    """
    if output.is_dir() or (len(inputs) > 1 and output.suffix != ".jsonl"):
        paths = [output / file.name for file in inputs]
        seen: Dict[Path, Path] = {}
        for file, path in zip(inputs, paths):
            if path in seen:
                raise InputError(str(file), None, f"has the same name as {seen[path]}, so both would be written to {path}", "give one .jsonl output file, or rename one of the inputs")
            seen[path] = file
    else:
        paths = [output] * len(inputs)
    for file, path in zip(inputs, paths):
        if path.resolve() == file.resolve():
            raise InputError(str(path), None, "the output would overwrite the input", "write the predictions to another file")
    return paths


@dataclass
class PredictSummary:
    """What `predict_files` wrote: output file → documents, total pairs, skipped problems."""

    outputs: Dict[Path, int] = field(default_factory=dict)
    n_pairs: int = 0
    skipped: List[InputError] = field(default_factory=list)


def predict_files(
    inputs: List[Path],
    output: Path,
    nlp: Language,
    *,
    n_process: int = 1,
    batch_size: int = 32,
    skip_invalid: bool = False,
    progress: bool = True,
) -> PredictSummary:
    """Predict `at` / `isAt` for every pair of HIPE JSONL files and write official-format JSONL.

    Streams: documents are read, predicted (``nlp.pipe``) and written one batch at a time.
    Every valid input document gives one output record, in input order, with all its fields
    and pairs; the output files appear only when complete.
    inputs: input files or folders.
    output: output file or folder (see `output_paths`).
    nlp: a pipeline with ``dgemma_relations`` (see `load_pipeline`).
    n_process / batch_size: passed to ``nlp.pipe``.
    skip_invalid: leave out invalid documents (counted in the summary) instead of failing.
    progress: show a progress bar.
    """
    files = expand_paths(inputs)
    paths = output_paths(files, Path(output))
    stats = ReadStats()
    make_doc = DocMaker(vocab=nlp.vocab)

    path_of = dict(zip(files, paths))
    problems: List[InputError] = []

    def docs() -> Iterator[Tuple[Doc, Path]]:
        # An exception raised into nlp.pipe(n_process > 1) hangs its workers: end the stream
        # instead, and raise once the pipe has finished.
        try:
            for item in iter_records(files, skip_invalid=skip_invalid, stats=stats):
                yield record_to_doc(item.record, make_doc=make_doc), path_of[item.file]
        except InputError as err:
            problems.append(err)

    summary = PredictSummary()
    with ExitStack() as stack:
        writers = {path: stack.enter_context(RecordWriter(path, validate=True)) for path in dict.fromkeys(paths)}
        results = nlp.pipe(docs(), as_tuples=True, n_process=n_process, batch_size=batch_size)
        total = sum(_count_lines(file) for file in files)
        for doc, path in tqdm(results, total=total, unit="doc", disable=not progress or None, leave=False):
            record = doc_to_record(doc)
            writers[path].write(record)
            summary.n_pairs += len(record["sampled_pairs"])
        if problems:
            raise problems[0]  # inside the ExitStack: no output file is left behind
    summary.outputs = {path: writer.n_written for path, writer in writers.items()}
    summary.skipped = stats.skipped
    return summary


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def evaluate_files(gold_files: List[Path], pred_files: List[Path]) -> Dict[str, Any]:
    """Score prediction files against gold files, paired in order, with the official metric.

    RETURNS: ``files`` (one entry per pair: gold, prediction, language and the
        ``score_documents`` keys) and ``mean`` (the average over files).
    """
    if len(gold_files) != len(pred_files):
        raise InputError.of("E022", "evaluate", n=len(gold_files) + len(pred_files))
    gold = _records_by_file(gold_files)
    pred = _records_by_file(pred_files)
    files = []
    for gold_file, pred_file in zip(gold_files, pred_files):
        languages = [r.get("language") for r in gold[gold_file]]
        language = max(set(languages), key=languages.count)
        scores = score_documents(gold[gold_file], pred[pred_file])
        files.append({"gold": str(gold_file), "prediction": str(pred_file), "language": language, **scores})
    mean = average_scores({str(i): entry for i, entry in enumerate(files)})
    return {"files": files, "mean": mean}


def _records_by_file(files: List[Path]) -> Dict[Path, List[Dict[str, Any]]]:
    """The records of each file, read and checked together (document ids unique across them)."""
    records: Dict[Path, List[Dict[str, Any]]] = {file: [] for file in files}
    for item in iter_records(files):
        records[item.file].append(item.record)
    return records


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


def _report_skipped(skipped: List[InputError]) -> None:
    if not skipped:
        return
    msg.warn(Warnings.W002.format(n=len(skipped)))
    for problem in skipped[:MAX_LISTED]:
        typer.echo(f"  {problem}", err=True)
    if len(skipped) > MAX_LISTED:
        typer.echo(f"  … and {len(skipped) - MAX_LISTED} more", err=True)


def _print_alignment(report: AlignmentReport) -> None:
    msg.info(
        f"{report.n_docs} documents, {report.n_mentions} mentions: {report.n_aligned} aligned "
        f"({', '.join(f'{n} {method}' for method, n in report.by_method.items())}), "
        f"{len(report.unaligned)} not found; {report.n_spans} mention spans"
    )
    for doc_id, kind, entity_id, mention in report.unaligned[:MAX_LISTED]:
        typer.echo(f"  not found: {doc_id}  {kind} {mention!r} ({entity_id})")
    if len(report.unaligned) > MAX_LISTED:
        typer.echo(f"  … and {len(report.unaligned) - MAX_LISTED} more")


# ---------------------------------------------------------------- commands


@app.command("convert")
@exits_on_bad_input
def convert_cli(
    inputs: List[Path] = typer.Argument(..., help="HIPE-2026 JSONL files or folders"),
    output_dir: Path = typer.Argument(..., help="Folder for the .spacy files (one per input file, same name)"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip invalid documents instead of stopping"),
) -> None:
    """Convert HIPE-2026 JSONL to .spacy DocBins and report how the mentions were aligned."""
    files = expand_paths(inputs)
    stats = ReadStats()
    report = AlignmentReport()
    docs: Dict[Path, List[Doc]] = {file: [] for file in files}
    for item in iter_records(files, skip_invalid=skip_invalid, stats=stats):
        docs[item.file].append(record_to_doc(item.record, report=report))
    for file, file_docs in docs.items():
        path = Path(output_dir) / f"{file.stem}.spacy"
        write_docbin(path, file_docs)
        msg.good(f"{path}: {len(file_docs)} documents")
    _print_alignment(report)
    _report_skipped(stats.skipped)


@app.command("split")
@exits_on_bad_input
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


@app.command("predict")
@exits_on_bad_input
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
    _report_skipped(summary.skipped)


@app.command("evaluate")
@exits_on_bad_input
def evaluate_cli(
    files: List[Path] = typer.Argument(..., help="Gold files, then as many prediction files in the same order"),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON"),
) -> None:
    """Score predictions with the official HIPE-2026 metric: GOLD... PRED..., per file and on average."""
    if len(files) % 2:
        raise InputError.of("E022", "evaluate", n=len(files))
    half = len(files) // 2
    result = evaluate_files(expand_paths(files[:half]), expand_paths(files[half:]))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_scores(result)


@app.command("validate")
@exits_on_bad_input
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


@app.command("demo")
@exits_on_bad_input
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
