"""Features of a candidate (person, place) pair for the compact classifier.

For each pair the nearest (person mention, place mention) couple is the anchor. The features
are token windows around it (hashed lexical attributes, embedded by the network) and a small
vector of numbers: distance, order, same line / sentence, counts and positions of mentions,
datelines and title lines, cue words in English, German and French, the gap between the
publication year and years written near the mentions, dated datelines anywhere in the text
("London, 23. April.") and the one each person mention is written under, and how often the
person's mentions share a sentence with the place. Everything is computed in one pass per
Doc, so the cost grows linearly with the text.
"""
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.attrs import IS_SPACE, NORM, ORTH, PREFIX, SHAPE, SUFFIX
from spacy.tokens import Doc, Span

from spacy_dgemma.candidates.pairs import CandidatePair, nearest_mentions

# Lexical attributes hashed for every window token (one embedding table each).
TOKEN_ATTRS = (NORM, PREFIX, SUFFIX, SHAPE)
# Windows per pair, in the order the network pools them.
WINDOW_NAMES = ("person_left", "person_right", "place_left", "place_right", "between", "place", "first_line")
N_WINDOWS = len(WINDOW_NAMES)
# Stands in for an empty window, so that every window has at least one row.
PAD_ROW = numpy.full((1, len(TOKEN_ATTRS)), 0x9E3779B97F4A7C15, dtype="uint64")

# Cue words (lower-case prefixes) per category, English / German / French together: the
# network weighs them; the lists only say which words belong together.
CUES: Dict[str, Tuple[str, ...]] = {
    "arrive": (
        "arriv", "came", "come", "visit", "return", "reach", "landed", "went", "go to", "travel",
        "angekommen", "ankunft", "eingetroffen", "besuch", "reist", "kam", "zurückgekehrt",
        "arrivé", "venu", "visite", "rentr", "retour", "débarqu", "voyag", "séjour",
    ),
    "leave": (
        "left", "leave", "depart", "sailed", "abgereist", "verließ", "abreise", "verlassen",
        "parti", "quitt", "départ",
    ),
    "present": (
        "spoke", "speech", "meeting", "attended", "presided", "held", "sitzung", "versammlung",
        "sprach", "rede", "anwesend", "präsid", "réunion", "séance", "discours", "présid",
        "assist", "conférence",
    ),
    "reside": (
        "resid", "lives", "living", "home", "native", "wohn", "bürger", "einwohner", "geboren",
        "demeur", "habit", "domicil", "natif", "né ", "born",
    ),
    "death": ("died", "death", "funeral", "buried", "gestorben", "starb", "tod", "beerdig", "mort", "décéd", "obsèques", "enterr"),
    "future": (
        "will ", "expected", "shall", "going to", "wird", "werden", "soll", "erwartet",
        "sera", "doit", "devra", "attendu", "prochain",
    ),
    "recent": (
        "yesterday", "today", "to-day", "last week", "this week", "tonight", "now ", "gestern",
        "heute", "vorgestern", "diese woche", "hier", "aujourd", "ce matin", "ce soir", "avant-hier",
    ),
    "past": ("formerly", "years ago", "ago", "once", "früher", "damals", "ehemals", "jadis", "autrefois", "ancien"),
    "correspondence": ("telegram", "letter", "wrote", "writes", "correspondent", "depesche", "brief", "schreibt", "télégramme", "lettre", "écrit", "dépêche"),
    "office": ("governor", "mayor", "minister", "consul", "ambassador", "president", "general", "gouverneur", "bürgermeister", "minister", "konsul", "botschafter", "maire", "ministre", "ambassadeur", "préfet"),
}
CUE_NAMES = tuple(CUES)
# Month names (en / de / fr, lower case) -> month number.
MONTHS: Dict[str, int] = {
    name: number
    for names in (
        "january february march april may june july august september october november december",
        "januar februar märz april mai juni juli august september oktober november dezember",
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    )
    for number, name in enumerate(names.split(), 1)
}
MONTHS.update({"jan": 1, "feb": 2, "febr": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sept": 9,
               "sep": 9, "oct": 10, "okt": 10, "nov": 11, "dec": 12, "dez": 12, "déc": 12, "jänner": 1})
