"""Persons and places on a Doc, grouped into entities.

A Doc read from HIPE carries its mentions in the span groups ``persons`` and ``places``; each
span's ``id_`` is its entity id and ``kb_id_`` its Wikidata QID (or ""). For raw text the
mentions come from ``doc.ents`` of any upstream recogniser, mapped by label, and a registered
grouping function gives each mention an entity id.
"""
import functools
import re
import unicodedata
from typing import Callable, Dict, Iterable, List, Tuple

from spacy.tokens import Doc, Span
from spacy.util import registry

from spacy_dgemma.keys import PERSONS_KEY, PLACES_KEY
from spacy_dgemma.text import OCR_OPTIONS, normalise

DEFAULT_PERSON_LABELS = ("PER", "PERSON", "pers", "PERS")
DEFAULT_PLACE_LABELS = ("LOC", "GPE", "loc", "FAC")

# Entity id → the mentions (spans) of that entity, in text order.
Entities = Dict[str, List[Span]]
# A grouping function assigns an entity id to every mention of one kind ("person"/"place").
Grouper = Callable[[Doc, List[Span], str], List[str]]


def normalise_surface(text: str, *, keep_accents: bool = False, keep: str = "") -> str:
    """Lower-case form of a text: runs of characters other than letters, digits and `keep` become one space.

    The one text normaliser of mentions and cue windows ("Genève" → "geneve", "M. Jean-Pierre"
    → "m jean pierre").
    text: the text as written.
    keep_accents: keep diacritics (no NFKD folding), as the rule baseline's cue search does.
    keep: punctuation kept as written (the rule baseline keeps "'’.-").
    """
    if not keep_accents:
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_separators(keep).sub(" ", text.lower()).split())


@functools.lru_cache(maxsize=8)
def _separators(keep: str) -> "re.Pattern[str]":
    return re.compile(r"[^\w" + re.escape(keep) + r"]+")


def mention_text(span: Span) -> str:
    """A mention's text as the reader means it: a word hyphenated at a line end joined, OCR forms
    (long s, ligatures, soft hyphens) resolved ("Frank¬\\nreich" → "Frankreich"), for grouping."""
    return normalise(span.text, **OCR_OPTIONS)[0]


@registry.misc("spacy_dgemma.group_by_surface.v1")
def make_group_by_surface() -> Grouper:
    """Group mentions that have the same normalised surface form."""

    def group_by_surface(doc: Doc, spans: List[Span], kind: str) -> List[str]:
        return [f"{kind}:{normalise_surface(mention_text(span)) or span.text}" for span in spans]

    return group_by_surface


def spans_by_entity(spans: Iterable[Span]) -> Entities:
    """Group spans by their ``id_`` (entity id), keeping text order."""
    entities: Entities = {}
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        entities.setdefault(span.id_, []).append(span)
    return entities


def has_mention_groups(doc: Doc) -> bool:
    """Whether the Doc carries its persons / places as span groups (HIPE input, or a recogniser that writes them)."""
    return PERSONS_KEY in doc.spans or PLACES_KEY in doc.spans


def get_mentions(
    doc: Doc,
    person_labels: Iterable[str] = DEFAULT_PERSON_LABELS,
    place_labels: Iterable[str] = DEFAULT_PLACE_LABELS,
) -> Tuple[List[Span], List[Span]]:
    """The person and place mentions of a Doc: its span groups ``persons`` / ``places`` when it
    has them, else the ``doc.ents`` whose label is in `person_labels` / `place_labels`."""
    if has_mention_groups(doc):
        return list(doc.spans.get(PERSONS_KEY, [])), list(doc.spans.get(PLACES_KEY, []))
    person_labels, place_labels = set(person_labels), set(place_labels)
    return [ent for ent in doc.ents if ent.label_ in person_labels], [ent for ent in doc.ents if ent.label_ in place_labels]


def get_entities(
    doc: Doc,
    grouper: Grouper,
    person_labels: Iterable[str] = DEFAULT_PERSON_LABELS,
    place_labels: Iterable[str] = DEFAULT_PLACE_LABELS,
) -> Tuple[Entities, Entities]:
    """Persons and places of a Doc (`get_mentions`) as entity id → mentions.

    Mentions of the span groups keep their ``id_`` (those without one get one from `grouper`);
    mentions from ``doc.ents`` are grouped by `grouper`.
    """
    persons, places = get_mentions(doc, person_labels, place_labels)
    if has_mention_groups(doc):
        persons = _ensure_ids(doc, persons, grouper, "person")
        places = _ensure_ids(doc, places, grouper, "place")
    else:
        persons = _with_ids(doc, persons, grouper(doc, persons, "person"))
        places = _with_ids(doc, places, grouper(doc, places, "place"))
    return spans_by_entity(persons), spans_by_entity(places)


def _ensure_ids(doc: Doc, spans: List[Span], grouper: Grouper, kind: str) -> List[Span]:
    """`spans`, where those without an entity id get one from `grouper` (as copies)."""
    missing = [s for s in spans if not s.id_]
    if not missing:
        return spans
    ids = iter(grouper(doc, missing, kind))
    return [s if s.id_ else _with_ids(doc, [s], [next(ids)])[0] for s in spans]


def _with_ids(doc: Doc, spans: List[Span], ids: List[str]) -> List[Span]:
    """Copies of `spans` whose ``id_`` is the given entity id (doc.ents stay untouched)."""
    return [Span(doc, s.start, s.end, label=s.label_, span_id=i, kb_id=s.kb_id_) for s, i in zip(spans, ids)]
