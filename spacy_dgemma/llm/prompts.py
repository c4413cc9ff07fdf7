"""Relation prompts: a document part shared by all pairs of an article, then a short pair part.

The templates are versioned package data (``templates/relations.v1.*.jinja``; a new version is
a new file, never an edit in place). A template is found by its version name inside the
package's template folder, or inside a folder the caller declares (``template_dir``): a name is
letters, digits, ``_``, ``-`` and dots, never a path, so a pipeline config cannot point outside
the folder. Templates render in Jinja's immutable sandbox with no globals: a template that
reaches for attributes such as ``__class__`` or ``__globals__``, or for ``__import__``, fails
with a coded error instead of running code.

The document part (instructions, definitions, article, output contract) comes first and is
identical for every pair of a document, so its key/value cache can be computed once and reused
(see ``generate.py``); the pair part (person, place, their mentions) comes last. Articles longer
than the token budget are cut to windows around the mentions of *all* pairs of the document, so
the shared part stays shared.
"""
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy_dgemma.candidates.pairs import CandidatePair
from spacy_dgemma.errors import Errors
from spacy_dgemma.util import stable_key

TEMPLATE_DIR = Path(__file__).parent.parent / "templates"
PROMPT_VERSION = "relations.v1"
TEMPLATE_PARTS = ("document", "pair", "rationalise")
ELLIPSIS = "[...]"
CountTokens = Callable[[str], int]
TemplateDir = Optional[Union[str, Path]]
# A version name: dot-separated words of letters, digits, "_" and "-" (no path separators, no "..").
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9][A-Za-z0-9_-]*)*")


@dataclass
class PromptPair:
    """One (person, place) pair as the prompt shows it.

    person_id / place_id: entity ids. person_mentions / place_mentions: surface forms.
    person_spans / place_spans: character offsets of the mentions in the article (for windowing).
    pair_index: index in the HIPE ``sampled_pairs``. at / is_at: gold labels, when known.
    """

    person_id: str
    place_id: str
    person_mentions: List[str]
    place_mentions: List[str]
    person_spans: List[Tuple[int, int]] = field(default_factory=list)
    place_spans: List[Tuple[int, int]] = field(default_factory=list)
    pair_index: Optional[int] = None
    at: Optional[str] = None
    is_at: Optional[str] = None


@dataclass
class PromptDocument:
    """An article and its pairs, with the metadata the prompt shows."""

    document_id: str
    text: str
    language: str = "unknown"
    date: str = "unknown"
    title: str = "unknown"
    pairs: List[PromptPair] = field(default_factory=list)


@dataclass
class Prompt:
    """A user message split into its shared document part and its pair part.

    content: the full user message. pair_offset: character offset where the pair part starts.
    """

    content: str
    pair_offset: int

    @property
    def document_part(self) -> str:
        return self.content[: self.pair_offset]

    @property
    def pair_part(self) -> str:
        return self.content[self.pair_offset :]


def template_path(version: str, part: str, template_dir: TemplateDir = None) -> Path:
    """The file of template `part` of `version`, checked to lie inside the template folder.

    version: a version name such as "relations.v1" (not a path).
    part: "document", "pair" or "rationalise".
    template_dir: a declared folder of templates; default: the package's ``templates/``.
    RETURNS (Path): the template file.
    """
    if not isinstance(version, str) or not _VERSION.fullmatch(version) or part not in TEMPLATE_PARTS:
        raise ValueError(Errors.E150.format(version=version, part=part, parts=TEMPLATE_PARTS))
    folder = Path(template_dir) if template_dir is not None else TEMPLATE_DIR
    path = folder / f"{version}.{part}.jinja"
    root = folder.resolve()
    resolved = path.resolve()
    # A link inside the folder that leads out of it is refused like a path would be.
    if not resolved.is_relative_to(root) or not resolved.is_file():
        available = sorted(p.name for p in folder.glob("*.jinja")) if folder.is_dir() else []
        raise ValueError(Errors.E151.format(name=path.name, folder=folder, available=available))
    return resolved


@functools.lru_cache(maxsize=None)
def _compile(source: str, name: str):
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.globals.clear()  # no range/dict/cycler/joiner/namespace/lipsum: templates fill in values only
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as err:
        raise ValueError(Errors.E153.format(name=name, line=err.lineno, detail=err.message)) from err


def load_template(version: str, part: str, template_dir: TemplateDir = None):
    """The compiled, sandboxed Jinja template `part` of `version` (see ``template_path``)."""
    path = template_path(version, part, template_dir)
    return _compile(path.read_text(encoding="utf8"), path.name)


