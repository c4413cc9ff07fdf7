"""``spacy_dgemma.ProximityBaseline.v1``: a transparent rule baseline for `at` / `isAt`.

For each candidate pair it looks at the closest person and place mentions: how many tokens
apart they are, whether they share a sentence, and which cue words (arrival, stay, visit,
birth, recent time, locative prepositions in en/de/fr) occur around them; a place in the
article's dateline counts too. Fixed rules turn this evidence into soft label distributions and
a short explanation. It has no trainable parameters; its distance thresholds and tiers were
chosen by scoring variants on the train part of the project's split (``dgemma split``:
``gold-train-*``); the cue lists are hand-written.
"""
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.attrs import IS_PUNCT, IS_SPACE, ORTH
from spacy.strings import get_string_id
from spacy.tokens import Doc, Span
from spacy.util import registry
from thinc.api import Model

from spacy_dgemma.candidates.entities import normalise_surface
from spacy_dgemma.candidates.pairs import CandidatePair, nearest_mentions
from spacy_dgemma.labels import SCORE_COLUMNS
from spacy_dgemma.ml.types import DocPairs, Explanation, RelationScores

# Cue stems, matched at the start of a word of the lower-cased text around the mentions; a
# trailing space asks for the whole word. Keep them specific: short stems match too much.
PRESENCE_CUES: Dict[str, Tuple[str, ...]] = {
    "en": ("arriv", "visit", "stay", "staying", "resid", "lives", "lived", "spent", "returned", "reached",
           "landed", "attended", "spoke", "addressed", "met ", "guest", "sojourn", "went to", "came to",
           "was in", "were in", "is in", "at the", "held", "died", "elected"),
    "de": ("angekommen", "eingetroffen", "ankunft", "besuch", "weilt", "verweil", "aufenthalt", "reiste",
           "abgereist", "zurückgekehrt", "wohnhaft", "wohnt", "gestorben", "starb", "sprach", "hielt",
           "empfang", "anwesend", "eintraf", "traf"),
    "fr": ("arriv", "séjour", "visit", "rentré", "revenu", "domicilié", "demeurant", "habit", "mort ",
           "décédé", "mourut", "présid", "assist", "reçu", "parlé", "discours", "passé", "venu", "installé",
           "de passage", "se trouv"),
}
BIRTH_CUES: Dict[str, Tuple[str, ...]] = {
    "en": ("born", "native of", "natives of"),
    "de": ("geboren", "geb.", "gebürtig", "bürger von"),
    "fr": ("né à", "née à", "né le", "originaire", "natif", "bourgeois de"),
}
RECENT_CUES: Dict[str, Tuple[str, ...]] = {
    "en": ("yesterday", "to-day", "today", "to day", "last week", "this week", "last night", "this morning",
           "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "is visiting",
           "is staying", "arrived", "now ", "has been", "recently", "spent the"),
    "de": ("gestern", "heute", "vorgestern", "letzten", "letzte woche", "montag", "dienstag", "mittwoch",
           "donnerstag", "freitag", "samstag", "sonntag", "soeben", "eingetroffen", "angekommen", "weilt",
           "dieser tage", "kürzlich"),
    "fr": ("hier", "aujourd'hui", "ce matin", "ce soir", "avant-hier", "lundi", "mardi", "mercredi", "jeudi",
           "vendredi", "samedi", "dimanche", "dernier", "dernière", "récemment", "actuellement", "arrivé",
           "est arrivé"),
}
# A place right after one of these reads as a location of the person ("in Paris", "à Berne").
LOCATIVE_PREPOSITIONS: Dict[str, Tuple[str, ...]] = {
    "en": ("in", "at", "of", "from"),
    "de": ("in", "zu", "aus", "bei", "von"),
    "fr": ("à", "a", "de", "en", "au"),
}

# Label distributions per evidence tier: at (TRUE, PROBABLE, FALSE), isAt (TRUE, FALSE).
# The argmax of each is the tier's decision; the numbers are rough frequencies on train.
TIERS: Dict[str, Tuple[Tuple[float, float, float], Tuple[float, float]]] = {
    "not_found": ((0.10, 0.10, 0.80), (0.05, 0.95)),
    "strong": ((0.60, 0.15, 0.25), (0.55, 0.45)),
    "adjacent": ((0.50, 0.20, 0.30), (0.30, 0.70)),
    "near": ((0.30, 0.40, 0.30), (0.20, 0.80)),
    "far": ((0.15, 0.10, 0.75), (0.10, 0.90)),
}
# Evidence is "strong" within this many tokens given a cue or a shared sentence.
STRONG_DISTANCE = 10
# Without cue or shared sentence: "adjacent" up to this distance, then "near", then "far".
ADJACENT_DISTANCE = 0
NEAR_DISTANCE = 5
# Tokens around the two mentions that are searched for cues.
CUE_MARGIN = 6
# Punctuation the cue search keeps (the rest of the window is read as words and single spaces).
CUE_PUNCTUATION = "'’.-"
# Cues are searched when the mentions share a sentence or are at most this far apart.
CUE_DISTANCE = 10
# The dateline is in the first tokens of the article, before the first sentence end.
DATELINE_TOKENS = 12


