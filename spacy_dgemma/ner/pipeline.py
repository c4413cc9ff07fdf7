"""Putting the recogniser into a relations pipeline, and reading raw-text or HIPE inputs for it."""
import copy
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from spacy_dgemma.errors import Errors, InputError

RELATIONS_FACTORY = "dgemma_relations"
NER_NAME = "ner"


def add_recogniser(nlp: Language, ner_model: Union[str, Path], name: str = NER_NAME, tokenizer: bool = True) -> Language:
    """Source the trained recogniser of `ner_model` into `nlp`, before its relation component:
    its ``ner`` and every component after it (``dgemma_propagate_entities``; in an ensemble
    from `dgemma ner ensemble`, the other members and their vote).

    A shared tok2vec is copied into each component that listens to it (``replace_listeners``),
    so that the recogniser runs on its own whatever else the pipeline has.
    nlp: the pipeline (changed in place and returned).
    ner_model: a pipeline with an ``ner`` component (e.g. ``training/ner/ensemble``).
    name: the name of the first ``ner`` component in `nlp`.
    tokenizer: also take the recogniser's tokenizer (`use_tokenizer_of`), so that raw text is
        tokenized as the recogniser was trained (OCR forms, words run together).
    RAISES: InputError (E235) if `nlp` already has a component `name`; see `standalone_recogniser`.
    """
    if name in nlp.pipe_names:
        raise InputError.of("E235", str(ner_model), name=name)
    source = standalone_recogniser(ner_model)
    relations = [n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == RELATIONS_FACTORY]
    position = {"before": relations[0]} if relations else {}
    share_vectors(nlp, source)
    if tokenizer:
        use_tokenizer_of(nlp, source)
    nlp.add_pipe("ner", name=name, source=source, **position)
    # The components after the NER that work on its entities come along (a standalone tok2vec does not).
    for after in source.pipe_names[source.pipe_names.index("ner") + 1 :]:
        if after not in nlp.pipe_names and source.get_pipe_meta(after).factory != "tok2vec":
            nlp.add_pipe(after, source=source, **position)
    return nlp


def load_recogniser(model: Union[str, Path]) -> Language:
    """`spacy.load(model)`; RAISES: InputError (E244) if it cannot be loaded."""
    try:
        return spacy.load(model)
    except (OSError, ValueError) as err:
        raise InputError.of("E244", str(model), detail=str(err).splitlines()[0]) from err


def standalone_recogniser(ner_model: Union[str, Path]) -> Language:
    """`ner_model` loaded, with every shared tok2vec copied into the components listening to it.

    RAISES: InputError (E244) if it cannot be loaded, (E236) if it has no ``ner`` component.
    """
    source = load_recogniser(ner_model)
    if "ner" not in source.pipe_names:
        raise InputError.of("E236", str(ner_model), model=str(ner_model), pipes=", ".join(source.pipe_names) or "none")
    for tok2vec in [n for n in source.pipe_names if source.get_pipe_meta(n).factory == "tok2vec"]:
        listening = list(getattr(source.get_pipe(tok2vec), "listening_components", []))
        for component in listening:
            source.replace_listeners(tok2vec, component, ["model.tok2vec"])
    return source


def use_tokenizer_of(nlp: Language, source: Language) -> None:
    """Give `nlp` the tokenizer of `source` (object and config, so that it is saved and reloaded)."""
    nlp.tokenizer = source.tokenizer
    nlp.config["nlp"]["tokenizer"] = copy.deepcopy(dict(source.config["nlp"]["tokenizer"]))


def share_vectors(nlp: Language, source: Language) -> None:
    """Give `nlp` the static vectors of `source` (the recogniser's name-list features), which
    sourcing a component does not copy.

    RAISES: InputError (E237) if `nlp` has other vectors of its own.
    """
    if not len(source.vocab.vectors) or source.vocab.vectors is nlp.vocab.vectors:
        return
    if len(nlp.vocab.vectors) and nlp.vocab.vectors.to_bytes() != source.vocab.vectors.to_bytes():
        raise InputError.of("E237", "--ner")
    nlp.vocab.vectors = source.vocab.vectors


def read_inputs(paths: Iterable[Union[str, Path]], nlp: Language) -> Iterator[Doc]:
    """Docs to annotate: HIPE-2026 records from ``.jsonl`` files, one Doc per ``.txt`` file.

    A raw-text Doc records its file name in ``doc.user_data["source"]``.
    RAISES: InputError (E238) for another suffix.
    """
    from spacy_dgemma.hipe.read import DocMaker, iter_records, record_to_doc

    make_doc = DocMaker(nlp)
    for path in paths:
        path = Path(path)
        if path.suffix == ".jsonl":
            for item in iter_records([path]):
                yield record_to_doc(item.record, make_doc=make_doc)
        elif path.suffix == ".txt":
            doc = nlp.make_doc(path.read_text(encoding="utf8").strip())
            doc.user_data["source"] = path.name
            yield doc
        else:
            raise InputError.of("E238", str(path), suffix=path.suffix)


def set_grouper(nlp: Language, grouper: str = "spacy_dgemma.group_mentions.v1", max_pairs: Optional[int] = None) -> None:
    """Make the relation component group raw-text mentions with a registered grouping function.

    Replaces the component's candidate-pair function in memory (the saved config is not
    changed; for a package, set ``[components.dgemma_relations.candidates.grouper]``).
    max_pairs: cap on pairs per document (default: the component's configured cap).
    RAISES: ValueError (E021) if `nlp` has no relation component.
    """
    from spacy.util import registry

    names = [n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == RELATIONS_FACTORY]
    if not names:
        raise ValueError(Errors.E021.format(model=nlp.meta.get("name", "nlp"), pipes=", ".join(nlp.pipe_names) or "none"))
    name = names[0]
    # The component's own settings (cap, entity labels) are kept; only the grouper (and the cap, if given) change.
    settings = {k: v for k, v in nlp.config["components"][name].get("candidates", {}).items() if k not in ("@misc", "grouper")}
    if max_pairs is not None:
        settings["max_pairs"] = max_pairs
    make = registry.misc.get("spacy_dgemma.pair_candidates.v1")
    nlp.get_pipe(name).candidates = make(**settings, grouper=registry.misc.get(grouper)())
