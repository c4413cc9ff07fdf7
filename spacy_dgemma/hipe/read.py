"""Read HIPE-2026 JSONL files (or folders of them) as a stream of records or Docs.

A Doc read from HIPE keeps everything needed to write the record back:
- ``doc._.dgemma_hipe``: every input field except ``text`` and ``sampled_pairs``;
- ``doc._.dgemma_hipe_pairs``: the input ``sampled_pairs``, exactly as read (gold labels included);
- span groups ``persons`` and ``places``: one span per mention occurrence, ``span.id_`` = the
  entity id, ``span.kb_id_`` = the Wikidata QID (or ""), label "person" / "place";
- ``doc._.dgemma_unaligned``: the mentions that could not be found in the text.
"""
import codecs
import itertools
import json
import logging
import math
import re
from copy import deepcopy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, AnyStr, BinaryIO, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

import spacy
from spacy.attrs import ORTH
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from spacy_dgemma.errors import InputError, Warnings
from spacy_dgemma.hipe.align import EXACT, FUZZY, NORMALISED, TextIndex, align_mention
from spacy_dgemma.hipe.validate import MAX_DEPTH, check_record, path_str
from spacy_dgemma.keys import PERSONS_KEY, PLACES_KEY
from spacy_dgemma.pipeline import extensions  # noqa: F401  (registers the Doc extensions)

logger = logging.getLogger("spacy_dgemma")

PathLike = Union[str, Path]
RawLine = Union[bytes, str]  # a line as read: bytes, or str from a UTF-16/32 file
JSONL_SUFFIX = ".jsonl"
DOCBIN_SUFFIX = ".spacy"
METHODS = (EXACT, NORMALISED, FUZZY)  # alignment methods, best first
TOKENIZER_LANGUAGES = ("en", "de", "fr")
FALLBACK_LANGUAGE = "xx"
CHUNK_SIZE = 1 << 20  # bytes read at a time
LINE_END = re.compile(rb"\r\n?|\n")
_TEXT_LINE_END = re.compile(r"\r\n?|\n")
_BLANK = {bytes: b" \t\r\n\x0b\x0c", str: " \t\r\n\x0b\x0c"}
_BOM = "\ufeff"
WIDE_BOM_ENCODINGS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# doc.user_data key of the record's key order, so that the writer emits the fields as read.
KEY_ORDER_KEY = "hipe_key_order"
# The fields of a pair, by kind of entity.
ENTITY_FIELDS = {
    "person": ("pers_entity_id", "pers_wikidata_QID", "pers_mentions_list", PERSONS_KEY),
    "place": ("loc_entity_id", "loc_wikidata_QID", "loc_mentions_list", PLACES_KEY),
}


class RecordLine(NamedTuple):
    """A parsed record and where it was read (1-based line)."""

    file: Path
    line: int
    record: Dict[str, Any]


@dataclass
class ReadStats:
    """What a read saw: documents read and the invalid ones skipped (with `skip_invalid`)."""

    n_docs: int = 0
    skipped: List[InputError] = field(default_factory=list)


@dataclass
class AlignmentReport:
    """How the mentions of the documents read were aligned to their texts.

    A mention is a distinct (document, kind, entity, mention string); it counts under the best
    method that found it (exact before normalised before fuzzy).
    """

    n_docs: int = 0
    n_mentions: int = 0
    n_spans: int = 0
    by_method: Dict[str, int] = field(default_factory=lambda: dict.fromkeys(METHODS, 0))
    unaligned: List[Tuple[str, str, str, str]] = field(default_factory=list)  # doc id, kind, entity id, mention

    @property
    def n_aligned(self) -> int:
        return self.n_mentions - len(self.unaligned)

    def add(self, other: "AlignmentReport") -> None:
        self.n_docs += other.n_docs
        self.n_mentions += other.n_mentions
        self.n_spans += other.n_spans
        for method, n in other.by_method.items():
            self.by_method[method] = self.by_method.get(method, 0) + n
        self.unaligned.extend(other.unaligned)


