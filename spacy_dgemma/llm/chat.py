"""Chat-template rendering and segment-wise tokenisation of prompts.

A prompt is rendered with the model's own chat template, then tokenised in two segments: the
shared document prefix (template start + document part) and the pair suffix (pair part + the
template's end of turn and generation prompt). Training, annotation and the generative student
all use these same token ids, so the document prefix's key/value cache computed once is exactly
what the one-prompt-per-pair path computes.

Gemma 4 templates come in two variants: the small models' (E2B/E4B) generation prompt is
``<|turn>model\\n``; the large models' (26B-A4B/31B) adds an empty, closed thought channel
``<|channel>thought\\n<channel|>`` when thinking is off, which an assistant turn in the history
does not carry. A training example is therefore the prompt exactly as generation sees it (the
channel included) followed by the assistant turn's text from the response on.
"""
import os
from typing import Dict, List, Tuple

from spacy_dgemma.errors import Errors
from spacy_dgemma.llm.prompts import Prompt


def _render(tokenizer, messages: List[Dict[str, str]], add_generation_prompt: bool) -> str:
    """The chat template's text for `messages`, with thinking off (the answer is the reasoning)."""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt, enable_thinking=False
    )


def render_prompt(tokenizer, prompt: Prompt) -> Tuple[str, str]:
    """The chat-formatted prompt as (document prefix, pair suffix) strings.

    tokenizer: a tokenizer with a chat template.
    prompt: the user message and where its pair part starts.
    RETURNS (Tuple[str, str]): the text up to the pair part, and the rest (generation prompt included).
    """
    messages = [{"role": "user", "content": prompt.content}]
    rendered = _render(tokenizer, messages, add_generation_prompt=True)
    at = rendered.find(prompt.content)
    offset = prompt.pair_offset
    if at == -1:
        # Templates may trim the message (Gemma's do); the pair part then starts that much earlier.
        core = prompt.content.strip()
        at = rendered.find(core) if core else -1
        offset -= len(prompt.content) - len(prompt.content.lstrip())
    if at == -1 or offset < 0:
        raise ValueError(Errors.E154)
    split = at + offset
    return rendered[:split], rendered[split:]


def _ids(tokenizer, text: str) -> List[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_prompt(tokenizer, prompt: Prompt) -> Tuple[List[int], List[int]]:
    """Token ids of the document prefix and of the pair suffix."""
    prefix, suffix = render_prompt(tokenizer, prompt)
    return _ids(tokenizer, prefix), _ids(tokenizer, suffix)


def response_text(tokenizer, prompt: Prompt, response: str) -> str:
    """What the model writes after the generation prompt for an assistant `response`.

    When the template renders an assistant turn as the generation prompt + the response, this is
    the rest of that rendering (the response and the end of turn). When the generation prompt
    extends the assistant turn's opening (an empty thought channel), it is the assistant turn's
    text from the response on: the model sees the channel in its prompt and writes the rest.
    RETURNS (str): the response followed by the template's end-of-turn text.
    """
    user = [{"role": "user", "content": prompt.content}]
    head = _render(tokenizer, user, add_generation_prompt=True)
    full = _render(tokenizer, user + [{"role": "assistant", "content": response}], add_generation_prompt=False)
    if full.startswith(head):
        return full[len(head) :]
    common = len(os.path.commonprefix([head, full]))
    core = response.strip()
    at = full.find(core, common) if core else common
    # Everything the history turn writes before the response must also be in the generation
    # prompt; otherwise training and generation would disagree on what precedes the answer.
    if at == -1 or full[common:at].strip():
        raise ValueError(Errors.E155.format(extension=head[common:], turn=full[common : common + 80]))
    return full[at:]


def encode_example(tokenizer, prompt: Prompt, response: str) -> Tuple[List[int], List[int]]:
    """Input ids and labels of a training example: the loss is on the response tokens only.

    The prompt ids are those of generation (``encode_prompt``); the response includes the
    template's end-of-turn token, so the model learns to stop.
    RETURNS (Tuple[List[int], List[int]]): input ids, and labels (-100 on the prompt).
    """
    prefix, suffix = encode_prompt(tokenizer, prompt)
    answer = _ids(tokenizer, response_text(tokenizer, prompt, response))
    input_ids = prefix + suffix + answer
    labels = [-100] * (len(prefix) + len(suffix)) + answer
    return input_ids, labels
