"""Several recognisers vote: an entity is kept when most of them found it, same words and type.

Recognisers trained alike from different seeds make different mistakes. Each member ``ner``
is followed by ``dgemma_collect_entities``, which moves its entities into a span group and
clears ``doc.ents`` for the next member; ``dgemma_vote_entities`` then keeps the spans that at
least `min_votes` members found, most votes first, then longer spans, never two overlapping.
Three seeds voting beat each of them alone on the held-out documents (docs/experiments/).

`build_ensemble` puts trained recognisers into one pipeline directory, which loads with
``spacy.load`` and goes into a relations pipeline like a single recogniser.
"""
import configparser
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import load_config

from spacy_dgemma.errors import Errors, InputError
from spacy_dgemma.ner.pipeline import standalone_recogniser

VOTES_KEY = "entity_votes"
COLLECT_FACTORY = "dgemma_collect_entities"
VOTE_FACTORY = "dgemma_vote_entities"
Vote = Tuple[str, int, int]  # label, start token, end token


@Language.factory(COLLECT_FACTORY, default_config={"key": VOTES_KEY})
def make_collect_entities(nlp: Language, name: str, key: str) -> "CollectEntities":
    """key: the span group that gathers the members' entities."""
    return CollectEntities(key)


@Language.factory(VOTE_FACTORY, default_config={"key": VOTES_KEY, "min_votes": 2, "keep_votes": False})
def make_vote_entities(nlp: Language, name: str, key: str, min_votes: int, keep_votes: bool) -> "VoteEntities":
    """key: the span group filled by the ``dgemma_collect_entities`` components.
    min_votes: how many members must find an entity (same tokens and label) for it to be kept.
    keep_votes: leave the span group on the Doc (to inspect the members); dropped by default."""
    return VoteEntities(key, min_votes, keep_votes)


class CollectEntities:
    """Moves ``doc.ents`` into ``doc.spans[key]`` (added to what is there) and clears them, so the
    next recogniser starts afresh instead of keeping the previous one's entities as preset."""

    def __init__(self, key: str = VOTES_KEY):
        self.key = key

    def __call__(self, doc: Doc) -> Doc:
        gathered = list(doc.spans[self.key]) if self.key in doc.spans else []
        doc.spans[self.key] = gathered + list(doc.ents)
        doc.set_ents([], default="missing")
        return doc


class VoteEntities:
    """Sets ``doc.ents`` to the entities that at least `min_votes` members found (see the module docstring)."""

    def __init__(self, key: str = VOTES_KEY, min_votes: int = 2, keep_votes: bool = False):
        if min_votes < 1:
            raise ValueError(Errors.E242.format(option="min_votes", low=1, high="the number of members", value=min_votes))
        self.key = key
        self.min_votes = min_votes
        self.keep_votes = keep_votes

    def __call__(self, doc: Doc) -> Doc:
        candidates = [(span.label_, span.start, span.end) for span in doc.spans[self.key]] if self.key in doc.spans else []
        chosen = choose_entities(candidates, self.min_votes)
        doc.ents = [Span(doc, start, end, label=label) for label, start, end in chosen]
        if not self.keep_votes and self.key in doc.spans:
            del doc.spans[self.key]
        return doc


def choose_entities(candidates: Iterable[Vote], min_votes: int) -> List[Vote]:
    """The non-overlapping (label, start, end) with at least `min_votes` votes, in text order.

    Each occurrence in `candidates` is one vote. Most votes win an overlap, then the longer
    span, then the earlier one.
    """
    votes = Counter(candidates)
    ranked = sorted(votes.items(), key=lambda item: (-item[1], -(item[0][2] - item[0][1]), item[0][1], item[0][0]))
    chosen: List[Vote] = []
    taken = set()
    for (label, start, end), n in ranked:
        if n < min_votes or any(i in taken for i in range(start, end)):
            continue
        chosen.append((label, start, end))
        taken.update(range(start, end))
    return sorted(chosen, key=lambda vote: vote[1])


