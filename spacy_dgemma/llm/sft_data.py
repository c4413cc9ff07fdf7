"""Stage 0: the teacher's SFT set from gold train pairs.

A model (the teacher base, or any instruction-tuned LLM) writes reasoning + labels for every gold
pair. Traces whose two labels match gold are kept as they are (``source: "agree"``). For the
others the model is asked again, now told the gold labels, to explain them (rationalisation,
``source: "rationalised"``). The response stored is always the canonical JSON answer with the
*gold* labels. When not even the rationalisation yields a reasoning, the example keeps the gold
labels with empty reasoning (``source: "gold_only"``), or is dropped with ``drop_unexplained``.
"""
import itertools
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Optional, Union

from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS
from spacy_dgemma.llm.labeller import RelationLabeller
from spacy_dgemma.llm.parse import format_response
from spacy_dgemma.llm.prompts import document_from_hipe
from spacy_dgemma.llm.sft import sft_record
from spacy_dgemma.util import AtomicWriter

logger = logging.getLogger("spacy_dgemma")


def build_sft_data(
    labeller: RelationLabeller,
    records: Iterable[Dict],
    output: Union[str, Path],
    model_id: str,
    drop_unexplained: bool = False,
    max_docs: Optional[int] = None,
    progress: bool = True,
) -> Counter:
    """Write the SFT JSONL for the gold-labelled pairs of `records`.

    labeller: the model that writes traces. records: HIPE records with gold labels.
    output: SFT JSONL path (written atomically). model_id: recorded in each example's meta.
    drop_unexplained: drop pairs for which no reasoning could be obtained.
    max_docs: stop after this many documents in total, over all inputs. progress: show a progress bar.
    RETURNS (Counter): examples by source, plus "dropped" and "unlabelled".
    """
    from tqdm import tqdm

    counts: Counter = Counter()
    if max_docs is not None:
        records = itertools.islice(records, max_docs)
    with AtomicWriter(output) as out:
        for record in tqdm(records, total=max_docs, desc="sft-data", unit="doc", disable=not progress):
            document = document_from_hipe(record)
            gold = [p for p in document.pairs if p.at in AT_LABELS and p.is_at in IS_AT_LABELS]
            counts["unlabelled"] += len(document.pairs) - len(gold)
            if not gold:
                continue
            prompts = labeller.prompts(document, gold)
            first = labeller.label_document(document, gold)
            wrong = [i for i, r in enumerate(first) if (r.parsed.at, r.parsed.is_at) != (gold[i].at, gold[i].is_at)]
            second = dict(zip(wrong, labeller.label_document(document, [gold[i] for i in wrong], rationalise=True)))
            for i, (pair, prompt) in enumerate(zip(gold, prompts)):
                result = second.get(i, first[i])
                source = "rationalised" if i in second else "agree"
                if source == "rationalised" and not (result.parsed.at_reasoning or result.parsed.is_at_reasoning):
                    source = "gold_only"
                    if drop_unexplained:
                        counts["dropped"] += 1
                        continue
                response = format_response(result.parsed.at_reasoning or "", pair.at,
                                           result.parsed.is_at_reasoning or "", pair.is_at)
                meta = {"document_id": document.document_id, "pair_index": pair.pair_index, "source": source,
                        "model_id": model_id, "prompt_version": labeller.prompt_version,
                        "parse_status": result.parsed.status}
                out.write(json.dumps(sft_record(prompt, response, meta), ensure_ascii=False) + "\n")
                counts[source] += 1
    logger.info("SFT data: %s; parser: %s", dict(counts), labeller.parse_stats.summary())
    return counts
