"""Candidate (person, place) pairs for the relation component."""
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Optional

from spacy.tokens import Doc, Span
from spacy.util import registry

from spacy_dgemma.candidates.entities import DEFAULT_PERSON_LABELS, DEFAULT_PLACE_LABELS, Grouper, get_entities


@dataclass
class CandidatePair:
    """A (person, place) pair to decide.

    person_spans / place_spans: the aligned mentions (may be empty for HIPE mentions that
        could not be found in the text; such a pair is still decided).
    person_mentions / place_mentions: surface forms, as given by HIPE or read off the spans.
    pair_index: position in the input ``sampled_pairs`` when the pair came from there.
    """

    person_id: str
    place_id: str
    person_spans: List[Span] = field(default_factory=list)
    place_spans: List[Span] = field(default_factory=list)
    person_mentions: List[str] = field(default_factory=list)
    place_mentions: List[str] = field(default_factory=list)
    pair_index: Optional[int] = None


PairGenerator = Callable[[Doc], List[CandidatePair]]


def mention_distance(pair: CandidatePair) -> int:
    """Smallest token distance between a person and a place mention (large when unknown)."""
    best = 10**9
    for p in pair.person_spans:
        for q in pair.place_spans:
            gap = max(q.start - p.end, p.start - q.end, 0)
            best = min(best, gap)
    return best


@registry.misc("spacy_dgemma.pair_candidates.v1")
def make_pair_candidates(
    max_pairs: int = 16,
    grouper: Optional[Grouper] = None,
    person_labels: Iterable[str] = DEFAULT_PERSON_LABELS,
    place_labels: Iterable[str] = DEFAULT_PLACE_LABELS,
) -> PairGenerator:
    """Pairs of a Doc: its HIPE ``sampled_pairs`` when it has them, else person × place entities.

    max_pairs: cap on pairs built from entities (the closest pairs are kept, as HIPE samples
        pairs by textual proximity); HIPE input pairs are never dropped.
    grouper: mention grouping for raw text (default: same normalised surface).
    person_labels / place_labels: ``doc.ents`` labels read as persons / places.
    """
    if grouper is None:
        grouper = registry.misc.get("spacy_dgemma.group_by_surface.v1")()
    person_labels, place_labels = tuple(person_labels), tuple(place_labels)

    def pair_candidates(doc: Doc) -> List[CandidatePair]:
        persons, places = get_entities(doc, grouper, person_labels, place_labels)
        if doc._.dgemma_hipe_pairs is not None:
            return [
                CandidatePair(
                    person_id=p["pers_entity_id"],
                    place_id=p["loc_entity_id"],
                    person_spans=persons.get(p["pers_entity_id"], []),
                    place_spans=places.get(p["loc_entity_id"], []),
                    person_mentions=list(p.get("pers_mentions_list") or []),
                    place_mentions=list(p.get("loc_mentions_list") or []),
                    pair_index=i,
                )
                for i, p in enumerate(doc._.dgemma_hipe_pairs)
            ]
        pairs = [
            CandidatePair(
                person_id=pid,
                place_id=lid,
                person_spans=pspans,
                place_spans=lspans,
                person_mentions=list(dict.fromkeys(s.text for s in pspans)),
                place_mentions=list(dict.fromkeys(s.text for s in lspans)),
            )
            for pid, pspans in persons.items()
            for lid, lspans in places.items()
        ]
        pairs.sort(key=lambda pair: (mention_distance(pair), pair.person_spans[0].start))
        return pairs[:max_pairs]

    return pair_candidates
