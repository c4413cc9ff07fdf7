"""Licence terms of the models the LLM stages write.

Three sets of terms meet in a trained model: the code (spacy-dgemma, MIT), the base model's
weights (a Gemma model's weights and everything derived from them fall under Google's Gemma
terms, as published on the model's hub page), and the training data (HIPE-2026, CC BY-NC-SA 4.0:
models trained on it inherit the non-commercial share-alike terms).
"""
from pathlib import Path
from typing import Union

from spacy_dgemma.util import AtomicWriter

CODE_LICENCE = "MIT"
GEMMA_TERMS = "Gemma Terms of Use (https://ai.google.dev/gemma/terms)"
HIPE_DATA_LICENCE = "CC BY-NC-SA 4.0"


def model_licence(base_model: str, trained_on_hipe: bool = True) -> str:
    """The licence line of a model derived from `base_model` (for meta.json and model cards).

    base_model: hub name or path of the base model whose weights the model derives from.
    trained_on_hipe: whether HIPE-2026 data trained it (SFT, traces or distillation).
    """
    weights = GEMMA_TERMS if "gemma" in str(base_model).lower() else f"the licence of {base_model}"
    parts = [f"weights: {weights}"]
    if trained_on_hipe:
        parts.append(f"trained on HIPE-2026 data: {HIPE_DATA_LICENCE}")
    parts.append(f"code (spacy-dgemma): {CODE_LICENCE}")
    return "; ".join(parts)


def write_model_card(folder: Union[str, Path], base_model: str, what: str, trained_on_hipe: bool = True) -> Path:
    """Write a ``README.md`` model card with the licence terms into a saved model folder.

    folder: the saved model. base_model: the model it derives from.
    what: one line saying what the model is (e.g. "the teacher with its QLoRA adapter merged, bf16").
    trained_on_hipe: whether HIPE-2026 data trained it.
    RETURNS (Path): the card.
    """
    path = Path(folder) / "README.md"
    with AtomicWriter(path) as out:
        out.write(
            "---\nlicense: other\nlicense_name: gemma-and-cc-by-nc-sa-4.0\n"
            f"base_model: {base_model}\nlibrary_name: transformers\n---\n\n"
            f"# {Path(folder).name}\n\n{what}, written by spacy-dgemma from `{base_model}`.\n\n"
            f"Licence: {model_licence(base_model, trained_on_hipe)}.\n"
        )
    return path
