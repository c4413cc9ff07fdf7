"""Annotate HIPE documents with a model's reasoning + labels: streamed, sharded, locked, resumable.

**Streaming.** Documents are read one by one and sent to the engine in batches of
``docs_per_batch`` documents (the pairs of several documents go out together, so a server
batches across documents); memory does not grow with the corpus, except for the cache index
(a few hundred bytes per cached pair; shards divide it).

**Cache.** Every answer is one line of an append-only JSONL file, flushed as it arrives and
fsynced after each batch. Its key is a hash of everything that decides the answer: the document
(id, text, language, date, title), the pair (index, entity ids, mentions), the prompt template's
version *and content*, the chat template, ``max_article_tokens``, the decoding settings
(``max_new_tokens``, temperature, seed, guided JSON), and the weights (a content digest of a
local model folder and of the adapter, or hub name + revision; ``engines.model_identity``).
Change any of them and the pair is annotated again; the engine is not part of the key (``hf``
and vLLM answer the same question). A restarted run skips the keys in the cache and cuts a line
left half-written by a kill, so a killed run (even ``kill -9``) loses at most the answers in
flight and never duplicates a pair.

**Lock.** A run holds an exclusive ``flock`` on ``CACHE.lock`` while it works; a second run on
the same cache *refuses at once* with error E183 (naming the holder's pid) rather than wait.
The lock goes with the process, also on ``kill -9``.

**Shards.** ``shard=(i, n)`` keeps the documents whose id hashes into shard i of n
(``util.stable_fraction``), so n workers (one per GPU or machine) split a corpus without
talking to each other; each writes its own cache, ``CACHE.shardIofN.jsonl`` by default. Output
writing reads the cache and all its shard caches.

**Fallbacks.** An answer whose labels came from the parser fallback stays in the cache, marked
(``parse_status: "fallback"``). ``retry_fallbacks`` asks again, sampling (temperature 0.7, a new
seed per attempt), and the new answer replaces the old one (the last line of a key wins). In the
official-format output the explanation of a guessed label starts with ``[fallback]``, and the
summary counts them (warning W082).
"""
import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy_dgemma.errors import InputError
from spacy_dgemma.llm.engines import GenerationSettings
from spacy_dgemma.llm.labeller import PairResult, RelationLabeller
from spacy_dgemma.llm.parse import format_response
from spacy_dgemma.llm.prompts import PromptDocument, PromptPair, document_from_hipe
from spacy_dgemma.llm.sft import sft_record
from spacy_dgemma.util import AtomicWriter, stable_fraction, stable_key

logger = logging.getLogger("spacy_dgemma")
PathLike = Union[str, Path]
Shard = Tuple[int, int]
FALLBACK_MARK = "[fallback]"
RETRY_TEMPERATURE = 0.7
_FALLBACK_ISSUES = {"at": ("missing_at", "invalid_at"), "isAt": ("missing_isAt", "invalid_isAt")}


# ---------------------------------------------------------------- shards
def parse_shard(value: Optional[str]) -> Optional[Shard]:
    """``"i/n"`` → (i, n); None stays None."""
    if value is None:
        return None
    try:
        i, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise InputError.of("E184", "--shard", value=value) from None
    if not 0 <= i < n:
        raise InputError.of("E184", "--shard", value=value)
    return i, n


def in_shard(document_id: str, shard: Optional[Shard]) -> bool:
    """Whether the document belongs to `shard` (every document is in exactly one of n shards)."""
    return shard is None or int(stable_fraction(document_id) * shard[1]) == shard[0]


def shard_cache_path(cache: PathLike, shard: Optional[Shard]) -> Path:
    """The cache a shard writes: ``cache.shard2of8.jsonl`` for shard 2 of 8 (the cache itself without shards)."""
    cache = Path(cache)
    return cache if shard is None else cache.with_name(f"{cache.stem}.shard{shard[0]}of{shard[1]}{cache.suffix}")


def related_caches(cache: PathLike) -> List[Path]:
    """The cache and the caches of its shards (those that exist)."""
    cache = Path(cache)
    shards = sorted(cache.parent.glob(f"{cache.stem}.shard*of*{cache.suffix}"))
    return [p for p in [cache, *shards] if p.exists()]


