"""K-fold cross-validation by document of the compact student on the gold train part.

(``--include-dev``: on the gold train and dev parts together, once choices are made on train.)

For model choices without looking at gold dev: the gold train documents of each language are
split into K folds (by the SHA-1 of their id); for each fold and seed the pipeline of the config
is trained on the other folds (same batches, dropout and optimiser as ``spacy train``) and
predicts the held-out fold after every epoch (with the averaged parameters). Prints, per epoch,
the official metric over the out-of-fold predictions (mean over languages of (at + isAt) / 2)
for each seed, their mean ± standard deviation, and the per-language scores of the
seed-averaged probabilities.

    python experiments/cv_compact.py training/compact.cfg corpus/split --seeds 0,1 --epochs 20 \
        --set components.dgemma_relations.model.baseline_features=false

``--silver-weights 0,0.1`` repeats the CV for each weight with the silver train documents
(``silver-train-{lang}.jsonl``, minus any gold document id) added to every training fold at
that loss weight; the held-out folds are gold only. ``--alphas 0,0.5`` also scores each
setting with a prior correction at decision time: argmax of p(c|x) / p_train(c)^alpha per
head, p_train being the label frequencies of the fold's gold training documents.
"""
import json
import random
from pathlib import Path
from typing import Dict, List, Tuple

import numpy
import spacy
import typer
from spacy.training import Example
from spacy.util import load_config, load_model_from_config, minibatch
from thinc.api import fix_random_seed

import spacy_dgemma.ml.pair_classifier as pair_classifier
from spacy_dgemma.hipe.corpus import make_predicted
from spacy_dgemma.hipe.read import read_docs
from spacy_dgemma.keys import LOSS_WEIGHT_KEY
from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS, N_AT, SCORE_COLUMNS, check_offsets, decide_labels, scores_to_dicts
from spacy_dgemma.scorer import macro_recall
from spacy_dgemma.util import stable_key

LANGS = ("de", "en", "fr")
_CACHE: Dict = {}
_FEATURIZE = pair_classifier.featurize


def _cached_featurize(doc_pairs, window=4, max_between=30, baseline=False):
    """The features of a document are computed once per run (keyed by its id: `nlp.update` copies Docs)."""
    out = []
    for doc, pairs in doc_pairs:
        if pairs:
            key = (doc._.dgemma_hipe["document_id"], len(doc), window, max_between, len(pairs), baseline)
            if key not in _CACHE:
                _CACHE[key] = _FEATURIZE([(doc, pairs)], window, max_between, baseline)
            out.extend(_CACHE[key])
    return out


def folds_of(docs: List[Tuple[str, spacy.tokens.Doc]], k: int) -> List[int]:
    """Fold of each document: per language, round-robin over the SHA-1 order of the ids."""
    fold = [0] * len(docs)
    for lang in LANGS:
        idx = sorted((i for i, (lg, _) in enumerate(docs) if lg == lang), key=lambda i: stable_key(docs[i][1]._.dgemma_hipe["document_id"]))
        for j, i in enumerate(idx):
            fold[i] = j % k
    return fold


def decide(rows: numpy.ndarray, log_prior: numpy.ndarray, alpha: float, consistent: bool = True, offsets=0.0) -> List[Tuple[int, int]]:
    """(at, isAt) label indices as the component decides them (`labels.decide_labels`: the best
    consistent pair of labels, or with --independent each head's best), its decision offsets
    (one per score column) lowered by alpha · log prior."""
    shift = dict(zip(SCORE_COLUMNS, numpy.broadcast_to(offsets - alpha * log_prior, (len(SCORE_COLUMNS),)).tolist()))
    labels = [decide_labels(*scores_to_dicts(r), consistent, shift) for r in rows]
    return [(AT_LABELS.index(a), IS_AT_LABELS.index(b)) for a, b in labels]


def score(langs, golds, probs, log_priors=None, alpha: float = 0.0, consistent: bool = True, offsets=0.0) -> Tuple[float, Dict[str, float]]:
    per = {}
    if log_priors is None:
        log_priors = [numpy.zeros(len(AT_LABELS) + len(IS_AT_LABELS))] * len(langs)
    for lang in sorted(set(langs)):
        g = [x for lg, gs in zip(langs, golds) if lg == lang for x in gs]
        p = [x for lg, ps, lp in zip(langs, probs, log_priors) if lg == lang for x in decide(ps, lp, alpha, consistent, offsets)]
        at = macro_recall([AT_LABELS[a] for a, _ in g], [AT_LABELS[a] for a, _ in p])
        is_at = macro_recall([IS_AT_LABELS[b] for _, b in g], [IS_AT_LABELS[b] for _, b in p])
        per[lang] = (at + is_at) / 2
    return float(numpy.mean(list(per.values()))), per


def fold_log_priors(golds, fold, k) -> List[numpy.ndarray]:
    """Per document: log label frequencies (add-one) of the gold pairs outside its fold."""
    out = []
    for f in range(k):
        counts = numpy.ones(len(AT_LABELS) + len(IS_AT_LABELS))
        for gs, g in zip(golds, fold):
            if g != f:
                for a, b in gs:
                    counts[a] += 1
                    counts[N_AT + b] += 1
        counts[:N_AT] /= counts[:N_AT].sum()
        counts[N_AT:] /= counts[N_AT:].sum()
        out.append(numpy.log(counts))
    return [out[g] for g in fold]


