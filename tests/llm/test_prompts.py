"""Prompts: versioned templates, a shared document part, windows around mentions, chat encoding."""
import copy

import pytest

from spacy_dgemma.candidates.pairs import make_pair_candidates
from spacy_dgemma.llm.chat import encode_example, encode_prompt
from spacy_dgemma.llm.prompts import (
    ELLIPSIS,
    PROMPT_VERSION,
    build_prompts,
    document_from_doc,
    document_from_hipe,
    find_mention_spans,
    fit_article,
)
from tests.util import HIPE_RECORDS


def long_record():
    record = copy.deepcopy(HIPE_RECORDS["en"])
    filler = " ".join(f"Filler sentence number {i} about the weather and the harvest." for i in range(300))
    record["text"] = filler + "\n" + record["text"] + "\n" + filler
    return record


def test_prompts_share_the_document_part():
    document = document_from_hipe(HIPE_RECORDS["en"])
    prompts = build_prompts(document)
    assert len(prompts) == len(HIPE_RECORDS["en"]["sampled_pairs"])
    assert len({p.document_part for p in prompts}) == 1
    part = prompts[0].document_part
    assert HIPE_RECORDS["en"]["text"] in part and "1900-08-18" in part and "isAt" in part
    assert "Mr. John Smith" in prompts[0].pair_part and "London" in prompts[0].pair_part
    assert "Mr. John Smith" not in part.split('"""')[-1]  # the pair is not in the shared part's tail
    assert PROMPT_VERSION == "relations.v1"


def test_rationalisation_prompt_carries_gold_labels():
    document = document_from_hipe(HIPE_RECORDS["en"])
    prompt = build_prompts(document, rationalise=True)[3]
    assert '"at": "PROBABLE"' in prompt.pair_part and '"isAt": "FALSE"' in prompt.pair_part


def test_long_article_is_cut_around_every_mention():
    record = long_record()
    document = document_from_hipe(record)
    full = build_prompts(document, max_article_tokens=100_000)[0].document_part
    cut = build_prompts(document, max_article_tokens=400)[0].document_part
    assert len(cut) < len(full) and ELLIPSIS in cut and "only passages around the mentions" in cut
    for pair in record["sampled_pairs"]:
        for mention in pair["pers_mentions_list"] + pair["loc_mentions_list"]:
            for start, end in find_mention_spans(record["text"], mention):
                assert record["text"][start:end] in cut, mention


@pytest.mark.parametrize("budget", [60, 150, 400, 1000])
def test_fit_article_respects_the_budget(budget):
    text = " ".join(f"word{i}" for i in range(3000))
    start = text.index("word1500")
    spans = [(start, start + 8), (text.index("word2900"), text.index("word2900") + 8)]
    out, cut = fit_article(text, spans, budget, count_tokens=lambda t: len(t.split()))
    assert cut and len(out.split()) <= budget
    assert "word1500" in out
    short, cut_short = fit_article("a short text", spans[:0], 100, count_tokens=lambda t: len(t.split()))
    assert (short, cut_short) == ("a short text", False)


def test_document_from_doc_uses_the_span_offsets(hipe_docs):
    doc = hipe_docs["de"]
    pairs = make_pair_candidates()(doc)
    document = document_from_doc(doc, pairs)
    assert document.language == "de" and document.date == doc._.dgemma_hipe["date"]
    for pair, prompt_pair in zip(pairs, document.pairs):
        assert prompt_pair.person_spans == [(s.start_char, s.end_char) for s in pair.person_spans] or not pair.person_spans


