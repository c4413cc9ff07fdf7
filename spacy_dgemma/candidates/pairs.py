"""Candidate (person, place) pairs for the relation component."""
import bisect
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span
from spacy.util import registry

from spacy_dgemma.candidates.entities import (
    DEFAULT_PERSON_LABELS,
    DEFAULT_PLACE_LABELS,
    Grouper,
    get_entities,
    get_mentions,
    has_mention_groups,
)
from spacy_dgemma.errors import Errors, Warnings
from spacy_dgemma.keys import PERSONS_KEY, PLACES_KEY
from spacy_dgemma.labels import check_setting


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
# The distance of a pair whose person or place has no mention in the text.
UNKNOWN_DISTANCE = 10**9


def mention_gap(a: Span, b: Span, positions: Optional[Sequence[int]] = None) -> int:
    """Tokens between two mentions, 0 when they touch or overlap.

    positions: the number of words before each token (and in all, at ``len(doc)``): the gap
        is then counted in words.
    """
    if positions is None:
        return max(b.start - a.end, a.start - b.end, 0)
    return int(max(positions[b.start] - positions[a.end], positions[a.start] - positions[b.end], 0))


def nearest_mentions(
    firsts: Sequence[Span],
    seconds: Sequence[Span],
    positions: Optional[Sequence[int]] = None,
    sentences: Optional[Sequence[int]] = None,
    prefer_following: bool = False,
) -> Optional[Tuple[Span, Span, int]]:
    """The closest couple (one of `firsts`, one of `seconds`) and the gap between them.

    The one implementation of the nearest-mention gap: candidate pairs, the rule baseline and
    the pair features all use it. The result is the couple with the smallest key (sentence
    mismatch, gap, second-before-first), the first in (firsts, seconds) order on a tie, as if
    every couple were compared; only the couples that can be the closest are (each first's
    nearest seconds on either side and those overlapping it), so a text that names the same
    two entities thousands of times is not quadratic.
    positions: count the gap in words (see `mention_gap`).
    sentences: the sentence id of each token; a couple whose mentions start in one sentence
        wins over closer couples across a sentence end.
    prefer_following: on a tie of the gap, a second that starts after the first wins.
    RETURNS: (first, second, gap), or None when either side has no mention.
    """
    if not firsts or not seconds:
        return None
    # Few couples: comparing them all is cheaper than building the indexes.
    small = len(firsts) * len(seconds) <= ALL_COUPLES_UP_TO
    pos = (lambda i: i) if positions is None else (lambda i: int(positions[i]))
    if sentences is not None:  # first the couples within one sentence; only if there are none, all couples
        groups: Dict[int, List[int]] = {}
        for j, b in enumerate(seconds):
            groups.setdefault(int(sentences[b.start]), []).append(j)
        if small:
            def in_sentence(a: Span) -> Sequence[int]:
                return groups.get(int(sentences[a.start]), [])
        else:
            indexes = {key: _SecondsIndex(seconds, members, pos) for key, members in groups.items()}

            def in_sentence(a: Span) -> Sequence[int]:
                index = indexes.get(int(sentences[a.start]))
                return index.near(a) if index is not None else []
        found = _closest(firsts, seconds, in_sentence, positions, prefer_following)
        if found is not None:
            return found
    if small:
        every = range(len(seconds))
        return _closest(firsts, seconds, lambda a: every, positions, prefer_following)
    return _closest(firsts, seconds, _SecondsIndex(seconds, list(range(len(seconds))), pos).near, positions, prefer_following)


# Up to this many (first, second) couples, nearest_mentions compares them all.
ALL_COUPLES_UP_TO = 64


def _closest(
    firsts: Sequence[Span],
    seconds: Sequence[Span],
    candidates: Callable[[Span], Sequence[int]],
    positions: Optional[Sequence[int]],
    prefer_following: bool,
) -> Optional[Tuple[Span, Span, int]]:
    """The couple with the smallest key (gap, second-before-first, i, j) among each first and
    its `candidates` (indices into `seconds`); None when there are none."""
    best, best_key = None, None
    for i, a in enumerate(firsts):
        for j in candidates(a):
            b = seconds[j]
            gap = mention_gap(a, b, positions)
            key = (gap, prefer_following and b.start < a.start, i, j)
            if best_key is None or key < best_key:
                best, best_key = (a, b, gap), key
    return best