@dataclass
class PairEvidence:
    """What the baseline read off the text for one pair."""

    found: bool
    distance: int = 10**9
    same_sentence: bool = False
    presence_cues: List[str] = field(default_factory=list)
    birth_cues: List[str] = field(default_factory=list)
    recent_cues: List[str] = field(default_factory=list)
    preposition: Optional[str] = None
    dateline: bool = False


def sentence_ids(doc: Doc) -> numpy.ndarray:
    """Sentence number of every token: from the Doc's sentences if set, else split at . ! ? ;"""
    if doc.has_annotation("SENT_START"):
        ids = numpy.zeros(len(doc), dtype="i")
        for i, sent in enumerate(doc.sents):
            ids[sent.start : sent.end] = i
        return ids
    ends = numpy.isin(doc.to_array(ORTH), _SENTENCE_END_IDS).astype("i")
    return numpy.concatenate([[0], numpy.cumsum(ends)[:-1]]).astype("i") if len(doc) else ends


# String ids (hashes) of the tokens that end a sentence when the Doc has no sentences.
_SENTENCE_END_IDS = numpy.asarray([get_string_id(text) for text in (".", "!", "?", ";")], dtype="uint64")


def _word_positions(doc: Doc) -> numpy.ndarray:
    """Number of words (tokens that are not space or punctuation) before each token, and in all."""
    flags = doc.to_array([IS_SPACE, IS_PUNCT]).reshape(len(doc), 2)
    words = (flags.sum(axis=1) == 0).astype("i")
    return numpy.concatenate([[0], numpy.cumsum(words)]).astype("i")


def _closest(
    pair: CandidatePair, positions: numpy.ndarray, sent_ids: numpy.ndarray
) -> Optional[Tuple[Span, Span, int]]:
    """The closest (person mention, place mention) and the number of words between them.

    Mentions that share a sentence win over closer ones across a sentence end; on a tie, a
    place after the person wins ("X arrived in <place>").
    """
    return nearest_mentions(pair.person_spans, pair.place_spans, positions, sentences=sent_ids, prefer_following=True)


def _cue_window(doc: Doc, person: Span, place: Span, sent_ids: numpy.ndarray) -> str:
    """The normalised text searched for cues around a pair's closest mentions.

    Mentions in one sentence: both, what lies between them and a margin, inside the sentence.
    Mentions in different sentences: the place mention and a margin, inside its sentence.
    """
    if sent_ids[person.start] == sent_ids[place.start]:
        first, last = min(person.start, place.start), max(person.end, place.end)
    else:
        first, last = place.start, place.end
    sid = sent_ids[place.start]
    start, end = max(first - CUE_MARGIN, 0), min(last + CUE_MARGIN, len(doc))
    while start < first and sent_ids[start] != sid:
        start += 1
    while end > last and sent_ids[end - 1] != sid:
        end -= 1
    return normalise_surface(doc[start:end].text, keep_accents=True, keep=CUE_PUNCTUATION)


def _find_cues(window: str, cues: Sequence[str]) -> List[str]:
    """The words of `window` (normalised text) that start with one of the cue stems."""
    found = []
    for cue in cues:
        match = _cue_pattern(cue).search(window)
        if match:
            found.append(match.group(0).rstrip(".-'’"))
    return found


@lru_cache(maxsize=None)
def _cue_pattern(cue: str) -> "re.Pattern[str]":
    """A word starting with the cue stem (the whole word when the cue ends with a space)."""
    ending = r"(?!\S)" if cue.endswith(" ") else r"\S*"
    return re.compile(r"(?<!\S)" + re.escape(cue.strip()) + ending)


def _lang(doc: Doc) -> str:
    meta = doc._.dgemma_hipe or {}
    lang = meta.get("language") or doc.lang_
    return lang if lang in PRESENCE_CUES else "en"


