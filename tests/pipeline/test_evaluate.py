"""`spacy evaluate` on a DocBin of HIPE documents gives the score `dgemma evaluate` gives on the same files."""
import json

import pytest
import spacy
from spacy.cli.evaluate import evaluate as spacy_evaluate

from spacy_dgemma.hipe.read import read_docs
from spacy_dgemma.hipe.write import write_docbin
from spacy_dgemma.predict import predict_files
from spacy_dgemma.scorer import evaluate_files
from tests.util import HIPE_RECORDS, LANGS, strip_labels


def test_spacy_evaluate_scores_what_dgemma_evaluate_scores(tmp_path):
    gold_files = []
    for lang in LANGS:
        path = tmp_path / f"gold-{lang}.jsonl"
        path.write_text(json.dumps(HIPE_RECORDS[lang]) + "\n", encoding="utf8")
        gold_files.append(path)
    docbin = tmp_path / "gold.spacy"
    write_docbin(docbin, (doc for path in gold_files for doc in read_docs(path)))
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations")  # the rule baseline: no training needed
    nlp.to_disk(tmp_path / "model")

    predict_files(gold_files, tmp_path / "pred", nlp, progress=False)
    pred_files = [tmp_path / "pred" / path.name for path in gold_files]
    expected = evaluate_files(gold_files, pred_files)["mean"]["mean"]
    # spaCy's Corpus rebuilds each Doc from its text: the component decides on the reference's mentions.
    with pytest.warns(UserWarning, match="W013"):
        scores = spacy_evaluate(str(tmp_path / "model"), docbin)
    assert scores["rel_score"] == pytest.approx(expected)
    # Without the mentions every pair would be FALSE/FALSE: a different, lower score.
    for lang in LANGS:
        (tmp_path / f"none-{lang}.jsonl").write_text(json.dumps(strip_labels(HIPE_RECORDS[lang])) + "\n", encoding="utf8")
    floor = evaluate_files(gold_files, [tmp_path / f"none-{lang}.jsonl" for lang in LANGS])["mean"]["mean"]
    assert expected > floor + 0.05