def expand_paths(paths: Union[PathLike, Iterable[PathLike]], suffixes: Tuple[str, ...] = (JSONL_SUFFIX,)) -> List[Path]:
    """Files named by `paths`: files as given, folders as their files with one of `suffixes`, sorted.

    Raises InputError for a path that does not exist or a folder without such files.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: List[Path] = []
    for path in map(Path, paths):
        try:
            if path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.suffix in suffixes and p.is_file())
                if not found:
                    raise InputError.of("E010", str(path), suffix=" or ".join(suffixes))
                files.extend(found)
            elif path.exists():
                files.append(path)
            else:
                raise InputError.of("E007", str(path))
        except OSError as err:  # a name too long, a folder that cannot be listed
            raise InputError.of("E011", str(path), detail=err.strerror or type(err).__name__) from err
    return files


def iter_records(
    paths: Union[PathLike, Iterable[PathLike]],
    *,
    validate: bool = True,
    skip_invalid: bool = False,
    stats: Optional[ReadStats] = None,
) -> Iterator[RecordLine]:
    """Stream the records of JSONL files, checking each one.

    paths: files or folders (folders are read for their ``.jsonl`` files).
    validate: check each record against the HIPE-2026 schema.
    skip_invalid: skip bad documents (and empty files) instead of raising; they are listed
        in `stats.skipped`.
    stats: filled with the number of documents read and the problems skipped.
    Raises InputError on the first problem unless `skip_invalid`; a missing file always raises.
    """
    stats = ReadStats() if stats is None else stats
    seen: Dict[str, str] = {}
    for file in expand_paths(paths):
        n_lines = 0
        for line, raw in nonblank_lines(file):
            n_lines += 1
            try:
                record = parse_record(raw, file, line, validate=validate)
                doc_id = record.get("document_id") if isinstance(record, dict) else None
                if isinstance(doc_id, str):
                    if doc_id in seen:
                        raise InputError.of("E008", str(file), line, doc_id=doc_id, first=seen[doc_id])
                    seen[doc_id] = f"{file}:{line}"
            except InputError as problem:
                skip_or_raise(problem, stats, skip_invalid)
                continue
            stats.n_docs += 1
            yield RecordLine(file, line, record)
        if n_lines == 0:
            skip_or_raise(InputError.of("E005", str(file)), stats, skip_invalid)


def nonblank_lines(file: Path) -> Iterator[Tuple[int, RawLine]]:
    """(1-based line number, raw line) of the lines of a file that are not blank."""
    try:
        handle = file.open("rb")
    except FileNotFoundError as err:
        raise InputError.of("E007", str(file)) from err
    except OSError as err:
        raise InputError.of("E011", str(file), detail=err.strerror or type(err).__name__) from err
    with handle:
        for line, raw in iter_raw_lines(handle, str(file)):
            if not is_blank(raw):
                yield line, raw


def is_blank(raw: RawLine) -> bool:
    """Whether a raw line holds nothing but JSON whitespace (and form feeds / vertical tabs)."""
    return not raw.strip(_BLANK[type(raw)])


def iter_raw_lines(handle: BinaryIO, name: str, at_start: bool = True) -> Iterator[Tuple[int, RawLine]]:
    """(1-based line number, line without its end) of every line of a binary file.

    A line ends at LF, CRLF or a lone CR (a JSON line holds none of them raw). A file that
    starts with a UTF-16 or UTF-32 byte order mark is decoded, and its lines come as str;
    other lines come as bytes, checked as UTF-8 by the parser.
    handle: the file, opened for reading bytes.
    name: the file's name, for error messages.
    at_start: whether `handle` is at the file's start (only there can a byte order mark be).
    Raises InputError (E011) on a read error, (E006) on a UTF-16/32 decoding error.
    """
    number = 0
    try:
        for raw in _split_lines(_chunks(handle, at_start)):
            number += 1
            yield number, raw
    except OSError as err:
        raise InputError.of("E011", name, number + 1, detail=err.strerror or type(err).__name__) from err
    except UnicodeDecodeError as err:
        raise InputError.of("E006", name, number + 1, detail=f"{err.encoding}: {err.reason}") from err


def _chunks(handle: BinaryIO, at_start: bool = True) -> Iterator[Union[bytes, str]]:
    """The file's content in chunks: bytes, or str for a file with a UTF-16/32 byte order mark
    (looked for when `at_start`)."""
    first = handle.read(CHUNK_SIZE)
    rest = iter(lambda: handle.read(CHUNK_SIZE), b"")
    for bom, encoding in WIDE_BOM_ENCODINGS if at_start else ():
        if first.startswith(bom):
            # surrogatepass: a lone surrogate is read, then refused by the parser with its place
            decoder = codecs.getincrementaldecoder(encoding)("surrogatepass")
            for chunk in itertools.chain([first[len(bom):]], rest):
                yield decoder.decode(chunk)
            yield decoder.decode(b"", final=True)
            return
    yield first
    yield from rest


def _split_lines(chunks: Iterable[AnyStr]) -> Iterator[AnyStr]:
    """The lines of a stream of chunks, split at LF, CRLF and lone CR."""
    rest = None
    for chunk in chunks:
        data = chunk if rest is None else rest + chunk
        if not data:
            continue
        text = isinstance(data, str)
        cr = "\r" if text else b"\r"
        keep = data[-1:] if data[-1:] == cr else data[:0]  # a CR that may be half of a CRLF
        *lines, rest = (_TEXT_LINE_END if text else LINE_END).split(data[: len(data) - len(keep)])
        rest += keep
        yield from lines
    if rest:
        *lines, last = (_TEXT_LINE_END if isinstance(rest, str) else LINE_END).split(rest)
        yield from lines
        if last:
            yield last


def _parse(raw: RawLine, file: PathLike, line: int) -> Any:
    """The JSON value of one line: strict JSON, in UTF-8 (InputError otherwise).

    Refused: bytes that are not UTF-8, malformed JSON, NaN and Infinity, duplicate keys,
    numbers that cannot be read exactly, nesting deeper than MAX_DEPTH, lone surrogates.
    A byte order mark at the start of the line is ignored.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            detail = f"byte 0x{raw[err.start]:02x} at column {err.start + 1}"
            raise InputError.of("E006", str(file), line, detail=detail) from err
    else:
        text = raw
    text = text[1:] if text.startswith(_BOM) else text
    try:
        value = _DECODER.decode(text)
    except _Refused as refused:
        raise InputError.of(refused.code, str(file), line, where="", **refused.details) from None
    except RecursionError as err:
        raise InputError.of("E100", str(file), line, limit=MAX_DEPTH, where="") from err
    except json.JSONDecodeError as err:
        if "\x00" in text:
            detail = "NUL bytes: UTF-16 or UTF-32 text without a byte order mark, or binary data"
            raise InputError.of("E006", str(file), line, detail=detail) from err
        raise InputError.of("E001", str(file), line, detail=f"{err.msg} at column {err.colno}") from err
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise InputError.of("E100", str(file), line, limit=MAX_DEPTH, where="")
    # Strict UTF-8 has no surrogates: in bytes only an escape can make one; str lines (from a
    # UTF-16/32 file) may hold them raw.
    if _SURROGATE_ESCAPE.search(text) or (not isinstance(raw, bytes) and _LONE_SURROGATE.search(text)):
        _check_surrogates(value, str(file), line)
    return value


