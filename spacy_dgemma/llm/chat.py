"""Chat-template rendering and segment-wise tokenisation of prompts.

A prompt is rendered with the model's own chat template, then tokenised in two segments: the
shared document prefix (template start + document part) and the pair suffix (pair part + the
template's end of turn and generation prompt). Training, annotation and the generative student
all use these same token ids, so the document prefix's key/value cache computed once is exactly
what the one-prompt-per-pair path computes.
"""
from typing import List, Tuple

from spacy_dgemma.llm.prompts import Prompt


def render_prompt(tokenizer, prompt: Prompt) -> Tuple[str, str]:
    """The chat-formatted prompt as (document prefix, pair suffix) strings."""
    messages = [{"role": "user", "content": prompt.content}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    at = rendered.find(prompt.content)
    if at == -1:
        raise ValueError(
            "The tokenizer's chat template changes the user message; cannot split the prompt into a "
            "document prefix and a pair suffix. Use a template that renders the content verbatim."
        )
    split = at + prompt.pair_offset
    return rendered[:split], rendered[split:]


def _ids(tokenizer, text: str) -> List[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_prompt(tokenizer, prompt: Prompt) -> Tuple[List[int], List[int]]:
    """Token ids of the document prefix and of the pair suffix."""
    prefix, suffix = render_prompt(tokenizer, prompt)
    return _ids(tokenizer, prefix), _ids(tokenizer, suffix)


def response_text(tokenizer, prompt: Prompt, response: str) -> str:
    """What the chat template appends after the generation prompt for an assistant `response`."""
    user = [{"role": "user", "content": prompt.content}]
    head = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": response}], tokenize=False)
    if not full.startswith(head):
        raise ValueError("The chat template renders the prompt differently with an assistant turn.")
    return full[len(head) :]


def encode_example(tokenizer, prompt: Prompt, response: str) -> Tuple[List[int], List[int]]:
    """Input ids and labels of a training example: the loss is on the response tokens only.

    The response includes the template's end-of-turn token, so the model learns to stop.
    """
    prefix, suffix = encode_prompt(tokenizer, prompt)
    answer = _ids(tokenizer, response_text(tokenizer, prompt, response))
    input_ids = prefix + suffix + answer
    labels = [-100] * (len(prefix) + len(suffix)) + answer
    return input_ids, labels
