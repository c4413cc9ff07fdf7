"""Tiny Gemma-4-architecture models for the LLM tests, built once per test session (no downloads).

The tokenizer is trained on the conftest articles plus, when the shared data sits beside the
repository (``../shared/hipe2026``), the English gold train text.
"""
import contextlib
import json
from pathlib import Path
from typing import Dict, List

import pytest

from tests.util import HIPE_RECORDS

SHARED_EN_TRAIN = Path(__file__).resolve().parents[2] / ".." / "shared" / "hipe2026" / "newspapers" / "HIPE-2026-v1.0-impresso-train-en.jsonl"
_BUILT: Dict[str, Path] = {}


def training_texts() -> List[str]:
    texts = [r["text"] for r in HIPE_RECORDS.values()]
    if SHARED_EN_TRAIN.exists():
        texts += [json.loads(line)["text"] for line in SHARED_EN_TRAIN.read_text(encoding="utf8").splitlines() if line.strip()]
    return texts


def build(base: Path) -> Dict[str, Path]:
    """Tokenizer + tiny teacher + tiny student under `base` (reused when already built)."""
    from spacy_dgemma.llm.tiny import build_tiny_model, train_tokenizer

    key = str(base)
    if key not in _BUILT:
        with _one_thread():
            tokenizer = train_tokenizer(training_texts(), base / "tokenizer", vocab_size=1024)
            for i, kind in enumerate(("teacher", "student")):
                build_tiny_model(kind, tokenizer, base / kind, seed=i)
        _BUILT[key] = base
    return {"tokenizer": base / "tokenizer", "teacher": base / "teacher", "student": base / "student"}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Dict[str, Path]:
    return build(tmp_path_factory.getbasetemp() / "tiny-gemma4")


@contextlib.contextmanager
def _one_thread():
    """Small models on an oversubscribed CPU run many times faster on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def one_torch_thread():
    with _one_thread():
        yield


ANSWER = '{"at_reasoning": "He came to the town.", "at": "TRUE", "isAt_reasoning": "It was long ago.", "isAt": "FALSE"}'


def train_to_answer(model_dir: Path, output_dir: Path, answer: str = ANSWER, steps: int = 60) -> Path:
    """Fine-tune all weights of a tiny model until it writes `answer` for the conftest prompts.

    A random model writes no JSON; this briefly teaches one well-formed answer so that the
    component's parse → explanation → label-token-score path can be tested.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from spacy_dgemma.llm.chat import encode_example
    from spacy_dgemma.llm.prompts import build_prompts, document_from_hipe

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    examples = [encode_example(tokenizer, p, answer) for r in HIPE_RECORDS.values()
                for p in build_prompts(document_from_hipe(r))[:2]]
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    with _one_thread():
        for step in range(steps):
            ids, labels = examples[step % len(examples)]
            loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    model.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    return output_dir


@pytest.fixture(scope="session")
def answering_student(tiny_models, tmp_path_factory) -> Path:
    return train_to_answer(tiny_models["student"], tmp_path_factory.mktemp("answering-student"))
