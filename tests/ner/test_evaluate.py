"""The raw-text NER metric: agrees with ../shared/tools/ner_eval.py, sorts the errors, and the training scorer."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.training import Example
from spacy.util import registry

from spacy_dgemma.ner.evaluate import evaluate_raw_text, predicted_kind
from spacy_dgemma.ner.hipe2022 import read_hipe2022_docs
from tests.ner.test_hipe2022 import HEADER, _doc_lines, _row

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
HARNESS = SHARED / "tools" / "ner_eval.py"


def _ruler_pipeline(patterns):
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_dgemma.Tokenizer.v2"}}})
    nlp.add_pipe("entity_ruler").add_patterns(patterns)
    return nlp


@pytest.mark.skipif(not HARNESS.exists(), reason="../shared is not beside the repo")
def test_scores_agree_with_the_reference_harness(tmp_path):
    """A rule-based pipeline with persons, places and organisations, upper- and lower-case
    labels: the same P/R/F1 per language and mean as the harness, to the digits it prints."""
    nlp = _ruler_pipeline([
        {"label": "PER", "pattern": [{"LOWER": {"IN": ["mr", "m", "herr", "monsieur"]}}, {"IS_PUNCT": True, "OP": "?"}, {"IS_TITLE": True}]},
        {"label": "LOC", "pattern": [{"IS_TITLE": True, "LENGTH": {">=": 5}}]},
        {"label": "gpe", "pattern": [{"IS_UPPER": True, "LENGTH": {">=": 4}}]},
        {"label": "org", "pattern": [{"LOWER": "bundesrat"}]},
    ])
    nlp.to_disk(tmp_path / "ruler")
    files = [SHARED / "hipe2022-ner" / f"HIPE-2022-v2.1-{name}.tsv" for name in ("newseye-dev-fr", "sonar-dev-de", "topres19th-dev-en")]
    ours = evaluate_raw_text(spacy.load(tmp_path / "ruler"), files)
    run = subprocess.run([sys.executable, str(HARNESS), str(tmp_path / "ruler"), *map(str, files)], capture_output=True, text=True, check=True)
    theirs = {m.group(1): tuple(map(float, m.group(2, 3, 4))) for m in re.finditer(r"(\w\w): P=([\d.]+) R=([\d.]+) F1=([\d.]+)", run.stdout)}
    assert set(theirs) == set(ours["languages"]) == {"de", "en", "fr"}
    for lang, (p, r, f) in theirs.items():
        assert (round(ours[lang]["p"], 4), round(ours[lang]["r"], 4), round(ours[lang]["f"], 4)) == (p, r, f)
        assert 0 < f < 1
    assert f"mean F1 over languages: {ours['mean_f']:.4f}" in run.stdout


def test_errors_are_sorted_by_kind_and_topres_scores_places_only(tmp_path):
    rows = [
        _row("Herr"), _row("Lutz", "B-pers"), _row("fuhr"), _row("nach"), _row("Bern", "B-loc"),
        _row("und"), _row("St", "B-loc"), _row("Gallen", "I-loc"), _row("zum"), _row("Bundesrat", "B-org"),
        _row("Genf", "B-loc"), _row("Basel", "B-pers"), _row("Zug", "B-loc", "NoSpaceAfter"), _row("er", "O"),  # "Zuger": unreachable
    ]
    places = [_row("Mr"), _row("Smith"), _row("in"), _row("York", "B-LOC")]
    path = tmp_path / "HIPE-2022-v2.1-sample-dev-de.tsv"
    path.write_text("\n".join([HEADER, *_doc_lines("d1", rows, lang="de")]) + "\n", encoding="utf8")
    en = tmp_path / "HIPE-2022-v2.1-topres19th-dev-en.tsv"
    en.write_text("\n".join([HEADER, *_doc_lines("t1", places, "topres19th", "en")]) + "\n", encoding="utf8")
    nlp = _ruler_pipeline([
        {"label": "pers", "pattern": "Herr Lutz"},  # boundary
        {"label": "pers", "pattern": "Bern"},  # wrong type
        {"label": "loc", "pattern": "Gallen"},  # boundary (part of St Gallen)
        {"label": "loc", "pattern": "Bundesrat"},  # over an organisation
        {"label": "loc", "pattern": "Genf"},  # right
        {"label": "loc", "pattern": "Basel"},  # wrong type
        {"label": "loc", "pattern": "fuhr"},  # spurious
        {"label": "pers", "pattern": "Mr Smith"},  # a person in topres19th: not scored
        {"label": "loc", "pattern": "York"},
    ])
    scores = evaluate_raw_text(nlp, [path, en])
    de = scores["files"][path.name]
    assert (de["tp"], de["n_pred"], de["n_gold"]) == (1, 7, 6)
    assert de["errors"] == {
        "fp_wrong_type": 2, "fp_boundary": 2, "fp_boundary_and_type": 0, "fp_unscored_type": 1, "fp_spurious": 1,
        "fn_unreachable": 1, "fn_overlapped": 4, "fn_missed": 0,
    }
    topres = scores["files"][en.name]
    assert (topres["tp"], topres["n_pred"], topres["n_gold"], topres["f"]) == (1, 1, 1, 1.0)
    assert scores["languages"] == ["de", "en"] and scores["mean_f"] == pytest.approx((de["f"] + 1.0) / 2)


@pytest.mark.parametrize("label,kind", [("PER", "pers"), ("person", "pers"), ("GPE", "loc"), ("loc", "loc"), ("ORG", None), ("MISC", None)])
def test_predicted_labels_are_read_by_prefix(label, kind):
    assert predicted_kind(label) == kind


def test_training_scorer_counts_exact_character_spans_and_skips_missing_gold(tmp_path):
    """An organisation, gold or predicted, is neither a hit nor a miss; a place predicted over it is
    a false positive; a prediction over unannotated tokens (topres19th persons) counts neither way."""
    rows = [_row("M", "B-pers", "NoSpaceAfter"), _row(".", "I-pers"), _row("Poincaré", "I-pers"), _row("à"),
            _row("Paris", "B-loc"), _row("La"), _row("Banque", "B-org"), _row("de", "I-org"), _row("France", "I-org")]
    places = [_row("Mr"), _row("Smith"), _row("in"), _row("York", "B-LOC")]
    path = tmp_path / "sample.tsv"
    path.write_text("\n".join([HEADER, *_doc_lines("d1", rows), *_doc_lines("t1", places, "topres19th", "en")]) + "\n", encoding="utf8")
    nlp = _ruler_pipeline([
        {"label": "pers", "pattern": "M. Poincaré"},
        {"label": "loc", "pattern": "Paris"},
        {"label": "loc", "pattern": "Banque de France"},
        {"label": "pers", "pattern": "Mr Smith"},
        {"label": "loc", "pattern": "York"},
    ])
    golds = list(read_hipe2022_docs([path], nlp.vocab))
    scorer = registry.scorers.get("spacy_dgemma.ner_scorer.v1")()
    scores = scorer([Example(nlp(gold.text), gold) for gold in golds])
    assert scores["ents_per_type"]["pers"] == {"p": 1.0, "r": 1.0, "f": 1.0}
    assert scores["ents_per_type"]["loc"]["p"] == pytest.approx(2 / 3) and scores["ents_per_type"]["loc"]["r"] == 1.0
    assert set(scores["ents_per_type"]) == {"pers", "loc"}
