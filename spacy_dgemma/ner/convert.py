"""HIPE-2022 TSV files → DocBins for ``spacy train``: a training part and a held-out part, by document.

The held-out documents of the dev files are also written back as TSV files (``heldout-dev/``,
the original lines), the input of the raw-text evaluation (`evaluate.evaluate_raw_text`) and of
``../shared/tools/ner_eval.py``.
"""
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Collection, Dict, Iterable, List, Mapping, Set

import spacy
from spacy.tokens import Doc, DocBin

from spacy_dgemma.errors import InputError
from spacy_dgemma.ner.hipe2022 import (
    DEFAULT_LABEL_MAP,
    USER_DATA_KEY,
    document_blocks,
    is_unannotated,
    read_hipe2022_docs,
)
from spacy_dgemma.ner.partial import partial_docs
from spacy_dgemma.tokenizer import OCR_TOKENIZER
from spacy_dgemma.util import AtomicWriter, stable_fraction

logger = logging.getLogger("spacy_dgemma")

DEFAULT_HELDOUT_FRACTION = 0.25
HELDOUT_DEV_DIR = "heldout-dev"
# HIPE-2022 dev files: HIPE-2022-v2.1-newseye-dev-de.tsv, HIPE-2022-v2.1-newseye-dev2-fr.tsv, ...
DEV_FILE = re.compile(r"-dev\d*-[a-z]{2}\.tsv$")


def is_heldout(document_id: str, fraction: float = DEFAULT_HELDOUT_FRACTION) -> bool:
    """Whether a document belongs to the held-out part: `stable_fraction` of its id, not chance."""
    return stable_fraction(document_id) < fraction


def tsv_files(path: Path) -> List[Path]:
    """The HIPE-2022 .tsv files of a folder (sorted), or the file itself.

    RAISES: InputError (E233) when there are none.
    """
    path = Path(path)
    files = sorted(path.glob("*.tsv")) if path.is_dir() else [path]
    if not files or not all(f.is_file() and f.suffix == ".tsv" for f in files):
        raise InputError.of("E233", str(path))
    return files


