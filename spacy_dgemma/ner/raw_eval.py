"""What raw text costs: relations scored with predicted entities against the gold HIPE pairs.

For each gold document the pipeline reads only the text (no given mentions): its recogniser
finds persons and places, the grouping function makes entities, the relation component decides
the pairs it builds. A predicted entity stands for a gold entity when one of its mentions
overlaps one of the gold entity's aligned mentions (by character). Each gold pair takes the
labels of the first predicted relation (closest pairs first) between entities standing for its
person and its place; a gold pair with no such relation gets null labels, which the official
metric reads as FALSE.
"""
import copy
from typing import Any, Dict, Iterable, List, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from spacy_dgemma.keys import PERSONS_KEY, PLACES_KEY


def _gold_ids(spans: List[Span], gold: Iterable[Span]) -> Set[str]:
    ids = set()
    for span in spans:
        for g in gold:
            if span.start_char < g.end_char and g.start_char < span.end_char:
                ids.add(g.id_)
    return ids


def raw_text_record(nlp: Language, gold_doc: Doc) -> Tuple[Dict[str, Any], Dict[str, int]]:
    """A prediction record for one gold HIPE Doc, from the pipeline run on its raw text.

    nlp: the pipeline (recogniser + ``dgemma_relations``).
    gold_doc: a Doc read from HIPE (span groups ``persons``/``places``, ``doc._.dgemma_hipe_pairs``).
    RETURNS: (record with ``document_id`` and ``sampled_pairs``, counts: gold pairs, pairs found).
    """
    raw = nlp(gold_doc.text)
    gold_persons = list(gold_doc.spans.get(PERSONS_KEY, []))
    gold_places = list(gold_doc.spans.get(PLACES_KEY, []))
    labels: Dict[Tuple[str, str], Tuple[Any, Any]] = {}
    for rel in raw._.dgemma_relations:  # in the component's order: closest pairs first
        for p in _gold_ids(rel.person_spans, gold_persons):
            for q in _gold_ids(rel.place_spans, gold_places):
                labels.setdefault((p, q), (rel.at, rel.is_at))
    pairs = copy.deepcopy(gold_doc._.dgemma_hipe_pairs or [])
    found = 0
    for pair in pairs:
        at, is_at = labels.get((pair["pers_entity_id"], pair["loc_entity_id"]), (None, None))
        found += at is not None
        pair["at"], pair["isAt"] = at, is_at
    record = {"document_id": gold_doc._.dgemma_hipe["document_id"], "sampled_pairs": pairs}
    return record, {"pairs": len(pairs), "found": found}


def gold_entity_record(nlp: Language, gold_doc: Doc) -> Dict[str, Any]:
    """A prediction record for one gold HIPE Doc, with its given mentions (the usual setting)."""
    from spacy_dgemma.hipe.corpus import make_predicted
    from spacy_dgemma.pipeline.records import relations_to_hipe_pairs

    doc = nlp(make_predicted(gold_doc))
    return {"document_id": doc._.dgemma_hipe["document_id"], "sampled_pairs": relations_to_hipe_pairs(doc)}
