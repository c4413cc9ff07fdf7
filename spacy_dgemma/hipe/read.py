"""Read HIPE-2026 JSONL files (or folders of them) as a stream of records or Docs.

A Doc read from HIPE keeps everything needed to write the record back:
- ``doc._.dgemma_hipe``: every input field except ``text`` and ``sampled_pairs``;
- ``doc._.dgemma_hipe_pairs``: the input ``sampled_pairs``, exactly as read (gold labels included);
- span groups ``persons`` and ``places``: one span per mention occurrence, ``span.id_`` = the
  entity id, ``span.kb_id_`` = the Wikidata QID (or ""), label "person" / "place";
- ``doc._.dgemma_unaligned``: the mentions that could not be found in the text.
"""
import copy
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from spacy_dgemma.errors import InputError, Warnings
from spacy_dgemma.hipe.align import EXACT, FUZZY, NORMALISED, TextIndex, align_mention
from spacy_dgemma.hipe.validate import check_record
from spacy_dgemma.keys import PERSONS_KEY, PLACES_KEY
from spacy_dgemma.pipeline import extensions  # noqa: F401  (registers the Doc extensions)

logger = logging.getLogger("spacy_dgemma")

PathLike = Union[str, Path]
JSONL_SUFFIX = ".jsonl"
DOCBIN_SUFFIX = ".spacy"
METHODS = (EXACT, NORMALISED, FUZZY)  # alignment methods, best first
TOKENIZER_LANGUAGES = ("en", "de", "fr")
FALLBACK_LANGUAGE = "xx"
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
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in suffixes and p.is_file())
            if not found:
                raise InputError.of("E010", str(path), suffix=" or ".join(suffixes))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise InputError.of("E007", str(path))
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
        for line, raw in _nonblank_lines(file):
            n_lines += 1
            try:
                record = _parse(raw, file, line)
                problem = check_record(record, str(file), line) if validate else None
                if problem is not None:
                    raise problem
                doc_id = record.get("document_id") if isinstance(record, dict) else None
                if isinstance(doc_id, str):
                    if doc_id in seen:
                        raise InputError.of("E008", str(file), line, doc_id=doc_id, first=seen[doc_id])
                    seen[doc_id] = f"{file}:{line}"
            except InputError as problem:
                _fail(problem, stats, skip_invalid)
                continue
            stats.n_docs += 1
            yield RecordLine(file, line, record)
        if n_lines == 0:
            _fail(InputError.of("E005", str(file)), stats, skip_invalid)


def _nonblank_lines(file: Path) -> Iterator[Tuple[int, bytes]]:
    """(1-based line number, raw bytes) of the lines of a file that are not blank."""
    try:
        handle = file.open("rb")
    except FileNotFoundError as err:
        raise InputError.of("E007", str(file)) from err
    except OSError as err:
        raise InputError.of("E011", str(file), detail=err.strerror or type(err).__name__) from err
    with handle:
        for line, raw in enumerate(handle, 1):
            if raw.strip():
                yield line, raw


def _parse(raw: bytes, file: Path, line: int) -> Any:
    """The JSON value of one line (InputError if it is not UTF-8 or not JSON)."""
    try:
        text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
    except UnicodeDecodeError as err:
        detail = f"byte 0x{raw[err.start]:02x} at column {err.start + 1}"
        raise InputError.of("E006", str(file), line, detail=detail) from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError.of("E001", str(file), line, detail=f"{err.msg} at column {err.colno}") from err


def _fail(problem: InputError, stats: ReadStats, skip_invalid: bool) -> None:
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

    nlp: if given, its tokenizer is used for every language.
    vocab: if given (and no `nlp`), the Docs are made in this vocab (e.g. a training
        pipeline's), still tokenized by their language.
    """

    def __init__(self, nlp: Optional[Language] = None, vocab: Optional[Vocab] = None) -> None:
        self.nlp = nlp
        self.vocab = vocab

    def __call__(self, text: str, language: Optional[str]) -> Doc:
        if self.nlp is not None:
            return self.nlp.make_doc(text)
        doc = _blank(tokenizer_language(language)).make_doc(text)
        if self.vocab is None or self.vocab is doc.vocab:
            return doc
        # spaCy ties a vocab to one language, so re-create the tokens in the given vocab.
        return Doc(self.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


def record_to_doc(
    record: Dict[str, Any],
    *,
    make_doc: Optional[DocMaker] = None,
    report: Optional[AlignmentReport] = None,
) -> Doc:
    """A Doc for one HIPE record, with its metadata, pairs and aligned mentions.

    record: a valid HIPE-2026 record.
    make_doc: the tokenizers to use (default: a blank pipeline per language).
    report: if given, the alignment counts of this document are added to it.
    """
    make_doc = DocMaker() if make_doc is None else make_doc
    doc = make_doc(record["text"], record.get("language"))
    doc._.dgemma_hipe = copy.deepcopy({k: v for k, v in record.items() if k not in ("text", "sampled_pairs")})
    doc._.dgemma_hipe_pairs = copy.deepcopy(record["sampled_pairs"])
    doc.user_data[KEY_ORDER_KEY] = list(record)
    doc_report = AlignmentReport(n_docs=1)
    doc._.dgemma_unaligned = []
    index = TextIndex(doc.text)
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
