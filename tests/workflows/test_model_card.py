"""The model card of scripts/package_model.py: dev scores always, the recogniser's scores and licences with an 'ner' pipe."""
import importlib.util
from pathlib import Path

import pytest
import spacy

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "package_model.py"
META = {"lang": "xx", "name": "dgemma_relations", "version": "0.1.0"}
NER_SCORES = {
    lang: {"n_gold": 100.0, "p": 0.7, "r": 0.5, "f": 0.583, "pers_f": 0.35, "loc_f": 0.66} for lang in ("de", "en", "fr", "all")
}


@pytest.fixture(scope="module")
def package_model():
    spec = importlib.util.spec_from_file_location("package_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_card_with_recogniser_has_its_scores_and_licences(package_model):
    card = package_model.model_card(META, {}, ["ner", "dgemma_relations"], NER_SCORES)
    assert "## The recogniser (ner)" in card
    assert "| fr | 100 | 0.700 | 0.500 | 0.583 | 0.350 | 0.660 |" in card
    assert "newseye and sonar under CC BY 4.0" in card and "CC BY-NC-SA 4.0" in card
    assert "(exact-span F1 0.35 against 0.66)" in card  # persons against places, from the scores


def test_card_without_recogniser_has_no_ner_section(package_model):
    card = package_model.model_card(META, {}, ["dgemma_relations"], NER_SCORES)
    assert "The recogniser (ner)" not in card


def test_card_says_when_the_model_was_fit_on_train_and_dev(package_model):
    final = package_model.model_card(META, {}, ["dgemma_relations"], final_fit=True)
    assert "all 104 gold newspaper articles" in final
    assert "trained without the dev documents" in final
    plain = package_model.model_card(META, {}, ["dgemma_relations"])
    assert "minus the project's held-out dev documents" in plain
    assert "all 104 gold" not in plain


def test_card_says_when_the_recogniser_was_fit_on_its_held_out_documents(package_model):
    final = package_model.model_card(META, {}, ["ner", "dgemma_relations"], NER_SCORES, ner_final_fit=True)
    assert "the recipe trained without the held-out documents" in final
    assert "| fr | 100 | 0.700 | 0.500 | 0.583 | 0.350 | 0.660 |" in final
    plain = package_model.model_card(META, {}, ["ner", "dgemma_relations"], NER_SCORES)
    assert "the recipe trained without the held-out documents" not in plain


def test_card_names_the_silver_weight(package_model):
    assert "silver labels (an LLM ensemble's) of the sandbox train documents at loss weight 0.1" in package_model.model_card(
        META, {}, ["dgemma_relations"], silver_weight=0.1
    )
    assert "gold labels only" in package_model.model_card(META, {}, ["dgemma_relations"])


def test_silver_weight_is_read_from_the_training_config(package_model):
    nlp = spacy.blank("xx")
    nlp.config["paths"] = {"silver": "corpus/silver-train"}
    nlp.config["corpora"] = {"train": {"silver_weight": 0.1}}
    assert package_model.silver_weight_of(nlp) == 0.1
    nlp.config["paths"] = {"silver": None}
    assert package_model.silver_weight_of(nlp) == 0.0


def test_card_says_when_recognisers_vote(package_model):
    pipes = ["ner", "dgemma_collect_entities", "ner_2", "dgemma_collect_entities_2", "ner_3", "dgemma_collect_entities_3",
             "dgemma_vote_entities", "dgemma_propagate_entities", "dgemma_relations"]
    assert package_model.recogniser_members(pipes) == ["ner", "ner_2", "ner_3"]
    card = package_model.model_card(META, {}, pipes, NER_SCORES)
    assert "3 such recognisers" in card and "(`ner, ner_2, ner_3`)" in card
    single = package_model.model_card(META, {}, ["ner", "dgemma_propagate_entities", "dgemma_relations"], NER_SCORES)
    assert "such recognisers" not in single


def test_a_rebuilt_package_keeps_no_component_of_the_previous_build(package_model, tmp_path):
    import zipfile

    def build(pipes):
        nlp = spacy.blank("xx")
        for pipe in pipes:
            nlp.add_pipe(pipe)
        assembled = tmp_path / f"assembled-{len(pipes)}"  # as main() does, a fresh folder each time
        nlp.to_disk(assembled)
        wheels = list((package_model.build_model_wheel(assembled, tmp_path / "out", "t", "0.0.1") / "dist").glob("*.whl"))
        return zipfile.ZipFile(wheels[0]).namelist()

    assert any(n.endswith("/sentencizer.json") for n in build(["sentencizer"]))
    assert not any("sentencizer" in n for n in build([]))


def test_missing_build_tools_stop_with_one_coded_line(package_model, monkeypatch):
    import importlib.util

    from spacy_dgemma.errors import InputError

    real = importlib.util.find_spec
    package_model.check_build_tools()  # this environment can build wheels

    def without(*names):
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name in names else real(name, *args))

    without("wheel", "build")  # a plain install: spacy package has nothing to build its wheel with
    with pytest.raises(InputError, match=r"E069.*wheel not installed.*pip install -r requirements.txt"):
        package_model.check_build_tools()
    without("wheel", "setuptools.command.bdist_wheel")  # an old setuptools without the wheel package
    with pytest.raises(InputError, match=r"E069.*wheel not installed"):
        package_model.check_build_tools()
    without("setuptools")
    with pytest.raises(InputError, match=r"E069.*setuptools not installed"):
        package_model.check_build_tools()


def test_a_missing_recogniser_is_an_error_not_a_silent_given_mentions_package(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "model"), str(tmp_path / "out"), "--name", "x_text",
                          "--ner", str(tmp_path / "no-ner")], capture_output=True, text=True)
    assert out.returncode == 2 and "[E007]" in out.stderr and "no-ner" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


def test_each_variant_says_what_input_it_needs(package_model):
    given = package_model.model_card({**META, "dgemma": {"input": package_model.INPUT_GIVEN}}, {}, ["dgemma_relations"])
    assert "Input: persons and places given" in given
    text = package_model.model_card({**META, "name": "dgemma_relations_text", "dgemma": {"input": package_model.INPUT_TEXT}}, {},
                                    ["ner", "dgemma_relations"], NER_SCORES)
    assert "Input: raw text" in text and "# xx_dgemma_relations_text" in text
