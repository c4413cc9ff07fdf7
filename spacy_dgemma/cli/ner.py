"""``dgemma ner …``: the historical PERS/LOC recogniser for raw text (convert, gazetteer, ensemble,
evaluate, evaluate-raw). Thin layers over `spacy_dgemma.ner`."""
from pathlib import Path
from typing import Any, Dict, List, Optional

import srsly
import typer
from wasabi import msg

from spacy_dgemma.cli._util import command, ner_app
from spacy_dgemma.errors import InputError
from spacy_dgemma.ner.convert import DEFAULT_HELDOUT_FRACTION, HELDOUT_DEV_DIR, convert_hipe2022, tsv_files
from spacy_dgemma.predict import load_pipeline

DEFAULT_NER_DATA = Path("../shared/hipe2022-ner")


def _document_ids(paths: List[Path]) -> set:
    from spacy_dgemma.hipe.read import iter_records

    return {line.record["document_id"] for line in iter_records(paths, validate=False)} if paths else set()


def _records(paths: List[Path]) -> List[dict]:
    from spacy_dgemma.hipe.read import iter_records

    # One file at a time: a document may be both in gold train and in the silver sandbox.
    return [line.record for path in paths for line in iter_records(path)]


@command(ner_app, "convert", example="dgemma ner convert ../shared/hipe2022-ner --output corpus/ner")
def convert_ner_cli(
    input_path: Path = typer.Argument(DEFAULT_NER_DATA, help="HIPE-2022 .tsv file or folder"),
    output: Path = typer.Option(Path("corpus/ner"), "--output", "-o", help="Folder for the train/held-out DocBins and heldout-dev/*.tsv"),
    heldout_fraction: float = typer.Option(DEFAULT_HELDOUT_FRACTION, "--heldout-fraction", help="Share of documents held out (by a hash of the id)"),
    lang: str = typer.Option("xx", "--lang", help="Language of the tokenizer/vocab"),
    hold_out: List[Path] = typer.Option([], "--hold-out", help="HIPE-2026 .jsonl file(s) whose documents are always held out (e.g. your dev split)"),
    partial: List[Path] = typer.Option([], "--partial", help="HIPE-2026 .jsonl file(s) whose pairs' mentions make partially annotated training documents (partial-train.spacy)"),
) -> None:
    """Convert HIPE-2022 NER TSV files to DocBins of their printed text: a training part and a
    held-out part, by document; the held-out documents of the dev files also as TSV files
    (heldout-dev/), which `dgemma ner evaluate` scores.

    With --partial, the HIPE-2026 documents found in no TSV file and in no --hold-out file also
    become training documents, their pairs' mentions the only entities marked (never those from
    HIPE-2022 test files).
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise InputError.of("E242", "--heldout-fraction", option="--heldout-fraction", low=0, high="1 (excluded)", value=heldout_fraction)
    stats = convert_hipe2022(
        tsv_files(input_path), output, heldout_fraction, lang=lang,
        hold_out_ids=_document_ids(hold_out), partial_records=_records(partial),
    )
    for part, counts in stats.items():
        msg.info(f"{part}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    msg.good(f"Wrote {output}/train.spacy, {output}/heldout.spacy and {output}/{HELDOUT_DEV_DIR}/ (held-out ids: heldout.tsv)")


@command(ner_app, "gazetteer", example="dgemma ner gazetteer --output corpus/ner/gazetteer")
def gazetteer_cli(
    output: Path = typer.Option(Path("corpus/ner/gazetteer"), "--output", "-o", help="Folder for a blank pipeline holding the name-list vectors"),
    lang: str = typer.Option("xx", "--lang", help="Language of the blank pipeline"),
) -> None:
    """Name-list features (GeoNames cities and countries, ISO 3166 names in en/de/fr, Faker given
    names and surnames) as static vectors, for the recogniser's ``[initialize] vectors`` (training/ner.cfg)."""
    from spacy_dgemma.ner.gazetteer import write_gazetteer_pipeline

    n_words = write_gazetteer_pipeline(output, lang=lang)
    msg.good(f"Wrote {n_words:,} words with name-list features to {output}")


@command(ner_app, "ensemble", example="dgemma ner ensemble training/ner/seed-0/model-best training/ner/seed-1/model-best training/ner/seed-2/model-best --output training/ner/ensemble")
def ensemble_ner_cli(
    models: List[Path] = typer.Argument(..., help="Recognisers trained with training/ner.cfg, e.g. from different seeds"),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the voting pipeline (new, or an earlier ensemble, which is replaced)"),
    min_votes: Optional[int] = typer.Option(None, "--min-votes", help="Members that must find an entity (default: a majority)"),
) -> None:
    """Put trained recognisers into one pipeline whose entities are those most of them found."""
    from spacy_dgemma.ner.ensemble import build_ensemble

    for model in models:
        if not (model / "config.cfg").exists():
            raise InputError.of("E243", str(model))
    nlp = build_ensemble(models, output, min_votes)
    msg.good(f"Wrote {output}: {', '.join(nlp.pipe_names)}")


