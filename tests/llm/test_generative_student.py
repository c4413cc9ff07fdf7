"""dgemma_relations with the generative student (spacy_dgemma.GenerativeStudent.v1) on HIPE Docs:
answers and scores, weights inside the pipeline, spaCy's device, the [llm] extra, a server."""
import json
import shutil
import sys

import pytest
import spacy

import spacy_dgemma.ml.generative as generative
from spacy_dgemma.errors import InputError
from tests.llm.fake_server import FakeServer
from tests.util import HIPE_RECORDS, build_hipe_doc


def student_nlp(path, lang="en", **model_cfg):
    nlp = spacy.blank(lang)
    config = {"@architectures": "spacy_dgemma.GenerativeStudent.v1", "name_or_path": str(path), "device": "cpu",
              "max_new_tokens": 96, "batch_size": 3, **model_cfg}
    nlp.add_pipe("dgemma_relations", config={"model": config})
    return nlp


def predictions(doc):
    return [(r.person_id, r.place_id, r.at, r.is_at, r.at_explanation, r.is_at_explanation) for r in doc._.dgemma_relations]


def hipe_docs(*langs):
    return [build_hipe_doc(spacy.blank("en"), HIPE_RECORDS[lang]) for lang in langs]


@pytest.mark.slow
def test_generative_student_fills_relations_and_travels_with_its_weights(answering_student, tmp_path):
    source = tmp_path / "merged"
    shutil.copytree(answering_student, source)
    nlp = student_nlp(source)
    nlp.initialize()
    doc = nlp(hipe_docs("en")[0])
    relations = doc._.dgemma_relations
    assert len(relations) == len(HIPE_RECORDS["en"]["sampled_pairs"])
    assert [r.pair_index for r in relations] == list(range(len(relations)))
    # The trained answer: labels parsed, reasoning kept as explanations.
    assert {(r.at, r.is_at) for r in relations} == {("TRUE", "FALSE")}
    assert all(r.at_explanation == "He came to the town." for r in relations)
    assert all(r.is_at_explanation == "It was long ago." for r in relations)
    # Scores are the label tokens' probabilities, not one-hot rows.
    for r in relations:
        assert sum(r.at_scores.values()) == pytest.approx(1.0)
        assert max(r.at_scores, key=r.at_scores.get) == "TRUE" and 0.0 < r.at_scores["TRUE"] < 1.0
    # to_disk copies the weights into the pipeline; moved elsewhere without the source, it still answers the same.
    nlp.to_disk(tmp_path / "pipeline")
    weights = tmp_path / "pipeline" / "dgemma_relations" / generative.WEIGHTS_DIR
    assert (weights / "model.safetensors").read_bytes() == (source / "model.safetensors").read_bytes()
    shutil.move(tmp_path / "pipeline", tmp_path / "moved")
    shutil.rmtree(source)
    loaded = spacy.load(tmp_path / "moved")
    assert loaded.get_pipe("dgemma_relations").model.attrs["name_or_path"] == str((tmp_path / "moved" / "dgemma_relations" / "weights").resolve())
    again = loaded(hipe_docs("en")[0])
    assert predictions(again) == predictions(doc)


def test_random_student_falls_back_and_docs_without_pairs(tiny_models):
    nlp = student_nlp(tiny_models["student"], max_new_tokens=6)
    docs = [hipe_docs("en")[0], nlp.make_doc("No people or places here.")]
    first, empty = list(nlp.pipe(docs))
    assert empty._.dgemma_relations == []
    assert len(first._.dgemma_relations) == len(HIPE_RECORDS["en"]["sampled_pairs"])
    for r in first._.dgemma_relations:  # a random model writes no JSON: the documented fallback, flagged one-hot
        assert (r.at, r.is_at) == ("PROBABLE", "TRUE") and r.at_scores["PROBABLE"] == 1.0