_YEAR_RE = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_SENT_END = {".", "!", "?", ";"}
LANGS = ("en", "de", "fr")


@dataclass
class PairFeatures:
    """What the network reads for one pair.

    windows: one uint64 array (n_tokens, len(TOKEN_ATTRS)) per window of ``WINDOW_NAMES``.
    numbers: float32 vector of ``N_NUMBERS`` numeric features.
    evidence: the text where the person and the place occur closest (for explanations).
    """

    windows: List[numpy.ndarray]
    numbers: numpy.ndarray
    evidence: Optional[str]


NUMBER_NAMES = (
    ("lang_en", "lang_de", "lang_fr", "person_aligned", "place_aligned", "log_distance",
     "distance_le_3", "distance_le_15", "same_line", "same_sentence", "person_first",
     "log_person_mentions", "log_place_mentions", "log_doc_persons", "log_doc_places",
     "person_first_pos", "place_first_pos", "anchor_pos", "log_doc_len", "place_in_dateline",
     "place_in_first_line", "place_in_title_line", "person_in_first_line", "person_at_end",
     "persons_between", "places_between", "place_nearest_to_person", "person_nearest_to_place",
     "context_has_year", "year_gap_0", "year_gap_1_5", "year_gap_gt5", "year_after_date",
     "place_uppercase", "n_places_near_person")
    + tuple(f"cue_{name}" for name in CUE_NAMES)
    # Dated datelines ("PARIS, 12 juillet", "London, 23. April.") anywhere in the text.
    + ("place_dated_dateline", "person_under_place_dateline", "person_under_other_dateline", "log_doc_datelines")
    # How the two entities co-occur: share of person mentions with the place in their sentence.
    + ("person_share_with_place", "log_shared_sentences")
)
N_NUMBERS = len(NUMBER_NAMES)
_INDEX = {name: i for i, name in enumerate(NUMBER_NAMES)}


