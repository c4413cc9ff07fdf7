"""Annotate HIPE documents with a model's reasoning + labels, resumably.

Every pair's result is appended to a JSONL cache, flushed and fsynced after each document. A
record's key is (document id, pair index, person id, place id, prompt version, model id); a
restarted run skips the keys already in the cache, so a killed run loses at most the document
it was working on and never duplicates a pair. A line cut off by a kill is removed on restart.

From the cache, ``write_outputs`` writes official-format JSONL (every input field kept; ``at``,
``isAt`` and the explanations filled) that the compact student can train on, and the student's
distillation traces (SFT JSONL).
"""
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

from spacy_dgemma.llm.labeller import RelationLabeller
from spacy_dgemma.llm.parse import format_response
from spacy_dgemma.llm.prompts import PromptDocument, build_prompts, document_from_hipe
from spacy_dgemma.llm.sft import sft_record

logger = logging.getLogger("spacy_dgemma")


def cache_key(document_id: str, pair_index: Optional[int], person_id: str, place_id: str,
              prompt_version: str, model_id: str) -> str:
    """The cache key of one pair's annotation."""
    return json.dumps([document_id, pair_index, person_id, place_id, prompt_version, model_id], ensure_ascii=False)


def _record_key(record: Dict[str, Any]) -> str:
    return cache_key(record["document_id"], record["pair_index"], record["pers_entity_id"],
                     record["loc_entity_id"], record["prompt_version"], record["model_id"])


class AnnotationCache:
    """An append-only JSONL cache of pair annotations."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self.records: Dict[str, Dict[str, Any]] = {}
        if self.path.exists():
            with self.path.open(encoding="utf8") as file:
                for n, line in enumerate(file, 1):
                    if line.strip():
                        try:
                            record = json.loads(line)
                        except ValueError as err:
                            raise ValueError(f"{self.path}:{n}: broken cache line ({err}); delete it to "
                                             "re-annotate that pair.") from err
                        self.records[_record_key(record)] = record
        self._file = self.path.open("a", encoding="utf8")

    def _repair(self) -> None:
        """Cut a last line left incomplete by a killed run."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        logger.warning("%s: removing an incomplete last line (%d bytes) left by an interrupted run.",
                       self.path, len(data) - keep)
        with self.path.open("r+b") as file:
            file.truncate(keep)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def add(self, records: Iterable[Dict[str, Any]]) -> None:
        """Append records and make them durable (flush + fsync)."""
        for record in records:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.records[_record_key(record)] = record
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "AnnotationCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class AnnotateSummary:
    new: int = 0
    cached: int = 0
    stopped_early: bool = False
    parse: Counter = field(default_factory=Counter)


def annotate(
    labeller: RelationLabeller,
    records: List[Dict[str, Any]],
    cache_path: Union[str, Path],
    model_id: str,
    limit: Optional[int] = None,
    progress: bool = True,
) -> AnnotateSummary:
    """Annotate every pair of `records` that the cache does not hold yet.

    labeller: the model (e.g. teacher base + adapter). records: HIPE records.
    cache_path: the JSONL cache. model_id: identifies the model in the cache key.
    limit: stop after this many newly annotated pairs (the rest is done by a later run).
    progress: show a progress bar (pairs, with ETA).
    """
    from tqdm import tqdm

    summary = AnnotateSummary()
    documents = [document_from_hipe(r) for r in records]
    version = labeller.prompt_version
    with AnnotationCache(cache_path) as cache:
        todo = []
        for doc in documents:
            missing = [p for p in doc.pairs
                       if cache_key(doc.document_id, p.pair_index, p.person_id, p.place_id, version, model_id) not in cache]
            summary.cached += len(doc.pairs) - len(missing)
            if missing:
                todo.append((doc, missing))
        bar = tqdm(total=sum(len(m) for _, m in todo), desc="annotate", unit="pair", disable=not progress)
        for doc, missing in todo:
            if limit is not None and summary.new + len(missing) > limit:
                missing = missing[: max(0, limit - summary.new)]
                summary.stopped_early = True
            if not missing:
                break
            results = labeller.label_document(doc, missing)
            cache.add(_cache_record(doc, pair, result, version, model_id) for pair, result in zip(missing, results))
            summary.new += len(missing)
            summary.parse.update(r.parsed.status for r in results)
            bar.update(len(missing))
            if summary.stopped_early:
                break
        bar.close()
    return summary


def _cache_record(doc: PromptDocument, pair, result, version: str, model_id: str) -> Dict[str, Any]:
    return {
        "document_id": doc.document_id,
        "pair_index": pair.pair_index,
        "pers_entity_id": pair.person_id,
        "loc_entity_id": pair.place_id,
        "prompt_version": version,
        "model_id": model_id,
        "raw": result.raw,
        "at": result.parsed.at,
        "isAt": result.parsed.is_at,
        "at_explanation": result.parsed.at_reasoning,
        "isAt_explanation": result.parsed.is_at_reasoning,
        "parse_status": result.parsed.status,
        "parse_issues": result.parsed.issues,
        "scores": result.scores,
    }


def annotated_records(records: Iterable[Dict[str, Any]], cache: AnnotationCache, prompt_version: str,
                      model_id: str, counts: Optional[Counter] = None) -> Iterable[Dict[str, Any]]:
    """Copies of `records` with every pair's labels and explanations taken from the cache
    (null where the cache has none)."""
    for record in records:
        record = json.loads(json.dumps(record))
        for i, pair in enumerate(record.get("sampled_pairs") or []):
            hit = cache.records.get(cache_key(record["document_id"], i, pair.get("pers_entity_id") or "",
                                              pair.get("loc_entity_id") or "", prompt_version, model_id))
            for key in ("at", "isAt", "at_explanation", "isAt_explanation"):
                pair[key] = hit[key] if hit else None
            if counts is not None:
                counts["annotated" if hit else "missing"] += 1
        yield record


def write_traces(records: Iterable[Dict[str, Any]], cache: AnnotationCache, labeller: RelationLabeller,
                 output: Union[str, Path], model_id: str, include_fallback: bool = False) -> Counter:
    """The student's SFT set: each annotated pair's prompt and the teacher's answer (canonical JSON).

    Answers whose labels came from the parser fallback are left out unless `include_fallback`.
    """
    counts: Counter = Counter()
    output = Path(output)
    tmp = output.with_name(output.name + ".tmp")
    with tmp.open("w", encoding="utf8") as out:
        for record in records:
            doc = document_from_hipe(record)
            prompts = build_prompts(doc, labeller.prompt_version, labeller.max_article_tokens, labeller.count_tokens)
            for pair, prompt in zip(doc.pairs, prompts):
                hit = cache.records.get(cache_key(doc.document_id, pair.pair_index, pair.person_id, pair.place_id,
                                                  labeller.prompt_version, model_id))
                if hit is None or (hit["parse_status"] == "fallback" and not include_fallback):
                    counts["skipped"] += 1
                    continue
                response = format_response(hit["at_explanation"] or "", hit["at"], hit["isAt_explanation"] or "", hit["isAt"])
                meta = {"document_id": doc.document_id, "pair_index": pair.pair_index, "source": "teacher",
                        "model_id": model_id, "prompt_version": labeller.prompt_version,
                        "parse_status": hit["parse_status"]}
                out.write(json.dumps(sft_record(prompt, response, meta), ensure_ascii=False) + "\n")
                counts["written"] += 1
    tmp.replace(output)
    return counts
