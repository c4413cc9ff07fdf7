"""Run a pipeline over HIPE-2026 JSONL files: load it, predict, write official-format JSONL.

The library functions behind ``dgemma predict``; usable from Python as they are.

Each batch of input lines goes through `BatchPredictor`: parse and check, tokenize and align
the mentions, ``nlp.pipe``, turn the Docs back into records and serialise them. With
``n_process > 1`` the batches go to worker processes of our own (`WorkerPool`) rather than to
spaCy's ``nlp.pipe(n_process=...)``: a worker does the whole job of a batch and sends back JSON
lines, so that a document that fails is reported with its file and line instead of hanging
the run, a worker that dies is noticed, and SIGTERM or Ctrl-C stops the workers and removes
the temporary output files.
"""
import logging
import multiprocessing
import os
import signal
import threading
import traceback
from collections import deque
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from tqdm import tqdm

from spacy_dgemma.errors import InputError, Warnings
from spacy_dgemma.hipe.read import DocMaker, RawLine, ReadStats, expand_paths, nonblank_lines, parse_record, record_to_doc, skip_or_raise
from spacy_dgemma.hipe.validate import schema_error
from spacy_dgemma.hipe.write import RecordWriter, check_name_lengths, check_output_path, doc_to_record, dumps
from spacy_dgemma.util import die_with_parent

logger = logging.getLogger("spacy_dgemma")

BASELINE = "baseline"
RELATIONS_FACTORY = "dgemma_relations"
# Batches sent ahead to each worker, so that none waits for the next.
PREFETCH = 2
# Seconds a worker gets to exit after the end of the input (or a stop) before it is killed.
JOIN_TIMEOUT = 10.0

Item = Tuple[int, int, RawLine]  # input file index, 1-based line, the raw line


def use_gpu(gpu_id: int) -> None:
    """Run the pipeline on GPU `gpu_id`, as ``spacy.require_gpu`` does; where thinc has no GPU
    (it needs cupy), make it torch's current CUDA device, which the generative student follows.

    RAISES: InputError E023 when there is no such GPU.
    """
    try:
        spacy.require_gpu(gpu_id)
        return
    except Exception as err:  # thinc raises ValueError without cupy, others for a bad id
        thinc_error = err
    try:
        import torch
    except ImportError:
        raise InputError.of("E023", "--gpu-id", gpu_id=gpu_id, detail=str(thinc_error).splitlines()[0]) from thinc_error
    if not torch.cuda.is_available() or not 0 <= gpu_id < torch.cuda.device_count():
        raise InputError.of("E023", "--gpu-id", gpu_id=gpu_id, detail=f"torch sees {torch.cuda.device_count()} CUDA device(s)")
    torch.cuda.set_device(gpu_id)


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
    except Exception as err:  # a corrupt folder fails in many ways (config, msgpack, JSON, types)
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = f"{type(err).__name__}: {lines[0][:300]}" if lines else type(err).__name__
        raise InputError.of("E020", model, model=model, detail=detail.encode("utf-8", "backslashreplace").decode("utf-8")) from err
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


