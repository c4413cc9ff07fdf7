"""HIPE-2022 TSV files → DocBins for ``spacy train``: a training part and a held-out part, by document."""
import hashlib
import logging
from collections import Counter
from pathlib import Path
from typing import Collection, Dict, Iterable, List, Mapping

import spacy
from spacy.tokens import Doc, DocBin

from spacy_dgemma.ner.hipe2022 import DEFAULT_LABEL_MAP, USER_DATA_KEY, is_unannotated, read_docs
from spacy_dgemma.ner.partial import partial_docs
from spacy_dgemma.tokenizer import TOKENIZER

logger = logging.getLogger("spacy_dgemma")

DEFAULT_HELDOUT_FRACTION = 0.25


def is_heldout(document_id: str, fraction: float = DEFAULT_HELDOUT_FRACTION) -> bool:
    """Whether a document belongs to the held-out part: a stable hash of its id, not chance."""
    digest = hashlib.sha256(document_id.encode("utf8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def convert_hipe2022(
    paths: Iterable[Path],
    output_dir: Path,
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
    lang: str = "xx",
    label_map: Mapping[str, str] = DEFAULT_LABEL_MAP,
    rejoin_hyphens: bool = True,
    skip_unannotated: bool = True,
    hold_out_ids: Collection[str] = (),
    partial_records: Iterable[dict] = (),
) -> Dict[str, Counter]:
    """Write ``train.spacy``, ``heldout.spacy``, ``heldout-sample.spacy`` and ``{train,heldout}-{lang}.spacy``.

    With `partial_records`, also ``partial-train.spacy``: the HIPE-2026 documents that are in none of
    the TSV files nor in `hold_out_ids`, with their pairs' mentions as entities (`partial_docs`).

    paths: HIPE-2022 TSV files.
    output_dir: where the DocBins and ``heldout.tsv`` (file, document id of each held-out
        document) are written.
    heldout_fraction: share of documents held out (by a hash of the document id).
    lang: language of the blank pipeline whose vocab/tokenizer the Docs use.
    label_map: coarse type → entity label (unmapped types are dropped).
    rejoin_hyphens: rejoin words hyphenated across a line end.
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
        raise ValueError("No HIPE-2022 .tsv files given; point --input at ../shared/hipe2022-ner")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # The HIPE-2026 texts (the TSV documents come tokenised) are tokenised as training/ner.cfg
    # tokenises at training time, so that mentions in glued words ("Napoléon.13") can be placed.
    nlp = spacy.blank(lang, config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER, "split_glued": True}}})
    parts: Dict[str, List[Doc]] = {"train": [], "heldout": []}
    heldout_ids: List[str] = []
    stats: Dict[str, Counter] = {"train": Counter(), "heldout": Counter()}
    skipped: List[str] = []
    seen_ids = set(hold_out_ids)
    for doc in read_docs(paths, nlp.vocab, label_map, rejoin_hyphens):
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
    (output_dir / "heldout.tsv").write_text("\n".join(heldout_ids) + "\n", encoding="utf8")
    (output_dir / "unannotated.tsv").write_text("".join(f"{s}\n" for s in skipped), encoding="utf8")
    return stats


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
    docbin.to_disk(path)
    logger.info("Wrote %d docs to %s", len(docs), path)
