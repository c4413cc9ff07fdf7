"""``spacy_dgemma.GenerativeStudent.v1``: a Hugging Face causal LM (e.g. the distilled Gemma 4
E2B student) as the relation model of ``dgemma_relations``.

For each Doc it renders one prompt per candidate pair (``llm/prompts.py``), reads the shared
document prefix once and decodes all pairs of the Doc in batches from its key/value cache
(``llm/generate.py``), parses the JSON answers (``llm/parse.py``) and returns one score row per
pair: the label probabilities read from the logits of the label tokens where the model wrote
them (one-hot where they cannot be read, e.g. after a parser fallback), plus the reasoning as
explanations.

Serialisation: the model is referenced, not stored. ``nlp.to_disk`` writes the config, which
holds ``name_or_path``; ``spacy.load`` rebuilds the model from it and loads the weights lazily on
first use. A relative ``name_or_path`` is resolved against the working directory, so give an
absolute path or a hub name for pipelines that move. The weights are loaded once per process
and shared by all pipes that name the same (path, dtype, device, attention) combination.

The model is not trainable inside ``spacy train``: fine-tune it with ``dgemma llm distill``.
"""
import logging
from typing import Dict, List, Tuple

import numpy
from spacy.util import registry
from thinc.api import Model

from spacy_dgemma.labels import SCORE_COLUMNS
from spacy_dgemma.ml.types import DocPairs, Explanation, RelationScores

logger = logging.getLogger("spacy_dgemma")
_LOADED: Dict[Tuple, Tuple[object, object]] = {}


@registry.architectures("spacy_dgemma.GenerativeStudent.v1")
def make_generative_student(
    name_or_path: str,
    dtype: str = "auto",
    device: str = "auto",
    batch_size: int = 8,
    max_new_tokens: int = 256,
    max_article_tokens: int = 6000,
    prompt_version: str = "relations.v1",
    attn_implementation: str = "sdpa",
) -> Model[List[DocPairs], RelationScores]:
    """A generative relation model.

    name_or_path: hub name or local directory of a causal LM with a chat template
        (e.g. the merged student written by ``dgemma llm distill``).
    dtype: "auto" (bf16 on CUDA, fp32 on CPU), "float32", "bfloat16" or "float16".
    device: "auto", "cpu", "cuda", ...
    batch_size: pairs of a document decoded together.
    max_new_tokens: generation limit per pair.
    max_article_tokens: article budget; longer articles are cut to windows around the mentions.
    prompt_version: prompt template version (``templates/{version}.*.jinja``).
    attn_implementation: "sdpa" or "eager" (the prefix-cached path passes explicit masks).
    """
    return Model(
        "generative_student",
        _forward,
        init=_init,
        attrs={
            "name_or_path": name_or_path,
            "dtype": dtype,
            "device": device,
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
            "max_article_tokens": max_article_tokens,
            "prompt_version": prompt_version,
            "attn_implementation": attn_implementation,
        },
    )


def get_labeller(model: Model):
    """The model's ``RelationLabeller`` (loads the weights on first call)."""
    from spacy_dgemma.llm.labeller import RelationLabeller
    from spacy_dgemma.llm.loading import load_model, load_tokenizer, resolve_device

    attrs = model.attrs
    device = resolve_device(attrs["device"])
    key = (str(attrs["name_or_path"]), attrs["dtype"], device, attrs["attn_implementation"])
    if key not in _LOADED:
        hf_model = load_model(attrs["name_or_path"], dtype=attrs["dtype"], device=device,
                              attn_implementation=attrs["attn_implementation"])
        _LOADED[key] = (hf_model, load_tokenizer(attrs["name_or_path"]))
    hf_model, tokenizer = _LOADED[key]
    return RelationLabeller(
        hf_model, tokenizer, prompt_version=attrs["prompt_version"],
        max_article_tokens=attrs["max_article_tokens"], max_new_tokens=attrs["max_new_tokens"],
        batch_size=attrs["batch_size"],
    )


def _init(model: Model, X=None, Y=None) -> Model:
    get_labeller(model)  # fail early on a wrong path, not in the middle of a corpus
    return model


def _forward(model: Model, doc_pairs: List[DocPairs], is_train: bool):
    from spacy_dgemma.llm.prompts import document_from_doc

    if is_train:
        raise NotImplementedError(
            "GenerativeStudent.v1 is not trained inside `spacy train`; fine-tune the student with "
            "`dgemma llm distill` and point `name_or_path` at the merged model."
        )
    labeller = get_labeller(model)
    rows: List[List[float]] = []
    explanations: List[Explanation] = []
    for doc, pairs in doc_pairs:
        if not pairs:
            continue
        for result in labeller.label_document(document_from_doc(doc, pairs)):
            rows.append(result.scores)
            explanations.append((result.parsed.at_reasoning, result.parsed.is_at_reasoning))
    logger.info("GenerativeStudent parse: %s", labeller.parse_stats.summary())
    scores = numpy.asarray(rows, dtype="f").reshape((-1, len(SCORE_COLUMNS)))
    output = RelationScores(model.ops.asarray2f(scores), explanations)

    def backprop(d_scores):
        raise NotImplementedError("GenerativeStudent.v1 has no gradient in spaCy; use `dgemma llm distill`.")

    return output, backprop
