"""Shards: the unit of work, of output and of resumption.

A shard is a run of consecutive records of one HIPE file (``--shard-size`` records), or a run
of consecutive raw-text files. Predicting a shard writes, each file atomically and in this order:

- ``shards/<name>.jsonl``: one line per document of the shard that could be predicted, in input
  order: the official HIPE-2026 record for HIPE input; for raw text
  ``{"document_id", "file", "relations": [Relation.to_dict(), ...]}``;
- ``_state/rejects/<name>.jsonl`` (only when some records were bad): one line per record set
  aside, ``{"file", "line", "document_id", "code", "reason", "shard"}``;
- ``_state/done/<name>.json``: counts and checksums of the shard, and ``ids``: ``[index in
  files, line (null for text), document id, pairs]`` of each document of its output (for the
  job's check of ids across shards, `drop_documents`); its presence means "done".

Rewriting a shard gives the same files, so a shard predicted twice (a retried task, a rerun
after a crash) still puts each of its documents exactly once in the output.
"""
import hashlib
import json
import os
import resource
import socket
import time
from dataclasses import asdict, dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.util import minibatch

from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe.read import DocMaker
from spacy_dgemma.hipe.write import dumps
from spacy_dgemma.predict import BatchPredictor, describe_error, pipe_or_one_by_one, pipeline_failure
from spacy_dgemma.scale.inputs import HIPE, TEXT, iter_lines, read_input
from spacy_dgemma.util import AtomicWriter

SHARDS_DIR = "shards"
STATE_DIR = "_state"


@dataclass
class Shard:
    """One shard of a job.

    name: file name stem of its outputs.
    kind: ``hipe`` or ``text``.
    files: its input files (one for HIPE; one per document for text).
    first_line / offset: where it starts in its HIPE file (1-based line, byte offset in the
        decompressed stream); 1 and 0 for text.
    records: how many records (non-blank lines, or text files) it covers.
    doc_ids: for text, the document id of each file.
    """

    name: str
    kind: str
    files: List[str]
    first_line: int = 1
    offset: int = 0
    records: int = 0
    doc_ids: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Shard":
        return cls(**data)


class JobLayout:
    """Where a job's files live under its output folder."""

    def __init__(self, root: os.PathLike) -> None:
        self.root = Path(root)
        self.shards = self.root / SHARDS_DIR
        self.state = self.root / STATE_DIR
        self.done = self.state / "done"
        self.rejects = self.state / "rejects"
        self.plan = self.state / "plan.json"
        self.manifest = self.root / "manifest.json"
        self.all_rejects = self.root / "rejects.jsonl"

    def shard_file(self, name: str) -> Path:
        return self.shards / f"{name}.jsonl"

    def rejects_file(self, name: str) -> Path:
        return self.rejects / f"{name}.jsonl"

    def done_file(self, name: str) -> Path:
        return self.done / f"{name}.json"

    def remove_temporary_files(self) -> int:
        """Remove the temporary files that a killed writer left behind; return how many."""
        n = 0
        for folder in (self.shards, self.done, self.rejects, self.state, self.root):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
                    n += 1
        return n


