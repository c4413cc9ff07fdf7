"""Score a relations pipeline on the gold dev split, per language, with the official metric.

Reads ``gold-dev-*.jsonl`` from the split folder, predicts every pair (the labels are removed
first), writes the predictions as HIPE JSONL, the scores (JSON), the confusion matrices of `at`
and `isAt` per language and overall (JSON) and a plot of them (PNG), and prints a table.
"""
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Sequence

import spacy
import srsly
import typer
from wasabi import msg

from spacy_dgemma.cli._util import exits_on_bad_input
from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe.corpus import make_predicted
from spacy_dgemma.hipe.read import iter_records, read_docs
from spacy_dgemma.hipe.write import doc_to_record, write_jsonl
from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS, label_or_false
from spacy_dgemma.scorer import score_languages

RELATIONS = {"at": AT_LABELS, "isAt": IS_AT_LABELS}


def confusion(gold: Sequence[Dict], pred: Sequence[Dict], relation: str) -> List[List[int]]:
    """Rows: gold label, columns: predicted label (order of the label set); pairs matched by position."""
    labels = RELATIONS[relation]
    counts = Counter(
        (label_or_false(g[relation]), label_or_false(p[relation]))
        for g_rec, p_rec in zip(gold, pred)
        for g, p in zip(g_rec["sampled_pairs"], p_rec["sampled_pairs"])
    )
    return [[counts[(g, p)] for p in labels] for g in labels]


def plot(matrices: Dict[str, Dict[str, List[List[int]]]], path: Path) -> bool:
    """One heat map per (language, relation), in a grid; False (and no file) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(matrices)
    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 6.2), squeeze=False)
    for col, name in enumerate(names):
        for row, relation in enumerate(RELATIONS):
            ax, matrix, labels = axes[row][col], matrices[name][relation], RELATIONS[relation]
            ax.imshow(matrix, cmap="Blues")
            for i, line in enumerate(matrix):
                for j, value in enumerate(line):
                    ax.text(j, i, str(value), ha="center", va="center")
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
            ax.set_title(f"{name}: {relation}", fontsize=9)
            ax.set_xlabel("predicted", fontsize=7)
            ax.set_ylabel("gold", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


@exits_on_bad_input
def main(
    model: str = typer.Argument(..., help="Pipeline folder or package name"),
    split_dir: Path = typer.Argument(..., help="Folder with gold-dev-*.jsonl (from the corpus step)"),
    output_dir: Path = typer.Argument(..., help="Folder for scores.json, confusion.json/png and predictions"),
    n_process: int = typer.Option(1, "--n-process", help="Processes for nlp.pipe"),
) -> None:
    gold_files = sorted(split_dir.glob("gold-dev-*.jsonl"))
    if not gold_files:
        raise InputError.of("E010", str(split_dir), suffix="gold-dev-*.jsonl")
    nlp = spacy.load(model)
    output_dir.mkdir(parents=True, exist_ok=True)
    gold_by_lang: Dict[str, List[Dict[str, Any]]] = {}
    pred_by_lang: Dict[str, List[Dict[str, Any]]] = {}
    start = time.perf_counter()
    for file in gold_files:
        lang = file.stem.rsplit("-", 1)[-1]
        gold_by_lang[lang] = [item.record for item in iter_records(file)]
        inputs = (make_predicted(doc) for doc in read_docs(file, vocab=nlp.vocab))
        pred_by_lang[lang] = [doc_to_record(doc) for doc in nlp.pipe(inputs, n_process=n_process)]
        write_jsonl(output_dir / f"pred-{file.name}", pred_by_lang[lang])
    seconds = time.perf_counter() - start
    result = score_languages(gold_by_lang, pred_by_lang)
    matrices = {name: {rel: confusion(gold_by_lang[name], pred_by_lang[name], rel) for rel in RELATIONS} for name in gold_by_lang}
    all_gold = [r for recs in gold_by_lang.values() for r in recs]
    all_pred = [r for recs in pred_by_lang.values() for r in recs]
    matrices["all"] = {rel: confusion(all_gold, all_pred, rel) for rel in RELATIONS}
    result.update({"model": model, "seconds": seconds, "labels": {k: list(v) for k, v in RELATIONS.items()}})
    srsly.write_json(output_dir / "scores.json", result)
    srsly.write_json(output_dir / "confusion.json", {"rows": "gold", "columns": "predicted", "labels": result["labels"], "matrices": matrices})
    if not plot(matrices, output_dir / "confusion.png"):
        msg.warn("No confusion.png: matplotlib is not installed (pip install -r requirements.txt, or spacy-dgemma[plot])")
    rows = [
        (name, s["n_docs"], s["n_pairs"], f"{s['at']:.3f}", f"{s['isAt']:.3f}", f"{s['mean']:.3f}")
        for name, s in sorted(result["per_file"].items())
    ]
    rows.append(("mean", result["n_docs"], result["n_pairs"], f"{result['at']:.3f}", f"{result['isAt']:.3f}", f"{result['mean']:.3f}"))
    msg.table(rows, header=("lang", "docs", "pairs", "at", "isAt", "score"), divider=True)
    msg.good(f"Scores, confusion matrices and predictions in {output_dir} ({seconds:.1f} s to predict)")


if __name__ == "__main__":
    typer.run(main)
