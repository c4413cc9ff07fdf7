"""The recogniser's training reader: the HIPE-2022 DocBin plus, optionally, the partial HIPE-2026 one."""
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Corpus, Example
from spacy.util import registry

from spacy_dgemma.errors import InputError
from spacy_dgemma.ner.hipe2022 import USER_DATA_KEY


class SpanKeepingCorpus(Corpus):
    """spaCy's ``Corpus`` whose sentences of long documents keep the span groups inside them
    (``Span.as_doc`` drops them), so that the negative examples (``incorrect_spans``) survive;
    documents of the languages in `repeat` are read that many times."""

    def __init__(self, path: Union[str, Path], *, repeat: Optional[Dict[str, int]] = None, **kwargs) -> None:
        super().__init__(path, **kwargs)
        self.repeat = dict(repeat or {})

    def make_examples(self, nlp: Language, reference_docs: Iterable[Doc]) -> Iterator[Example]:
        for reference in reference_docs:
            if len(reference) == 0:
                continue
            language = reference.user_data.get(USER_DATA_KEY, {}).get("language")
            for _ in range(self.repeat.get(language, 1)):
                if self.max_length == 0 or len(reference) < self.max_length:
                    yield self._make_example(nlp, reference, False)
                elif reference.has_annotation("SENT_START"):
                    for sent in reference.sents:
                        if 0 < len(sent) < self.max_length:
                            yield self._make_example(nlp, sentence_doc(sent), False)


def sentence_doc(sent: Span) -> Doc:
    """``sent.as_doc()`` with the spans of the Doc's span groups that lie within the sentence."""
    doc = sent.as_doc()
    for key, group in sent.doc.spans.items():
        doc.spans[key] = [
            Span(doc, span.start - sent.start, span.end - sent.start, label=span.label_, kb_id=span.kb_id_)
            for span in group
            if span.start >= sent.start and span.end <= sent.end
        ]
    return doc


@registry.readers("spacy_dgemma.NerCorpus.v1")
def create_ner_corpus(
    path: Union[str, Path],
    partial_path: Optional[Union[str, Path]] = None,
    max_length: int = 0,
    limit: int = 0,
    repeat: Optional[Dict[str, int]] = None,
) -> Callable[[Language], Iterator[Example]]:
    """spaCy's ``Corpus`` over `path`, followed by one over `partial_path` when it is set.

    path: ``train.spacy`` from `dgemma ner convert`.
    partial_path: ``partial-train.spacy`` (``convert-ner --partial``): documents whose unlisted
        tokens are missing, not "outside"; None: HIPE-2022 only.
    max_length, limit: as for ``spacy.Corpus.v1`` (long documents are split into sentences,
        which keep their span groups).
    repeat: language → how many times its documents are read in an epoch (default once).
    RAISES: InputError (E246) when `partial_path` does not exist.
    """
    corpora = [SpanKeepingCorpus(path, max_length=max_length, limit=limit, repeat=repeat)]
    if partial_path is not None:
        if not Path(partial_path).exists():
            raise InputError.of("E246", str(partial_path), what="paths.partial (set it to null to train on HIPE-2022 only)")
        corpora.append(SpanKeepingCorpus(partial_path, max_length=max_length, limit=limit, repeat=repeat))

    def read(nlp: Language) -> Iterator[Example]:
        for corpus in corpora:
            yield from corpus(nlp)

    return read