# ---------------------------------------------------------------- keys
class AnswerKeys:
    """Cache keys: a hash of the pair, its document, and `answer` (what else decides the answer:
    ``RelationLabeller.answer_key``, plus the user's model id when given)."""

    def __init__(self, answer: Dict[str, Any], model_id: Optional[str] = None) -> None:
        self.answer = dict(answer, model_id=model_id) if model_id else dict(answer)
        self.digest = stable_key(json.dumps(self.answer, sort_keys=True, ensure_ascii=False))

    @staticmethod
    def document_digest(document: PromptDocument) -> str:
        return stable_key(json.dumps([document.text, document.language, document.date, document.title], ensure_ascii=False))

    def pair(self, document: PromptDocument, pair: PromptPair, document_digest: Optional[str] = None) -> str:
        """The key of `pair` of `document`."""
        digest = document_digest or self.document_digest(document)
        return stable_key(json.dumps([self.digest, document.document_id, digest, pair.pair_index, pair.person_id,
                                      pair.place_id, pair.person_mentions, pair.place_mentions], ensure_ascii=False))


# ---------------------------------------------------------------- the cache
class CacheLock:
    """An exclusive, non-blocking ``flock`` on ``PATH.lock``; raises E183 when another run holds it."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(str(path) + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a+", encoding="utf8")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "holder unknown"
            self._file.close()
            raise InputError.of("E183", str(path), holder=holder) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()


class AnnotationCache:
    """Append-only JSONL caches of pair answers, indexed by key (file and offset, not the answers).

    paths: the cache files to read (the first is the one written to when `write`; a file given twice is read once).
    write: lock the first file, repair a half-written last line, and append to it.
    """

    def __init__(self, paths: Union[PathLike, Sequence[PathLike]], write: bool = True) -> None:
        given = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
        unique: Dict[Path, Path] = {}
        for path in given:
            unique.setdefault(path.resolve(), path)
        paths = list(unique.values())
        self.paths = paths
        self.lock: Optional[CacheLock] = None
        self._index: Dict[bytes, int] = {}  # key → offset << 12 | file number << 1 | is fallback
        self._readers: Dict[int, Any] = {}
        self._file = None
        self.ignored = 0
        if write:
            paths[0].parent.mkdir(parents=True, exist_ok=True)
            self.lock = CacheLock(paths[0])
            self._repair(paths[0])
        for number, path in enumerate(paths):
            if path.exists():
                self._scan(number, path, complete_only=not write or number > 0)
        if write:
            self._file = paths[0].open("ab")

    @staticmethod
    def _repair(path: Path) -> None:
        """Cut a last line left incomplete by a killed run."""
        if not path.exists() or path.stat().st_size == 0:
            return
        with path.open("r+b") as file:
            file.seek(-1, os.SEEK_END)
            if file.read(1) == b"\n":
                return
            size = file.seek(0, os.SEEK_END)
            keep, step = size, 1 << 16
            while keep > 0:  # find the last newline, reading backwards
                start = max(0, keep - step)
                file.seek(start)
                at = file.read(keep - start).rfind(b"\n")
                if at != -1:
                    keep = start + at + 1
                    break
                keep = start
            logger.warning("%s: removing an incomplete last line (%d bytes) left by an interrupted run.", path, size - keep)
            file.truncate(keep)

    def _scan(self, number: int, path: Path, complete_only: bool) -> None:
        ignored_before = self.ignored
        with path.open("rb") as file:
            offset = 0
            for n, line in enumerate(file, 1):
                start, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                if not line.endswith(b"\n") and complete_only:
                    break  # another run is writing this line now
                try:
                    record = json.loads(line)
                except ValueError as err:
                    raise InputError.of("E185", str(path), n, detail=str(err)) from err
                key = record.get("key")
                if not isinstance(key, str):
                    self.ignored += 1  # a line of the first cache format, keyed differently: asked again
                    continue
                self._index[bytes.fromhex(key)] = start << 12 | number << 1 | int(record.get("parse_status") == "fallback")
        if self.ignored > ignored_before:
            logger.info("%s: %d line(s) of an older cache format ignored (their pairs are annotated again).", path,
                        self.ignored - ignored_before)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return bytes.fromhex(key) in self._index

    def is_fallback(self, key: str) -> bool:
        return bool(self._index.get(bytes.fromhex(key), 0) & 1)

    def get(self, key: str) -> Optional[Dict[str, Any]]:
        """The cached answer of `key` (read from disk), or None."""
        entry = self._index.get(bytes.fromhex(key))
        if entry is None:
            return None
        number = entry >> 1 & 0x7FF
        if number not in self._readers:
            self._readers[number] = self.paths[number].open("rb")
        reader = self._readers[number]
        reader.seek(entry >> 12)
        return json.loads(reader.readline())

    def add(self, record: Dict[str, Any]) -> None:
        """Append one answer (flushed: a killed process keeps it)."""
        offset = self._file.seek(0, os.SEEK_END)
        self._file.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf8"))
        self._file.flush()
        self._index[bytes.fromhex(record["key"])] = offset << 12 | int(record["parse_status"] == "fallback")

    def sync(self) -> None:
        """Make the answers durable across a machine crash too."""
        if self._file is not None:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> "AnnotationCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------- annotating
@dataclass
class AnnotateSummary:
    """What a run did: pairs annotated now, found in the cache, retried, left to other shards."""

    new: int = 0
    cached: int = 0
    retried: int = 0
    other_shards: int = 0
    documents: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    parse: Counter = field(default_factory=Counter)

    def to_dict(self) -> Dict[str, Any]:
        return {"new": self.new, "cached": self.cached, "retried": self.retried, "other_shards": self.other_shards,
                "documents": self.documents, "stopped_early": self.stopped_early, "seconds": round(self.seconds, 2),
                "parse": dict(self.parse)}


def annotate(
    labeller: RelationLabeller,
    records: Iterable[Dict[str, Any]],
    cache: Union[PathLike, AnnotationCache],
    model_id: Optional[str] = None,
    limit: Optional[int] = None,
    shard: Optional[Shard] = None,
    retry_fallbacks: bool = False,
    docs_per_batch: int = 16,
    progress: bool = True,
    also_read: Sequence[PathLike] = (),
) -> AnnotateSummary:
    """Annotate every pair of `records` that the cache does not hold yet (see the module doc).

    labeller: the model. records: HIPE records (any iterable; read once, lazily).
    cache: the JSONL cache this run writes (``shard_cache_path`` for a shard), or that cache already open for
        writing (left open, so the caller can write the outputs from it without reading the files again).
    model_id: a name for the model, stored with each answer (and part of the key when given).
    limit: stop after this many newly annotated pairs (a later run does the rest).
    shard: (i, n): annotate only the documents of shard i of n.
    retry_fallbacks: ask again for the cached answers that needed the parser fallback.
    docs_per_batch: documents whose pairs go to the engine together. progress: a progress bar.
    also_read: other caches whose answers count as done (e.g. the shard caches, ``related_caches``); with a
        path `cache` only (an open cache reads what it was opened on).
    """
    from tqdm import tqdm

    started = time.perf_counter()
    summary = AnnotateSummary()
    settings = labeller.engine.settings
    keys = AnswerKeys(labeller.answer_key(settings), model_id)
    bar = tqdm(desc="annotate", unit="pair", disable=not progress)
    opened = contextlib.nullcontext(cache) if isinstance(cache, AnnotationCache) else AnnotationCache([cache, *also_read])
    with opened as cache:
        batch: List[Tuple[PromptDocument, List[Tuple[PromptPair, str]], List[Tuple[PromptPair, str, int]]]] = []

        def run_batch() -> None:
            summary.new += _run(labeller, batch, cache, keys, settings, model_id, summary, bar)
            cache.sync()
            batch.clear()

        for record in records:
            document = document_from_hipe(record)
            if not in_shard(document.document_id, shard):
                summary.other_shards += len(document.pairs)
                continue
            summary.documents += 1
            digest = keys.document_digest(document)
            first, again = [], []
            for pair in document.pairs:
                key = keys.pair(document, pair, digest)
                if key not in cache:
                    first.append((pair, key))
                elif retry_fallbacks and cache.is_fallback(key):
                    again.append((pair, key, int(cache.get(key).get("attempt", 0)) + 1))
                else:
                    summary.cached += 1
            if limit is not None:
                room = limit - summary.new - sum(len(f) + len(a) for _, f, a in batch)
                if len(first) + len(again) > room:
                    first, again = first[: max(room, 0)], again[: max(room - len(first), 0)]
                    summary.stopped_early = True
            if first or again:
                batch.append((document, first, again))
            if len(batch) >= docs_per_batch or summary.stopped_early:
                run_batch()
            if summary.stopped_early:
                break
        if batch:
            run_batch()
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _run(labeller: RelationLabeller, batch, cache: AnnotationCache, keys: AnswerKeys, settings: GenerationSettings,
         model_id: Optional[str], summary: AnnotateSummary, bar) -> int:
    """Annotate one batch: first answers with `settings`, then retries sampled; returns how many pairs."""
    jobs: Dict[int, List[Tuple[PromptDocument, List[Tuple[PromptPair, str]]]]] = {}  # attempt → items
    for document, first, again in batch:
        by_attempt: Dict[int, List[Tuple[PromptPair, str]]] = {0: list(first)}
        for pair, key, attempt in again:
            by_attempt.setdefault(attempt, []).append((pair, key))
        for attempt, pairs in by_attempt.items():
            if pairs:
                jobs.setdefault(attempt, []).append((document, pairs))
    done = 0
    for attempt in sorted(jobs):
        items = jobs[attempt]
        run_settings = settings if attempt == 0 else replace(settings, temperature=RETRY_TEMPERATURE, seed=settings.seed + attempt)
        used = labeller.engine.effective(run_settings)
        for g, i, result in labeller.label_stream([(d, [p for p, _ in pairs]) for d, pairs in items], settings=run_settings):
            document, pairs = items[g]
            pair, key = pairs[i]
            cache.add(_cache_record(document, pair, result, key, keys, used, model_id, labeller.engine.kind, attempt))
            summary.parse[result.parsed.status] += 1
            summary.retried += int(attempt > 0)
            done += 1
            bar.update(1)
    return done


def _cache_record(document: PromptDocument, pair: PromptPair, result: PairResult, key: str, keys: AnswerKeys,
                  settings: GenerationSettings, model_id: Optional[str], engine: str, attempt: int) -> Dict[str, Any]:
    return {
        "key": key,
        "document_id": document.document_id,
        "pair_index": pair.pair_index,
        "pers_entity_id": pair.person_id,
        "loc_entity_id": pair.place_id,
        "prompt_version": keys.answer.get("prompt_version"),
        "model_id": model_id,
        "model": keys.answer.get("model"),
        "engine": engine,
        "attempt": attempt,
        "temperature": settings.temperature,
        "seed": settings.seed,
        "raw": result.raw,
        "at": result.parsed.at,
        "isAt": result.parsed.is_at,
        "at_explanation": result.parsed.at_reasoning,
        "isAt_explanation": result.parsed.is_at_reasoning,
        "parse_status": result.parsed.status,
        "parse_issues": result.parsed.issues,
        "scores": result.scores,
    }


# ---------------------------------------------------------------- outputs
def marked_explanations(hit: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """The answer's explanations, each starting with ``[fallback]`` where its label was guessed."""
    out = []
    for label, key in (("at", "at_explanation"), ("isAt", "isAt_explanation")):
        text = hit.get(key)
        guessed = [i for i in hit.get("parse_issues") or [] if i in _FALLBACK_ISSUES[label]]
        if guessed:
            text = f"{FALLBACK_MARK} {label} guessed by the parser's rule ({', '.join(guessed)})" + (f": {text}" if text else "")
        out.append(text)
    return out[0], out[1]


