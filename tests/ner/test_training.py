"""Train the recogniser's config (tiny version) on a few HIPE-2022 documents, then use it on raw
text inside a relations pipeline: predicted entities become pairs, HIPE mentions stay as given."""
import json
from pathlib import Path

import pytest
import spacy
from spacy.cli.train import train

from spacy_dgemma.ner.convert import convert_hipe2022
from spacy_dgemma.ner.evaluate import evaluate_raw_text
from spacy_dgemma.ner.gazetteer import gazetteer_vectors
from spacy_dgemma.ner.pipeline import add_recogniser, read_inputs

ROOT = Path(__file__).resolve().parents[2]
HEADER = "TOKEN\tNE-COARSE-LIT\tNE-COARSE-METO\tNE-FINE-LIT\tNE-FINE-METO\tNE-FINE-COMP\tNE-NESTED\tNEL-LIT\tNEL-METO\tMISC"
SENTENCES = [
    [("M.", "B-pers"), ("Poincaré", "I-pers"), ("est", "O"), ("arrivé", "O"), ("à", "O"), ("Lyon", "B-loc"), (".", "O")],
    [("Mr.", "B-pers"), ("Smith", "I-pers"), ("went", "O"), ("to", "O"), ("Paris", "B-loc"), (".", "O")],
    [("Herr", "B-pers"), ("Müller", "I-pers"), ("fuhr", "O"), ("nach", "O"), ("Berlin", "B-loc"), (".", "O")],
]


def _tsv(path: Path, n_docs: int = 6) -> Path:
    lines = [HEADER]
    for i in range(n_docs):
        lines += [f"# hipe2022:document_id = d{i}", "# hipe2022:language = fr", "# hipe2022:dataset = test"]
        for sent in SENTENCES:
            for j, (token, tag) in enumerate(sent):
                misc = "EndOfSentence" if j == len(sent) - 1 else ("NoSpaceAfter" if sent[j + 1][0] == "." else "_")
                lines.append("\t".join([token, tag, "O", "O", "O", "O", "O", "_", "_", misc]))
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