class DocContext:
    """Per-Doc arrays shared by all pairs of the Doc (computed once)."""

    def __init__(self, doc: Doc, pairs: Sequence[CandidatePair] = ()) -> None:
        self.doc = doc
        self.n = len(doc)
        attrs = doc.to_array([ORTH, IS_SPACE] + list(TOKEN_ATTRS)) if self.n else numpy.zeros((0, 2 + len(TOKEN_ATTRS)), dtype="uint64")
        self.ids = attrs[:, 2:].astype("uint64")
        orth = attrs[:, 0]
        # Prefix sums: how many line breaks / sentence ends occur before each token. Line
        # breaks are whitespace tokens of their own (spaCy keeps a single space only).
        strings = doc.vocab.strings
        newline = numpy.zeros(self.n, dtype="int32")
        for i in numpy.nonzero(attrs[:, 1])[0]:
            newline[i] = "\n" in strings[int(orth[i])]
        sent_end = numpy.isin(orth, _sent_end_ids(strings)).astype("int32")
        self.newlines = numpy.concatenate([[0], numpy.cumsum(newline)])
        self.sent_ends = numpy.concatenate([[0], numpy.cumsum(sent_end)])
        self.sent_end_positions = numpy.nonzero(sent_end)[0]
        first_nl = numpy.nonzero(newline)[0]
        self.first_line_end = int(first_nl[0]) + 1 if len(first_nl) else self.n
        self.line_of = self.newlines[:-1] if self.n else numpy.zeros(0, dtype="int32")
        line_lengths = numpy.bincount(self.line_of, minlength=1) if self.n else numpy.zeros(1, dtype="int64")
        self.line_lengths = line_lengths
        meta = doc._.dgemma_hipe or {}
        self.lang = (meta.get("language") or doc.lang_ or "").lower()[:2]
        date = str(meta.get("date") or "")
        self.year = int(date[:4]) if date[:4].isdigit() else None
        # All mentions of the Doc: the HIPE span groups, else (raw text) those of the pairs.
        self.persons = list(doc.spans["persons"]) if "persons" in doc.spans else _unique_spans(p.person_spans for p in pairs)
        self.places = list(doc.spans["places"]) if "places" in doc.spans else _unique_spans(p.place_spans for p in pairs)
        self.person_starts = numpy.array(sorted(s.start for s in self.persons), dtype="int64")
        self.place_starts = numpy.array(sorted(s.start for s in self.places), dtype="int64")
        # Dated datelines: a place mention followed within 5 tokens by a number and a month name.
        datelines = sorted((s.start, s.id_ or s.text) for s in self.places if self._dated(s.end))
        self.dateline_starts = numpy.array([start for start, _ in datelines], dtype="int64")
        self.dateline_ids = [key for _, key in datelines]

    def _dated(self, end: int) -> bool:
        """Whether a day number and a month name follow token `end` ("Paris, 12 juillet", "Aug. 18")."""
        words = [t.lower_ for t in self.doc[end : end + 7] if t.lower_.strip()][:5]
        for i, w in enumerate(words):
            if w.rstrip(".") in MONTHS and any(x.rstrip(".").isdigit() and len(x.rstrip(".")) <= 2 for x in words[:i] + words[i + 1 : i + 2]):
                return True
        return False

    def governing_dateline(self, i: int) -> Optional[str]:
        """The id of the place of the last dated dateline before token i."""
        k = int(numpy.searchsorted(self.dateline_starts, i, "right"))
        return self.dateline_ids[k - 1] if k > 0 else None

    def count_between(self, starts: numpy.ndarray, lo: int, hi: int) -> int:
        """Number of mention starts in the token range [lo, hi)."""
        return int(numpy.searchsorted(starts, hi, "left") - numpy.searchsorted(starts, lo, "left"))

    def window(self, start: int, end: int) -> numpy.ndarray:
        start, end = max(0, start), min(self.n, end)
        return self.ids[start:end] if end > start else PAD_ROW

    def sentence_text(self, start: int, end: int, max_chars: int = 300) -> str:
        """The text of the sentence(s) spanning tokens [start, end), on one line."""
        ends = self.sent_end_positions
        i = numpy.searchsorted(ends, start, "left")
        lo = int(ends[i - 1]) + 1 if i > 0 else 0
        j = numpy.searchsorted(ends, end - 1, "left")
        hi = int(ends[j]) + 1 if j < len(ends) else self.n
        snippet = " ".join(self.doc[lo:hi].text.split())
        if len(snippet) > max_chars:
            centre = " ".join(self.doc[start:end].text.split())
            snippet = centre if len(centre) <= max_chars else centre[: max_chars - 1] + "…"
        return snippet


def _unique_spans(groups: Iterable[Sequence[Span]]) -> List[Span]:
    seen: Dict[Tuple[int, int], Span] = {}
    for spans in groups:
        for span in spans:
            seen.setdefault((span.start, span.end), span)
    return list(seen.values())


def _sent_end_ids(strings) -> numpy.ndarray:
    return numpy.array([strings.add(p) for p in _SENT_END], dtype="uint64")


def _cue_counts(text: str) -> numpy.ndarray:
    text = " " + text.lower() + " "
    return numpy.array([min(sum(text.count(c) for c in CUES[name]), 3) / 3.0 for name in CUE_NAMES], dtype="f")