def render_template(version: str, part: str, template_dir: TemplateDir = None, **values: Any) -> str:
    """Render template `part` of `version` with `values` in the sandbox; failures are coded errors."""
    import jinja2

    template = load_template(version, part, template_dir)
    try:
        return template.render(**values)
    except jinja2.TemplateError as err:  # SecurityError, UndefinedError, ... : never run what a template asks
        raise ValueError(Errors.E152.format(name=f"{version}.{part}.jinja", detail=f"{type(err).__name__}: {err}")) from err


def template_digest(version: str = PROMPT_VERSION, template_dir: TemplateDir = None) -> str:
    """A hash of the content of every part of `version` (for caches keyed on what the prompt says)."""
    sources = []
    for part in TEMPLATE_PARTS:
        try:
            sources.append(f"{part}\n{template_path(version, part, template_dir).read_text(encoding='utf8')}")
        except ValueError:
            sources.append(f"{part}\n")  # a version may lack a part (e.g. no rationalisation)
    return stable_key("\n".join(sources))


def find_mention_spans(text, mention: str) -> List[Tuple[int, int]]:
    """Character offsets of every occurrence of `mention` in `text` (a string or a ``TextIndex``),
    found as the HIPE reader finds them (OCR-tolerant, see ``hipe/align.py``)."""
    from spacy_dgemma.hipe.align import align_mention

    return [(a.start, a.end) for a in align_mention(text, mention)]


def document_from_hipe(record: Dict[str, Any]) -> PromptDocument:
    """A prompt document from a HIPE JSONL record (mentions located by string search)."""
    from spacy_dgemma.hipe.align import TextIndex

    text = record.get("text") or ""
    index = TextIndex(text)
    pairs = []
    for i, pair in enumerate(record.get("sampled_pairs") or []):
        pers = [m for m in pair.get("pers_mentions_list") or [] if m]
        locs = [m for m in pair.get("loc_mentions_list") or [] if m]
        pairs.append(
            PromptPair(
                person_id=pair.get("pers_entity_id") or "",
                place_id=pair.get("loc_entity_id") or "",
                person_mentions=pers,
                place_mentions=locs,
                person_spans=sorted({s for m in pers for s in find_mention_spans(index, m)}),
                place_spans=sorted({s for m in locs for s in find_mention_spans(index, m)}),
                pair_index=i,
                at=pair.get("at"),
                is_at=pair.get("isAt"),
            )
        )
    media = record.get("media") or {}
    return PromptDocument(
        document_id=str(record.get("document_id") or ""),
        text=text,
        language=record.get("language") or "unknown",
        date=record.get("date") or "unknown",
        title=media.get("publication_title") or "unknown",
        pairs=pairs,
    )


def document_from_doc(doc, pairs: Sequence[CandidatePair]) -> PromptDocument:
    """A prompt document from a spaCy Doc and its candidate pairs (spans give the offsets)."""
    meta = doc._.dgemma_hipe or {}
    media = meta.get("media") or {}
    prompt_pairs = []
    for pair in pairs:
        pers = list(pair.person_mentions) or list(dict.fromkeys(s.text for s in pair.person_spans))
        locs = list(pair.place_mentions) or list(dict.fromkeys(s.text for s in pair.place_spans))
        pers_spans = [(s.start_char, s.end_char) for s in pair.person_spans]
        loc_spans = [(s.start_char, s.end_char) for s in pair.place_spans]
        pers_spans = pers_spans or sorted({s for m in pers for s in find_mention_spans(doc.text, m)})
        loc_spans = loc_spans or sorted({s for m in locs for s in find_mention_spans(doc.text, m)})
        prompt_pairs.append(
            PromptPair(pair.person_id, pair.place_id, pers, locs, pers_spans, loc_spans, pair_index=pair.pair_index)
        )
    return PromptDocument(
        document_id=str(meta.get("document_id") or ""),
        text=doc.text,
        language=meta.get("language") or doc.lang_ or "unknown",
        date=meta.get("date") or "unknown",
        title=media.get("publication_title") or "unknown",
        pairs=prompt_pairs,
    )


def approximate_token_count(text: str) -> int:
    """A tokenizer-free estimate (about 3 characters per token for OCR text)."""
    return (len(text) + 2) // 3


def _snap(text: str, start: int, end: int, keep: Tuple[int, int]) -> Tuple[int, int]:
    """Move a window's edges to word boundaries without cutting into the kept span."""
    if start > 0:
        space = text.find(" ", start, keep[0])
        newline = text.find("\n", start, keep[0])
        cuts = [c for c in (space, newline) if c != -1]
        start = min(cuts) + 1 if cuts else keep[0]
    if end < len(text):
        cut = max(text.rfind(" ", keep[1], end), text.rfind("\n", keep[1], end))
        end = cut if cut != -1 else keep[1]
    return start, end