def pair_evidence(
    doc: Doc,
    pair: CandidatePair,
    sent_ids: Optional[numpy.ndarray] = None,
    positions: Optional[numpy.ndarray] = None,
) -> PairEvidence:
    """Read the baseline's evidence for one pair off the Doc.

    sent_ids / positions: ``sentence_ids(doc)`` and word positions, when already computed.
    """
    positions = _word_positions(doc) if positions is None else positions
    sent_ids = sentence_ids(doc) if sent_ids is None else sent_ids
    closest = _closest(pair, positions, sent_ids)
    if closest is None:
        return PairEvidence(found=False)
    lang = _lang(doc)
    person, place, gap = closest
    same_sentence = bool(sent_ids[person.start] == sent_ids[place.start])
    window = _cue_window(doc, person, place, sent_ids)
    before = doc[place.start - 1].lower_ if place.start > 0 else None
    preposition = before if before in LOCATIVE_PREPOSITIONS[lang] else None
    evidence = PairEvidence(
        found=True,
        distance=gap,
        same_sentence=same_sentence,
        preposition=preposition,
        dateline=any(q.start < DATELINE_TOKENS and sent_ids[q.start] == 0 for q in pair.place_spans),
    )
    if same_sentence or gap <= CUE_DISTANCE:
        evidence.presence_cues = _find_cues(window, PRESENCE_CUES[lang])
        evidence.birth_cues = _find_cues(window, BIRTH_CUES[lang])
        evidence.recent_cues = _find_cues(window, RECENT_CUES[lang])
    return evidence


def tier(evidence: PairEvidence) -> str:
    """The evidence tier of a pair (a key of ``TIERS``)."""
    if not evidence.found:
        return "not_found"
    cue = evidence.presence_cues or evidence.birth_cues or evidence.preposition
    if (
        evidence.dateline
        or evidence.recent_cues
        or (evidence.distance <= STRONG_DISTANCE and (cue or evidence.same_sentence))
    ):
        return "strong"
    if evidence.distance <= ADJACENT_DISTANCE:
        return "adjacent"
    if evidence.distance <= NEAR_DISTANCE:
        return "near"
    return "far"


def explain(evidence: PairEvidence) -> str:
    """A short human-readable account of the evidence."""
    if not evidence.found:
        return "mentions not found in text"
    where = "one sentence" if evidence.same_sentence else "different sentences"
    parts = [f"mentions {evidence.distance} words apart in {where}"]
    cues = evidence.presence_cues + evidence.birth_cues + evidence.recent_cues
    if evidence.preposition:
        cues.append(f"{evidence.preposition} <place>")
    if cues:
        parts.append("cue " + ", ".join(repr(c) for c in dict.fromkeys(cues)))
    if evidence.dateline:
        parts.append("place in dateline")
    return "; ".join(parts)


def decide(evidence: PairEvidence) -> Tuple[List[float], Explanation]:
    """Soft score row (``SCORE_COLUMNS`` order) and explanations from the evidence."""
    at, is_at = TIERS[tier(evidence)]
    reason = is_at_reason = explain(evidence)
    # Being born somewhere says nothing about being there lately.
    if evidence.birth_cues and not evidence.recent_cues:
        is_at = TIERS["far"][1]
        is_at_reason = f"{reason}; birth is not a recent stay"
    return list(at + is_at), (reason, is_at_reason)


def _forward(model: Model, doc_pairs: List[DocPairs], is_train: bool) -> Tuple[RelationScores, Callable]:
    rows: List[List[float]] = []
    explanations: List[Explanation] = []
    for doc, pairs in doc_pairs:
        sent_ids = sentence_ids(doc) if pairs else None
        positions = _word_positions(doc) if pairs else None
        for pair in pairs:
            row, explanation = decide(pair_evidence(doc, pair, sent_ids, positions))
            rows.append(row)
            explanations.append(explanation)
    scores = model.ops.asarray2f(numpy.asarray(rows, dtype="f").reshape((-1, len(SCORE_COLUMNS))))

    def backprop(d_scores) -> List[DocPairs]:
        return []  # Nothing to learn and nothing upstream.

    return RelationScores(scores=scores, explanations=explanations), backprop


@registry.architectures("spacy_dgemma.ProximityBaseline.v1")
def make_proximity_baseline() -> Model[List[DocPairs], RelationScores]:
    """The rule baseline: mention distance, sentence and cue words → soft `at` / `isAt` labels."""
    return Model("proximity_baseline", _forward)
