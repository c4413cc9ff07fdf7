"""Words per second of the raw-text pipeline (NER + relations) on one process.

Reads the texts of HIPE-2026 files as raw text (their given mentions are not used), so the
recogniser finds the persons and places and the relation component decides every pair.

    nice python benchmarks/pipeline_speed.py --model baseline --ner training/ner/ensemble
    python benchmarks/pipeline_speed.py --model packages/xx_dgemma_relations   # NER inside

Target (issue 5): at least 1,000 words/s on this machine's CPU.
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "hipe2026" / "newspapers"


def load_texts(data: Path, limit: int) -> List[str]:
    """Texts of the HIPE-2026 JSONL files under `data` (at most `limit`)."""
    files = sorted(data.glob("*.jsonl")) if data.is_dir() else [data]
    texts = []
    for path in files:
        with path.open(encoding="utf8") as file_:
            texts.extend(json.loads(line)["text"] for line in file_ if line.strip())
    return texts[:limit] if limit else texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="baseline", help="pipeline with dgemma_relations, or 'baseline'")
    parser.add_argument("--ner", type=Path, default=None, help="recogniser to add before the relations")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="HIPE-2026 .jsonl file or folder")
    parser.add_argument("--limit", type=int, default=0, help="at most this many documents (0: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2, help="timed passes (the best is reported)")
    parser.add_argument("--grouper", default="spacy_dgemma.group_mentions.v1", help="raw-text mention grouping ('' keeps the pipeline's)")
    parser.add_argument("--output", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args()

    from spacy_dgemma.ner.pipeline import add_recogniser, set_grouper
    from spacy_dgemma.predict import load_pipeline

    if not args.data.exists():
        sys.exit(f"{args.data}: no HIPE-2026 data; pass --data")
    nlp = load_pipeline(args.model)
    if args.ner is not None:
        add_recogniser(nlp, args.ner)
    if args.grouper:
        set_grouper(nlp, args.grouper)
    if not any(nlp.get_pipe_meta(n).factory == "ner" for n in nlp.pipe_names):
        print("warning: the pipeline has no NER: raw text will get no entities", file=sys.stderr)
    texts = load_texts(args.data, args.limit)
    n_words = sum(len(t.split()) for t in texts)
    list(nlp.pipe(texts[:4]))  # warm-up: lazy loading, caches
    best = float("inf")
    n_relations = 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=args.batch_size))
        best = min(best, time.perf_counter() - start)
        n_relations = sum(len(d._.dgemma_relations) for d in docs)
    result = {
        "pipeline": nlp.pipe_names,
        "model": args.model,
        "ner": str(args.ner) if args.ner else None,
        "grouper": args.grouper or None,
        "documents": len(texts),
        "words": n_words,
        "relations": n_relations,
        "seconds": round(best, 3),
        "words_per_second": round(n_words / best, 1),
    }
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")


if __name__ == "__main__":
    main()
