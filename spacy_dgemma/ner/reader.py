"""The recogniser's training reader: the HIPE-2022 DocBin plus, optionally, the partial HIPE-2026 one."""
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from spacy.language import Language
from spacy.training import Corpus, Example
from spacy.util import registry


@registry.readers("spacy_dgemma.NerCorpus.v1")
def create_ner_corpus(
    path: Union[str, Path],
    partial_path: Optional[Union[str, Path]] = None,
    max_length: int = 0,
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """spaCy's ``Corpus`` over `path`, followed by one over `partial_path` when it is set.

    path: ``train.spacy`` from `dgemma ner convert`.
    partial_path: ``partial-train.spacy`` (``convert-ner --partial``): documents whose unlisted
        tokens are missing, not "outside"; None: HIPE-2022 only.
    max_length, limit: as for ``spacy.Corpus.v1`` (long documents are split into sentences).
    """
    corpora = [Corpus(path, max_length=max_length, limit=limit)]
    if partial_path is not None:
        if not Path(partial_path).exists():
            raise ValueError(
                f"{partial_path}: no such file. Run `dgemma ner convert --partial FILE.jsonl` "
                "or set paths.partial = null"
            )
        corpora.append(Corpus(partial_path, max_length=max_length, limit=limit))

    def read(nlp: Language) -> Iterator[Example]:
        for corpus in corpora:
            yield from corpus(nlp)

    return read
