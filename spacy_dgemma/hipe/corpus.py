"""The project's corpus: a stable by-document dev split, and the reader for `spacy train`.

The split (``split_documents``): HIPE-2026 has no dev set, so about a quarter of the gold train
documents of each language are held out as dev, chosen by the SHA-1 of their document id (the
same documents whatever the order or the other files). The silver sandbox documents that are
also in gold train are left out of silver, so that no gold dev document leaks into training
with other labels.

The reader (``spacy_dgemma.HipeCorpus.v1``) yields ``Example(predicted, reference)`` where the
reference is the gold Doc and the predicted Doc a copy of it without the labels: spaCy's own
``Corpus`` rebuilds the predicted Doc from the text, which would lose the mentions, the pairs
and the metadata the relation component needs. Optional silver documents can be added at a
loss weight (``silver_path``, ``silver_weight``), kept on each reference Doc for
``DgemmaRelations.get_loss``.
"""
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from spacy_dgemma.errors import Errors
from spacy_dgemma.hipe.read import DOCBIN_SUFFIX, JSONL_SUFFIX, RecordLine, expand_paths, iter_records, read_docbin, read_docs
from spacy_dgemma.hipe.write import write_jsonl
from spacy_dgemma.keys import LOSS_WEIGHT_KEY, RELATIONS_KEY, RELATIONS_USER_DATA_KEY
from spacy_dgemma.labels import check_setting, is_number
from spacy_dgemma.util import stable_key

PathLike = Union[str, Path]
LABEL_FIELDS = ("at", "isAt", "at_explanation", "isAt_explanation")
DEV_FRACTION = 0.25


def dev_ids(doc_ids: Iterable[str], fraction: float = DEV_FRACTION) -> List[str]:
    """The dev share of a set of document ids: the round(fraction · n) smallest by SHA-1."""
    doc_ids = sorted(set(doc_ids), key=stable_key)
    return doc_ids[: int(len(doc_ids) * fraction + 0.5)]


@dataclass
class SplitSummary:
    """What `split_documents` wrote: output file → number of documents, and what it left out."""

    files: Dict[Path, int] = field(default_factory=dict)
    n_silver_excluded: int = 0


def split_documents(
    gold: Union[PathLike, Iterable[PathLike]],
    silver: Union[PathLike, Iterable[PathLike], None],
    output_dir: PathLike,
    *,
    dev_fraction: float = DEV_FRACTION,
    limit: int = 0,
) -> SplitSummary:
    """Write the by-document split of gold train and silver sandbox data, per language.

    gold: the gold train files (or their folder).
    silver: the sandbox files (or their folder): ``*-dev.jsonl`` files are silver dev, the
        others silver train. None: no silver files.
    output_dir: where ``gold-train-{lang}.jsonl``, ``gold-dev-{lang}.jsonl``,
        ``silver-train-{lang}.jsonl`` and ``silver-dev-{lang}.jsonl`` are written (records
        as read, in input order; a file that would be empty is not written).
    dev_fraction: share of each language's gold documents that go to dev.
    limit: read only the first `limit` documents of each input file (0: all), for quick runs.
    """
    output_dir = Path(output_dir)
    outputs: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    gold_by_lang: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for item in _first_per_file(iter_records(gold), limit):
        gold_by_lang[item.record["language"]].append(item.record)
    gold_ids = {r["document_id"] for records in gold_by_lang.values() for r in records}
    for lang, records in sorted(gold_by_lang.items()):
        dev = set(dev_ids((r["document_id"] for r in records), dev_fraction))
        for record in records:
            outputs[f"gold-{'dev' if record['document_id'] in dev else 'train'}-{lang}"].append(record)
    summary = SplitSummary()
    if silver is not None:
        for item in _first_per_file(iter_records(silver), limit):
            if item.record["document_id"] in gold_ids:
                summary.n_silver_excluded += 1
                continue
            part = "dev" if item.file.stem.endswith("dev") else "train"
            outputs[f"silver-{part}-{item.record['language']}"].append(item.record)
    for name, records in sorted(outputs.items()):
        path = output_dir / f"{name}{JSONL_SUFFIX}"
        summary.files[path] = write_jsonl(path, records)
    return summary


def _first_per_file(items: Iterable[RecordLine], limit: int) -> Iterator[RecordLine]:
    """The first `limit` records of each file (all when `limit` is 0)."""
    counts: Dict[Path, int] = defaultdict(int)
    for item in items:
        if limit and counts[item.file] >= limit:
            continue
        counts[item.file] += 1
        yield item


