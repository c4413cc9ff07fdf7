"""Test helpers: small hand-built HIPE-2026-like records and Docs in en, de and fr.

The Docs are built here by hand (exact string search for the mentions), independently of the
project's HIPE reader, so the component, the baseline and the scorer can be tested alone.
"""
import copy
import re
from typing import Any, Dict, List

from spacy.language import Language
from spacy.tokens import Doc, Span

import spacy_dgemma  # noqa: F401  (registers the extensions and the factory)
from spacy_dgemma.keys import PERSONS_KEY, PLACES_KEY


def make_pair(pers_id, pers_mentions, loc_id, loc_mentions, at=None, is_at=None, pers_qid=None, loc_qid=None):
    return {
        "pers_entity_id": pers_id,
        "pers_wikidata_QID": pers_qid,
        "pers_mentions_list": pers_mentions,
        "loc_entity_id": loc_id,
        "loc_wikidata_QID": loc_qid,
        "loc_mentions_list": loc_mentions,
        "at": at,
        "at_explanation": None,
        "isAt": is_at,
        "isAt_explanation": None,
    }


def make_record(doc_id: str, lang: str, date: str, text: str, pairs: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "document_id": doc_id,
        "media": {"publication_title": "Test Gazette", "time_period": "1850-1950", "source_type": "Newspaper"},
        "source": "tests/conftest.py",
        "language": lang,
        "date": date,
        "text": text,
        "sampled_pairs": pairs,
    }


EN_TEXT = (
    "LONDON, Aug. 18.\nMr. John Smith arrived in London yesterday from Paris. He was born in\n"
    "Dublin. The weather was fine all week and the harvest of the county was good, as the farmers "
    "of the region report with great pleasure in their letters to this paper. Mrs. Mary Brown "
    "wrote from Bath."
)
DE_TEXT = (
    "Berlin, 3. Mai.\nHerr Karl Müller ist gestern in Berlin eingetroffen. Er war früher in Wien. "
    "Die Ernte ist gut ausgefallen und die Bauern des ganzen Landes sind mit dem Wetter der letzten "
    "Monate sehr zufrieden, wie man überall hört. Frau Anna Weber wohnt in Zürich."
)
FR_TEXT = (
    "Paris, 12 mai.\nM. Pierre Dupont est arrivé hier à Paris. Il est né à Lyon. La récolte a été "
    "bonne cette année et les paysans de toute la région sont très contents du temps des derniers "
    "mois, comme on l'entend partout. Mme Marie Martin habite Genève."
)

HIPE_RECORDS: Dict[str, Dict[str, Any]] = {
    "en": make_record(
        "test-en-1900-08-18-a-i0001",
        "en",
        "1900-08-18",
        EN_TEXT,
        [
            make_pair("en-smith", ["Mr. John Smith"], "en-london", ["LONDON", "London"], "TRUE", "TRUE", loc_qid="Q84"),
            make_pair("en-smith", ["Mr. John Smith"], "en-paris", ["Paris"], "TRUE", "FALSE", loc_qid="Q90"),
            make_pair("en-smith", ["Mr. John Smith"], "en-dublin", ["Dublin"], "TRUE", "FALSE"),
            make_pair("en-brown", ["Mrs. Mary Brown"], "en-bath", ["Bath"], "PROBABLE", "FALSE"),
            make_pair("en-brown", ["Mrs. Mary Brown"], "en-london", ["LONDON", "London"], "FALSE", "FALSE"),
            # A mention that is not in the text: the pair must still be decided.
            make_pair("en-napoleon", ["Napoleon Bonaparte"], "en-paris", ["Paris"], "FALSE", "FALSE"),
        ],
    ),
    "de": make_record(
        "test-de-1900-05-03-a-i0001",
        "de",
        "1900-05-03",
        DE_TEXT,
        [
            make_pair("de-mueller", ["Herr Karl Müller"], "de-berlin", ["Berlin"], "TRUE", "TRUE"),
            make_pair("de-mueller", ["Herr Karl Müller"], "de-wien", ["Wien"], "TRUE", "FALSE"),
            make_pair("de-weber", ["Frau Anna Weber"], "de-zuerich", ["Zürich"], "PROBABLE", "TRUE"),
            make_pair("de-weber", ["Frau Anna Weber"], "de-berlin", ["Berlin"], "FALSE", "FALSE"),
        ],
    ),
    "fr": make_record(
        "test-fr-1900-05-12-a-i0001",
        "fr",
        "1900-05-12",
        FR_TEXT,
        [
            make_pair("fr-dupont", ["M. Pierre Dupont"], "fr-paris", ["Paris"], "TRUE", "TRUE"),
            make_pair("fr-dupont", ["M. Pierre Dupont"], "fr-lyon", ["Lyon"], "TRUE", "FALSE"),
            make_pair("fr-martin", ["Mme Marie Martin"], "fr-geneve", ["Genève"], "PROBABLE", "FALSE"),
            make_pair("fr-martin", ["Mme Marie Martin"], "fr-paris", ["Paris"], "FALSE", "FALSE"),
        ],
    ),
}

LANGS = tuple(HIPE_RECORDS)


def strip_labels(record: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of a record with null labels and explanations (what a system gets as input)."""
    record = copy.deepcopy(record)
    for pair in record["sampled_pairs"]:
        for key in ("at", "at_explanation", "isAt", "isAt_explanation"):
            pair[key] = None
    return record


def mention_spans(doc: Doc, mention: str) -> List[Span]:
    spans = []
    for match in re.finditer(re.escape(mention), doc.text):
        span = doc.char_span(match.start(), match.end(), alignment_mode="expand")
        if span is not None:
            spans.append(span)
    return spans


def build_hipe_doc(nlp: Language, record: Dict[str, Any]) -> Doc:
    """A Doc as the HIPE reader makes it: span groups with entity ids, metadata and input pairs."""
    doc = nlp.make_doc(record["text"])
    groups: Dict[str, List[Span]] = {PERSONS_KEY: [], PLACES_KEY: []}
    seen = set()
    unaligned = []
    for pair in record["sampled_pairs"]:
        for key, prefix in ((PERSONS_KEY, "pers"), (PLACES_KEY, "loc")):
            entity_id = pair[f"{prefix}_entity_id"]
            if (key, entity_id) in seen:
                continue
            seen.add((key, entity_id))
            for mention in pair[f"{prefix}_mentions_list"]:
                found = mention_spans(doc, mention)
                if not found:
                    unaligned.append({"entity_id": entity_id, "mention": mention, "kind": key})
                for span in found:
                    qid = pair[f"{prefix}_wikidata_QID"] or ""
                    groups[key].append(Span(doc, span.start, span.end, label=key, span_id=entity_id, kb_id=qid))
    for key, spans in groups.items():
        doc.spans[key] = spans
    doc._.dgemma_hipe = {k: copy.deepcopy(v) for k, v in record.items() if k not in ("text", "sampled_pairs")}
    doc._.dgemma_hipe_pairs = copy.deepcopy(record["sampled_pairs"])
    doc._.dgemma_unaligned = unaligned
    return doc