@dataclass
class Outcome:
    """What became of one input line: its output line (serialised record) or its problem."""

    line: Optional[str] = None
    n_pairs: int = 0
    doc_id: Optional[str] = None
    error: Optional[InputError] = None


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGTERM or SIGINT (after its workers and temporary files were removed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def predict_files(
    inputs: List[Path],
    output: Path,
    nlp: Language,
    *,
    n_process: int = 1,
    batch_size: int = 32,
    skip_invalid: bool = False,
    progress: bool = True,
    stats: Optional[ReadStats] = None,
) -> PredictSummary:
    """Predict `at` / `isAt` for every pair of HIPE JSONL files and write official-format JSONL.

    Streams: documents are read, predicted and written one batch at a time. Every valid input
    document gives one output record, in input order, with all its fields and pairs; the output
    files appear only when complete, and only if the whole run succeeds (else the previous
    files stay as they were).
    inputs: input files or folders.
    output: output file or folder (see `output_paths`).
    nlp: a pipeline with ``dgemma_relations`` (see `load_pipeline`).
    n_process: worker processes (-1: one per CPU); 1 runs in this process.
    batch_size: documents per batch (and per ``nlp.pipe`` call).
    skip_invalid: leave out invalid documents, and documents the pipeline fails on (counted in
        the summary), instead of failing.
    progress: show a progress bar.
    stats: filled with the documents read and the problems skipped as the run goes (so that a
        caller can list them even when the run fails).
    Raises InputError for bad input or an output that cannot be written, and `Interrupted`
    (a KeyboardInterrupt) on SIGTERM or SIGINT.
    """
    files = expand_paths(inputs)
    check_name_lengths(output)
    paths = output_paths(files, Path(output))
    for path in dict.fromkeys(paths):
        check_output_path(path)
    path_of = dict(zip(files, paths))
    stats = ReadStats() if stats is None else stats
    summary = PredictSummary()
    predictor = BatchPredictor(nlp, files)
    n_workers = (os.cpu_count() or 1) if n_process == -1 else max(1, n_process)
    seen: Dict[str, str] = {}
    total = sum(_size(file) for file in files) or None
    with stop_on_signals() as shield, ExitStack() as stack:
        writers = {path: stack.enter_context(RecordWriter(path)) for path in dict.fromkeys(paths)}
        engine = stack.enter_context(WorkerPool(predictor, n_workers)) if n_workers > 1 and _can_fork() else predictor.map
        bar = stack.enter_context(tqdm(total=total, unit="B", unit_scale=True, disable=not progress or None, leave=False))
        for items, outcomes in engine(_batches(files, batch_size, stats, skip_invalid)):
            for (file_index, line, raw), outcome in zip(items, outcomes):
                file = files[file_index]
                if outcome.error is None and outcome.doc_id in seen:
                    outcome = Outcome(error=InputError.of("E008", str(file), line, doc_id=outcome.doc_id, first=seen[outcome.doc_id]))
                if outcome.error is not None:
                    skip_or_raise(outcome.error, stats, skip_invalid)
                    continue
                seen[outcome.doc_id] = f"{file}:{line}"  # type: ignore[index]
                writers[path_of[file]].write_line(outcome.line)  # type: ignore[arg-type]
                stats.n_docs += 1
                summary.n_pairs += outcome.n_pairs
            bar.update(sum(len(raw) + 1 for _, _, raw in items))
        for path, writer in writers.items():
            if writer.n_written == 0:
                source = next(file for file in files if path_of[file] == path)
                raise InputError.of("E105", str(source), output=str(path))
        shield()  # the outputs are complete: a signal now would only leave some of them replaced
    summary.outputs = {path: writer.n_written for path, writer in writers.items()}
    summary.skipped = stats.skipped
    return summary


class BatchPredictor:
    """The work of `predict_files` on one batch of raw JSONL lines, in or out of process.

    Parses and checks each line, makes its Doc (tokens, aligned mentions), runs the pipeline,
    and serialises the record with its predictions. A problem with one document never stops
    the others: each line gets an `Outcome`.
    nlp: a pipeline with ``dgemma_relations``.
    files: the input files, which the items name by index.
    make_doc: a `DocMaker` in ``nlp.vocab`` to reuse (its tokenizers and their caches), else a new one.
    """

    def __init__(self, nlp: Language, files: List[Path], make_doc: Optional[DocMaker] = None) -> None:
        self.nlp = nlp
        self.files = [str(file) for file in files]
        self.make_doc = make_doc if make_doc is not None else DocMaker(vocab=nlp.vocab)

    def __call__(self, items: List[Item]) -> List[Outcome]:
        outcomes: List[Outcome] = [Outcome() for _ in items]
        todo: List[Tuple[int, Dict[str, Any], Doc]] = []
        for i, (file_index, line, raw) in enumerate(items):
            file = self.files[file_index]
            try:
                record = parse_record(raw, file, line)
                todo.append((i, record, self._doc(record)))
            except InputError as err:
                outcomes[i].error = err
            except Exception as err:  # a bug on one document must not stop the others
                outcomes[i].error = pipeline_failure(file, line, err)
        for (i, record, _), doc in zip(todo, self._pipe(todo)):
            file_index, line, _ = items[i]
            try:
                if isinstance(doc, Exception):
                    raise doc
                out = doc_to_record(doc, text=record["text"])
                err = schema_error(out)
                if err is not None:
                    raise ValueError(f"the output record is not valid HIPE-2026: {err.message}")
                outcomes[i] = Outcome(line=dumps(out), n_pairs=len(out["sampled_pairs"]), doc_id=record["document_id"])
            except Exception as err:
                outcomes[i].error = pipeline_failure(self.files[file_index], line, err)
        return outcomes

    def map(self, batches: Iterable[List[Item]]) -> Iterator[Tuple[List[Item], List[Outcome]]]:
        """(items, outcomes) of each batch, in this process."""
        for items in batches:
            yield items, self(items)

    def _doc(self, record: Dict[str, Any]) -> Doc:
        return record_to_doc(record, make_doc=self.make_doc, copy=False)

    def _pipe(self, todo: List[Tuple[int, Dict[str, Any], Doc]]) -> List[Any]:
        # a fresh Doc for a second try: the failed batch may have left annotations on the old one
        return pipe_or_one_by_one(self.nlp, [doc for _, _, doc in todo], lambda i: self._doc(todo[i][1]))


def pipe_or_one_by_one(nlp: Language, inputs: List[Any], again: Callable[[int], Any]) -> List[Any]:
    """``nlp.pipe(inputs)`` as one batch; if it fails, ``nlp(again(i))`` for each input on its
    own, with the exception in place of the Doc for those that fail."""
    try:
        return list(nlp.pipe(inputs, batch_size=max(1, len(inputs))))
    except Exception:
        results: List[Any] = []
        for i in range(len(inputs)):
            try:
                results.append(nlp(again(i)))
            except Exception as err:
                results.append(err)
        return results


def describe_error(err: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters of it), safe to write as UTF-8."""
    message = str(err).splitlines()[0] if str(err) else ""
    detail = f"{type(err).__name__}: {message[:200]}" if message else type(err).__name__
    return detail.encode("utf-8", "backslashreplace").decode("utf-8")


def pipeline_failure(file: str, line: Optional[int], err: Exception) -> InputError:
    """The E110 error of a document that made the code fail (the traceback goes to the debug log)."""
    logger.debug("%s:%s: the pipeline failed\n%s", file, line, "".join(traceback.format_exception(err)))
    return InputError.of("E110", file, line, detail=describe_error(err))


class WorkerPool:
    """Worker processes that run a `BatchPredictor` on batches, results in input order.

    Batch k goes to worker k mod n; up to `prefetch` batches per worker are on their way. The
    workers are forked, so they share the loaded pipeline. A worker that dies makes `map` raise
    InputError (E111); leaving the pool (normally or by an exception) stops every worker.
    predictor: what each worker runs on a batch.
    n_workers: how many workers.
    prefetch: batches sent ahead to each worker.
    """

    def __init__(self, predictor: BatchPredictor, n_workers: int, prefetch: int = PREFETCH) -> None:
        self.predictor = predictor
        self.n_workers = n_workers
        self.prefetch = prefetch
        self._procs: List[Any] = []
        self._tasks: List[Any] = []
        self._results: List[Any] = []

    def __enter__(self) -> "WorkerPool":
        context = multiprocessing.get_context("fork")
        parent = os.getpid()
        try:
            for _ in range(self.n_workers):
                tasks = context.Queue()
                tasks.cancel_join_thread()  # never wait at exit to feed a worker that is gone
                receiver, sender = context.Pipe(duplex=False)
                proc = context.Process(target=_work, args=(self.predictor, tasks, sender, parent), daemon=True)
                proc.start()
                sender.close()
                self._procs.append(proc)
                self._tasks.append(tasks)
                self._results.append(receiver)
        except BaseException:
            self._stop(graceful=False)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop(graceful=exc_type is None)

    def __call__(self, batches: Iterable[List[Item]]) -> Iterator[Tuple[List[Item], List[Outcome]]]:
        """(items, outcomes) of each batch, in input order."""
        batches = iter(batches)
        pending: Deque[Tuple[int, List[Item]]] = deque()
        sent = 0
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.n_workers * self.prefetch:
                items = next(batches, None)
                if items is None:
                    exhausted = True
                    break
                worker = sent % self.n_workers
                self._tasks[worker].put(items)
                pending.append((worker, items))
                sent += 1
            if not pending:
                return
            worker, items = pending.popleft()
            yield items, self._receive(worker, items)

    def _receive(self, worker: int, items: List[Item]) -> List[Outcome]:
        receiver, proc = self._results[worker], self._procs[worker]
        file_index, line, _ = items[0]
        where = (self.predictor.files[file_index], line)
        wait([receiver, proc.sentinel])
        try:
            status, payload = receiver.recv() if receiver.poll() else (None, None)
        except (EOFError, OSError):
            status, payload = None, None
        if status == "ok":
            return payload
        if status == "error":
            raise InputError.of("E111", *where, detail=f"it failed: {payload}")
        proc.join(1.0)
        code = proc.exitcode
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        raise InputError.of("E111", *where, detail=f"{how}, on a batch starting here")

    def _stop(self, graceful: bool) -> None:
        """Stop every worker: at the end of the input, ask them; else (or if they linger) kill them."""
        if graceful:
            for tasks in self._tasks:
                tasks.put(None)
            for proc in self._procs:
                proc.join(JOIN_TIMEOUT)
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self._procs:
            proc.join(JOIN_TIMEOUT)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for tasks in self._tasks:
            tasks.close()
        for receiver in self._results:
            receiver.close()
        self._procs, self._tasks, self._results = [], [], []


def _work(predictor: BatchPredictor, tasks: Any, results: Any, parent: int) -> None:
    """A worker's loop: batches in, outcomes out, until the end marker (None)."""
    die_with_parent(signal.SIGKILL, parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        while True:
            items = tasks.get()
            if items is None:
                return
            try:
                message: Tuple[str, Any] = ("ok", predictor(items))
            except Exception as err:  # BatchPredictor catches per document: this is a bug
                message = ("error", f"{type(err).__name__}: {err}")
                traceback.print_exc()
            results.send(message)
    except (BrokenPipeError, EOFError, OSError):
        return  # the parent is gone or stopped listening
    finally:
        results.close()


def _can_fork() -> bool:
    if "fork" in multiprocessing.get_all_start_methods():
        return True
    logger.warning(Warnings.W050)
    return False


@contextmanager
def stop_on_signals() -> Iterator[Any]:
    """Turn SIGTERM and SIGINT into `Interrupted`, so that the run cleans up as it unwinds.

    After the first signal both are ignored until the run has cleaned up. Yields a function
    that ignores them from then on (for the last steps, which must not be cut short). Outside
    the main thread (where Python cannot set handlers) it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    signums = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.getsignal(signum) for signum in signums}

    def ignore() -> None:
        for signum in signums:
            signal.signal(signum, signal.SIG_IGN)

    def stop(signum: int, frame: Any) -> None:
        ignore()
        raise Interrupted(signum)

    for signum in signums:
        signal.signal(signum, stop)
    try:
        yield ignore
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _batches(files: List[Path], batch_size: int, stats: ReadStats, skip_invalid: bool) -> Iterator[List[Item]]:
    """The non-blank lines of the files in batches of `batch_size`; an empty file is a problem (E005)."""
    batch: List[Item] = []
    for file_index, file in enumerate(files):
        n_lines = 0
        for line, raw in nonblank_lines(file):
            n_lines += 1
            batch.append((file_index, line, raw))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if n_lines == 0:
            skip_or_raise(InputError.of("E005", str(file)), stats, skip_invalid)
    if batch:
        yield batch


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0
