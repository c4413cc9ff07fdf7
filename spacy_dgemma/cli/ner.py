"""``dgemma ner …``: the historical PERS/LOC recogniser for raw text (convert, gazetteer, ensemble,
evaluate, evaluate-raw). Thin layers over `spacy_dgemma.ner`."""
from pathlib import Path
from typing import List, Optional

import spacy
import srsly
import typer
from wasabi import msg

from spacy_dgemma.cli._util import command, ner_app
from spacy_dgemma.ner.convert import DEFAULT_HELDOUT_FRACTION, convert_hipe2022
from spacy_dgemma.predict import load_pipeline

DEFAULT_NER_DATA = Path("../shared/hipe2022-ner")


def _tsv_files(path: Path) -> List[Path]:
    files = sorted(path.glob("*.tsv")) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        msg.fail(f"{path}: no HIPE-2022 .tsv files here — point to ../shared/hipe2022-ner or a .tsv file", exits=2)
    return files


def add_recogniser_or_fail(nlp, ner: Path) -> None:
    from spacy_dgemma.ner.pipeline import add_recogniser

    try:
        add_recogniser(nlp, ner)
    except (OSError, ValueError) as err:
        msg.fail(f"{ner}: {str(err).splitlines()[0]}", exits=2)


def _document_ids(paths: List[Path]) -> set:
    from spacy_dgemma.hipe.read import iter_records

    return {line.record["document_id"] for line in iter_records(paths, validate=False)} if paths else set()


def _records(paths: List[Path]) -> List[dict]:
    from spacy_dgemma.hipe.read import iter_records

    # One file at a time: a document may be both in gold train and in the silver sandbox.
    return [line.record for path in paths for line in iter_records(path)]