def main(
    config: Path = typer.Argument(..., help="Training config, e.g. training/compact.cfg"),
    split_dir: Path = typer.Argument(..., help="Folder with gold-train-{lang}.jsonl (and silver-train-{lang}.jsonl)"),
    seeds: str = typer.Option("0,1", help="Comma-separated seeds"),
    epochs: int = typer.Option(6, help="Epochs (scores are printed after each)"),
    k: int = typer.Option(5, help="Folds"),
    silver_weights: str = typer.Option("0", help="Comma-separated loss weights of the silver train documents (0: gold only)"),
    alphas: str = typer.Option("0", help="Comma-separated prior-correction exponents scored at decision time"),
    silver_langs: str = typer.Option("de,en,fr", help="Comma-separated languages of the silver documents added"),
    overrides: List[str] = typer.Option([], "--set", help="Config override key=value (JSON value)"),
    include_dev: bool = typer.Option(False, "--include-dev", help="Fold the gold dev documents in too (for a settled choice: 104 documents instead of 77)"),
    independent: bool = typer.Option(False, "--independent", help="Decide each relation on its own (the component's consistent_labels = false)"),
) -> None:
    pair_classifier.featurize = _cached_featurize
    over = {}
    for item in overrides:
        key, value = item.split("=", 1)
        over[key] = json.loads(value)
    cfg = load_config(config, overrides=over, interpolate=True)
    offset_of = check_offsets(cfg["components"]["dgemma_relations"].get("decision_offsets", {}))
    offsets = numpy.array([offset_of.get(column, 0.0) for column in SCORE_COLUMNS])
    batch_size = cfg["training"]["batcher"]["size"]
    drop = cfg["training"]["dropout"]
    vocab_nlp = spacy.blank("xx")
    parts = ("train", "dev") if include_dev else ("train",)
    docs = [(lang, d) for lang in LANGS for part in parts for d in read_docs(split_dir / f"gold-{part}-{lang}.jsonl", vocab=vocab_nlp.vocab)]
    gold_ids = {d._.dgemma_hipe["document_id"] for _, d in docs}
    for lang in LANGS:
        dev = split_dir / f"gold-dev-{lang}.jsonl"
        if not include_dev and dev.exists():  # with --include-dev they are in `docs` already
            gold_ids.update(d._.dgemma_hipe["document_id"] for d in read_docs(dev, vocab=vocab_nlp.vocab))
    weights = [float(w) for w in silver_weights.split(",")]
    silver = []
    if any(weights):
        for lang in silver_langs.split(","):
            silver += [d for d in read_docs(split_dir / f"silver-train-{lang}.jsonl", vocab=vocab_nlp.vocab) if d._.dgemma_hipe["document_id"] not in gold_ids]
        typer.echo(f"{len(silver)} silver train documents", err=True)
    fold = folds_of(docs, k)
    langs = [lg for lg, _ in docs]
    nlp0 = load_model_from_config(cfg, auto_fill=True)
    pipe0 = nlp0.get_pipe("dgemma_relations")
    golds = []
    for _, ref in docs:
        gold = ref._.dgemma_hipe_pairs or []
        golds.append([(AT_LABELS.index(gold[p.pair_index]["at"]), IS_AT_LABELS.index(gold[p.pair_index]["isAt"])) for p in pipe0.candidates(make_predicted(ref))])
    log_priors = fold_log_priors(golds, fold, k)
    for weight in weights:
        for d in silver:
            d.user_data[LOSS_WEIGHT_KEY] = weight
        extra = [Example(make_predicted(d), d) for d in silver] if weight > 0 else []
        results = {}
        for seed in [int(s) for s in seeds.split(",")]:
            probs: List[List] = [[None] * epochs for _ in docs]
            for f in range(k):
                fix_random_seed(seed)
                random.seed(seed)
                nlp = load_model_from_config(cfg, auto_fill=True)
                pipe = nlp.get_pipe("dgemma_relations")
                train = [Example(make_predicted(d), d) for (_, d), g in zip(docs, fold) if g != f] + extra
                held = [i for i, g in enumerate(fold) if g == f]
                held_docs = [make_predicted(docs[i][1]) for i in held]
                optimizer = nlp.initialize(lambda: train)
                for epoch in range(epochs):
                    random.shuffle(train)
                    for batch in minibatch(train, batch_size):
                        pipe.update(batch, drop=drop, sgd=optimizer)  # = nlp.update for this one-pipe pipeline, without copying the Docs
                    with nlp.use_params(optimizer.averages):
                        scores = pipe.model.ops.to_numpy(pipe.predict(held_docs)[1].scores) if any(golds[i] for i in held) else numpy.zeros((0, 5))
                    row = 0
                    for i in held:
                        probs[i][epoch] = scores[row : row + len(golds[i])]
                        row += len(golds[i])
                typer.echo(f"silver weight {weight} seed {seed} fold {f} done", err=True)
            results[seed] = probs
        for alpha in [float(a) for a in alphas.split(",")]:
            typer.echo(f"silver weight {weight}, alpha {alpha}:")
            for epoch in range(epochs):
                seed_scores = [score(langs, golds, [p[epoch] for p in probs], log_priors, alpha, not independent, offsets) for probs in results.values()]
                per_seed = [total for total, _ in seed_scores]
                per_lang = {lg: numpy.mean([per[lg] for _, per in seed_scores]) for lg in LANGS}
                avg, per = score(langs, golds, [numpy.mean([results[s][i][epoch] for s in results], 0) for i in range(len(docs))], log_priors, alpha, not independent, offsets)
                typer.echo(
                    f"epoch {epoch + 1}: seeds " + " ".join(f"{v:.3f}" for v in per_seed)
                    + f" | mean {numpy.mean(per_seed):.3f} ± {numpy.std(per_seed):.3f} ("
                    + " ".join(f"{lg} {v:.3f}" for lg, v in per_lang.items())
                    + f") | seed-averaged {avg:.3f} (" + " ".join(f"{lg} {v:.3f}" for lg, v in per.items()) + ")"
                )


if __name__ == "__main__":
    typer.run(main)