def test_chat_encoding_splits_prefix_and_masks_the_prompt(tiny_models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_models["tokenizer"]))
    prompts = build_prompts(document_from_hipe(HIPE_RECORDS["fr"]))
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    assert len({tuple(prefix) for prefix, _ in encoded}) == 1
    prefix, suffix = encoded[0]
    assert prefix[0] == tokenizer.bos_token_id
    assert tokenizer.decode(suffix).endswith("<turn|>\n<|turn>model\n")
    input_ids, labels = encode_example(tokenizer, prompts[0], '{"at": "TRUE"}')
    n_prompt = len(prefix) + len(suffix)
    assert input_ids[:n_prompt] == prefix + suffix
    assert set(labels[:n_prompt]) == {-100}
    assert tokenizer.decode(labels[n_prompt:]).startswith('{"at": "TRUE"}<turn|>')


@pytest.mark.parametrize("version", ["../templates/relations.v1", "/etc/passwd", "relations..v1", "templates/relations.v1",
                                     "relations.v1/..", "..", "", "relations.v1\x00", "C:\\relations.v1"])
def test_a_version_that_is_a_path_is_refused(version):
    from spacy_dgemma.llm.prompts import load_template

    with pytest.raises(ValueError, match="E150"):
        load_template(version, "pair")
    with pytest.raises(ValueError, match="E150"):
        build_prompts(document_from_hipe(HIPE_RECORDS["en"]), version=version)


# Each crafted template runs a shell command when rendered by a plain Jinja environment.
CRAFTED = {
    "globals": "{{ cycler.__init__.__globals__.os.system('touch MARK') }}",
    "import": "{{ __import__('os').system('touch MARK') }}",
    "subclasses": "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}"
                  "{{ c(['touch', 'MARK']) }}{% endif %}{% endfor %}",
    "self": "{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch MARK') }}",
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_template_cannot_run_code(name, tmp_path, monkeypatch):
    import jinja2

    from spacy_dgemma.llm.prompts import render_template

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "evil.v1.pair.jinja").write_text(CRAFTED[name], encoding="utf8")
    with pytest.raises(ValueError, match="E152"):
        render_template("evil.v1", "pair", folder)
    assert not (tmp_path / "MARK").exists()
    if name == "globals":  # the control: outside the sandbox the same template runs the command
        jinja2.Environment().from_string(CRAFTED[name]).render()
        assert (tmp_path / "MARK").exists()


def test_templates_resolve_inside_the_declared_folder_only(tmp_path):
    from spacy_dgemma.llm.prompts import TEMPLATE_DIR, render_template, template_digest

    outside = tmp_path / "outside.jinja"
    outside.write_text("secret", encoding="utf8")
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "mine.v1.pair.jinja").write_text("Person: {{ person }}", encoding="utf8")
    (folder / "link.v1.pair.jinja").symlink_to(outside)  # a link out of the folder counts as outside
    assert render_template("mine.v1", "pair", folder, person="Ada") == "Person: Ada"
    with pytest.raises(ValueError, match="E151"):
        render_template("link.v1", "pair", folder)
    with pytest.raises(ValueError, match="E151"):
        render_template("mine.v1", "pair")  # not in the package folder
    with pytest.raises(ValueError, match="E151"):
        render_template("relations.v1", "pair", folder)  # a declared folder replaces the package's
    (folder / "broken.v1.pair.jinja").write_text("{% if %}", encoding="utf8")
    with pytest.raises(ValueError, match="E153"):
        render_template("broken.v1", "pair", folder)
    # The digest follows the content (a cache keyed on it sees an edit in place).
    before = template_digest("mine.v1", folder)
    (folder / "mine.v1.pair.jinja").write_text("Person: {{ person }}!", encoding="utf8")
    assert template_digest("mine.v1", folder) != before
    assert template_digest() == template_digest(PROMPT_VERSION, TEMPLATE_DIR)


def test_the_packaged_templates_render_in_the_sandbox():
    """relations.v1 renders as before (the sandbox changes nothing for honest templates)."""
    prompt = build_prompts(document_from_hipe(HIPE_RECORDS["en"]), rationalise=True)[0]
    assert prompt.pair_part.startswith("Person:") and "The correct labels are" in prompt.pair_part