def test_not_trainable_in_spacy(tiny_models):
    from spacy.training import Example

    nlp = student_nlp(tiny_models["student"], max_new_tokens=2)
    doc = hipe_docs("en")[0]
    with pytest.raises(NotImplementedError, match="E188.*dgemma llm distill"):
        nlp.update([Example(doc, doc)])


def test_device_follows_spacy_gpu_allocation_then_torch(monkeypatch):
    import thinc.api
    import torch

    from spacy_dgemma.llm.loading import resolve_device

    assert resolve_device("auto") == "cpu"
    assert resolve_device("cuda:1") == "cuda:1"
    # No GPU for spaCy (thinc needs cupy), but torch sees one (a Ray actor with a GPU).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert resolve_device("auto") == "cuda:0"

    class FakeGpuOps:  # what spacy.require_gpu(2) leaves as thinc's current ops
        name, device_type, device_id = "cupy", "gpu", 2

    monkeypatch.setattr(thinc.api, "get_current_ops", lambda: FakeGpuOps())
    assert resolve_device("auto") == "cuda:2"


def test_without_the_llm_extra_a_coded_error_and_one_line_in_predict(tiny_models, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from spacy_dgemma.cli import app

    nlp = student_nlp(tiny_models["student"], max_new_tokens=2)
    nlp.to_disk(tmp_path / "pipeline")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(HIPE_RECORDS["en"]) + "\n", encoding="utf8")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(InputError, match=r"E177\] the generative student needs torch .*spacy-dgemma\[llm\]"):
        spacy.load(tmp_path / "pipeline")
    with pytest.raises(InputError, match="E177"):
        student_nlp(tiny_models["student"]).initialize()
    result = CliRunner().invoke(app, ["predict", str(source), str(tmp_path / "out.jsonl"), "--model", str(tmp_path / "pipeline")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "E177" in result.output and "Traceback" not in result.output


def test_student_on_a_server_batches_documents_and_keeps_only_the_tokenizer(tiny_models, tmp_path):
    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    path = str(tiny_models["student"])
    model, tokenizer = load_model(path, device="cpu"), load_tokenizer(path)
    local = student_nlp(path, max_new_tokens=8)
    expected = [predictions(doc) for doc in local.pipe(hipe_docs("en", "de"))]
    with FakeServer(model, tokenizer) as server:
        nlp = student_nlp(path, max_new_tokens=8, server_url=server.url, guided_json=False)
        engine = generative.get_labeller(nlp.get_pipe("dgemma_relations").model).engine
        calls = []
        generate = engine.generate
        engine.generate = lambda groups, *args, **kwargs: calls.append(len(groups)) or generate(groups, *args, **kwargs)
        got = [predictions(doc) for doc in nlp.pipe(hipe_docs("en", "de"), batch_size=2)]
        assert calls == [2]  # both Docs' pairs went to the server together
        assert got == expected
        assert len(server.requests) == sum(len(HIPE_RECORDS[k]["sampled_pairs"]) for k in ("en", "de"))
        nlp.to_disk(tmp_path / "pipeline")
    kept = sorted(p.name for p in (tmp_path / "pipeline" / "dgemma_relations" / "weights").iterdir())
    assert "model.safetensors" not in kept and "tokenizer.json" in kept


def test_student_pipeline_command_writes_licence_and_weights(tiny_models, tmp_path):
    from typer.testing import CliRunner

    from spacy_dgemma.cli import app

    result = CliRunner().invoke(app, ["llm", "student-pipeline", str(tiny_models["student"]), str(tmp_path / "pipe"),
                                      "--device", "cpu", "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "pipe" / "meta.json").read_text())
    assert "Gemma Terms of Use" in meta["license"] and "CC BY-NC-SA 4.0" in meta["license"] and "MIT" in meta["license"]
    assert meta["requirements"] == ["spacy-dgemma[llm]"]
    assert (tmp_path / "pipe" / "dgemma_relations" / "weights" / "model.safetensors").exists()