@command(ner_app, "convert", example='dgemma ner convert ../shared/hipe2022-ner corpus/ner')
def convert_ner_cli(
    input_path: Path = typer.Argument(DEFAULT_NER_DATA, help="HIPE-2022 .tsv file or folder"),
    output_dir: Path = typer.Argument(Path("corpus/ner"), help="Folder for train/heldout DocBins"),
    heldout_fraction: float = typer.Option(DEFAULT_HELDOUT_FRACTION, "--heldout-fraction", help="Share of documents held out (by a hash of the id)"),
    lang: str = typer.Option("xx", "--lang", help="Language of the tokenizer/vocab"),
    hold_out: List[Path] = typer.Option([], "--hold-out", help="HIPE-2026 .jsonl file(s) whose documents are always held out (e.g. your dev split)"),
    partial: List[Path] = typer.Option([], "--partial", help="HIPE-2026 .jsonl file(s) whose pairs' mentions make partially annotated training documents (partial-train.spacy)"),
) -> None:
    """Convert HIPE-2022 NER TSV files to DocBins: a training part and a held-out part, by document.

    With --partial, the HIPE-2026 documents found in no TSV file and in no --hold-out file also
    become training documents, their pairs' mentions the only entities marked (never those from
    HIPE-2022 test files).
    """
    if not 0.0 <= heldout_fraction < 1.0:
        msg.fail("--heldout-fraction must be in [0, 1)", exits=2)
    hold_out_ids = _document_ids(hold_out)
    stats = convert_hipe2022(
        _tsv_files(input_path), output_dir, heldout_fraction, lang=lang,
        hold_out_ids=hold_out_ids, partial_records=_records(partial),
    )
    for part, counts in stats.items():
        msg.info(f"{part}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    msg.good(f"Wrote {output_dir}/train.spacy and {output_dir}/heldout.spacy (held-out ids: heldout.tsv)")


@command(ner_app, "gazetteer", example='dgemma ner gazetteer corpus/ner/gazetteer')
def gazetteer_cli(
    output_dir: Path = typer.Argument(Path("corpus/ner/gazetteer"), help="Folder for a blank pipeline holding the name-list vectors"),
    lang: str = typer.Option("xx", "--lang", help="Language of the blank pipeline"),
) -> None:
    """Name-list features (GeoNames cities and countries, ISO 3166 names in en/de/fr, Faker given
    names and surnames) as static vectors, for the recogniser's ``[initialize] vectors`` (training/ner.cfg)."""
    from spacy_dgemma.ner.gazetteer import write_gazetteer_pipeline

    try:
        n_words = write_gazetteer_pipeline(output_dir, lang=lang)
    except ImportError as err:
        msg.fail(str(err), exits=2)
    msg.good(f"Wrote {n_words:,} words with name-list features to {output_dir}")


@command(ner_app, "ensemble", example='dgemma ner ensemble training/ner/ensemble training/ner/seed-0/model-best training/ner/seed-1/model-best training/ner/seed-2/model-best')
def ensemble_ner_cli(
    output: Path = typer.Argument(..., help="Folder for the voting pipeline (e.g. training/ner/ensemble)"),
    models: List[Path] = typer.Argument(..., help="Recognisers trained with training/ner.cfg, e.g. from different seeds"),
    min_votes: Optional[int] = typer.Option(None, "--min-votes", help="Members that must find an entity (default: a majority)"),
) -> None:
    """Put trained recognisers into one pipeline whose entities are those most of them found."""
    from spacy_dgemma.ner.ensemble import build_ensemble

    for model in models:
        if not (model / "config.cfg").exists():
            msg.fail(f"{model}: not a trained pipeline (no config.cfg) — run `spacy project run train-ner` first", exits=2)
    if min_votes is not None and not 1 <= min_votes <= len(models):
        msg.fail(f"--min-votes must be between 1 and the number of models ({len(models)})", exits=2)
    try:
        nlp = build_ensemble(models, output, min_votes)
    except (OSError, ValueError) as err:
        msg.fail(str(err).splitlines()[0], exits=2)
    msg.good(f"Wrote {output}: {', '.join(nlp.pipe_names)}")


@command(ner_app, "evaluate", example='dgemma ner evaluate training/ner/ensemble corpus/ner/heldout.spacy --output metrics/ner/scores.json')
def evaluate_ner_cli(
    model: str = typer.Argument(..., help="Pipeline with an 'ner' component (e.g. training/ner/ensemble or training/ner/seed-0/model-best)"),
    data: List[Path] = typer.Argument(..., help="DocBin(s) from convert-ner (e.g. corpus/ner/heldout.spacy)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the scores as JSON (for the model card)"),
) -> None:
    """Precision, recall and F1 of pers and loc, per language and dataset (exact span and type)."""
    from spacy_dgemma.ner.evaluate import evaluate_ner_files
    from spacy_dgemma.util import AtomicWriter

    for path in data:
        if not path.exists():
            msg.fail(f"{path}: no such file — run `dgemma ner convert` first", exits=2)
    nlp = spacy.load(model)
    scores = evaluate_ner_files(nlp, data)
    rows = []
    for group, s in scores.items():
        rows.append(
            (group, int(s["n_gold"]), f"{s['p']:.3f}", f"{s['r']:.3f}", f"{s['f']:.3f}")
            + tuple(f"{s.get(f'{t}_{m}', 0.0):.3f}" for t in ("pers", "loc") for m in ("p", "r", "f"))
        )
    header = ("group", "gold", "P", "R", "F1", "pers P", "pers R", "pers F1", "loc P", "loc R", "loc F1")
    msg.table(rows, header=header, divider=True)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        with AtomicWriter(output, "w") as out:
            out.write(srsly.json_dumps(scores, indent=2))
        msg.good(f"Scores written to {output}")


@command(ner_app, "evaluate-raw", example='dgemma ner evaluate-raw corpus/split/gold-dev-en.jsonl --model xx_dgemma_relations')
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
    from spacy_dgemma.ner.pipeline import set_grouper
    from spacy_dgemma.ner.raw_eval import gold_entity_record, raw_text_record
    from spacy_dgemma.scorer import average_scores, score_documents

    nlp = load_pipeline(model)
    if ner is not None:
        add_recogniser_or_fail(nlp, ner)
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