def make_predicted(reference: Doc) -> Doc:
    """A copy of a gold Doc as a model sees it: text, tokens, mentions, metadata, unlabelled pairs."""
    doc = reference.copy()
    doc.user_data.pop(RELATIONS_USER_DATA_KEY, None)
    if RELATIONS_KEY in doc.spans:
        del doc.spans[RELATIONS_KEY]
    if reference._.dgemma_hipe_pairs is not None:
        doc._.dgemma_hipe_pairs = [{**pair, **{key: None for key in LABEL_FIELDS}} for pair in reference._.dgemma_hipe_pairs]
    return doc


def corpus_files(path: PathLike) -> List[Path]:
    """The files of a corpus path: a file as given; a folder's ``.spacy`` files, else its ``.jsonl`` files."""
    path = Path(path)
    if path.is_dir() and any(path.rglob(f"*{DOCBIN_SUFFIX}")):
        return expand_paths(path, (DOCBIN_SUFFIX,))
    return expand_paths(path, (JSONL_SUFFIX,))


def read_reference_docs(path: PathLike, nlp: Language) -> Iterator[Doc]:
    """The gold Docs of a corpus path (DocBins or HIPE JSONL), in `nlp.vocab`."""
    for file in corpus_files(path):
        if file.suffix == DOCBIN_SUFFIX:
            yield from read_docbin(file, nlp.vocab)
        else:
            yield from read_docs(file, vocab=nlp.vocab)


class HipeCorpus:
    """Examples from HIPE-2026 data for `spacy train` / `nlp.evaluate`.

    path: a ``.spacy`` DocBin or HIPE ``.jsonl`` file, or a folder of them.
    limit: read at most this many documents from `path` (and from `silver_path`) (0: all).
    shuffle: shuffle the documents on each pass (for training).
    silver_path: optional extra (silver) documents, file or folder (an empty folder adds none);
        those whose document id is also in `path` are skipped (no document counts twice).
    silver_weight: loss weight of the silver documents (0: they are not read); documents of
        `path` weigh 1.0. Stored in ``reference.user_data[LOSS_WEIGHT_KEY]``.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        limit: int = 0,
        shuffle: bool = False,
        silver_path: Optional[PathLike] = None,
        silver_weight: float = 1.0,
    ) -> None:
        if path is None:
            raise ValueError(Errors.E063)
        check_setting("silver_weight", silver_weight, is_number(silver_weight) and math.isfinite(silver_weight) and silver_weight >= 0, "a number >= 0")
        check_setting("limit", limit, isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0, "an integer >= 0 (0: all)")
        self.path = Path(path)
        self.limit = limit
        self.shuffle = shuffle
        self.silver_path = Path(silver_path) if silver_path else None
        self.silver_weight = float(silver_weight)

    def _read(self, path: Path, nlp: Language, weight: float) -> List[Doc]:
        docs: Iterable[Doc] = read_reference_docs(path, nlp)
        if self.limit:
            docs = islice(docs, self.limit)
        docs = list(docs)
        for doc in docs:
            doc.user_data[LOSS_WEIGHT_KEY] = weight
        return docs

    def __call__(self, nlp: Language) -> Iterator[Example]:
        docs = self._read(self.path, nlp, 1.0)
        if self.silver_path is not None and self.silver_weight > 0 and _has_data(self.silver_path):
            seen = {_doc_id(doc) for doc in docs} - {None}
            silver = self._read(self.silver_path, nlp, self.silver_weight)
            docs += [doc for doc in silver if _doc_id(doc) not in seen]
        if self.shuffle:
            random.shuffle(docs)
        for reference in docs:
            yield Example(make_predicted(reference), reference)


def _has_data(path: Path) -> bool:
    """False for a folder without data files (e.g. no silver documents in a small sample)."""
    return not path.is_dir() or any(p.suffix in (DOCBIN_SUFFIX, JSONL_SUFFIX) for p in path.rglob("*"))


def _doc_id(doc: Doc) -> Optional[str]:
    return (doc._.dgemma_hipe or {}).get("document_id")


@registry.readers("spacy_dgemma.HipeCorpus.v1")
def create_hipe_corpus(
    path: Optional[Path],
    limit: int = 0,
    shuffle: bool = False,
    silver_path: Optional[Path] = None,
    silver_weight: float = 1.0,
) -> Callable[[Language], Iterator[Example]]:
    """Read HIPE-2026 data (DocBin or JSONL, file or folder) as training/evaluation Examples.

    path: file or folder.
    limit: at most this many documents per path (0: all).
    shuffle: shuffle the documents on each pass.
    silver_path: optional silver documents (file or folder), added at `silver_weight`;
        documents whose id is in `path` are skipped.
    silver_weight: their loss weight (0: not read).
    """
    return HipeCorpus(path, limit=limit, shuffle=shuffle, silver_path=silver_path, silver_weight=silver_weight)