def pair_features(ctx: DocContext, pair: CandidatePair, window: int = 4, max_between: int = 30) -> PairFeatures:
    """The features of one candidate pair of the Doc behind `ctx`."""
    num = numpy.zeros(N_NUMBERS, dtype="f")

    def put(name: str, value: float) -> None:
        num[_INDEX[name]] = value

    if ctx.lang in LANGS:
        put(f"lang_{ctx.lang}", 1.0)
    n = max(ctx.n, 1)
    put("log_doc_len", numpy.log1p(ctx.n) / 10.0)
    put("log_doc_persons", numpy.log1p(len({s.id_ for s in ctx.persons})) / 3.0)
    put("log_doc_places", numpy.log1p(len({s.id_ for s in ctx.places})) / 3.0)
    persons, places = pair.person_spans, pair.place_spans
    put("person_aligned", float(bool(persons)))
    put("place_aligned", float(bool(places)))
    put("log_person_mentions", numpy.log1p(len(persons)) / 2.0)
    put("log_place_mentions", numpy.log1p(len(places)) / 2.0)
    windows = [PAD_ROW] * N_WINDOWS
    evidence = None
    if persons:
        p0 = min(persons, key=lambda s: s.start)
        put("person_first_pos", p0.start / n)
        put("person_in_first_line", float(p0.start < ctx.first_line_end))
        put("person_at_end", float(max(s.end for s in persons) >= ctx.n - 15))
    if places:
        q0 = min(places, key=lambda s: s.start)
        put("place_first_pos", q0.start / n)
        put("place_in_dateline", float(q0.start < 8))
        put("place_in_first_line", float(q0.start < ctx.first_line_end))
        put("place_in_title_line", float(any(ctx.line_lengths[ctx.line_of[s.start]] <= 6 for s in places)))
        put("place_uppercase", float(any(s.text.isupper() and len(s.text) > 2 for s in places)))
        windows[WINDOW_NAMES.index("place")] = ctx.window(q0.start, q0.end)
    windows[WINDOW_NAMES.index("first_line")] = ctx.window(0, min(ctx.first_line_end, 12))
    couple = nearest_mentions(persons, places)
    if couple is not None:
        p, q, gap = couple
        lo, hi = min(p.end, q.end), max(p.start, q.start)
        put("log_distance", numpy.log1p(gap) / 7.0)
        put("distance_le_3", float(gap <= 3))
        put("distance_le_15", float(gap <= 15))
        a, b = min(lo, hi), max(lo, hi)
        put("same_line", float(ctx.newlines[b] == ctx.newlines[a]))
        put("same_sentence", float(ctx.sent_ends[b] == ctx.sent_ends[a]))
        put("person_first", float(p.start < q.start))
        put("anchor_pos", min(p.start, q.start) / n)
        put("persons_between", min(ctx.count_between(ctx.person_starts, lo, hi), 5) / 5.0)
        put("places_between", min(ctx.count_between(ctx.place_starts, lo, hi), 5) / 5.0)
        nearest_place, nearest_person = _nearest(p, ctx.places), _nearest(q, ctx.persons)
        put("place_nearest_to_person", float(nearest_place is not None and nearest_place.id_ == q.id_))
        put("person_nearest_to_place", float(nearest_person is not None and nearest_person.id_ == p.id_))
        put("n_places_near_person", min(ctx.count_between(ctx.place_starts, p.start - 15, p.end + 15), 5) / 5.0)
        windows[0] = ctx.window(p.start - window, p.start)
        windows[1] = ctx.window(p.end, p.end + window)
        windows[2] = ctx.window(q.start - window, q.start)
        windows[3] = ctx.window(q.end, q.end + window)
        if hi > lo:
            half = max_between // 2
            between = ctx.window(lo, hi) if hi - lo <= max_between else numpy.vstack([ctx.window(lo, lo + half), ctx.window(hi - half, hi)])
            windows[4] = between
        start, end = min(p.start, q.start), max(p.end, q.end)
        evidence = ctx.sentence_text(start, end) if end - start <= 80 else ctx.sentence_text(q.start, q.end)
        context = ctx.doc[max(0, start - 10) : min(ctx.n, end + 10)].text
        cues = _INDEX[f"cue_{CUE_NAMES[0]}"]
        num[cues : cues + len(CUE_NAMES)] = _cue_counts(context)
        _year_features(put, context, ctx.year)
        _shared_sentence_features(ctx, put, persons, places)
    elif places:
        q0 = min(places, key=lambda s: s.start)
        evidence = ctx.sentence_text(q0.start, q0.end)
    if places:
        _dateline_features(ctx, put, places, persons)
    return PairFeatures(windows=windows, numbers=num, evidence=evidence)


def _dateline_features(ctx: DocContext, put, places: Sequence[Span], persons: Sequence[Span]) -> None:
    """Dated datelines: is one of the place's mentions a dateline, and which dateline (the last
    one before it) each person mention is written under: this place's or another's."""
    keys = {s.id_ or s.text for s in places}
    put("place_dated_dateline", float(any(k in keys for k in ctx.dateline_ids)))
    put("log_doc_datelines", numpy.log1p(len(ctx.dateline_ids)) / 3.0)
    if persons:
        governing = [ctx.governing_dateline(s.start) for s in persons]
        put("person_under_place_dateline", sum(g in keys for g in governing) / len(governing))
        put("person_under_other_dateline", sum(g is not None and g not in keys for g in governing) / len(governing))


