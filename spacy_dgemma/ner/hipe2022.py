"""Reader for the HIPE-2022 IOB TSV format: documents → their text as printed → spaCy Docs.

One token a line (columns TOKEN, NE-COARSE-LIT, ..., MISC); ``# hipe2022:document_id = ...``
starts a document, other ``# hipe2022:key = value`` comments are its metadata. A document's
text is rebuilt as OCR text as users have it (`printed_text`): a space between tokens unless
``NoSpaceAfter``, a line break after ``EndOfLine``, a word hyphenated at a line end kept as
printed (``Fett¬`` line break ``waarenfabrik``). That is the text the recogniser is trained and
scored on; the raw-text tokenizer (`spacy_dgemma.Tokenizer.v2`) reads the hyphenation and the
other OCR forms. Entities are character spans of that text.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from spacy_dgemma.errors import InputError

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
# Datasets that do not annotate some of our types: topres19th marks places only, so its
# unmarked persons and organisations must not teach the recogniser that names are "outside".
DEFAULT_UNANNOTATED: Dict[str, Tuple[str, ...]] = {"topres19th": ("pers", "org")}
USER_DATA_KEY = "hipe2022"
# Span group of entities known to be wrong (the ``ner`` component's ``incorrect_spans_key``): in a
# dataset that marks every place but no persons (topres19th), a capitalised word left unmarked
# may be a person but is no place.
NEGATIVE_SPANS_KEY = "incorrect_spans"
# A document this long without a single entity tag (of any type, org/prod/time included) is
# taken as not annotated rather than as a text without names: newseye-de has ten such pages
# (1,751-7,633 tokens each, about 33k tokens, with plenty of names), letemps three.
# `dgemma ner convert` leaves them out of both parts.
UNANNOTATED_MIN_TOKENS = 1000
_META = re.compile(r"#\s*([\w-]+):([\w-]+)\s*=\s*(.*)$")
DOCUMENT_ID_LINE = "# hipe2022:document_id"

CharSpan = Tuple[int, int, Optional[str]]  # start, end, label (None: a type the label map lacks)


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


@dataclass
class PrintedText:
    """A document's text as printed, where each token is in it, and its entities as character spans."""

    text: str
    tokens: List[Tuple[int, int]]
    entities: List[CharSpan]


