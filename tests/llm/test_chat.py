"""The chat layer with both Gemma 4 template variants (tiny tokenizers built with each template)."""
import pytest

from spacy_dgemma.llm.chat import encode_example, encode_prompt, render_prompt, response_text
from spacy_dgemma.llm.prompts import Prompt, build_prompts, document_from_hipe
from spacy_dgemma.llm.tiny import chat_template
from tests.util import HIPE_RECORDS

# What the prompt ends in: the user turn's end, then the generation prompt of each variant.
PROMPT_END = {
    "small": "<turn|>\n<|turn>model\n",
    "large": "<turn|>\n<|turn>model\n<|channel>thought\n<channel|>",
}
RESPONSE = '{"at_reasoning": "He came.", "at": "TRUE", "isAt_reasoning": "Long ago.", "isAt": "FALSE"}'


def tokenizer_with(tiny_models, variant):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_models["tokenizer"]))
    tokenizer.chat_template = chat_template(variant)
    return tokenizer


@pytest.fixture(params=["small", "large"])
def variant_tokenizer(request, tiny_models):
    return request.param, tokenizer_with(tiny_models, request.param)


def test_tiny_models_carry_the_variant_of_their_real_counterpart(tiny_models):
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(tiny_models["teacher"])).chat_template == chat_template("large")
    assert AutoTokenizer.from_pretrained(str(tiny_models["student"])).chat_template == chat_template("small")
    assert chat_template("large") != chat_template("small")
    with pytest.raises(ValueError, match="E160"):
        chat_template("medium")


def test_prompt_ends_in_the_generation_prompt_of_each_variant(variant_tokenizer):
    variant, tokenizer = variant_tokenizer
    prompts = build_prompts(document_from_hipe(HIPE_RECORDS["en"]))
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    assert len({tuple(prefix) for prefix, _ in encoded}) == 1  # the document prefix is shared
    prefix, suffix = encoded[0]
    assert prefix[0] == tokenizer.bos_token_id
    assert tokenizer.decode(suffix).endswith(PROMPT_END[variant])
    assert tokenizer.decode(suffix).startswith("Person:")
    # The special tokens are single tokens, as in Gemma's vocabulary.
    for token in ("<|turn>", "<turn|>", "<|channel>", "<channel|>"):
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1


def test_training_example_is_the_generation_prompt_then_the_answer(variant_tokenizer):
    """The large template's generation prompt extends the assistant turn's opening with an
    empty thought channel; training must see the prompt exactly as generation does."""
    variant, tokenizer = variant_tokenizer
    prompt = build_prompts(document_from_hipe(HIPE_RECORDS["fr"]))[0]
    prefix, suffix = encode_prompt(tokenizer, prompt)
    input_ids, labels = encode_example(tokenizer, prompt, RESPONSE)
    n_prompt = len(prefix) + len(suffix)
    assert input_ids[:n_prompt] == prefix + suffix
    assert set(labels[:n_prompt]) == {-100} and labels[n_prompt:] == input_ids[n_prompt:]
    assert tokenizer.decode(labels[n_prompt:]) == RESPONSE + "<turn|>\n"
    assert tokenizer.decode(input_ids).endswith(PROMPT_END[variant] + RESPONSE + "<turn|>\n")
    assert response_text(tokenizer, prompt, RESPONSE) == RESPONSE + "<turn|>\n"


def test_thinking_on_opens_a_system_turn_and_drops_the_empty_channel(tiny_models):
    tokenizer = tokenizer_with(tiny_models, "large")
    messages = [{"role": "user", "content": "Hello"}]
    off = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    on = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=True)
    assert off == "<bos><|turn>user\nHello<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"
    assert on == "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\nHello<turn|>\n<|turn>model\n"
    with pytest.raises(Exception, match="user and assistant turns only"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_trimmed_message_still_splits_at_the_pair_part(tiny_models):
    tokenizer = tokenizer_with(tiny_models, "small")
    content = "  Document text.\n\nPerson: A\nPlace: B\n"
    prompt = Prompt(content, content.index("Person:"))
    prefix, suffix = render_prompt(tokenizer, prompt)
    assert prefix.endswith("Document text.\n\n") and suffix.startswith("Person: A")


def test_a_history_turn_unlike_the_generation_prompt_is_refused(tiny_models):
    tokenizer = tokenizer_with(tiny_models, "small")
    # A template whose assistant turns in the history carry a header the generation prompt lacks.
    tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}<|turn>user\n{{ m.content }}<turn|>\n"
        "{% else %}<|turn>model\nANSWER: {{ m.content }}<turn|>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|turn>model\n<|channel>{% endif %}"
    )
    with pytest.raises(ValueError, match="E155"):
        response_text(tokenizer, Prompt("Question", 0), RESPONSE)
