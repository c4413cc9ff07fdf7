"""Raw text for `spacy pretrain`: the training documents' text, in pieces the JSONL reader keeps.

`spacy.JsonlCorpus.v1` skips texts longer than its `max_length` (in tokens), and newspaper pages
run to thousands; so each document is cut at line ends (or sentence starts, for documents
without line ends) into pieces of at most `max_tokens` tokens.
"""
from typing import Iterable, Iterator, List

from spacy.tokens import Doc

DEFAULT_MAX_TOKENS = 300


def pretraining_texts(docs: Iterable[Doc], max_tokens: int = DEFAULT_MAX_TOKENS) -> Iterator[str]:
    """Yield the text of `docs` in consecutive pieces of at most `max_tokens` tokens."""
    for doc in docs:
        start = 0
        for end in _cut_points(doc, max_tokens):
            text = doc[start:end].text.strip()
            if text:
                yield text
            start = end


def _cut_points(doc: Doc, max_tokens: int) -> List[int]:
    """Token offsets ending each piece: the last break before the limit, or the limit itself."""
    breaks = {t.i for t in doc if t.is_space and "\n" in t.text}
    if not breaks and doc.has_annotation("SENT_START"):
        breaks = {sent.start for sent in doc.sents}
    cuts: List[int] = []
    start = 0
    while len(doc) - start > max_tokens:
        limit = start + max_tokens
        candidates = [i for i in range(limit, start, -1) if i in breaks]
        end = candidates[0] if candidates else limit
        cuts.append(end)
        start = end
    cuts.append(len(doc))
    return cuts
