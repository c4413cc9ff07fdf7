"""Cross-validation of non-linear learners over the compact student's pair features (scikit-learn).

Do the 51 pair features plus the baseline's evidence hold more than a linear model finds? Each
learner (logistic regression with weak and with strong L2, gradient boosting, random forest,
extra trees; balanced class weights, as the student's loss) is trained per head on the same 5
folds by document as ``cv_compact.py`` and scored with the official metric on the out-of-fold
predictions (each relation decided on its own, gold documents only, no decision offsets).

    python experiments/cv_trees.py training/compact.cfg corpus/split [--include-dev]
"""
import sys
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy
import spacy
import typer
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from spacy.util import load_config, load_model_from_config

from spacy_dgemma.hipe.corpus import make_predicted
from spacy_dgemma.hipe.read import read_docs
from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS
from spacy_dgemma.ml.pair_classifier import featurize
from spacy_dgemma.scorer import score_pairs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cv_compact import LANGS, folds_of  # noqa: E402

LEARNERS: Dict[str, Callable] = {
    "logistic regression": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.3, class_weight="balanced", max_iter=2000)),
    "logistic, C=0.003": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.003, class_weight="balanced", max_iter=2000)),
    "gradient boosting": lambda: HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=150, class_weight="balanced", random_state=0),
    "random forest": lambda: RandomForestClassifier(n_estimators=300, min_samples_leaf=5, class_weight="balanced", random_state=0, n_jobs=1),
    "extra trees": lambda: ExtraTreesClassifier(n_estimators=300, min_samples_leaf=5, class_weight="balanced", random_state=0, n_jobs=1),
}
Rows = List[Tuple[str, numpy.ndarray, List[int], List[int]]]  # language, features, at, isAt per document


def document_rows(config: Path, split_dir: Path, parts: Tuple[str, ...] = ("train",)) -> Tuple[list, Rows]:
    """The gold documents of `parts` and, per document, the features and gold labels of its candidate pairs."""
    cfg = load_config(config, interpolate=True)
    model_cfg = cfg["components"]["dgemma_relations"]["model"]
    pipe = load_model_from_config(cfg, auto_fill=True).get_pipe("dgemma_relations")
    vocab = spacy.blank("xx").vocab
    docs = [(lang, d) for lang in LANGS for part in parts for d in read_docs(split_dir / f"gold-{part}-{lang}.jsonl", vocab=vocab)]
    rows: Rows = []
    for lang, ref in docs:
        pred = make_predicted(ref)
        pairs = pipe.candidates(pred)
        gold = ref._.dgemma_hipe_pairs or []
        if not pairs:
            rows.append((lang, numpy.zeros((0, 1)), [], []))
            continue
        feats = featurize([(pred, pairs)], model_cfg["window"], model_cfg["max_between"], model_cfg["baseline_features"])
        rows.append((
            lang,
            numpy.stack([f.numbers for f in feats]),
            [AT_LABELS.index(gold[p.pair_index]["at"]) for p in pairs],
            [IS_AT_LABELS.index(gold[p.pair_index]["isAt"]) for p in pairs],
        ))
    return docs, rows


def official(langs: List[str], gold_at, pred_at, gold_is_at, pred_is_at) -> Tuple[float, Dict[str, float]]:
    """The official metric (`score_pairs`' mean of at and isAt) per language, and its mean over languages."""
    per = {}
    for lang in LANGS:
        idx = [i for i, lg in enumerate(langs) if lg == lang]
        gold = [(AT_LABELS[gold_at[i]], IS_AT_LABELS[gold_is_at[i]]) for i in idx]
        pred = [(AT_LABELS[pred_at[i]], IS_AT_LABELS[pred_is_at[i]]) for i in idx]
        per[lang] = score_pairs(gold, pred)["mean"]
    return float(numpy.mean(list(per.values()))), per


def main(
    config: Path = typer.Argument(..., help="Training config, e.g. training/compact.cfg"),
    split_dir: Path = typer.Argument(..., help="Folder with gold-train-{lang}.jsonl"),
    k: int = typer.Option(5, help="Folds"),
    include_dev: bool = typer.Option(False, "--include-dev", help="Fold the gold dev documents in too (104 documents instead of 77)"),
) -> None:
    warnings.filterwarnings("ignore")
    docs, rows = document_rows(config, split_dir, ("train", "dev") if include_dev else ("train",))
    fold = folds_of(docs, k)
    for name, make in LEARNERS.items():
        langs, gold_at, pred_at, gold_is_at, pred_is_at = [], [], [], [], []
        for f in range(k):
            train = [r for r, g in zip(rows, fold) if g != f and r[2]]
            held = [r for r, g in zip(rows, fold) if g == f and r[2]]
            X = numpy.vstack([r[1] for r in train])
            X_held = numpy.vstack([r[1] for r in held])
            at_model = make().fit(X, [a for r in train for a in r[2]])
            is_at_model = make().fit(X, [b for r in train for b in r[3]])
            langs += [r[0] for r in held for _ in r[2]]
            gold_at += [a for r in held for a in r[2]]
            gold_is_at += [b for r in held for b in r[3]]
            pred_at += list(at_model.predict(X_held))
            pred_is_at += list(is_at_model.predict(X_held))
        mean, per = official(langs, gold_at, pred_at, gold_is_at, pred_is_at)
        typer.echo(f"{name:20s} CV {mean:.3f} (" + " ".join(f"{lg} {v:.3f}" for lg, v in per.items()) + ")")


if __name__ == "__main__":
    typer.run(main)