def _shared_sentence_features(ctx: DocContext, put, persons: Sequence[Span], places: Sequence[Span]) -> None:
    """Co-occurrence beyond the nearest couple: the share of the person's mentions that have a
    mention of the place in their sentence, and the number of such sentences."""
    place_sents = {int(ctx.sent_ends[s.start]) for s in places}
    person_sents = [int(ctx.sent_ends[s.start]) for s in persons]
    put("person_share_with_place", sum(sid in place_sents for sid in person_sents) / len(person_sents))
    put("log_shared_sentences", numpy.log1p(len(set(person_sents) & place_sents)) / 2.0)


def _nearest(span: Span, others: Sequence[Span]) -> Optional[Span]:
    """The mention of `others` nearest to `span` (the first on a tie), None when there is none."""
    couple = nearest_mentions([span], others)
    return None if couple is None else couple[1]


def _year_features(put, context: str, year: Optional[int]) -> None:
    years = [int(y) for y in _YEAR_RE.findall(context)]
    if not years:
        return
    put("context_has_year", 1.0)
    if year is None:
        return
    gap = min(abs(year - y) for y in years)
    put("year_gap_0", float(gap == 0))
    put("year_gap_1_5", float(1 <= gap <= 5))
    put("year_gap_gt5", float(gap > 5))
    put("year_after_date", float(any(y > year for y in years)))


# Numbers read off the rule baseline (``spacy_dgemma.ProximityBaseline.v1``): its evidence tier
# (one-hot), its soft decision and its cues. Appended to ``numbers`` when asked for.
BASELINE_TIERS = ("not_found", "strong", "adjacent", "near", "far")
BASELINE_NAMES = (
    tuple(f"tier_{name}" for name in BASELINE_TIERS)
    + ("rule_at_true", "rule_at_probable", "rule_at_false", "rule_is_at_true", "rule_is_at_false")
    + ("rule_presence_cue", "rule_birth_cue", "rule_recent_cue", "rule_preposition", "rule_dateline")
)
N_BASELINE = len(BASELINE_NAMES)


def baseline_numbers(doc: Doc, pairs: Sequence[CandidatePair]) -> numpy.ndarray:
    """(len(pairs), N_BASELINE) numbers from the rule baseline's evidence for each pair."""
    from spacy_dgemma.ml.baseline import _word_positions, decide, pair_evidence, sentence_ids, tier

    out = numpy.zeros((len(pairs), N_BASELINE), dtype="f")
    if not pairs:
        return out
    sent_ids, positions = sentence_ids(doc), _word_positions(doc)
    n_tiers = len(BASELINE_TIERS)
    for i, pair in enumerate(pairs):
        evidence = pair_evidence(doc, pair, sent_ids, positions)
        out[i, BASELINE_TIERS.index(tier(evidence))] = 1.0
        out[i, n_tiers : n_tiers + 5] = decide(evidence)[0]
        out[i, n_tiers + 5 :] = [
            bool(evidence.presence_cues), bool(evidence.birth_cues), bool(evidence.recent_cues),
            evidence.preposition is not None, evidence.dateline,
        ]
    return out


def featurize(
    doc_pairs: Sequence[Tuple[Doc, Sequence[CandidatePair]]],
    window: int = 4,
    max_between: int = 30,
    baseline: bool = False,
) -> List[PairFeatures]:
    """Features of every pair of every Doc, in order.

    baseline: append the rule baseline's numbers (``BASELINE_NAMES``) to each pair's numbers.
    """
    out: List[PairFeatures] = []
    for doc, pairs in doc_pairs:
        if not pairs:
            continue
        ctx = DocContext(doc, pairs)
        feats = [pair_features(ctx, pair, window, max_between) for pair in pairs]
        if baseline:
            for f, extra in zip(feats, baseline_numbers(doc, pairs)):
                f.numbers = numpy.concatenate([f.numbers, extra])
        out.extend(feats)
    return out