def run_shard(nlp: Language, shard: Shard, layout: JobLayout, *, batch_size: int = 32,
              make_doc: Optional[DocMaker] = None) -> Dict[str, Any]:
    """Predict one shard and write its output, rejects and done record; return the done record.

    nlp: a pipeline with ``dgemma_relations`` (see `spacy_dgemma.predict.load_pipeline`).
    shard: the shard to predict.
    layout: the job's output folder.
    batch_size: documents per ``nlp.pipe`` batch.
    make_doc: the `DocMaker` of HIPE records to reuse across the shards of a worker.
    """
    start, cpu = time.perf_counter(), time.process_time()
    rejects: List[Dict[str, Any]] = []
    inputs: Dict[str, str] = {}
    ids: List[List[Any]] = []
    if shard.kind == HIPE:
        lines = _hipe_lines(nlp, shard, batch_size, rejects, make_doc)
    elif shard.kind == TEXT:
        lines = _text_lines(nlp, shard, batch_size, rejects, inputs)
    else:
        raise ValueError(f"unknown shard kind {shard.kind!r}")
    digest = hashlib.sha256()
    n_docs = n_pairs = n_bytes = 0
    with AtomicWriter(layout.shard_file(shard.name), "wb") as out:
        for line, pairs, (index, number, doc_id) in lines:
            data = (line + "\n").encode("utf-8")
            out.write(data)
            digest.update(data)
            n_docs += 1
            n_bytes += len(data)
            n_pairs += pairs
            ids.append([index, number, doc_id, pairs])
    _write_rejects(layout, shard, rejects)
    done = {
        "name": shard.name,
        "documents": n_docs,
        "pairs": n_pairs,
        "rejects": len(rejects),
        "bytes": n_bytes,
        "sha256": digest.hexdigest(),
        "inputs": inputs,
        "seconds": round(time.perf_counter() - start, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "ids": ids,
    }
    _write_done(layout, done)
    return done


def drop_documents(layout: JobLayout, shard: Shard, record: Dict[str, Any], drop: Dict[int, InputError]) -> Dict[str, Any]:
    """Move documents of a done shard from its output to its rejects; return its new done record.

    The rejects, the output and the done record are rewritten in this order, each atomically. A
    crash after the rejects leaves the done shard as it was (a rerun calls this again); after
    the output, a done record that does not match it, so that the shard is predicted again.
    layout: the job's output folder.
    shard: the shard.
    record: its done record (with its ``ids``).
    drop: index of a document in the output → why it is set aside.
    """
    ids = record["ids"]
    path = layout.rejects_file(shard.name)
    rejects = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    # A reject of a document still in the output was left by an interrupted earlier call.
    written = {(shard.files[index], line) for index, line, _, _ in ids}
    rejects = [r for r in rejects if (r["file"], r["line"]) not in written]
    rejects += [_reject(shard, problem.file, problem.line, ids[k][2], problem) for k, problem in drop.items()]
    _write_rejects(layout, shard, rejects)
    kept: List[List[Any]] = []
    digest = hashlib.sha256()
    n_bytes = n_pairs = 0
    output = layout.shard_file(shard.name)
    with output.open("rb") as lines, AtomicWriter(output, "wb") as out:
        for k, (data, entry) in enumerate(zip_longest(lines, ids)):
            if data is None or entry is None:  # raised inside the writer: the output stays as it was
                raise ValueError(f"the lines of {output} are not the documents of its done record")
            if k not in drop:
                out.write(data)
                digest.update(data)
                n_bytes += len(data)
                n_pairs += entry[3]
                kept.append(entry)
    record = {**record, "documents": len(kept), "pairs": n_pairs, "rejects": len(rejects), "bytes": n_bytes,
              "sha256": digest.hexdigest(), "ids": kept}
    _write_done(layout, record)
    return record


def _write_rejects(layout: JobLayout, shard: Shard, rejects: List[Dict[str, Any]]) -> None:
    """Write the rejects file of a shard, in input order (or remove it if there are none)."""
    if not rejects:
        layout.rejects_file(shard.name).unlink(missing_ok=True)
        return
    position = {url: i for i, url in enumerate(shard.files)}
    rejects.sort(key=lambda r: (position[r["file"]], r["line"] or 0))
    with AtomicWriter(layout.rejects_file(shard.name), "w") as out:
        for reject in rejects:
            out.write(json.dumps(reject, ensure_ascii=False) + "\n")


def _write_done(layout: JobLayout, record: Dict[str, Any]) -> None:
    with AtomicWriter(layout.done_file(record["name"]), "w") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _hipe_lines(nlp: Language, shard: Shard, batch_size: int, rejects: List[Dict[str, Any]],
                make_doc: Optional[DocMaker]) -> Iterator[Tuple[str, int, Tuple[int, Optional[int], str]]]:
    """(output line, pairs, (0, line, document id)) of each good record of a HIPE shard, in input
    order, predicted as the local engine predicts them (`spacy_dgemma.predict.BatchPredictor`);
    bad ones go to `rejects`."""
    url = shard.files[0]
    predictor = BatchPredictor(nlp, [url], make_doc)  # type: ignore[list-item]  (it only needs the name)
    for batch in minibatch(iter_lines(url, shard.first_line, shard.offset, shard.records), batch_size):
        items = [(0, line, raw) for line, raw in batch]
        for (_, line, raw), outcome in zip(items, predictor(items)):
            if outcome.error is None:
                yield outcome.line, outcome.n_pairs, (0, line, outcome.doc_id)
            else:
                rejects.append(_reject(shard, url, line, outcome.doc_id or _peek_id(raw), outcome.error))


def _text_lines(nlp: Language, shard: Shard, batch_size: int, rejects: List[Dict[str, Any]],
                inputs: Dict[str, str]) -> Iterator[Tuple[str, int, Tuple[int, Optional[int], str]]]:
    """(output line, relations, (index in files, None, document id)) of each raw-text file of a
    shard that could be predicted, in order; unreadable, empty or failing files go to `rejects`.
    `inputs` gets each file's checksum (of its stored bytes)."""
    texts = _texts(shard, rejects, inputs)
    for batch in minibatch(texts, batch_size):
        batch_texts = [text for _, _, _, text in batch]
        for (index, url, doc_id, _), doc in zip(batch, pipe_or_one_by_one(nlp, batch_texts, batch_texts.__getitem__)):
            if isinstance(doc, Exception):
                rejects.append(_reject(shard, url, None, doc_id, pipeline_failure(url, None, doc)))
                continue
            relations = [rel.to_dict() for rel in doc._.dgemma_relations]
            yield dumps({"document_id": doc_id, "file": url, "relations": relations}), len(relations), (index, None, doc_id)


def _texts(shard: Shard, rejects: List[Dict[str, Any]], inputs: Dict[str, str]) -> Iterator[Tuple[int, str, str, str]]:
    """(index in files, file, document id, text) of each readable, non-empty text file of a shard."""
    for index, (url, doc_id) in enumerate(zip(shard.files, shard.doc_ids)):
        try:
            data, inputs[url] = read_input(url)
        except (OSError, EOFError, ValueError) as err:
            rejects.append(_reject(shard, url, None, doc_id, InputError.of("E011", url, detail=describe_error(err))))
            continue
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            rejects.append(_reject(shard, url, None, doc_id, InputError.of("E006", url, detail=f"byte 0x{data[err.start]:02x} at offset {err.start}")))
            continue
        if not text.strip():
            rejects.append(_reject(shard, url, None, doc_id, InputError.of("E005", url)))
            continue
        yield index, url, doc_id, text


def _reject(shard: Shard, file: str, line: Optional[int], doc_id: Optional[str], problem: InputError) -> Dict[str, Any]:
    return {"file": file, "line": line, "document_id": doc_id, "code": problem.code, "reason": str(problem), "shard": shard.name}


def _peek_id(raw: Any) -> Optional[str]:
    """The document id of a raw line if it can be read, for the rejects file."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    doc_id = value.get("document_id") if isinstance(value, dict) else None
    return doc_id if isinstance(doc_id, str) else None
