"""Copy the first N documents of a JSONL file (for quick runs on a few documents)."""
from pathlib import Path

import typer


def main(
    source: Path = typer.Argument(..., help="JSONL file"),
    target: Path = typer.Argument(..., help="JSONL file to write"),
    n: int = typer.Option(2, "--n", help="Documents to keep"),
) -> None:
    lines = [line for line in source.read_text(encoding="utf8").splitlines() if line.strip()][:n]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(line + "\n" for line in lines), encoding="utf8")
    typer.echo(f"{target}: {len(lines)} documents")


if __name__ == "__main__":
    typer.run(main)
