"""Relation records on the Doc: ``doc._.dgemma_relations`` (objects), ``doc._.dgemma_relations_data``
(plain dicts), the ``dgemma_relations`` span group, and their conversion to HIPE pairs."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from spacy.tokens import Doc, Span, SpanGroup

from spacy_dgemma.errors import Errors
from spacy_dgemma.keys import RELATIONS_KEY, RELATIONS_USER_DATA_KEY


@dataclass
class Relation:
    """One (person, place) decision with its evidence.

    person_id / place_id: entity ids (HIPE entity id, KB id or normalised surface).
    person_spans / place_spans: the mentions found in the text (may be empty when a HIPE
        mention could not be aligned).
    at: TRUE / PROBABLE / FALSE (None when undecided); is_at: TRUE / FALSE (or None).
    at_scores / is_at_scores: label → score.
    pair_index: index of the pair in the input ``sampled_pairs``, if it came from there.
    """

    person_id: str
    place_id: str
    person_spans: List[Span] = field(default_factory=list)
    place_spans: List[Span] = field(default_factory=list)
    at: Optional[str] = None
    is_at: Optional[str] = None
    at_explanation: Optional[str] = None
    is_at_explanation: Optional[str] = None
    at_scores: Dict[str, float] = field(default_factory=dict)
    is_at_scores: Dict[str, float] = field(default_factory=dict)
    pair_index: Optional[int] = None
    person_mentions: List[str] = field(default_factory=list)
    place_mentions: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """Plain, JSON-ready data (spans as ``[start_char, end_char]`` lists): ``json.dumps`` takes it."""
        return {
            "person_id": self.person_id,
            "place_id": self.place_id,
            "person_spans": [[s.start_char, s.end_char] for s in self.person_spans],
            "place_spans": [[s.start_char, s.end_char] for s in self.place_spans],
            "at": self.at,
            "is_at": self.is_at,
            "at_explanation": self.at_explanation,
            "is_at_explanation": self.is_at_explanation,
            "at_scores": dict(self.at_scores),
            "is_at_scores": dict(self.is_at_scores),
            "pair_index": self.pair_index,
            "person_mentions": list(self.person_mentions),
            "place_mentions": list(self.place_mentions),
        }

    @classmethod
    def from_dict(cls, doc: Doc, data: Dict[str, Any]) -> "Relation":
        """Rebuild a record on `doc` from `to_dict` output."""

        def spans(offsets) -> List[Span]:
            found = (doc.char_span(start, end) for start, end in offsets)
            return [span for span in found if span is not None]

        return cls(
            person_id=data["person_id"],
            place_id=data["place_id"],
            person_spans=spans(data.get("person_spans", [])),
            place_spans=spans(data.get("place_spans", [])),
            at=data.get("at"),
            is_at=data.get("is_at"),
            at_explanation=data.get("at_explanation"),
            is_at_explanation=data.get("is_at_explanation"),
            at_scores=dict(data.get("at_scores", {})),
            is_at_scores=dict(data.get("is_at_scores", {})),
            pair_index=data.get("pair_index"),
            person_mentions=list(data.get("person_mentions", [])),
            place_mentions=list(data.get("place_mentions", [])),
        )


def get_relations(doc: Doc) -> List[Relation]:
    """Getter of ``doc._.dgemma_relations``."""
    return [Relation.from_dict(doc, d) for d in doc.user_data.get(RELATIONS_USER_DATA_KEY, [])]


def set_relations(doc: Doc, relations: List[Relation]) -> None:
    """Setter of ``doc._.dgemma_relations``: stores plain records and refreshes the span group."""
    doc.user_data[RELATIONS_USER_DATA_KEY] = [r.to_dict() for r in relations]
    doc.spans[RELATIONS_KEY] = relation_span_group(doc, relations)


def get_relations_data(doc: Doc) -> List[Dict[str, Any]]:
    """Getter of ``doc._.dgemma_relations_data``: the relations as plain dicts (`Relation.to_dict`).

    JSON-ready, so ``doc.to_json(underscore=["dgemma_relations_data"])`` carries them.
    """
    return [rel.to_dict() for rel in get_relations(doc)]


def set_relations_data(doc: Doc, data: List[Dict[str, Any]]) -> None:
    """Setter of ``doc._.dgemma_relations_data`` (``Doc.from_json`` calls it): plain dicts → relations.

    RAISES: ValueError E065 when `data` is not a list of dicts.
    """
    if not isinstance(data, (list, tuple)) or not all(isinstance(d, dict) for d in data):
        raise ValueError(Errors.E065.format(type=type(data).__name__))
    set_relations(doc, [Relation.from_dict(doc, d) for d in data])


def relation_span_group(doc: Doc, relations: List[Relation]) -> SpanGroup:
    """The span group ``doc.spans["dgemma_relations"]``, for display and for span-based tools.

    For each relation that is not FALSE / FALSE: the first person mention, then the first place
    mention (when aligned), labelled ``at=… isAt=…``. As SpanCategorizer does, the group's
    ``attrs["scores"]`` holds one score per span: the score of its relation's two labels (the
    product of the `at` and `isAt` scores). ``attrs["pairs"]`` links them: one
    ``[person span index, place span index, relation index]`` per shown relation (None for a
    mention that could not be aligned), the relation index pointing into ``doc._.dgemma_relations``.
    """
    spans: List[Span] = []
    scores: List[float] = []
    pairs: List[List[Optional[int]]] = []
    for i, rel in enumerate(relations):
        if rel.at in (None, "FALSE") and rel.is_at in (None, "FALSE"):
            continue
        label = f"at={rel.at} isAt={rel.is_at}"
        score = float(rel.at_scores.get(rel.at, 0.0)) * float(rel.is_at_scores.get(rel.is_at, 0.0))
        link: List[Optional[int]] = []
        for mentions in (rel.person_spans, rel.place_spans):
            if not mentions:
                link.append(None)
                continue
            link.append(len(spans))
            spans.append(Span(doc, mentions[0].start, mentions[0].end, label=label))
            scores.append(score)
        pairs.append(link + [i])
    return SpanGroup(doc, name=RELATIONS_KEY, attrs={"scores": scores, "pairs": pairs}, spans=spans)


def relation_to_hipe_pair(rel: Relation) -> Dict[str, Any]:
    """A HIPE ``sampled_pairs`` item for a relation predicted on raw text (no input pair)."""
    return {
        "pers_entity_id": rel.person_id,
        "pers_wikidata_QID": None,
        "pers_mentions_list": _unique([s.text for s in rel.person_spans] or rel.person_mentions),
        "loc_entity_id": rel.place_id,
        "loc_wikidata_QID": None,
        "loc_mentions_list": _unique([s.text for s in rel.place_spans] or rel.place_mentions),
        "at": rel.at,
        "at_explanation": rel.at_explanation,
        "isAt": rel.is_at,
        "isAt_explanation": rel.is_at_explanation,
    }


def relations_to_hipe_pairs(doc: Doc) -> List[Dict[str, Any]]:
    """The Doc's pairs in HIPE form, with the predicted labels filled in.

    For a Doc read from HIPE, every input pair is returned in input order with all its fields
    as they were; only ``at``, ``isAt`` and the two explanations are replaced by the
    prediction (a pair the component did not decide keeps null labels). For other Docs, one
    pair per relation. Tuples that msgpack made of JSON arrays (after ``DocBin``, ``to_bytes``
    or ``n_process > 1``) are given back as lists.
    """
    input_pairs = doc._.dgemma_hipe_pairs
    relations = doc._.dgemma_relations
    if input_pairs is None:
        return [relation_to_hipe_pair(rel) for rel in relations]
    by_index = {rel.pair_index: rel for rel in relations if rel.pair_index is not None}
    output = []
    for i, pair in enumerate(input_pairs):
        pair = {key: list(value) if isinstance(value, tuple) else value for key, value in pair.items()}
        rel = by_index.get(i)
        pair["at"] = rel.at if rel else None
        pair["at_explanation"] = rel.at_explanation if rel else None
        pair["isAt"] = rel.is_at if rel else None
        pair["isAt_explanation"] = rel.is_at_explanation if rel else None
        output.append(pair)
    return output


def _unique(items: List[str]) -> List[str]:
    return list(dict.fromkeys(items))
