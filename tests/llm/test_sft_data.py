"""Stage 0: traces that match gold are kept, the others rationalised; responses carry gold labels."""
import json

import pytest

from spacy_dgemma.llm.sft_data import build_sft_data
from tests.util import HIPE_RECORDS


def labeller_for(path, max_new_tokens):
    from spacy_dgemma.llm.labeller import RelationLabeller
    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    return RelationLabeller(load_model(str(path), device="cpu"), load_tokenizer(str(path)), max_new_tokens=max_new_tokens)


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


@pytest.mark.slow
def test_matching_traces_are_kept_and_the_others_rationalised(answering_student, tmp_path):
    # The answering student always writes at=TRUE, isAt=FALSE with a reasoning.
    record = HIPE_RECORDS["en"]
    gold = [(p["at"], p["isAt"]) for p in record["sampled_pairs"]]
    counts = build_sft_data(labeller_for(answering_student, 96), [record], tmp_path / "sft.jsonl", "answering",
                            progress=False)
    examples = read(tmp_path / "sft.jsonl")
    assert counts["agree"] == gold.count(("TRUE", "FALSE")) > 0
    assert counts["rationalised"] + counts["gold_only"] == len(gold) - counts["agree"] > 0
    for example, (at, is_at) in zip(examples, gold):
        response = json.loads(example["messages"][1]["content"])
        assert (response["at"], response["isAt"]) == (at, is_at)  # always the gold labels
        if (at, is_at) == ("TRUE", "FALSE"):
            assert example["meta"]["source"] == "agree"
            assert response["at_reasoning"] == "He came to the town."
        else:  # asked again with the gold labels (a prompt the tiny model never saw in training)
            assert example["meta"]["source"] in ("rationalised", "gold_only")
        user = example["messages"][0]["content"]
        assert "The correct labels are" not in user  # the training prompt is the plain one
        assert user[example["pair_offset"]:].startswith("Person:")


def test_without_any_reasoning_gold_labels_are_kept_or_dropped(tiny_models, tmp_path):
    labeller = labeller_for(tiny_models["teacher"], 6)  # random: no JSON, no reasoning
    records = [HIPE_RECORDS["de"], dict(HIPE_RECORDS["fr"], sampled_pairs=[
        dict(p, at=None, isAt=None) for p in HIPE_RECORDS["fr"]["sampled_pairs"]])]
    n_de, n_fr = len(HIPE_RECORDS["de"]["sampled_pairs"]), len(HIPE_RECORDS["fr"]["sampled_pairs"])
    kept = build_sft_data(labeller, records, tmp_path / "kept.jsonl", "random", progress=False)
    assert kept["gold_only"] + kept["agree"] == n_de and kept["unlabelled"] == n_fr
    assert len(read(tmp_path / "kept.jsonl")) == n_de
    dropped = build_sft_data(labeller, records, tmp_path / "dropped.jsonl", "random", drop_unexplained=True,
                             progress=False)
    assert dropped["dropped"] == kept["gold_only"]
    assert len(read(tmp_path / "dropped.jsonl")) == n_de - kept["gold_only"]


def test_max_docs_counts_over_all_inputs_and_the_file_appears_whole(tiny_models, tmp_path):
    labeller = labeller_for(tiny_models["teacher"], 4)
    out = tmp_path / "sft.jsonl"

    def records():
        yield HIPE_RECORDS["de"]
        yield HIPE_RECORDS["fr"]
        raise AssertionError("read past --max-docs")

    build_sft_data(labeller, records(), out, "random", max_docs=2, progress=False)
    written = read(out)
    assert [e["meta"]["document_id"] for e in written] == (
        [HIPE_RECORDS["de"]["document_id"]] * len(HIPE_RECORDS["de"]["sampled_pairs"])
        + [HIPE_RECORDS["fr"]["document_id"]] * len(HIPE_RECORDS["fr"]["sampled_pairs"]))

    def broken():
        yield HIPE_RECORDS["en"]
        raise OSError("the input went away")

    with pytest.raises(OSError):
        build_sft_data(labeller, broken(), out, "random", progress=False)
    assert read(out) == written  # the previous file, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft.jsonl"]  # no temporary file left
