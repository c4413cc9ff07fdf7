"""``dgemma visualize``: documents and their relations as one self-contained HTML page."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from spacy_dgemma.cli._util import app, command
from spacy_dgemma.cli.ner import add_recogniser_or_fail
from spacy_dgemma.errors import InputError
from spacy_dgemma.predict import load_pipeline


@command(app, "visualize", example='dgemma visualize docs/examples/fr.txt --model xx_dgemma_relations --output relations.html')
def visualize_cli(
    inputs: List[Path] = typer.Argument(..., help="HIPE-2026 .jsonl or plain .txt files"),
    model: str = typer.Option("baseline", "--model", "-m", help="Pipeline with dgemma_relations, or 'baseline'"),
    out: Path = typer.Option(Path("relations.html"), "--out", "-o", help="HTML file to write"),
    ner: Optional[Path] = typer.Option(None, "--ner", help="Add this trained recogniser before the relations (for raw text)"),
    grouper: str = typer.Option("spacy_dgemma.group_mentions.v1", "--grouper", help="Mention grouping for raw text ('' keeps the pipeline's)"),
) -> None:
    """Render documents as self-contained HTML: persons/places highlighted, relations in a table."""
    from spacy_dgemma.ner.pipeline import read_inputs, set_grouper
    from spacy_dgemma.visualize import render_html

    for path in inputs:
        if not path.exists():
            raise InputError.of("E007", str(path))
        if path.suffix not in (".jsonl", ".txt"):
            msg.fail(f"{path}: give HIPE-2026 .jsonl or plain .txt files", exits=2)
    nlp = load_pipeline(model)
    if ner is not None:
        add_recogniser_or_fail(nlp, ner)
    if grouper:
        set_grouper(nlp, grouper)
    docs = list(nlp.pipe(read_inputs(inputs, nlp)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(docs), encoding="utf8")
    n_rel = sum(len(d._.dgemma_relations) for d in docs)
    msg.good(f"Wrote {out}: {len(docs)} document(s), {n_rel} relation(s)")