class _Refused(Exception):
    """Raised by the JSON decoder's hooks: the code of the InputError and its details."""

    def __init__(self, code: str, **details: Any) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


def _object(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        keys = [key for key, _ in pairs]
        raise _Refused("E101", key=next(key for i, key in enumerate(keys) if key in keys[:i]))
    return value


def _constant(name: str) -> Any:
    raise _Refused("E102", constant=name)


def _int(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise _Refused("E103", detail=f"an integer of {len(digits.lstrip('-'))} digits") from None


def _float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        shown = literal if len(literal) <= 24 else literal[:20] + "…"
        raise _Refused("E103", detail=f"{shown} is beyond the range of a 64-bit float")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant, parse_int=_int, parse_float=_float)


def _depth(value: Any) -> int:
    """How deeply `value` nests (1 for an object or array of scalars), counted up to MAX_DEPTH + 1."""
    if type(value) not in (dict, list):
        return 0
    deepest = 0
    stack = [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if type(item) is dict else item
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return deepest


def _check_surrogates(value: Any, file: str, line: int) -> None:
    """Raise InputError (E104) for the first lone surrogate in a key or string of `value`."""
    stack: List[Tuple[Tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        where = path_str(path) or "the document"
        if type(item) is str:
            _refuse_surrogate(item, where, file, line)
        elif type(item) is dict:
            for key in item:
                _refuse_surrogate(key, f"a key of {where}", file, line)
            stack.extend((path + (key,), child) for key, child in reversed(item.items()))
        elif type(item) is list:
            stack.extend((path + (i,), child) for i, child in reversed(list(enumerate(item))))


def _refuse_surrogate(string: str, field: str, file: str, line: int) -> None:
    found = _LONE_SURROGATE.search(string)
    if found:
        char = f"\\u{ord(found.group()):04x}"
        raise InputError.of("E104", file, line, char=char, field=field, position=found.start() + 1)


def parse_record(raw: RawLine, file: PathLike, line: int, *, validate: bool = True) -> Dict[str, Any]:
    """One HIPE record from one raw line (as `iter_raw_lines` gives it), checked as
    `iter_records` checks it (for readers that cut files into pieces, e.g. the Ray engine).

    raw: the line, without its end.
    file / line: where it was read (1-based line), for the error message.
    validate: check the record against the HIPE-2026 schema.
    Raises InputError if the line is not strict UTF-8 JSON or not a valid record.
    """
    record = _parse(raw, file, line)
    problem = check_record(record, str(file), line) if validate else None
    if problem is not None:
        raise problem
    return record


def skip_or_raise(problem: InputError, stats: ReadStats, skip_invalid: bool) -> None:
    """Raise `problem`, or with `skip_invalid` count it in `stats.skipped`."""
    if not skip_invalid:
        raise problem
    stats.skipped.append(problem)


@lru_cache(maxsize=None)
def _blank(lang: str) -> Language:
    return spacy.blank(lang)


def tokenizer_language(language: Optional[str]) -> str:
    """The spaCy language whose tokenizer reads a document in `language` (en, de, fr, else xx)."""
    lang = (language or "").lower()
    return lang if lang in TOKENIZER_LANGUAGES else FALLBACK_LANGUAGE


class DocMaker:
    """Tokenize texts by their language, with one blank pipeline per language.

    Texts of any length are tokenized (the tokenizer alone has no use for ``nlp.max_length``,
    which guards the memory of parsers and recognisers).
    nlp: if given, its tokenizer is used for every language.
    vocab: if given (and no `nlp`), the Docs are made in this vocab (e.g. a training
        pipeline's), still tokenized by their language; their tokens carry no special-case
        norms (as Docs re-created from the words would not).
    """

    def __init__(self, nlp: Optional[Language] = None, vocab: Optional[Vocab] = None) -> None:
        self.nlp = nlp
        self.vocab = vocab
        self._tokenizers: Dict[str, "WarmTokenizer"] = {}

    def __call__(self, text: str, language: Optional[str]) -> Doc:
        if self.nlp is not None:
            return self.nlp.tokenizer(text)
        lang = tokenizer_language(language)
        if self.vocab is None or self.vocab is _blank(lang).vocab:
            return _warm_tokenizer(lang)(text)
        if lang not in self._tokenizers:
            self._tokenizers[lang] = WarmTokenizer(_in_vocab(_blank(lang).tokenizer, self.vocab))
        return self._tokenizers[lang](text)


class WarmTokenizer:
    """A spaCy tokenizer whose cache is filled one word at a time: the same tokens, faster.

    spaCy caches the tokens of a whitespace-separated chunk only until the first special case
    of a text (a line break is one), so most chunks of a long text are never cached. A chunk
    seen in an earlier text is tokenized once on its own, which caches it if it can be; then
    the whole text is tokenized by the same tokenizer, as always. Chunks seen once only are
    not worth the extra call (most never come back); and once few chunks are new, only every
    `max_skip`-th text is looked at. The tokens never depend on any of this.
    tokenizer: the spaCy tokenizer.
    max_seen: chunks remembered; beyond, the memory of them and the tokenizer's cache start
        again (so that neither grows without end over an archive).
    max_skip: at most one text in this many is looked at for new chunks once few are new.
    """

    def __init__(self, tokenizer: Tokenizer, max_seen: int = 200_000, max_skip: int = 4) -> None:
        self.tokenizer = tokenizer
        self.max_seen = max_seen
        self.max_skip = max_skip
        self._seen: set = set()  # chunks of earlier texts
        self._warm: set = set()  # chunks tokenized on their own
        self._every = 1
        self._count = 0

    def __call__(self, text: str) -> Doc:
        self._count += 1
        if self._count % self._every == 0:
            self._warm_up(text)
        return self.tokenizer(text)

    def _warm_up(self, text: str) -> None:
        fresh = set(text.split()).difference(self._warm)  # most chunks are warm: a small set
        again = fresh.intersection(self._seen)
        for chunk in again:
            self.tokenizer(chunk)
        self._warm.update(again)
        self._seen.update(fresh)
        self._every = min(self._every * 2, self.max_skip) if len(again) <= 2 else 1
        if len(self._seen) > self.max_seen:
            self._seen.clear()
            self._warm.clear()
            self.tokenizer._flush_cache()


@lru_cache(maxsize=None)
def _warm_tokenizer(lang: str) -> WarmTokenizer:
    return WarmTokenizer(_blank(lang).tokenizer)


def _in_vocab(tokenizer: Tokenizer, vocab: Vocab) -> Tokenizer:
    """A copy of `tokenizer` that makes Docs in `vocab`, its special cases without their norms."""
    rules = {key: [{ORTH: token[ORTH]} for token in tokens] for key, tokens in (tokenizer.rules or {}).items()}
    return Tokenizer(
        vocab,
        rules=rules,
        prefix_search=tokenizer.prefix_search,
        suffix_search=tokenizer.suffix_search,
        infix_finditer=tokenizer.infix_finditer,
        token_match=tokenizer.token_match,
        url_match=tokenizer.url_match,
        faster_heuristics=tokenizer.faster_heuristics,
    )


def record_to_doc(
    record: Dict[str, Any],
    *,
    make_doc: Optional[DocMaker] = None,
    report: Optional[AlignmentReport] = None,
    copy: bool = True,
) -> Doc:
    """A Doc for one HIPE record, with its metadata, pairs and aligned mentions.

    record: a valid HIPE-2026 record.
    make_doc: the tokenizers to use (default: a blank pipeline per language).
    report: if given, the alignment counts of this document are added to it.
    copy: give the Doc deep copies of the record's fields (False: the Doc shares them; for a
        record that nothing else uses, such as one just parsed).
    """
    make_doc = DocMaker() if make_doc is None else make_doc
    text = record["text"]
    doc = make_doc(text, record.get("language"))
    meta = {k: v for k, v in record.items() if k not in ("text", "sampled_pairs")}
    doc._.dgemma_hipe = deepcopy(meta) if copy else meta
    doc._.dgemma_hipe_pairs = deepcopy(record["sampled_pairs"]) if copy else record["sampled_pairs"]
    doc.user_data[KEY_ORDER_KEY] = list(record)
    doc_report = AlignmentReport(n_docs=1)
    doc._.dgemma_unaligned = []
    index = TextIndex(text)  # the Doc's text (the tokenizer keeps every character)
    for kind, entities in _entities(record["sampled_pairs"]).items():
        spans: Dict[Tuple[int, int, str], Span] = {}
        for entity_id, (qid, mentions) in entities.items():
            for mention in mentions:
                found = _mention_spans(doc, index, mention, kind, entity_id, qid, doc_report)
                spans.update(((s.start, s.end, entity_id), s) for s in found)
        doc_report.n_spans += len(spans)
        doc.spans[ENTITY_FIELDS[kind][3]] = [spans[key] for key in sorted(spans)]
    if report is not None:
        report.add(doc_report)
    return doc


def _mention_spans(doc: Doc, index: TextIndex, mention: str, kind: str, entity_id: str, qid: str, report: AlignmentReport) -> List[Span]:
    """The spans of every occurrence of one mention, snapped to tokens; an unaligned mention
    is added to ``doc._.dgemma_unaligned``, the report and the log."""
    alignments = align_mention(index, mention)
    found = [
        (a.method, doc.char_span(a.start, a.end, label=kind, kb_id=qid, span_id=entity_id, alignment_mode="expand"))
        for a in alignments
    ]
    found = [(method, span) for method, span in found if span is not None]
    report.n_mentions += 1
    if not found:
        doc_id = doc._.dgemma_hipe["document_id"]
        doc._.dgemma_unaligned.append({"entity_id": entity_id, "mention": mention, "kind": kind})
        report.unaligned.append((doc_id, kind, entity_id, mention))
        logger.warning(Warnings.W001.format(doc_id=doc_id, kind=kind, mention=mention, entity_id=entity_id))
        return []
    report.by_method[min((m for m, _ in found), key=METHODS.index)] += 1
    return [span for _, span in found]


def _entities(pairs: List[Dict[str, Any]]) -> Dict[str, Dict[str, Tuple[str, List[str]]]]:
    """kind → entity id → (QID or "", distinct mentions), over all pairs, in order of appearance."""
    entities: Dict[str, Dict[str, Tuple[str, List[str]]]] = {kind: {} for kind in ENTITY_FIELDS}
    for pair in pairs:
        for kind, (id_field, qid_field, mentions_field, _) in ENTITY_FIELDS.items():
            qid, mentions = entities[kind].setdefault(pair[id_field], (pair.get(qid_field) or "", []))
            mentions.extend(m for m in pair.get(mentions_field) or [] if m not in mentions)
    return entities


def read_docs(
    paths: Union[PathLike, Iterable[PathLike]],
    *,
    nlp: Optional[Language] = None,
    vocab: Optional[Vocab] = None,
    validate: bool = True,
    skip_invalid: bool = False,
    stats: Optional[ReadStats] = None,
    report: Optional[AlignmentReport] = None,
) -> Iterator[Doc]:
    """Stream HIPE JSONL files (or folders of them) as Docs, in input order.

    paths: files or folders.
    nlp / vocab: tokenizer or vocab to use (see DocMaker); default: a blank pipeline per language.
    validate / skip_invalid / stats: see `iter_records`.
    report: if given, filled with the alignment counts.
    """
    make_doc = DocMaker(nlp, vocab)
    for item in iter_records(paths, validate=validate, skip_invalid=skip_invalid, stats=stats):
        yield record_to_doc(item.record, make_doc=make_doc, report=report)


def read_docbin(paths: Union[PathLike, Iterable[PathLike]], vocab: Optional[Vocab] = None) -> Iterator[Doc]:
    """Stream the Docs of ``.spacy`` files (or folders of them) written by `write_docbin`."""
    vocab = Vocab() if vocab is None else vocab
    for file in expand_paths(paths, (DOCBIN_SUFFIX,)):
        for doc in DocBin(store_user_data=True).from_disk(file).get_docs(vocab):
            yield restore_lists(doc)


def restore_lists(doc: Doc) -> Doc:
    """Turn the tuples of deserialised HIPE data back into lists, as JSON gives them.

    spaCy's msgpack reads arrays as tuples, so after ``DocBin``/``Doc.from_bytes`` the mention
    lists of ``doc._.dgemma_hipe_pairs`` would be tuples.
    """
    doc._.dgemma_hipe = _as_lists(doc._.dgemma_hipe)
    doc._.dgemma_hipe_pairs = _as_lists(doc._.dgemma_hipe_pairs)
    doc._.dgemma_unaligned = _as_lists(doc._.dgemma_unaligned)
    if KEY_ORDER_KEY in doc.user_data:
        doc.user_data[KEY_ORDER_KEY] = list(doc.user_data[KEY_ORDER_KEY])
    return doc


def _as_lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_lists(v) for k, v in value.items()}
    return value
