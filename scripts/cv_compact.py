"""K-fold cross-validation by document of the compact student on the gold train part.

For model choices without looking at gold dev: the gold train documents of each language are
split into K folds (by the SHA-1 of their id); for each fold and seed the pipeline of the config
is trained on the other folds (same batches, dropout and optimiser as ``spacy train``) and
predicts the held-out fold after every epoch (with the averaged parameters). Prints, per epoch,
the official metric over the out-of-fold predictions (mean over languages of (at + isAt) / 2)
for each seed, their mean ± standard deviation, and the per-language scores of the
seed-averaged probabilities.

    python scripts/cv_compact.py training/compact.cfg corpus/split --seeds 0,1 --epochs 20 \
        --set components.dgemma_relations.model.baseline_features=false
"""
import hashlib
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
from spacy_dgemma.corpus import make_predicted
from spacy_dgemma.hipe.read import read_docs
from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS, N_AT
from spacy_dgemma.scorer import macro_recall

LANGS = ("de", "en", "fr")
_CACHE: Dict = {}
_FEATURIZE = pair_classifier.featurize


def _cached_featurize(doc_pairs, window=4, max_between=30, baseline=False):
    """The features of a Doc are computed once per run (the Docs stay alive in the cache)."""
    out = []
    for doc, pairs in doc_pairs:
        if pairs:
            key = (id(doc), window, max_between, len(pairs), baseline)
            if key not in _CACHE:
                _CACHE[key] = (_FEATURIZE([(doc, pairs)], window, max_between, baseline), doc)
            out.extend(_CACHE[key][0])
    return out


def folds_of(docs: List[Tuple[str, spacy.tokens.Doc]], k: int) -> List[int]:
    """Fold of each document: per language, round-robin over the SHA-1 order of the ids."""
    fold = [0] * len(docs)
    for lang in LANGS:
        idx = sorted((i for i, (l, _) in enumerate(docs) if l == lang), key=lambda i: hashlib.sha1(docs[i][1]._.hipe["document_id"].encode()).hexdigest())
        for j, i in enumerate(idx):
            fold[i] = j % k
    return fold


def score(langs, golds, probs) -> Tuple[float, Dict[str, float]]:
    per = {}
    for lang in sorted(set(langs)):
        g = [x for l, gs in zip(langs, golds) if l == lang for x in gs]
        p = [x for l, ps in zip(langs, probs) if l == lang for x in ps]
        at = macro_recall([AT_LABELS[a] for a, _ in g], [AT_LABELS[int(numpy.argmax(r[:N_AT]))] for r in p])
        is_at = macro_recall([IS_AT_LABELS[b] for _, b in g], [IS_AT_LABELS[int(numpy.argmax(r[N_AT:]))] for r in p])
        per[lang] = (at + is_at) / 2
    return float(numpy.mean(list(per.values()))), per


def main(
    config: Path = typer.Argument(..., help="Training config, e.g. training/compact.cfg"),
    split_dir: Path = typer.Argument(..., help="Folder with gold-train-{lang}.jsonl"),
    seeds: str = typer.Option("0,1", help="Comma-separated seeds"),
    epochs: int = typer.Option(6, help="Epochs (scores are printed after each)"),
    k: int = typer.Option(5, help="Folds"),
    overrides: List[str] = typer.Option([], "--set", help="Config override key=value (JSON value)"),
) -> None:
    pair_classifier.featurize = _cached_featurize
    over = {}
    for item in overrides:
        key, value = item.split("=", 1)
        over[key] = json.loads(value)
    cfg = load_config(config, overrides=over, interpolate=True)
    batch_size = cfg["training"]["batcher"]["size"]
    drop = cfg["training"]["dropout"]
    vocab_nlp = spacy.blank("xx")
    docs = [(lang, d) for lang in LANGS for d in read_docs(split_dir / f"gold-train-{lang}.jsonl", vocab=vocab_nlp.vocab)]
    fold = folds_of(docs, k)
    langs = [l for l, _ in docs]
    nlp0 = load_model_from_config(cfg, auto_fill=True)
    pipe0 = nlp0.get_pipe("dgemma_relations")
    golds = []
    for _, ref in docs:
        gold = ref._.hipe_pairs or []
        golds.append([(AT_LABELS.index(gold[p.pair_index]["at"]), IS_AT_LABELS.index(gold[p.pair_index]["isAt"])) for p in pipe0.candidates(make_predicted(ref))])
    results = {}
    for seed in [int(s) for s in seeds.split(",")]:
        probs: List[List] = [[None] * epochs for _ in docs]
        for f in range(k):
            fix_random_seed(seed)
            random.seed(seed)
            nlp = load_model_from_config(cfg, auto_fill=True)
            pipe = nlp.get_pipe("dgemma_relations")
            train = [Example(make_predicted(d), d) for (_, d), g in zip(docs, fold) if g != f]
            held = [i for i, g in enumerate(fold) if g == f]
            held_docs = [make_predicted(docs[i][1]) for i in held]
            optimizer = nlp.initialize(lambda: train)
            for epoch in range(epochs):
                random.shuffle(train)
                for batch in minibatch(train, batch_size):
                    nlp.update(batch, drop=drop, sgd=optimizer)
                with nlp.use_params(optimizer.averages):
                    scores = pipe.model.ops.to_numpy(pipe.predict(held_docs)[1].scores) if any(golds[i] for i in held) else numpy.zeros((0, 5))
                row = 0
                for i in held:
                    probs[i][epoch] = scores[row : row + len(golds[i])]
                    row += len(golds[i])
            typer.echo(f"seed {seed} fold {f} done", err=True)
        results[seed] = probs
    for epoch in range(epochs):
        per_seed = [score(langs, golds, [p[epoch] for p in probs])[0] for probs in results.values()]
        avg, per = score(langs, golds, [numpy.mean([results[s][i][epoch] for s in results], 0) for i in range(len(docs))])
        langs_txt = " ".join(f"{l} {v:.3f}" for l, v in per.items())
        typer.echo(
            f"epoch {epoch + 1}: seeds " + " ".join(f"{v:.3f}" for v in per_seed)
            + f" | mean {numpy.mean(per_seed):.3f} ± {numpy.std(per_seed):.3f} | seed-averaged {avg:.3f} ({langs_txt})"
        )


if __name__ == "__main__":
    typer.run(main)
