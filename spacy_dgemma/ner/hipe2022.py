"""Reader for the HIPE-2022 IOB TSV format: documents → spaCy Docs with coarse ``pers``/``loc`` ents.

One token a line (columns TOKEN, NE-COARSE-LIT, ..., MISC); ``# hipe2022:document_id = ...``
starts a document, other ``# hipe2022:key = value`` comments are its metadata. The MISC flags
shape the text: ``NoSpaceAfter`` (no whitespace), ``EndOfLine`` (a newline, as in the HIPE-2026
texts), ``EndOfSentence`` (a sentence boundary). Words hyphenated across a line end (``verlän``
``¬`` ``gernden``, or ``Fett¬`` ``gernden``) are rejoined into one token, so the Doc text reads
like the HIPE-2026 texts, which have the hyphenation removed.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

HYPHEN_MARK = "¬"
# Coarse types as written by the HIPE-2022 datasets → the types we train. newseye and sonar
# write upper case; topres19th writes LOC, BUILDING and STREET (all places in hipe2020's
# guidelines, where streets and buildings are fine subtypes of `loc`). Organisations are
# trained as their own type so that "Senate" or "Bundesrat" is not learnt as a non-entity that
# looks like a place; only `pers` and `loc` are scored (`evaluate.SCORED_LABELS`).
DEFAULT_LABEL_MAP: Dict[str, str] = {
    "pers": "pers",
    "per": "pers",
    "loc": "loc",
    "building": "loc",
    "street": "loc",
    "org": "org",
}
# Datasets whose NoSpaceAfter also marks line ends: newseye glues "gestern" "vor" and
# "Jahrgang." "Samstag" with NoSpaceAfter where the page has a line break. There a word (or a
# word and . , ; : ! ?) followed by a word starting with a letter is read as a newline.
DEFAULT_GLUED_LINE_ENDS: Tuple[str, ...] = ("newseye",)
_GLUE_END = re.compile(r"[\w.,;:!?]$")
_GLUE_START = re.compile(r"^[^\W\d_]")
# Datasets that do not annotate some of our types: topres19th marks places only, so its
# unmarked persons and organisations must not teach the recogniser that names are "outside".
DEFAULT_UNANNOTATED: Dict[str, Tuple[str, ...]] = {"topres19th": ("pers", "org")}
USER_DATA_KEY = "hipe2022"
# A document this long without a single entity tag (of any type, org/prod/time included) is
# taken as not annotated rather than as a text without names: newseye-de has ten such pages
# (1,751-7,633 tokens each, about 33k tokens, with plenty of names), letemps three.
# `dgemma ner convert` leaves them out of both parts.
UNANNOTATED_MIN_TOKENS = 1000
_META = re.compile(r"#\s*([\w-]+):([\w-]+)\s*=\s*(.*)$")


class Hipe2022FormatError(ValueError):
    """A line of a HIPE-2022 TSV file that cannot be read."""


@dataclass
class NerToken:
    """One token line: its text, coarse IOB tag (e.g. ``B-pers``) and MISC flags."""

    text: str
    tag: str
    flags: Tuple[str, ...] = ()
    line: int = 0
    link: str = "_"  # NEL-LIT: Wikidata QID, NIL or _

    @property
    def no_space_after(self) -> bool:
        return "NoSpaceAfter" in self.flags

    @property
    def end_of_line(self) -> bool:
        return "EndOfLine" in self.flags

    @property
    def end_of_sentence(self) -> bool:
        return "EndOfSentence" in self.flags


@dataclass
class NerDocument:
    """A HIPE-2022 document: id, metadata comments and tokens."""

    document_id: str
    path: str = ""
    metadata: Dict[str, str] = field(default_factory=dict)
    tokens: List[NerToken] = field(default_factory=list)

    @property
    def language(self) -> str:
        return self.metadata.get("language", "")

    @property
    def dataset(self) -> str:
        return self.metadata.get("dataset", "")


def read_hipe2022(path: Path) -> Iterator[NerDocument]:
    """Yield the documents of one HIPE-2022 TSV file.

    path: the .tsv file.
    RAISES: Hipe2022FormatError naming file and line for a token line without the TOKEN,
        NE-COARSE-LIT and MISC columns, or a token before any document id.
    """
    path = Path(path)
    columns: Optional[List[str]] = None
    doc: Optional[NerDocument] = None
    with path.open(encoding="utf8") as file_:
        for lineno, raw in enumerate(file_, start=1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            if line.startswith("#"):
                match = _META.match(line)
                if match is None:
                    continue
                _, key, value = match.groups()
                if key == "document_id":
                    if doc is not None and doc.tokens:
                        yield doc
                    doc = NerDocument(document_id=value.strip(), path=str(path))
                elif doc is not None:
                    doc.metadata.setdefault(key, value.strip())
                continue
            cells = line.split("\t")
            if columns is None and cells[0] == "TOKEN":
                columns = cells
                continue
            if cells[0] == "TOKEN":  # a repeated header (files are concatenations)
                continue
            if columns is None:
                raise Hipe2022FormatError(
                    f"{path}:{lineno}: token line before the TOKEN header; is this a HIPE-2022 TSV file?"
                )
            if len(cells) != len(columns):
                raise Hipe2022FormatError(
                    f"{path}:{lineno}: {len(cells)} columns, the header has {len(columns)}; "
                    "fix the line's tab separators"
                )
            if doc is None:
                raise Hipe2022FormatError(
                    f"{path}:{lineno}: token before any '# hipe2022:document_id = ...' line"
                )
            row = dict(zip(columns, cells))
            misc = row.get("MISC", "_")
            flags = tuple(f for f in misc.split("|") if f and f != "_")
            doc.tokens.append(
                NerToken(
                    text=row["TOKEN"],
                    tag=row.get("NE-COARSE-LIT", "O"),
                    flags=flags,
                    line=lineno,
                    link=row.get("NEL-LIT", "_"),
                )
            )
    if doc is not None and doc.tokens:
        yield doc


@dataclass
class _Word:
    text: str
    tag: str
    whitespace: str  # "", " " or "\n"
    sent_end: bool
    link: str = "_"


def _words(tokens: Sequence[NerToken], rejoin_hyphens: bool, glued_line_ends: bool = False) -> List[_Word]:
    """Tokens → words with their whitespace, hyphenated words rejoined."""
    words: List[_Word] = []
    join_next = False
    for i, token in enumerate(tokens):
        text = token.text
        nxt = tokens[i + 1].text if i + 1 < len(tokens) else ""
        if (
            glued_line_ends
            and token.no_space_after
            and not text.endswith(HYPHEN_MARK)
            and nxt != HYPHEN_MARK
            and _GLUE_END.search(text)
            and _GLUE_START.search(nxt)
        ):
            whitespace = "\n"
        elif token.no_space_after:
            whitespace = ""
        elif token.end_of_line:
            whitespace = "\n"
        else:
            whitespace = " "
        hyphen = rejoin_hyphens and text.endswith(HYPHEN_MARK) and token.end_of_line
        if hyphen:
            text = text[: -len(HYPHEN_MARK)]
        if join_next and words:
            word = words[-1]
            word.text += text
            if word.tag == "O" and token.tag != "O":
                word.tag = "B-" + token.tag[2:]
            word.whitespace = whitespace
            word.sent_end = token.end_of_sentence
        elif text:
            words.append(_Word(text, token.tag, whitespace, token.end_of_sentence, token.link))
        join_next = hyphen
    return words


def _entity_type(tag: str, label_map: Mapping[str, str]) -> Optional[str]:
    if tag in ("O", "_", "") or len(tag) < 3:
        return None
    return label_map.get(tag[2:].lower())


def document_to_doc(
    vocab: Vocab,
    document: NerDocument,
    label_map: Mapping[str, str] = DEFAULT_LABEL_MAP,
    rejoin_hyphens: bool = True,
    unannotated: Sequence[str] = (),
    glued_line_ends: bool = False,
) -> Doc:
    """A Doc with the document's text, sentence starts and coarse entities as ``doc.ents``.

    vocab: the vocab of the pipeline to train.
    document: a document from `read_hipe2022`.
    label_map: lower-cased coarse type → entity label; unmapped types are dropped (set as O).
    rejoin_hyphens: rejoin words hyphenated across a line end (``¬``).
    unannotated: entity types the document's dataset does not mark; capitalised tokens outside
        its entities are then set as missing (neither entity nor O), so training and spaCy's
        scorer ignore them.
    glued_line_ends: read NoSpaceAfter between words as a line end (see DEFAULT_GLUED_LINE_ENDS).
    RETURNS: the Doc; ``doc.user_data["hipe2022"]`` holds document_id, language, dataset, path.
    """
    words = _words(document.tokens, rejoin_hyphens, glued_line_ends)
    out_words: List[str] = []
    spaces: List[bool] = []
    sent_starts: List[Optional[bool]] = []
    tags: List[Optional[str]] = []  # entity type per output token (None: outside)
    begins: List[bool] = []
    links: List[str] = []
    new_sentence = True
    for i, word in enumerate(words):
        etype = _entity_type(word.tag, label_map)
        out_words.append(word.text)
        spaces.append(word.whitespace == " ")
        sent_starts.append(True if new_sentence else False)
        tags.append(etype)
        begins.append(word.tag.startswith("B-"))
        links.append(word.link)
        new_sentence = word.sent_end
        if word.whitespace == "\n":
            # A newline token, as spaCy's tokenizer makes of raw text; inside an entity when
            # both neighbours are in the same entity.
            nxt = words[i + 1] if i + 1 < len(words) else None
            inside = (
                etype is not None
                and nxt is not None
                and nxt.tag.startswith("I-")
                and _entity_type(nxt.tag, label_map) == etype
            )
            out_words.append("\n")
            spaces.append(False)
            sent_starts.append(False)
            tags.append(etype if inside else None)
            begins.append(False)
            links.append(word.link)
    while out_words and out_words[-1] == "\n":
        for column in (out_words, spaces, sent_starts, tags, begins, links):
            column.pop()
    if spaces:
        spaces[-1] = False
    doc = Doc(vocab, words=out_words, spaces=spaces, sent_starts=sent_starts)
    ents = _spans(doc, tags, begins, links)
    missing = _unmarked_names(doc, ents) if unannotated else []
    doc.set_ents(ents, missing=missing)
    doc.user_data[USER_DATA_KEY] = {
        "document_id": document.document_id,
        "language": document.language,
        "dataset": document.dataset,
        "path": Path(document.path).name,
        "n_tagged": sum(t.tag not in ("O", "_", "") for t in document.tokens),
    }
    return doc


def _spans(doc: Doc, tags: List[Optional[str]], begins: List[bool], links: List[str]) -> List[Span]:
    """Entity spans from per-token types; an I- tag after another type starts a new span.

    A span's ``kb_id_`` is the Wikidata QID of its first token (NEL-LIT), when it has one.
    """
    spans: List[Span] = []
    start: Optional[int] = None
    n = len(tags)
    for i, tag in enumerate(tags + [None]):
        ends_here = i == n or tag != tags[start or 0] or begins[i]
        if start is not None and ends_here:
            end = i
            while end > start and doc[end - 1].is_space:
                end -= 1
            if end > start:
                qid = links[start] if links[start].startswith("Q") else ""
                spans.append(Span(doc, start, end, label=tags[start], kb_id=qid))
            start = None
        if start is None and tag is not None and not doc[i].is_space:
            start = i
    return spans


def _unmarked_names(doc: Doc, ents: List[Span]) -> List[Span]:
    """Capitalised word tokens outside `ents`, as one-token spans: where unmarked names may be."""
    inside = {i for ent in ents for i in range(ent.start, ent.end)}
    return [
        doc[i : i + 1]
        for i, token in enumerate(doc)
        if i not in inside and token.text[:1].isupper()
    ]


def is_unannotated(doc: Doc, min_tokens: int = UNANNOTATED_MIN_TOKENS) -> bool:
    """Whether a Doc from `document_to_doc` is a long document without any entity tag."""
    meta = doc.user_data.get(USER_DATA_KEY, {})
    n_words = sum(not t.is_space for t in doc)
    return meta.get("n_tagged", 1) == 0 and n_words >= min_tokens


def read_docs(
    paths: Iterable[Path],
    vocab: Vocab,
    label_map: Mapping[str, str] = DEFAULT_LABEL_MAP,
    rejoin_hyphens: bool = True,
    unannotated: Mapping[str, Sequence[str]] = DEFAULT_UNANNOTATED,
    glued_line_ends: Sequence[str] = DEFAULT_GLUED_LINE_ENDS,
) -> Iterator[Doc]:
    """Docs of every document in the given HIPE-2022 TSV files, in file order.

    unannotated: dataset name → entity types it does not mark (see `document_to_doc`).
    glued_line_ends: datasets whose NoSpaceAfter between words marks a line end.
    """
    for path in paths:
        for document in read_hipe2022(Path(path)):
            missing = tuple(unannotated.get(document.dataset, ()))
            glued = document.dataset in glued_line_ends
            yield document_to_doc(vocab, document, label_map, rejoin_hyphens, missing, glued)
