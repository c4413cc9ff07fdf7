"""`spacy train` with training/compact.cfg (shrunk by overrides) on tiny HIPE files, in seconds."""
import time
from pathlib import Path

import spacy
import srsly
from spacy.cli.train import train

from tests.util import HIPE_RECORDS, strip_labels

CONFIG = Path(__file__).resolve().parents[2] / "training" / "compact.cfg"
TINY = {
    "components.dgemma_relations.model.width": 8,
    "components.dgemma_relations.model.hidden_width": 16,
    "components.dgemma_relations.model.embed_rows": 200,
    "training.max_epochs": 3,
    "training.eval_frequency": 2,
    "training.batcher.size": 2,
}


def test_train_from_config_in_seconds(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "dev").mkdir()
    for lang, record in HIPE_RECORDS.items():
        srsly.write_jsonl(tmp_path / "train" / f"train-{lang}.jsonl", [record])
    srsly.write_jsonl(tmp_path / "dev" / "dev-en.jsonl", [HIPE_RECORDS["en"]])
    overrides = {"paths.train": str(tmp_path / "train"), "paths.dev": str(tmp_path / "dev"), **TINY}
    start = time.perf_counter()
    train(CONFIG, tmp_path / "out", overrides=overrides)
    assert time.perf_counter() - start < 120  # seconds on a loaded 2-core machine; ~10 s idle
    nlp = spacy.load(tmp_path / "out" / "model-best")
    assert nlp.pipe_names == ["dgemma_relations"] and nlp.lang == "xx"
    assert nlp.get_pipe("dgemma_relations").model.name == "pair_classifier"
    assert 0.0 <= nlp.meta["performance"]["rel_score"] <= 1.0
    # The trained pipeline reads a HIPE record and decides every input pair.
    from spacy_dgemma.hipe.corpus import make_predicted
    from spacy_dgemma.hipe.read import record_to_doc

    doc = nlp(make_predicted(record_to_doc(strip_labels(HIPE_RECORDS["de"]))))
    assert [r.pair_index for r in doc._.dgemma_relations] == list(range(len(HIPE_RECORDS["de"]["sampled_pairs"])))


def test_train_with_weighted_silver_documents(tmp_path):
    """paths.silver adds documents at corpora.train.silver_weight; `spacy train` uses them."""
    from spacy.util import load_config, registry

    from spacy_dgemma.keys import LOSS_WEIGHT_KEY

    for name in ("train", "silver", "dev"):
        (tmp_path / name).mkdir()
    srsly.write_jsonl(tmp_path / "train" / "train-en.jsonl", [HIPE_RECORDS["en"]])
    srsly.write_jsonl(tmp_path / "silver" / "silver-train-de.jsonl", [HIPE_RECORDS["de"], HIPE_RECORDS["en"]])
    srsly.write_jsonl(tmp_path / "dev" / "dev-en.jsonl", [HIPE_RECORDS["en"]])
    overrides = {
        "paths.train": str(tmp_path / "train"), "paths.silver": str(tmp_path / "silver"),
        "paths.dev": str(tmp_path / "dev"), "corpora.train.silver_weight": 0.5, **TINY,
    }
    config = load_config(CONFIG, overrides=overrides, interpolate=True)
    reader = registry.resolve(config["corpora"])["train"]
    weights = sorted((eg.reference._.dgemma_hipe["document_id"], eg.reference.user_data[LOSS_WEIGHT_KEY]) for eg in reader(spacy.blank("xx")))
    assert weights == sorted([(HIPE_RECORDS["en"]["document_id"], 1.0), (HIPE_RECORDS["de"]["document_id"], 0.5)])
    train(CONFIG, tmp_path / "out", overrides=overrides)
    nlp = spacy.load(tmp_path / "out" / "model-best")
    assert 0.0 <= nlp.meta["performance"]["rel_score"] <= 1.0
