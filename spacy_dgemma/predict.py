"""Run a pipeline over HIPE-2026 JSONL files: load it, predict, write official-format JSONL.

The library functions behind ``dgemma predict``; usable from Python as they are.
"""
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from tqdm import tqdm

from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe.read import DocMaker, ReadStats, expand_paths, iter_records, record_to_doc
from spacy_dgemma.hipe.write import RecordWriter, doc_to_record

BASELINE = "baseline"
RELATIONS_FACTORY = "dgemma_relations"


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