def _render_windows(text: str, spans: Sequence[Tuple[int, int]], radius: int) -> str:
    windows: List[List[int]] = []
    for s, e in sorted(spans):
        ws, we = _snap(text, max(0, s - radius), min(len(text), e + radius), (s, e))
        if windows and ws <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], we)
        else:
            windows.append([ws, we])
    parts = [text[s:e].strip() for s, e in windows]
    out = f"\n{ELLIPSIS}\n".join(parts)
    if windows and windows[0][0] > 0:
        out = f"{ELLIPSIS}\n{out}"
    if windows and windows[-1][1] < len(text):
        out = f"{out}\n{ELLIPSIS}"
    return out


def fit_article(
    text: str,
    spans: Sequence[Tuple[int, int]],
    max_tokens: int,
    count_tokens: CountTokens = approximate_token_count,
) -> Tuple[str, bool]:
    """Cut an article to windows around the mentions so that it fits `max_tokens`.

    text: the article. spans: mention offsets, in priority order (the first mention of each
        entity should come first: when not even the bare mentions fit, later ones are dropped).
    max_tokens: the budget. count_tokens: the tokenizer's counter.
    RETURNS (Tuple[str, bool]): the text to show and whether it was cut.
    """
    if count_tokens(text) <= max_tokens:
        return text, False
    spans = [(max(0, s), min(len(text), e)) for s, e in spans if e > s]
    if not spans:
        # No mention located: show the beginning (the headline and lead carry most context).
        spans = [(0, 0)]
    kept = list(spans)
    while len(kept) > 1 and count_tokens(_render_windows(text, kept, 0)) > max_tokens:
        kept.pop()
    lo, hi = 0, len(text)
    while lo < hi:  # the largest radius whose windows fit
        mid = (lo + hi + 1) // 2
        if count_tokens(_render_windows(text, kept, mid)) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return _render_windows(text, kept, lo), True


def _priority_spans(document: PromptDocument) -> List[Tuple[int, int]]:
    """All pairs' mention offsets: the first mention of every person and place first."""
    first = [spans[0] for pair in document.pairs for spans in (pair.person_spans, pair.place_spans) if spans]
    rest = sorted(s for pair in document.pairs for s in pair.person_spans[1:] + pair.place_spans[1:])
    return list(dict.fromkeys(first + rest))


def render_document_part(
    document: PromptDocument,
    version: str = PROMPT_VERSION,
    max_article_tokens: int = 6000,
    count_tokens: CountTokens = approximate_token_count,
    template_dir: TemplateDir = None,
) -> str:
    """The shared part of the user message for every pair of `document`."""
    text, windowed = fit_article(document.text, _priority_spans(document), max_article_tokens, count_tokens)
    return render_template(
        version, "document", template_dir, title=document.title, language=document.language, date=document.date,
        text=text, windowed=windowed,
    ).rstrip("\n")


def render_pair_part(pair: PromptPair, version: str = PROMPT_VERSION, rationalise: bool = False,
                     template_dir: TemplateDir = None) -> str:
    """The pair-specific end of the user message (with the gold labels when rationalising)."""
    person = pair.person_mentions[0] if pair.person_mentions else pair.person_id
    place = pair.place_mentions[0] if pair.place_mentions else pair.place_id
    values = dict(person=person, person_mentions=pair.person_mentions or [person], place=place,
                  place_mentions=pair.place_mentions or [place])
    if rationalise:
        values.update(at=pair.at, is_at=pair.is_at)
    return render_template(version, "rationalise" if rationalise else "pair", template_dir, **values).strip()


def build_prompts(
    document: PromptDocument,
    version: str = PROMPT_VERSION,
    max_article_tokens: int = 6000,
    count_tokens: CountTokens = approximate_token_count,
    rationalise: bool = False,
    pairs: Optional[Iterable[PromptPair]] = None,
    template_dir: TemplateDir = None,
) -> List[Prompt]:
    """One prompt per pair of `document` (or of `pairs`), all sharing the same document part.

    document: the article and its pairs. version: template version name.
    max_article_tokens: article budget. count_tokens: the tokenizer's counter.
    rationalise: show the gold labels and ask for their explanation.
    pairs: a subset of the document's pairs. template_dir: a declared template folder.
    """
    document_part = render_document_part(document, version, max_article_tokens, count_tokens, template_dir) + "\n\n"
    return [
        Prompt(document_part + render_pair_part(pair, version, rationalise, template_dir), len(document_part))
        for pair in (document.pairs if pairs is None else pairs)
    ]
