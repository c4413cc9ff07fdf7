"""Print the predicted relations of one English, one German and one French dev article."""
from pathlib import Path

import spacy
import typer
from wasabi import msg

from spacy_dgemma.hipe.corpus import make_predicted
from spacy_dgemma.hipe.read import read_docs


def main(
    model: str = typer.Argument(..., help="Pipeline folder or package name"),
    split_dir: Path = typer.Argument(..., help="Folder with gold-dev-{en,de,fr}.jsonl"),
    max_relations: int = typer.Option(8, "--max-relations", help="Relations shown per article"),
) -> None:
    nlp = spacy.load(model)
    for lang in ("en", "de", "fr"):
        path = split_dir / f"gold-dev-{lang}.jsonl"
        if not path.exists():
            msg.warn(f"{path} not found: no {lang} article to show")
            continue
        gold = next(d for d in read_docs(path, vocab=nlp.vocab) if d._.dgemma_hipe_pairs)
        doc = nlp(make_predicted(gold))
        title = doc.text.strip().split("\n", 1)[0][:70]
        msg.divider(f"{lang}: {doc._.dgemma_hipe['document_id']} ({doc._.dgemma_hipe.get('date')}) {title}")
        rows = []
        for rel, pair in list(zip(doc._.dgemma_relations, gold._.dgemma_hipe_pairs))[:max_relations]:
            person = (rel.person_mentions or [rel.person_id])[0][:28]
            place = (rel.place_mentions or [rel.place_id])[0][:22]
            rows.append((person, place, f"{rel.at} ({rel.at_scores[rel.at]:.2f})", f"{rel.is_at} ({rel.is_at_scores[rel.is_at]:.2f})", f"{pair['at']}/{pair['isAt']}"))
        msg.table(rows, header=("person", "place", "at", "isAt", "gold at/isAt"), divider=True)
        if doc._.dgemma_relations and doc._.dgemma_relations[0].at_explanation:
            msg.text(f"{doc._.dgemma_relations[0].at_explanation[:200]}")


if __name__ == "__main__":
    typer.run(main)