def convert_hipe2022(
    paths: Iterable[Path],
    output_dir: Path,
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
    lang: str = "xx",
    label_map: Mapping[str, str] = DEFAULT_LABEL_MAP,
    skip_unannotated: bool = True,
    hold_out_ids: Collection[str] = (),
    partial_records: Iterable[dict] = (),
) -> Dict[str, Counter]:
    """Write ``train.spacy``, ``heldout.spacy``, ``heldout-sample.spacy``, ``{train,heldout}-{lang}.spacy``
    and ``heldout-dev/*.tsv``.

    With `partial_records`, also ``partial-train.spacy``: the HIPE-2026 documents that are in none of
    the TSV files nor in `hold_out_ids`, with their pairs' mentions as entities (`partial_docs`).

    paths: HIPE-2022 TSV files.
    output_dir: where the DocBins, ``heldout.tsv`` (file, document id of each held-out document),
        ``unannotated.tsv`` and ``heldout-dev/`` (the held-out documents of each dev file, as TSV)
        are written.
    heldout_fraction: share of documents held out (`is_heldout`).
    lang: language of the blank pipeline whose vocab/tokenizer the Docs use.
    label_map: coarse type → entity label (unmapped types are outside).
    skip_unannotated: leave out long documents without any entity tag (`is_unannotated`),
        listed in ``unannotated.tsv``.
    hold_out_ids: document ids always put in the held-out part (e.g. the HIPE-2026 dev documents,
        so that raw-text relation scores on dev are not flattered by NER training on them).
    partial_records: HIPE-2026 records (train, sandbox) whose mentions add partially annotated
        training documents; records from HIPE-2022 test files are never used.
    RETURNS: per part ("train"/"heldout"/"partial"), counts of documents, words and entities by language.
    """
    paths = sorted(Path(p) for p in paths)
    if not paths:
        raise InputError.of("E233", "--input")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # The HIPE-2026 texts are tokenised as the recogniser's configs tokenise at training time,
    # so that mentions in glued words ("Napoléon.13", "nachWien") can be placed.
    nlp = spacy.blank(lang, config={"nlp": {"tokenizer": {"@tokenizers": OCR_TOKENIZER}}})
    parts: Dict[str, List[Doc]] = {"train": [], "heldout": []}
    heldout_ids: List[str] = []
    heldout_by_file: Dict[str, Set[str]] = {}
    stats: Dict[str, Counter] = {"train": Counter(), "heldout": Counter()}
    skipped: List[str] = []
    seen_ids = set(hold_out_ids)
    for doc in read_hipe2022_docs(paths, nlp.vocab, label_map):
        meta = doc.user_data[USER_DATA_KEY]
        seen_ids.add(meta["document_id"])
        if skip_unannotated and is_unannotated(doc):
            skipped.append(f"{meta['path']}\t{meta['document_id']}")
            continue
        held = meta["document_id"] in hold_out_ids or is_heldout(meta["document_id"], heldout_fraction)
        part = "heldout" if held else "train"
        parts[part].append(doc)
        if part == "heldout":
            heldout_ids.append(f"{meta['path']}\t{meta['document_id']}")
            heldout_by_file.setdefault(meta["path"], set()).add(meta["document_id"])
        _count(stats[part], doc)
    partial = list(partial_docs(nlp, partial_records, skip_ids=seen_ids))
    if partial:
        stats["partial"] = Counter()
        for doc in partial:
            _count(stats["partial"], doc)
        _write(partial, output_dir / "partial-train.spacy")
    for part, docs in parts.items():
        _write(docs, output_dir / f"{part}.spacy")
        for language in sorted({d.user_data[USER_DATA_KEY]["language"] for d in docs}):
            subset = [d for d in docs if d.user_data[USER_DATA_KEY]["language"] == language]
            _write(subset, output_dir / f"{part}-{language}.spacy")
    # A quarter of the held-out documents, for the evaluations during training (they are slow).
    _write(parts["heldout"][::4], output_dir / "heldout-sample.spacy")
    write_heldout_tsv([p for p in paths if DEV_FILE.search(p.name)], heldout_by_file, output_dir / HELDOUT_DEV_DIR)
    with AtomicWriter(output_dir / "heldout.tsv") as out:
        out.write("".join(f"{line}\n" for line in heldout_ids))
    with AtomicWriter(output_dir / "unannotated.tsv") as out:
        out.write("".join(f"{line}\n" for line in skipped))
    return stats


def write_heldout_tsv(paths: Iterable[Path], heldout_by_file: Mapping[str, Collection[str]], output_dir: Path) -> List[Path]:
    """For each TSV file with held-out documents, a file of the same name in `output_dir` holding
    its header and those documents, line for line as in the original.

    RETURNS: the files written.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for stale in output_dir.glob("*.tsv"):
        stale.unlink()
    written = []
    for path in paths:
        ids = heldout_by_file.get(Path(path).name)
        if not ids:
            continue
        header, blocks = document_blocks(path)
        with AtomicWriter(output_dir / Path(path).name) as out:
            out.write("".join(header))
            for doc_id, lines in blocks:
                if doc_id in ids:
                    out.write("".join(lines))
        written.append(output_dir / Path(path).name)
    return written


def _count(counts: Counter, doc: Doc) -> None:
    """Add a Doc's documents, words and entities to `counts`, by language."""
    language = doc.user_data[USER_DATA_KEY]["language"] or "unknown"
    counts[f"{language} docs"] += 1
    counts[f"{language} words"] += sum(not t.is_space for t in doc)
    for ent in doc.ents:
        counts[f"{language} {ent.label_}"] += 1


def _write(docs: List[Doc], path: Path) -> None:
    docbin = DocBin(attrs=["ORTH", "SPACY", "SENT_START", "ENT_IOB", "ENT_TYPE", "ENT_KB_ID"], store_user_data=True)
    for doc in docs:
        docbin.add(doc)
    with AtomicWriter(path, "wb") as out:
        out.write(docbin.to_bytes())
    logger.info("Wrote %d docs to %s", len(docs), path)
