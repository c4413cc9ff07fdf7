"""Make the training corpus: the project's dev split of HIPE-2026, as JSONL and DocBins.

Writes, under OUTPUT:
  split/   the by-document split of `dgemma split` (gold-train/dev and silver-train/dev, per language)
  gold/    DocBins of the gold train part
  silver/  DocBins of the gold train part plus all silver (sandbox) documents that are not in gold
  silver-train/  DocBins of the silver train documents only (for paths.silver, added at a loss weight)
  dev/     DocBins of the gold dev part
  gold-all/  DocBins of the gold train and dev parts together (the packaged model's final fit)
"""
import shutil
from pathlib import Path

import typer
from wasabi import msg

from spacy_dgemma.hipe.corpus import DEV_FRACTION, split_documents
from spacy_dgemma.hipe.read import AlignmentReport, read_docs
from spacy_dgemma.hipe.write import write_docbin


def convert(jsonl: Path, out_dir: Path, report: AlignmentReport) -> None:
    """One JSONL file → one DocBin of the same stem in `out_dir`."""
    n = write_docbin(out_dir / f"{jsonl.stem}.spacy", read_docs(jsonl, report=report))
    msg.text(f"{out_dir / jsonl.stem}.spacy: {n} documents")


def main(
    data: Path = typer.Argument(..., help="HIPE-2026 release folder (newspapers/, sandbox/)"),
    output: Path = typer.Argument(..., help="Output folder"),
    dev_fraction: float = typer.Option(DEV_FRACTION, "--dev-fraction", help="Share of gold train held out as dev"),
    limit: int = typer.Option(0, "--limit", help="Read the first N documents of each data file (0: all), for quick runs"),
) -> None:
    split_dir = output / "split"
    for name in ("split", "gold", "silver", "silver-train", "dev", "gold-all"):
        shutil.rmtree(output / name, ignore_errors=True)
        (output / name).mkdir(parents=True)
    silver = data / "sandbox"
    summary = split_documents(data / "newspapers", silver if silver.exists() else None, split_dir, dev_fraction=dev_fraction, limit=limit)
    msg.good(f"Split written to {split_dir}: {sum(summary.files.values())} documents, "
             f"{summary.n_silver_excluded} silver documents left out (they are in gold train)")
    report = AlignmentReport()
    for path in sorted(summary.files):
        if path.name.startswith("gold-train-"):
            convert(path, output / "gold", report)
            shutil.copyfile(output / "gold" / f"{path.stem}.spacy", output / "gold-all" / f"{path.stem}.spacy")
            shutil.copyfile(output / "gold" / f"{path.stem}.spacy", output / "silver" / f"{path.stem}.spacy")
        elif path.name.startswith("gold-dev-"):
            convert(path, output / "dev", report)
            shutil.copyfile(output / "dev" / f"{path.stem}.spacy", output / "gold-all" / f"{path.stem}.spacy")
        elif path.name.startswith("silver-"):
            convert(path, output / "silver", report)
            if path.name.startswith("silver-train-"):
                shutil.copyfile(output / "silver" / f"{path.stem}.spacy", output / "silver-train" / f"{path.stem}.spacy")
    msg.info(f"{report.n_docs} documents, {report.n_mentions} mentions, {len(report.unaligned)} not found in the text")


if __name__ == "__main__":
    typer.run(main)