class _SecondsIndex:
    """Some mentions sorted by start and by end, to find those nearest to a given span."""

    def __init__(self, spans: Sequence[Span], members: List[int], pos: Callable[[int], int]) -> None:
        self.spans = spans
        self.pos = pos
        self.by_start = sorted(members, key=lambda j: (pos(spans[j].start), j))
        self.starts = [pos(spans[j].start) for j in self.by_start]
        self.by_end = sorted(members, key=lambda j: (pos(spans[j].end), j))
        self.ends = [pos(spans[j].end) for j in self.by_end]
        self.longest = max((pos(spans[j].end) - pos(spans[j].start) for j in members), default=0)

    def near(self, a: Span) -> List[int]:
        """The members that can be nearest to `a`: the closest on each side (all of them on a
        tie) and those that overlap it."""
        a_start, a_end = self.pos(a.start), self.pos(a.end)
        found = []
        k = bisect.bisect_right(self.ends, a_start)  # members ending at or before a starts
        if k:
            found += self.by_end[bisect.bisect_left(self.ends, self.ends[k - 1]) : k]
        k = bisect.bisect_left(self.starts, a_end)  # members starting at or after a ends
        if k < len(self.starts):
            found += self.by_start[k : bisect.bisect_right(self.starts, self.starts[k])]
        # Overlapping (gap 0): starts before a ends and ends after a starts, so it starts after
        # a_start - longest.
        lo = bisect.bisect_right(self.starts, a_start - self.longest)
        hi = bisect.bisect_left(self.starts, a_end)
        found += [j for j in self.by_start[lo:hi] if self.pos(self.spans[j].end) > a_start]
        return found


def mention_distance(pair: CandidatePair) -> int:
    """Smallest token distance between a person and a place mention (UNKNOWN_DISTANCE when unknown)."""
    couple = nearest_mentions(pair.person_spans, pair.place_spans)
    return UNKNOWN_DISTANCE if couple is None else couple[2]


@registry.misc("spacy_dgemma.pair_candidates.v1")
def make_pair_candidates(
    max_pairs: int = 16,
    grouper: Optional[Grouper] = None,
    person_labels: Iterable[str] = DEFAULT_PERSON_LABELS,
    place_labels: Iterable[str] = DEFAULT_PLACE_LABELS,
) -> PairGenerator:
    """Pairs of a Doc: its HIPE ``sampled_pairs`` when it has them, else person × place entities.

    max_pairs: cap on pairs built from entities (the closest pairs are kept, as HIPE samples
        pairs by textual proximity; W012 says how many were dropped); HIPE input pairs are never dropped.
    grouper: mention grouping for raw text (default: same normalised surface).
    person_labels / place_labels: ``doc.ents`` labels read as persons / places.
    RAISES: ValueError E060 for a `max_pairs` below 1, E062 for empty or overlapping label sets.
    """
    check_setting("max_pairs", max_pairs, isinstance(max_pairs, int) and not isinstance(max_pairs, bool) and max_pairs >= 1, "an integer >= 1")
    person_labels, place_labels = tuple(person_labels), tuple(place_labels)
    if not person_labels or not place_labels or set(person_labels) & set(place_labels):
        raise ValueError(Errors.E062.format(person_labels=list(person_labels), place_labels=list(place_labels)))
    if grouper is None:
        grouper = registry.misc.get("spacy_dgemma.group_by_surface.v1")()

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
        if not persons or not places:
            reason = no_pairs_reason(doc, person_labels, place_labels)
            if reason:
                warnings.warn(reason)
            return []
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
        if len(pairs) > max_pairs:
            warnings.warn(Warnings.W012.format(max_pairs=max_pairs, n_pairs=len(pairs), n_dropped=len(pairs) - max_pairs))
        return pairs[:max_pairs]

    return pair_candidates


def no_pairs_reason(
    doc: Doc,
    person_labels: Sequence[str] = DEFAULT_PERSON_LABELS,
    place_labels: Sequence[str] = DEFAULT_PLACE_LABELS,
) -> Optional[str]:
    """Why a raw-text Doc gives no candidate pairs: the W011 (unmapped labels) or W010 message.

    RETURNS: None when the Doc has persons and places, or no tokens.
    """
    persons, places = get_mentions(doc, person_labels, place_labels)
    if (persons and places) or not len(doc):
        return None
    missing = "persons or places" if not (persons or places) else ("persons" if not persons else "places")
    if has_mention_groups(doc):
        why = f"Its `{PERSONS_KEY}` / `{PLACES_KEY}` span groups hold {len(persons)} persons and {len(places)} places."
        return Warnings.W010.format(missing=missing, why=why)
    unmapped = sorted({ent.label_ for ent in doc.ents} - set(person_labels) - set(place_labels))
    if unmapped:
        return Warnings.W011.format(labels=", ".join(unmapped), person_labels=list(person_labels), place_labels=list(place_labels))
    if doc.has_annotation("ENT_IOB"):
        why = "A recogniser has run (doc.ents is set) but found none in this text."
    else:
        why = (
            "No recogniser has run (doc.ents is unset) and the Doc has no `persons` / `places` span groups: use a "
            "pipeline with a recogniser (the `_text` package, or `--ner` on the dgemma commands), add one "
            "before dgemma_relations, or read HIPE-2026 JSONL with spacy_dgemma.hipe.read_docs."
        )
    return Warnings.W010.format(missing=missing, why=why)