@pytest.fixture(scope="module")
def tiny_ner(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ner")
    # One HIPE-2026 document in no TSV file: partially annotated (only "Lyon" marked).
    partial = {"document_id": "p1", "language": "fr", "source": "x/HIPE-2022-v2.1-y-train-fr.tsv",
               "text": "Le maire de Lyon est parti.", "sampled_pairs": [{"pers_mentions_list": [], "loc_mentions_list": ["Lyon"]}]}
    convert_hipe2022([_tsv(tmp / "tiny.tsv")], tmp / "corpus", heldout_fraction=0.0, partial_records=[partial])
    corpus = tmp / "corpus"
    gazetteer = spacy.blank("xx")
    gazetteer.vocab.vectors = gazetteer_vectors({"Lyon": {"city"}, "Paris": {"city", "large_city"}, "Berlin": {"city"}})
    gazetteer.to_disk(tmp / "gazetteer")
    overrides = {"paths.train": str(corpus / "train.spacy"), "paths.dev": str(corpus / "train.spacy"),
                 "paths.partial": str(corpus / "partial-train.spacy"), "paths.vectors": str(tmp / "gazetteer")}
    train(ROOT / "training" / "ner_tiny.cfg", tmp / "model", overrides=overrides)
    return tmp / "model" / "model-last"


def test_tiny_ner_learns_and_scores(tiny_ner):
    nlp = spacy.load(tiny_ner)
    doc = nlp("Mr. Smith went to Paris.")
    assert [(e.text, e.label_) for e in doc.ents] == [("Mr. Smith", "pers"), ("Paris", "loc")]
    scores = evaluate_raw_text(nlp, [tiny_ner.parents[1] / "tiny.tsv"])
    assert scores["all"]["f"] > 0.9 and scores["fr"]["pers_f"] > 0.9 and list(scores["files"]) == ["tiny.tsv"]


def test_raw_text_gets_entities_and_relations(tiny_ner, tmp_path):
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations", config={"candidates": {"@misc": "spacy_dgemma.pair_candidates.v1", "grouper": {"@misc": "spacy_dgemma.group_mentions.v1"}}})
    add_recogniser(nlp, tiny_ner)
    assert nlp.pipe_names == ["ner", "dgemma_propagate_entities", "dgemma_relations"]
    assert nlp.vocab.vectors.find(key="Paris") >= 0  # the recogniser's name-list vectors came along
    text = tmp_path / "raw.txt"
    text.write_text("M. Poincaré est arrivé à Lyon. Mr. Smith went to Paris.", encoding="utf8")
    doc = nlp(next(read_inputs([text], nlp)))
    relations = {(r.person_id, r.place_id) for r in doc._.dgemma_relations}
    assert ("person:poincare", "place:lyon") in relations and ("person:smith", "place:paris") in relations
    # The pipeline survives a save/load round trip with the recogniser inside.
    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")
    assert [(e.text, e.label_) for e in reloaded(text.read_text()).ents] == [(e.text, e.label_) for e in doc.ents]


def test_hipe_mentions_are_not_overwritten(tiny_ner, tmp_path, hipe_records):
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations")
    add_recogniser(nlp, tiny_ner)
    data = tmp_path / "fr.jsonl"
    data.write_text(json.dumps(hipe_records["fr"]) + "\n", encoding="utf8")
    given = next(read_inputs([data], nlp))
    before = [(s.start, s.end, s.id_) for s in given.spans["persons"]]
    doc = nlp(given)
    assert [(s.start, s.end, s.id_) for s in doc.spans["persons"]] == before
    assert len(doc._.dgemma_relations) == len(hipe_records["fr"]["sampled_pairs"])
    assert {r.person_id for r in doc._.dgemma_relations} <= {p["pers_entity_id"] for p in hipe_records["fr"]["sampled_pairs"]}


def test_raw_text_relations_are_scored_against_gold_pairs(tiny_ner, hipe_records, make_hipe_doc):
    from spacy_dgemma.ner.raw_eval import gold_entity_record, raw_text_record
    from spacy_dgemma.scorer import score_documents

    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations")
    add_recogniser(nlp, tiny_ner)
    gold_doc = make_hipe_doc(nlp, hipe_records["fr"])
    record, counts = raw_text_record(nlp, gold_doc)
    assert counts["pairs"] == len(hipe_records["fr"]["sampled_pairs"]) == len(record["sampled_pairs"])
    # Pairs whose entities the recogniser missed stay null (scored as FALSE); found ones are labelled.
    labelled = [p for p in record["sampled_pairs"] if p["at"] is not None]
    assert len(labelled) == counts["found"]
    scores = score_documents([hipe_records["fr"]], [record])
    assert 0.0 <= scores["mean"] <= 1.0 and scores["n_pairs"] == counts["pairs"]
    assert score_documents([hipe_records["fr"]], [gold_entity_record(nlp, gold_doc)])["n_pairs"] == counts["pairs"]


def test_set_grouper_groups_raw_text_mentions():

    from spacy_dgemma.ner.pipeline import set_grouper

    nlp = spacy.blank("fr")
    nlp.add_pipe("dgemma_relations")
    text = "M. Raymond Poincaré est à Lyon. Poincaré repart."
    doc = nlp.make_doc(text)
    mentions = [(3, "Raymond Poincaré", "pers"), (26, "Lyon", "loc"), (32, "Poincaré", "pers")]
    ents = [doc.char_span(start, start + len(m), label=label) for start, m, label in mentions]
    assert [e.text for e in ents] == [m for _, m, _ in mentions]
    doc.ents = ents
    before = {r.person_id for r in nlp(doc.copy())._.dgemma_relations}
    set_grouper(nlp)
    after = {r.person_id for r in nlp(doc)._.dgemma_relations}
    assert len(before) == 2 and after == {"person:raymond poincare"}


def test_set_grouper_keeps_the_components_cap_and_labels():
    from spacy_dgemma.ner.pipeline import set_grouper

    nlp = spacy.blank("fr")
    candidates = {"@misc": "spacy_dgemma.pair_candidates.v1", "max_pairs": 1, "person_labels": ["HUMAN"]}
    nlp.add_pipe("dgemma_relations", config={"candidates": candidates})
    doc = nlp.make_doc("Poincaré est à Lyon puis à Paris.")
    doc.ents = [doc.char_span(0, 8, label="HUMAN"), doc.char_span(15, 19, label="loc"), doc.char_span(27, 32, label="loc")]
    set_grouper(nlp)
    assert len(nlp(doc.copy())._.dgemma_relations) == 1
    set_grouper(nlp, max_pairs=2)
    assert len(nlp(doc)._.dgemma_relations) == 2


def test_cli_convert_and_evaluate_ner(tiny_ner, tmp_path):
    from typer.testing import CliRunner

    from spacy_dgemma.cli import app

    runner = CliRunner()
    tsv = _tsv(tmp_path / "in.tsv", n_docs=2)
    result = runner.invoke(app, ["ner", "convert", str(tsv), "--output", str(tmp_path / "out"), "--heldout-fraction", "0"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "train.spacy").exists()
    scores = tmp_path / "metrics" / "scores.json"
    result = runner.invoke(app, ["ner", "evaluate", str(tiny_ner), str(tsv), "--output", str(scores)])
    assert result.exit_code == 0, result.output
    assert "in.tsv" in result.output and "1.000" in result.output
    written = json.loads(scores.read_text(encoding="utf8"))
    assert written["fr"]["f"] == written["mean_f"] == 1.0 and written["files"]["in.tsv"]["n_gold"] == 12
    bad = runner.invoke(app, ["ner", "convert", str(tmp_path / "nothing"), "--output", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "E233" in bad.output


def test_second_recogniser_is_refused(tiny_ner):
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations")
    add_recogniser(nlp, tiny_ner)
    with pytest.raises(ValueError, match=r"\[E235\] the pipeline already has a component 'ner'"):
        add_recogniser(nlp, tiny_ner)


def test_ensemble_of_recognisers_loads_and_goes_into_a_relations_pipeline(tiny_ner, tmp_path, hipe_records):
    from spacy_dgemma.ner.ensemble import build_ensemble

    build_ensemble([tiny_ner, tiny_ner, tiny_ner, tiny_ner], tmp_path / "ensemble")
    build_ensemble([tiny_ner, tiny_ner, tiny_ner], tmp_path / "ensemble")  # rebuilt in place: no ner_4 left
    assert not (tmp_path / "ensemble" / "ner_4").exists() and not (tmp_path / "ensemble.partial").exists()
    ensemble = spacy.load(tmp_path / "ensemble")
    assert ensemble.pipe_names == ["ner", "dgemma_collect_entities", "ner_2", "dgemma_collect_entities_2", "ner_3",
                                   "dgemma_collect_entities_3", "dgemma_vote_entities", "dgemma_propagate_entities"]
    assert ensemble.get_pipe_meta("dgemma_vote_entities") and ensemble.config["components"]["dgemma_vote_entities"]["min_votes"] == 2
    text = "M. Poincaré est arrivé à Lyon. Mr. Smith went to Paris."
    single = [(e.start, e.end, e.label_) for e in spacy.load(tiny_ner)(text).ents]
    assert [(e.start, e.end, e.label_) for e in ensemble(text).ents] == single  # identical members agree
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations", config={"candidates": {"@misc": "spacy_dgemma.pair_candidates.v1", "grouper": {"@misc": "spacy_dgemma.group_mentions.v1"}}})
    add_recogniser(nlp, tmp_path / "ensemble")
    assert nlp.pipe_names == ensemble.pipe_names + ["dgemma_relations"]
    assert ("person:smith", "place:paris") in {(r.person_id, r.place_id) for r in nlp(text)._.dgemma_relations}
    # HIPE inputs keep their given mentions: the vote only sets doc.ents.
    data = tmp_path / "fr.jsonl"
    data.write_text(json.dumps(hipe_records["fr"]) + "\n", encoding="utf8")
    given = next(read_inputs([data], nlp))
    before = {key: [(s.start, s.end, s.id_) for s in given.spans[key]] for key in given.spans}
    doc = nlp(given)
    assert {key: [(s.start, s.end, s.id_) for s in doc.spans[key]] for key in before} == before
    assert "entity_votes" not in doc.spans and len(doc._.dgemma_relations) == len(hipe_records["fr"]["sampled_pairs"])


def test_ensemble_members_must_share_their_vectors(tiny_ner, tmp_path):
    from spacy_dgemma.ner.ensemble import build_ensemble

    other = spacy.load(tiny_ner)
    other.vocab.vectors = gazetteer_vectors({"Rome": {"city"}})
    other.to_disk(tmp_path / "other")
    with pytest.raises(ValueError, match="E240"):
        build_ensemble([tiny_ner, tmp_path / "other"], tmp_path / "ensemble")


def test_ensemble_command_names_a_missing_model(tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "spacy_dgemma", "ner", "ensemble", str(tmp_path / "nope"), "--output", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "nope: [E243] not a trained pipeline" in " ".join((run.stdout + run.stderr).split())
    assert "Traceback" not in run.stderr


def test_ensemble_refuses_a_folder_it_did_not_write(tiny_ner, tmp_path):
    from spacy_dgemma.ner.ensemble import build_ensemble

    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.txt").write_text("years of work", encoding="utf8")
    with pytest.raises(ValueError, match="E241"):
        build_ensemble([tiny_ner], precious)
    assert (precious / "chapter1.txt").read_text(encoding="utf8") == "years of work"
    with pytest.raises(ValueError, match="E241"):  # another pipeline is not an ensemble either
        build_ensemble([tiny_ner], tiny_ner)
    assert (tiny_ner / "config.cfg").exists()
    build_ensemble([tiny_ner], tmp_path / "new" / "ensemble")
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["ensemble"]  # no temporary folder left


def test_trained_recogniser_finds_a_place_across_a_hyphenated_line_end(tiny_ner):
    text = "Mr. Smith went to Pa¬\nris."
    doc = spacy.load(tiny_ner)(text)
    assert doc.text == text
    assert [(text[e.start_char : e.end_char], e.label_) for e in doc.ents] == [("Mr. Smith", "pers"), ("Pa¬\nris", "loc")]


def test_pretrained_tok2vec_weights_start_the_training(tiny_ner, tmp_path):
    """`spacy pretrain` on raw texts, then `--paths.init_tok2vec`: the tok2vec starts from those weights."""
    from spacy.cli.pretrain import pretrain
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config

    tmp = tiny_ner.parents[1]
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": " ".join(t for t, _ in sent)}) + "\n" for sent in SENTENCES * 4), encoding="utf8")
    paths = {"paths.train": str(tmp / "corpus" / "train.spacy"), "paths.dev": str(tmp / "corpus" / "train.spacy"),
             "paths.partial": str(tmp / "corpus" / "partial-train.spacy"), "paths.vectors": str(tmp / "gazetteer")}
    config = ROOT / "training" / "ner_tiny.cfg"
    (tmp_path / "pretrained").mkdir()
    pretrain(load_config(config, overrides={**paths, "paths.raw_text": str(texts), "pretraining.max_epochs": 1}, interpolate=True), tmp_path / "pretrained")
    weights = tmp_path / "pretrained" / "model0.bin"

    def tok2vec_bytes(init_tok2vec) -> bytes:
        nlp = init_nlp(load_config(config, overrides={**paths, "paths.init_tok2vec": init_tok2vec}, interpolate=False))
        return nlp.get_pipe("tok2vec").model.to_bytes()

    from_scratch, pretrained = tok2vec_bytes(None), tok2vec_bytes(str(weights))
    assert pretrained != from_scratch
    nlp = init_nlp(load_config(config, overrides={**paths, "paths.init_tok2vec": None}, interpolate=False))
    assert nlp.get_pipe("tok2vec").model.from_bytes(weights.read_bytes()).to_bytes() == pretrained