def read_hipe2022(path: Path) -> Iterator[NerDocument]:
    """Yield the documents of one HIPE-2022 TSV file.

    path: the .tsv file.
    RAISES: InputError (E230-E232) naming file and line for a token line without the columns of
        the header, or a token before the header or before any document id.
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
                raise InputError.of("E230", str(path), lineno)
            if len(cells) != len(columns):
                raise InputError.of("E231", str(path), lineno, n=len(cells), n_header=len(columns))
            if doc is None:
                raise InputError.of("E232", str(path), lineno)
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


def printed_text(document: NerDocument, label_map: Mapping[str, str] = DEFAULT_LABEL_MAP) -> PrintedText:
    """The document's text as printed, the character span of each token, and its entities.

    A space follows a token unless NoSpaceAfter; EndOfLine gives a line break instead. An entity
    starts at a B- tag, or at an I- tag whose type differs from the running entity's (after
    `label_map`); types the map lacks are entities with label None. This is how
    ``../shared/tools/ner_eval.py`` rebuilds the HIPE-2022 files, so scores agree with it.
    document: a document from `read_hipe2022`.
    label_map: lower-cased coarse type → label.
    """
    parts: List[str] = []
    tokens: List[Tuple[int, int]] = []
    entities: List[List] = []
    current: Optional[List] = None
    pos = 0
    for token in document.tokens:
        start, end = pos, pos + len(token.text)
        parts.append(token.text)
        tokens.append((start, end))
        tag = token.tag
        label = label_map.get(tag[2:].lower()) if len(tag) > 2 else None
        if tag.startswith("B-") or (tag.startswith("I-") and (current is None or current[2] != label)):
            current = [start, end, label]
            entities.append(current)
        elif tag.startswith("I-"):
            current[1] = end
        else:
            current = None
        whitespace = "\n" if token.end_of_line else ("" if token.no_space_after else " ")
        parts.append(whitespace)
        pos = end + len(whitespace)
    return PrintedText("".join(parts), tokens, [(s, e, label) for s, e, label in entities])


def document_to_doc(
    vocab: Vocab,
    document: NerDocument,
    label_map: Mapping[str, str] = DEFAULT_LABEL_MAP,
    unannotated: Sequence[str] = (),
    complete: Sequence[str] = (),
) -> Doc:
    """A Doc of the document's printed text (`printed_text`), its sentences and entities.

    The Doc's tokens are the file's tokens, with each line break a token of its own (as spaCy's
    tokenizer makes them); training aligns them with the pipeline's own tokenizer.
    vocab: the vocab of the pipeline to train.
    document: a document from `read_hipe2022`.
    label_map: lower-cased coarse type → entity label; unmapped types are outside (O).
    unannotated: entity types the document's dataset does not mark; capitalised tokens outside
        its entities are then set as missing (neither entity nor O), so training and the
        scorer ignore them.
    complete: entity labels the dataset marks completely although it leaves others unmarked
        (topres19th: places); each missing capitalised token, and each run of them, is then
        known not to be an entity of these labels (``doc.spans["incorrect_spans"]``).
    RETURNS: the Doc; ``doc.user_data["hipe2022"]`` holds document_id, language, dataset, path.
    """
    printed = printed_text(document, label_map)
    words: List[str] = []
    spaces: List[bool] = []
    sent_starts: List[bool] = []
    new_sentence = True
    for token, (start, end) in zip(document.tokens, printed.tokens):
        if start == end:  # an empty token adds no text
            continue
        words.append(token.text)
        spaces.append(not token.end_of_line and not token.no_space_after)
        sent_starts.append(new_sentence)
        new_sentence = token.end_of_sentence
        if token.end_of_line:
            words.append("\n")
            spaces.append(False)
            sent_starts.append(False)
    doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
    links = {start: token.link for token, (start, _) in zip(document.tokens, printed.tokens)}
    ents = []
    for start, end, label in printed.entities:
        if label is not None and end > start:
            qid = links.get(start, "_")
            ents.append(doc.char_span(start, end, label=label, kb_id=qid if qid.startswith("Q") else ""))
    missing = _unmarked_names(doc, ents) if unannotated else []
    doc.set_ents(ents, missing=missing)
    if missing and complete:
        doc.spans[NEGATIVE_SPANS_KEY] = _negative_spans(doc, missing, complete)
    doc.user_data[USER_DATA_KEY] = {
        "document_id": document.document_id,
        "language": document.language,
        "dataset": document.dataset,
        "path": Path(document.path).name,
        "n_tagged": sum(t.tag not in ("O", "_", "") for t in document.tokens),
    }
    return doc


def _unmarked_names(doc: Doc, ents: List[Span]) -> List[Span]:
    """Capitalised word tokens outside `ents`, as one-token spans: where unmarked names may be."""
    inside = {i for ent in ents for i in range(ent.start, ent.end)}
    return [
        doc[i : i + 1]
        for i, token in enumerate(doc)
        if i not in inside and token.text[:1].isupper()
    ]


def _negative_spans(doc: Doc, missing: List[Span], labels: Sequence[str]) -> List[Span]:
    """Each missing token and each run of adjacent missing tokens, once per label in `labels`."""
    runs: List[List[int]] = []
    for span in missing:
        if runs and runs[-1][1] == span.start:
            runs[-1][1] = span.end
        else:
            runs.append([span.start, span.end])
    spans = []
    for start, end in runs:
        pieces = [(i, i + 1) for i in range(start, end)] + ([(start, end)] if end - start > 1 else [])
        spans.extend(Span(doc, s, e, label=label) for s, e in pieces for label in labels)
    return spans


def is_unannotated(doc: Doc, min_tokens: int = UNANNOTATED_MIN_TOKENS) -> bool:
    """Whether a Doc from `document_to_doc` is a long document without any entity tag."""
    meta = doc.user_data.get(USER_DATA_KEY, {})
    n_words = sum(not t.is_space for t in doc)
    return meta.get("n_tagged", 1) == 0 and n_words >= min_tokens


def read_hipe2022_docs(
    paths: Iterable[Path],
    vocab: Vocab,
    label_map: Mapping[str, str] = DEFAULT_LABEL_MAP,
    unannotated: Mapping[str, Sequence[str]] = DEFAULT_UNANNOTATED,
) -> Iterator[Doc]:
    """Docs of every document in the given HIPE-2022 TSV files, in file order (`document_to_doc`).

    unannotated: dataset name → entity types it does not mark (the others it marks completely).
    """
    labels = sorted(set(label_map.values()))
    for path in paths:
        for document in read_hipe2022(Path(path)):
            missing = tuple(unannotated.get(document.dataset, ()))
            complete = tuple(label for label in labels if label not in missing) if missing else ()
            yield document_to_doc(vocab, document, label_map, missing, complete)


def document_blocks(path: Path) -> Tuple[List[str], List[Tuple[str, List[str]]]]:
    """The lines of a HIPE-2022 TSV file: those before the first document, then each document's.

    RETURNS: (header lines, [(document id, lines)]), lines with their line ends, so that a
        subset of documents can be written back exactly as they were.
    """
    header: List[str] = []
    blocks: List[Tuple[str, List[str]]] = []
    with Path(path).open(encoding="utf8", newline="") as file_:
        for line in file_:
            if line.startswith(DOCUMENT_ID_LINE):
                blocks.append((line.split("=", 1)[1].strip(), [line]))
            elif blocks:
                blocks[-1][1].append(line)
            else:
                header.append(line)
    return header, blocks
