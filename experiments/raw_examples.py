"""Print the raw-text examples of docs/raw_text.md (Markdown) from docs/examples/{en,de,fr}.txt.

    python experiments/raw_examples.py training/compact/model-best training/ner/ensemble
"""
from pathlib import Path

import spacy
import typer

from spacy_dgemma.ner.pipeline import add_recogniser, set_grouper

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def main(model: Path, ner: Path, langs: str = "en,de,fr") -> None:
    nlp = spacy.load(model)
    add_recogniser(nlp, ner)
    set_grouper(nlp)
    for lang in langs.split(","):
        text = (EXAMPLES / f"{lang}.txt").read_text(encoding="utf8").strip()
        doc = nlp(text)
        print(f"### {lang}\n\n```python\ndoc = nlp({text!r})\n```\n")
        print("Entities: " + ", ".join(f"{e.text} ({e.label_})" for e in doc.ents) + "\n")
        if not doc._.dgemma_relations:
            print("No relation (it takes a person and a place).\n")
            continue
        print("| person | place | at | isAt |\n|---|---|---|---|")
        for rel in doc._.dgemma_relations:
            at = f"{rel.at} ({rel.at_scores[rel.at]:.2f})"
            is_at = f"{rel.is_at} ({rel.is_at_scores[rel.is_at]:.2f})"
            print(f"| {rel.person_mentions[0]} | {rel.place_mentions[0]} | {at} | {is_at} |")
        print()


if __name__ == "__main__":
    typer.run(main)
