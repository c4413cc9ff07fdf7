"""Tiny Gemma-4-architecture models for the LLM tests, built once per test session (no downloads).

The tokenizer is trained on the conftest articles plus, when the shared data sits beside the
repository (``../shared/hipe2026``), the English gold train text.
"""
import json
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import HIPE_RECORDS

SHARED_EN_TRAIN = Path(__file__).resolve().parents[1] / ".." / "shared" / "hipe2026" / "newspapers" / "HIPE-2026-v1.0-impresso-train-en.jsonl"
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
        tokenizer = train_tokenizer(training_texts(), base / "tokenizer", vocab_size=1024)
        for i, kind in enumerate(("teacher", "student")):
            build_tiny_model(kind, tokenizer, base / kind, seed=i)
        _BUILT[key] = base
    return {"tokenizer": base / "tokenizer", "teacher": base / "teacher", "student": base / "student"}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Dict[str, Path]:
    return build(tmp_path_factory.getbasetemp() / "tiny-gemma4")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small models on an oversubscribed CPU run many times faster on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