def build_ensemble(models: Sequence[Union[str, Path]], output: Union[str, Path], min_votes: Optional[int] = None) -> Language:
    """One pipeline of trained recognisers voting, written to `output` and returned.

    Each model's ``ner`` gets its own copy of its tok2vec (``replace_listeners``) and is followed
    by ``dgemma_collect_entities``; then ``dgemma_vote_entities`` and the components that follow
    the first model's ``ner`` (``dgemma_propagate_entities``). The tokenizer and the static
    vectors are the first model's; all must have the same vectors.
    models: pipelines trained with ``training/ner.cfg`` (e.g. ``training/ner/seed-0/model-best``).
    output: a new folder, or one this function wrote before (it is replaced only when the new
        pipeline is written completely); any other existing folder is refused.
    min_votes: default, a majority (2 of 3).
    RAISES: InputError for no models (E239), an output folder that is not an ensemble (E241),
        `min_votes` out of range (E242), a model that cannot be loaded or has no ``ner``
        (E244, E236), or models with other vectors (E240).
    """
    output = Path(output)
    if not models:
        raise InputError.of("E239", "models")
    if min_votes is not None and not 1 <= min_votes <= len(models):
        raise InputError.of("E242", "--min-votes", option="--min-votes", low=1, high=len(models), value=min_votes)
    check_ensemble_folder(output)
    nlp = standalone_recogniser(models[0])
    for name in list(nlp.pipe_names):
        nlp.remove_pipe(name)
    vectors = nlp.vocab.vectors.to_bytes()
    after: List[Tuple[str, Language]] = []
    for i, model in enumerate(models):
        source = standalone_recogniser(model)
        if source.vocab.vectors.to_bytes() != vectors:
            raise InputError.of("E240", str(model), model=str(model), first=str(models[0]))
        suffix = f"_{i + 1}" if i else ""
        nlp.add_pipe("ner", name=f"ner{suffix}", source=source)
        nlp.add_pipe(COLLECT_FACTORY, name=f"{COLLECT_FACTORY}{suffix}")
        if i == 0:
            after = [(n, source) for n in source.pipe_names[source.pipe_names.index("ner") + 1 :]]
    majority = len(models) // 2 + 1
    nlp.add_pipe(VOTE_FACTORY, config={"min_votes": min_votes or majority})
    for name, source in after:
        nlp.add_pipe(name, source=source)
    nlp.meta["name"] = "ner_ensemble"
    nlp.meta["description"] = f"{len(models)} recognisers voting: " + ", ".join(str(m) for m in models)
    _write_folder(nlp, output)
    return nlp


def is_ensemble_folder(path: Union[str, Path]) -> bool:
    """Whether `path` holds a pipeline with a ``dgemma_vote_entities`` component (from `build_ensemble`)."""
    config_path = Path(path) / "config.cfg"
    if not config_path.is_file():
        return False
    try:
        components = load_config(config_path, interpolate=False).get("components", {})
    except (OSError, ValueError, configparser.Error):  # an unreadable config: not ours
        return False
    return any(isinstance(c, dict) and c.get("factory") == VOTE_FACTORY for c in components.values())


def check_ensemble_folder(output: Path) -> None:
    """Refuse an existing `output` that is neither an empty folder nor an earlier ensemble.

    RAISES: InputError (E241).
    """
    if not output.exists():
        return
    if output.is_dir() and (not any(output.iterdir()) or is_ensemble_folder(output)):
        return
    raise InputError.of("E241", str(output), marker=f"{VOTE_FACTORY} in its config.cfg")


def _write_folder(nlp: Language, output: Path) -> None:
    """`nlp.to_disk` into a fresh temporary folder beside `output`, then put it in `output`'s
    place, so that no file of an earlier pipeline stays and an interrupted write leaves the old
    one whole. Only the temporary folders and a checked earlier ensemble are ever removed."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.", suffix=".new"))
    try:
        nlp.to_disk(fresh)
        if output.exists():
            check_ensemble_folder(output)
            old = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.", suffix=".old"))
            old.rmdir()
            output.rename(old)
            fresh.rename(output)
            shutil.rmtree(old)
        else:
            fresh.rename(output)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh)
