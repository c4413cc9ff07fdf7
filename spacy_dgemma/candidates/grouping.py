"""Mentions → entities for raw text: "M. Poincaré", "Poincaré" and "le président Poincaré" are one person.

A mention's *core* is what names the entity: the text before a comma or parenthesis (HIPE-2022
person spans include appositions), without leading articles, titles, honorifics and
lower-case words ("le célèbre", "der junge"), and without a possessive 's. Mentions are
grouped, longest first, by
- the same core ("M. Poincaré" ~ "le président Poincaré");
- a one-word core equal to the last word of a longer person ("Poincaré" ~ "Raymond Poincaré"),
  or to that word plus a genitive s ("Nelsons" ~ "Horatio Nelson");
- initials that fit the first names of a longer person ("R. Poincaré" ~ "Raymond Poincaré");
- for places, the same core or a genitive s ("Frankreichs" ~ "Frankreich");
- an abbreviation that begins a longer one-word name ("Schw." ~ "Schweiz", "Deutschl.");
- OCR slips: one-word cores of 5+ letters one edit apart ("Schwciz" ~ "Schweiz"), two
  for 10+ letters.
When several entities fit, the one mentioned last before the mention wins (else the first in
the text). Entity ids are ``{kind}:{normalised core of the longest mention}``: deterministic.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set

from spacy.tokens import Doc, Span
from spacy.util import registry

from spacy_dgemma.candidates.entities import Grouper, mention_text, normalise_surface
from spacy_dgemma.util import edit_distance

ARTICLES = (
    "the a an le la les l un une der die das des dem den ein eine einer el lo il gli"
).split()

PERSON_TITLES = {
    "en": (
        "mr mrs miss ms messrs mister madam sir lord lady dr doctor rev reverend prof professor hon "
        "honourable general gen colonel col captain capt major lieutenant lieut admiral adm "
        "commodore sergeant president king queen prince princess duke duchess earl count countess "
        "baron baroness marquis marquess viscount bishop archbishop cardinal pope father brother "
        "sister senator judge justice emperor empress minister secretary governor mayor chancellor "
        "premier ambassador consul signor herr monsieur st saint"
    ).split(),
    "de": (
        "herr herrn frau fraulein frl dr doktor prof professor graf grafen grafin furst fursten "
        "furstin konig konigs konigin kaiser kaisers kaiserin prinz prinzen prinzessin herzog "
        "herzogs herzogin freiherr freiherrn frhr baron baronin ritter minister ministers "
        "prasident prasidenten general generals generalleutnant oberst obersten hauptmann major "
        "leutnant admiral bischof erzbischof kardinal papst pfarrer pater kanzler reichskanzler "
        "burgermeister staatsrat hofrat geheimrat kommerzienrat rat sr se majestat exzellenz "
        "gesandte gesandten konsul abgeordnete abgeordneten st sankt"
    ).split(),
    "fr": (
        "m mm monsieur messieurs mme mmes madame mlle mademoiselle sieur sr citoyen president "
        "general colonel capitaine commandant lieutenant sergent marechal amiral roi reine prince "
        "princesse duc duchesse comte comtesse baron baronne marquis marquise vicomte vicomtesse "
        "eveque archeveque cardinal pape abbe pere frere soeur docteur dr maitre me professeur "
        "ministre senateur depute prefet maire empereur imperatrice mgr monseigneur sa son "
        "majeste saintete excellence chanoine cure consul ambassadeur st saint sainte"
    ).split(),
}
PLACE_PREFIXES = (
    "city town village county canton kingdom republic ville cite departement royaume republique "
    "stadt dorf kanton konigreich republik grafschaft of de du d von"
).split()

_WORD = re.compile(r"\w[\w'’\-]*\.?")
_POSSESSIVE = re.compile(r"['’]s?$")


@dataclass
class _Entity:
    core: List[str]
    mention_starts: List[int] = field(default_factory=list)

    @property
    def id_core(self) -> str:
        return " ".join(self.core)


def _is_initial(word: str) -> bool:
    bare = word.rstrip(".")
    return len(bare) <= 2 and bare[:1].isupper() and (word.endswith(".") or len(bare) == 1)


def mention_core(text: str, strip_words: Set[str]) -> List[str]:
    """The words that name the entity, normalised; initials keep a trailing "." marker.

    text: the mention as written.
    strip_words: normalised articles/titles removed from the start of the mention.
    """
    text = re.split(r"[,(;:]", text, maxsplit=1)[0]
    words = _WORD.findall(text)
    while words and (normalise_surface(words[0]) in strip_words or words[0][:1].islower()):
        words = words[1:]
    if not words:
        words = _WORD.findall(text)
    core = []
    for word in words:
        initial = _is_initial(word) or (word.endswith(".") and word is words[-1] and len(word) > 3)
        word = _POSSESSIVE.sub("", word)
        norm = normalise_surface(word).replace(" ", "")
        if norm:
            core.append(norm + "." if initial else norm)
    return core


def _fits_initials(short: List[str], long: List[str]) -> bool:
    """ "r. poincare" fits "raymond poincare": same last word, each initial fits a first name."""
    if len(short) < 2 or short[-1] != long[-1] or len(short) > len(long):
        return False
    firsts_short, firsts_long = short[:-1], long[:-1]
    if not any(w.endswith(".") for w in firsts_short):
        return False
    # Align from the right, so "J. Smith" fits "John James Smith" through "James" too.
    for s, long_name in zip(reversed(firsts_short), reversed(firsts_long)):
        if s.endswith("."):
            if not long_name.startswith(s[:-1]):
                return False
        elif s != long_name:
            return False
    return True


def _is_abbreviation(word: str) -> bool:
    """ "schw." (a normalised core word of 3+ letters written with a final dot)."""
    return word.endswith(".") and len(word) > 3


def _abbreviates(short: List[str], long: List[str]) -> bool:
    return (
        len(short) == len(long) == 1
        and _is_abbreviation(short[0])
        and not long[0].endswith(".")
        and long[0].startswith(short[0][:-1])
        and len(long[0]) > len(short[0]) - 1
    )


def _ocr_variant(a: List[str], b: List[str]) -> bool:
    """One-word cores that differ by an OCR slip (1 edit for 5+ letters, 2 for 10+)."""
    if len(a) != 1 or len(b) != 1 or a[0].endswith(".") or b[0].endswith("."):
        return False
    shorter = min(len(a[0]), len(b[0]))
    if shorter < 5:
        return False
    limit = 2 if shorter >= 10 else 1
    return edit_distance(a[0], b[0], limit) <= limit


def _genitive_variants(word: str) -> List[str]:
    return [word[:-1]] if len(word) > 3 and word.endswith("s") else []


@registry.misc("spacy_dgemma.group_mentions.v1")
def make_group_mentions(
    person_titles: Optional[Sequence[str]] = None,
    articles: Optional[Sequence[str]] = None,
    place_prefixes: Optional[Sequence[str]] = None,
    match_last_names: bool = True,
    match_initials: bool = True,
    match_genitive: bool = True,
    match_abbreviations: bool = True,
    match_ocr_variants: bool = True,
) -> Grouper:
    """A grouping function for person and place mentions of raw text.

    person_titles: titles and honorifics stripped from the start of person mentions (default:
        English, German and French lists, written lower-case without accents or dots).
    articles: articles stripped from the start of any mention.
    place_prefixes: words stripped from the start of place mentions ("ville de", "city of").
    match_last_names: a one-word person mention joins the person whose last word it is.
    match_initials: "R. Poincaré" joins "Raymond Poincaré".
    match_genitive: "Frankreichs" joins "Frankreich", "Nelsons" joins "Nelson".
    match_abbreviations: "Schw." joins "Schweiz".
    match_ocr_variants: "Schwciz" joins "Schweiz" (one-word names, 1-2 edits apart).
    RETURNS: the grouper: (doc, mentions, kind) → one entity id per mention.
    """
    titles = set(person_titles) if person_titles is not None else {t for ts in PERSON_TITLES.values() for t in ts}
    arts = set(articles) if articles is not None else set(ARTICLES)
    prefixes = set(place_prefixes) if place_prefixes is not None else set(PLACE_PREFIXES)
    strip = {"person": titles | arts, "place": prefixes | arts}

    def group_mentions(doc: Doc, spans: List[Span], kind: str) -> List[str]:
        cores = [mention_core(mention_text(span), strip.get(kind, arts)) for span in spans]
        order = sorted(
            range(len(spans)),
            key=lambda i: (
                -sum(not w.endswith(".") for w in cores[i]),
                -len(cores[i]),
                spans[i].start,
            ),
        )
        entities: List[_Entity] = []
        assigned: Dict[int, _Entity] = {}
        for i in order:
            entity = _find(entities, cores[i], spans[i].start, kind)
            if entity is None:
                entity = _Entity(core=cores[i])
                entities.append(entity)
            entity.mention_starts.append(spans[i].start)
            assigned[i] = entity
        return [f"{kind}:{assigned[i].id_core or normalise_surface(mention_text(spans[i]))}" for i in range(len(spans))]

    def _find(entities: List[_Entity], core: List[str], start: int, kind: str) -> Optional[_Entity]:
        if not core:
            return None
        candidates = [e for e in entities if e.core == core]
        if not candidates and match_genitive and len(core) == 1:
            variants = _genitive_variants(core[0])
            candidates = [e for e in entities if e.core in ([v] for v in variants)]
        if not candidates and match_abbreviations:
            candidates = [e for e in entities if _abbreviates(core, e.core)]
        if not candidates and match_ocr_variants:
            candidates = [e for e in entities if _ocr_variant(core, e.core)]
        if not candidates and kind == "person" and match_initials:
            candidates = [e for e in entities if _fits_initials(core, e.core)]
        if not candidates and kind == "person" and match_last_names and len(core) == 1:
            names = [core[0]] + (_genitive_variants(core[0]) if match_genitive else [])
            candidates = [e for e in entities if len(e.core) > 1 and e.core[-1] in names]
            if not candidates and match_genitive:
                candidates = [
                    e for e in entities if len(e.core) > 1 and core[0] in _genitive_variants(e.core[-1])
                ]
        if not candidates:
            return None
        return _nearest_before(candidates, start)

    return group_mentions


def _nearest_before(candidates: Iterable[_Entity], start: int) -> _Entity:
    """The entity mentioned last before `start`; else the one mentioned first."""
    candidates = list(candidates)
    before = [
        (max(s for s in e.mention_starts if s < start), -n)
        for n, e in enumerate(candidates)
        if any(s < start for s in e.mention_starts)
    ]
    if before:
        return candidates[-max(before)[1]]
    return min(candidates, key=lambda e: min(e.mention_starts))
