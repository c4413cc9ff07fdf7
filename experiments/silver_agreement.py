"""How good are the sandbox's silver labels? Score them against gold on the documents both have.

The HIPE-2026 sandbox carries labels of an LLM ensemble; some of its documents are also in the
gold train files. Per language, the gold documents whose id is in the sandbox are scored with
the official metric, the sandbox labels as predictions (a gold pair the sandbox lacks counts as
FALSE, as in ``dgemma evaluate``): a ceiling of sorts for what the silver labels can teach.

    python experiments/silver_agreement.py ../shared/hipe2026
"""
from pathlib import Path

import typer

from spacy_dgemma.hipe.read import iter_records
from spacy_dgemma.scorer import score_documents

LANGS = ("de", "en", "fr")


def main(hipe_dir: Path = typer.Argument(..., help="The HIPE-2026 folder (newspapers/ and sandbox/)")) -> None:
    typer.echo(f"{'lang':4}  {'docs':>4}  {'pairs':>5}  {'at':>6}  {'isAt':>6}  {'mean':>6}")
    for lang in LANGS:
        silver = [item.record for item in iter_records(sorted((hipe_dir / "sandbox").glob(f"{lang}-*.jsonl")))]
        silver_ids = {record["document_id"] for record in silver}
        gold_files = sorted((hipe_dir / "newspapers").glob(f"*-train-{lang}.jsonl"))
        gold = [item.record for item in iter_records(gold_files) if item.record["document_id"] in silver_ids]
        s = score_documents(gold, silver)
        typer.echo(f"{lang:4}  {s['n_docs']:>4}  {s['n_pairs']:>5}  {s['at']:6.3f}  {s['isAt']:6.3f}  {s['mean']:6.3f}")


if __name__ == "__main__":
    typer.run(main)