@command(
    ner_app,
    "evaluate",
    example=f"dgemma ner evaluate training/ner/ensemble corpus/ner/{HELDOUT_DEV_DIR} --output metrics/ner/scores.json",
)
def evaluate_ner_cli(
    model: str = typer.Argument(..., help="Pipeline that sets doc.ents (e.g. training/ner/ensemble, training/ner-fast/model-best or a package)"),
    data: List[Path] = typer.Argument(..., help=f"HIPE-2022 .tsv files or folders (e.g. corpus/ner/{HELDOUT_DEV_DIR}: the held-out documents of the dev files)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the scores as JSON (metrics/ner/scores.json, read by the model card)"),
    batch_size: int = typer.Option(16, "--batch-size", help="Documents per nlp.pipe batch"),
) -> None:
    """Raw-text precision, recall and F1 of persons and places per file and language: each document
    rebuilt as OCR text (line breaks and line-end hyphenation as printed), read by the pipeline's own
    tokenizer, an entity right when its character span and type are (as ../shared/tools/ner_eval.py)."""
    from spacy_dgemma.ner.evaluate import evaluate_raw_text
    from spacy_dgemma.ner.pipeline import load_recogniser
    from spacy_dgemma.util import AtomicWriter

    files = [f for path in data for f in tsv_files(path)]
    nlp = load_recogniser(model)
    scores = evaluate_raw_text(nlp, files, batch_size=batch_size)
    scores["model"] = model
    print_raw_text_scores(scores)
    if output is not None:
        with AtomicWriter(output) as out:
            out.write(srsly.json_dumps(scores, indent=2) + "\n")
        msg.good(f"Scores written to {output}")


def print_raw_text_scores(scores: Dict[str, Any]) -> None:
    """The tables of `evaluate_raw_text`'s scores: per file and language, then the errors."""

    def row(name: str, s: Dict[str, Any]) -> tuple:
        return (name, s["n_docs"], s["n_gold"], s["n_pred"], f"{s['p']:.3f}", f"{s['r']:.3f}", f"{s['f']:.3f}",
                f"{s['pers_f']:.3f}", f"{s['loc_f']:.3f}")

    rows = [row(name, s) for name, s in scores["files"].items()]
    rows += [row(lang, scores[lang]) for lang in scores["languages"]]
    rows.append(("mean over languages", "", "", "", "", "", f"{scores['mean_f']:.3f}", "", ""))
    header = ("file / language", "docs", "gold", "pred", "P", "R", "F1", "pers F1", "loc F1")
    msg.table(rows, header=header, divider=True)
    kinds = list(scores["all"]["errors"])
    errors = [(name, *(s["errors"][k] for k in kinds)) for name, s in scores["files"].items()]
    msg.table(errors, header=("errors", *kinds), divider=True)


@command(ner_app, "evaluate-raw", example="dgemma ner evaluate-raw corpus/split/gold-dev-en.jsonl --model xx_dgemma_relations")
def evaluate_raw_cli(
    gold: List[Path] = typer.Argument(..., help="Gold HIPE-2026 .jsonl files (e.g. the dev split, one per language)"),
    model: str = typer.Option("baseline", "--model", "-m", help="Pipeline with dgemma_relations, or 'baseline'"),
    ner: Optional[Path] = typer.Option(None, "--ner", help="Add this trained recogniser before the relations"),
    exclude: Optional[Path] = typer.Option(None, "--exclude", help="File of document ids to leave out (e.g. those the recogniser was trained on)"),
    grouper: str = typer.Option("spacy_dgemma.group_mentions.v1", "--grouper", help="Registered mention grouping function for raw text"),
    max_pairs: Optional[int] = typer.Option(None, "--max-pairs", help="Cap on raw-text pairs per document (default: the component's)"),
) -> None:
    """Relations from raw text (predicted entities) beside relations from the gold mentions, per file."""
    from spacy_dgemma.hipe.read import read_docs
    from spacy_dgemma.ner.pipeline import add_recogniser, set_grouper
    from spacy_dgemma.ner.raw_eval import gold_entity_record, raw_text_record
    from spacy_dgemma.scorer import average_scores, score_documents

    nlp = load_pipeline(model)
    if ner is not None:
        add_recogniser(nlp, ner)
    set_grouper(nlp, grouper, max_pairs)
    skip = set(exclude.read_text(encoding="utf8").split()) if exclude else set()
    rows, raw_scores, given_scores = [], {}, {}
    for path in gold:
        docs = [d for d in read_docs([path], nlp=nlp) if d._.dgemma_hipe["document_id"] not in skip]
        gold_records = [{"document_id": d._.dgemma_hipe["document_id"], "sampled_pairs": d._.dgemma_hipe_pairs} for d in docs]
        raw = [raw_text_record(nlp, d) for d in docs]
        found = sum(c["found"] for _, c in raw)
        raw_scores[path.name] = score_documents(gold_records, [r for r, _ in raw])
        given_scores[path.name] = score_documents(gold_records, [gold_entity_record(nlp, d) for d in docs])
        n_pairs = raw_scores[path.name]["n_pairs"]
        rows.append((path.name, len(docs), n_pairs, f"{found / max(n_pairs, 1):.2f}", f"{given_scores[path.name]['mean']:.3f}", f"{raw_scores[path.name]['mean']:.3f}"))
    given, raw_avg = average_scores(given_scores), average_scores(raw_scores)
    rows.append(("mean", given["n_docs"], given["n_pairs"], "", f"{given['mean']:.3f}", f"{raw_avg['mean']:.3f}"))
    msg.table(rows, header=("file", "docs", "gold pairs", "pairs found", "gold entities", "raw text"), divider=True)