def annotated_records(records: Iterable[Dict[str, Any]], cache: AnnotationCache, keys: AnswerKeys,
                      counts: Optional[Counter] = None) -> Iterator[Dict[str, Any]]:
    """Copies of `records` with every pair's labels and explanations taken from the cache (null where
    the cache has none; guessed labels marked, see ``marked_explanations``)."""
    for record in records:
        document = document_from_hipe(record)
        digest = keys.document_digest(document)
        record = json.loads(json.dumps(record))
        for pair, values in zip(document.pairs, record.get("sampled_pairs") or []):
            hit = cache.get(keys.pair(document, pair, digest))
            at_explanation, is_at_explanation = marked_explanations(hit) if hit else (None, None)
            values.update(at=hit["at"] if hit else None, isAt=hit["isAt"] if hit else None,
                          at_explanation=at_explanation, isAt_explanation=is_at_explanation)
            if counts is not None:
                counts["annotated" if hit else "missing"] += 1
                counts["fallback"] += int(bool(hit) and hit["parse_status"] == "fallback")
        yield record


def write_traces(records: Iterable[Dict[str, Any]], cache: AnnotationCache, labeller: RelationLabeller, keys: AnswerKeys,
                 output: PathLike, include_fallback: bool = False) -> Counter:
    """The student's SFT set: each annotated pair's prompt and the teacher's answer (canonical JSON).

    Answers whose labels came from the parser fallback are left out unless `include_fallback`.
    """
    counts: Counter = Counter()
    with AtomicWriter(output) as out:
        for record in records:
            document = document_from_hipe(record)
            digest = keys.document_digest(document)
            for pair, prompt in zip(document.pairs, labeller.prompts(document)):
                hit = cache.get(keys.pair(document, pair, digest))
                if hit is None or (hit["parse_status"] == "fallback" and not include_fallback):
                    counts["skipped"] += 1
                    continue
                response = format_response(hit["at_explanation"] or "", hit["at"], hit["isAt_explanation"] or "", hit["isAt"])
                meta = {"document_id": document.document_id, "pair_index": pair.pair_index, "source": "teacher",
                        "model_id": hit.get("model_id"), "model": hit.get("model"), "prompt_version": labeller.prompt_version,
                        "parse_status": hit["parse_status"]}
                out.write(json.dumps(sft_record(prompt, response, meta), ensure_ascii=False) + "\n")
                counts["written"] += 1
    return counts
