"""``dgemma visualize``: documents and their relations as one self-contained HTML page."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from spacy_dgemma.cli._util import app, command
from spacy_dgemma.errors import InputError
from spacy_dgemma.predict import load_pipeline
from spacy_dgemma.util import AtomicWriter

SUFFIXES = (".jsonl", ".txt")


@command(
    app,
    "visualize",
    example="dgemma visualize corpus/split/gold-dev-fr.jsonl --model xx_dgemma_relations --output relations.html\n"
    "dgemma visualize docs/examples/fr.txt --model xx_dgemma_relations_text --output fr.html",
)
def visualize_cli(
    inputs: List[Path] = typer.Argument(..., help="HIPE-2026 .jsonl or plain-text .txt files"),
    model: str = typer.Option("baseline", "--model", "-m", help="Pipeline with dgemma_relations (folder or package), or 'baseline'"),
    output: Path = typer.Option(Path("relations.html"), "--output", "-o", help="HTML file to write (replaced only when complete)"),
    ner: Optional[Path] = typer.Option(None, "--ner", help="Add this trained recogniser before the relations (for raw text)"),
    grouper: str = typer.Option("spacy_dgemma.group_mentions.v1", "--grouper", help="Mention grouping for raw text ('' keeps the pipeline's)"),
) -> None:
    """Render documents as one HTML page: the articles with persons/places highlighted, their relations, filters, CSV export."""
    from spacy_dgemma.ner.pipeline import add_recogniser, read_inputs, set_grouper
    from spacy_dgemma.visualize import render_html

    for path in inputs:
        if not path.exists():
            raise InputError.of("E007", str(path))
        if path.suffix not in SUFFIXES:
            raise InputError.of("E068", str(path), suffix=path.suffix)
    nlp = load_pipeline(model)
    if ner is not None:
        add_recogniser(nlp, ner)
    if grouper:
        set_grouper(nlp, grouper)
    docs = list(nlp.pipe(read_inputs(inputs, nlp)))
    labels = _entity_labels(nlp)
    page = render_html(docs, **labels)
    with AtomicWriter(output) as handle:
        handle.write(page)
    n_rel = sum(len(d._.dgemma_relations) for d in docs)
    msg.good(f"Wrote {output}: {len(docs)} document(s), {n_rel} relation(s)")


def _entity_labels(nlp) -> dict:
    """The doc.ents labels the pipeline's relation component reads as persons / places (its config)."""
    from spacy_dgemma.predict import RELATIONS_FACTORY

    name = next(n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == RELATIONS_FACTORY)
    candidates = nlp.config["components"][name].get("candidates", {})
    return {key: tuple(candidates[key]) for key in ("person_labels", "place_labels") if candidates.get(key)}
