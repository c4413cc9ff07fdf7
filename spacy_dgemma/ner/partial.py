"""HIPE-2026 documents as partially annotated training data for the recogniser.

The HIPE-2026 train and sandbox files hold the text of HIPE-2022 documents, many of them from
HIPE-2022 *train* files that ``../shared/hipe2022-ner`` lacks (letemps-train-fr,
hipe2020-train-fr, newseye-train-fr), with the mentions of the persons and places of their
sampled pairs. Each occurrence of such a mention becomes an entity; every other token is
*missing*, not "outside", because persons and places outside the sampled pairs are not listed.
Documents taken from a HIPE-2022 *test* file are never used: those files score the recogniser.
"""
import re
from typing import Collection, Dict, Iterable, Iterator, List, Mapping, Set

from spacy.language import Language
from spacy.pipeline import Sentencizer
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from spacy_dgemma.ner.hipe2022 import USER_DATA_KEY

MENTION_KEYS = {"pers": "pers_mentions_list", "loc": "loc_mentions_list"}


def is_test_source(source: str) -> bool:
    """Whether a HIPE-2026 record's ``source`` names a HIPE-2022 test file."""
    return "-test-" in source.rsplit("/", 1)[-1]


def _dataset(source: str) -> str:
    """'v2.1/letemps/fr/HIPE-2022-v2.1-letemps-train-fr.tsv' → 'letemps'."""
    parts = source.split("/")
    return parts[1] if len(parts) > 2 else "hipe2026"


def merge_mentions(records: Iterable[dict], skip_ids: Collection[str] = ()) -> Dict[str, dict]:
    """Document id → {"record", "pers", "loc"}: the mention strings of all its records' pairs.

    A document in several files (gold train and silver sandbox) gets the union of their mentions.
    Records from HIPE-2022 test files and those in `skip_ids` are left out.
    """
    docs: Dict[str, dict] = {}
    for record in records:
        doc_id = record["document_id"]
        if doc_id in skip_ids or is_test_source(record.get("source", "")):
            continue
        entry = docs.setdefault(doc_id, {"record": record, "pers": set(), "loc": set()})
        for pair in record.get("sampled_pairs", []):
            for label, key in MENTION_KEYS.items():
                entry[label].update(m for m in pair.get(key, []) if m and m.strip())
    return docs


def project_mentions(doc: Doc, mentions: Mapping[str, Set[str]]) -> List[Span]:
    """Spans of every token-aligned occurrence of each mention string, longest first, no overlaps.

    A string listed as both a person and a place is dropped (ambiguous).
    """
    ambiguous = mentions.get("pers", set()) & mentions.get("loc", set())
    spans: List[Span] = []
    for label, strings in mentions.items():
        for string in strings - ambiguous:
            for match in re.finditer(re.escape(string), doc.text):
                span = doc.char_span(match.start(), match.end(), label=label, alignment_mode="strict")
                if span is not None:
                    spans.append(span)
    return filter_spans(spans)


def partial_docs(nlp: Language, records: Iterable[dict], skip_ids: Collection[str] = ()) -> Iterator[Doc]:
    """One Doc per document: projected mentions as entities, all other tokens missing, sentences set."""
    sentencizer = Sentencizer()
    for doc_id, entry in merge_mentions(records, skip_ids).items():
        record = entry["record"]
        doc = sentencizer(nlp.make_doc(record["text"]))
        doc.set_ents(project_mentions(doc, {"pers": entry["pers"], "loc": entry["loc"]}), default="missing")
        source = record.get("source", "")
        doc.user_data[USER_DATA_KEY] = {
            "document_id": doc_id,
            "language": record.get("language"),
            "dataset": _dataset(source),
            "path": source,
            "partial": True,
        }
        yield doc
