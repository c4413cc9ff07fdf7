"""Benchmark: document-prefix KV-cache reuse vs one prompt per pair, on a tiny Gemma 4 student.

One long HIPE article with 16 pairs; both paths decode greedily with the same token ids. Prints
the wall time and the positions each path runs through the model, checks that the generated
tokens are identical, and exits 1 if they differ or the speed-up is below --min-speedup.

    python benchmarks/prefix_cache.py            # builds tiny models in a temp dir
    python benchmarks/prefix_cache.py --model training/dgemma-smoke/tiny/student
"""
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "hipe2026" / "newspapers" / "HIPE-2026-v1.0-impresso-train-de.jsonl"


def load_record(path: Path, document_id: str, n_pairs: int) -> dict:
    for line in path.read_text(encoding="utf8").splitlines():
        record = json.loads(line)
        if record["document_id"] == document_id:
            record["sampled_pairs"] = record["sampled_pairs"][:n_pairs]
            return record
    raise typer.BadParameter(f"{document_id} not in {path}")


def main(
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="HIPE JSONL file holding the article"),
    document_id: str = typer.Option("NZZ-1898-06-10-c-p0001", "--doc", help="Article (11,738 characters, 16 pairs)"),
    n_pairs: int = typer.Option(16, "--pairs"),
    model: Optional[Path] = typer.Option(None, "--model", help="Tiny model dir [default: build one]"),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens"),
    batch_size: int = typer.Option(8, "--batch-size"),
    max_article_tokens: int = typer.Option(8000, "--max-article-tokens"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (1 is fastest on a shared CPU)"),
    min_speedup: float = typer.Option(3.0, "--min-speedup"),
) -> None:
    import torch

    from spacy_dgemma.llm.chat import encode_prompt
    from spacy_dgemma.llm.generate import GenerationStats, PrefixCachedGenerator
    from spacy_dgemma.llm.loading import load_model, load_tokenizer
    from spacy_dgemma.llm.prompts import build_prompts, document_from_hipe
    from spacy_dgemma.llm.tiny import build_tiny_models

    torch.set_num_threads(threads)
    if model is None:
        tmp = Path(tempfile.mkdtemp(prefix="dgemma-bench-"))
        model = build_tiny_models([data], tmp)["student"]
    hf_model, tokenizer = load_model(str(model), device="cpu"), load_tokenizer(str(model))
    record = load_record(data, document_id, n_pairs)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    prompts = build_prompts(document_from_hipe(record), max_article_tokens=max_article_tokens, count_tokens=count)
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    prefix, suffixes = encoded[0][0], [s for _, s in encoded]
    generator = PrefixCachedGenerator(hf_model, tokenizer, max_new_tokens=max_new_tokens, batch_size=batch_size)
    n_params = sum(p.numel() for p in hf_model.parameters())
    print(f"model: {model} ({n_params:,} parameters), {threads} thread(s), torch {torch.__version__}")
    print(f"article: {document_id}, {len(record['text']):,} characters, {len(suffixes)} pairs; "
          f"prompt = {len(prefix):,} prefix tokens + {min(map(len, suffixes))}-{max(map(len, suffixes))} pair tokens; "
          f"max_new_tokens={max_new_tokens}, batch_size={batch_size}")
    generator.generate_cached(prefix[:64], suffixes[:1])  # warm-up
    timings = {}
    outputs = {}
    for name, run in (("naive", generator.generate_naive), ("cached", generator.generate_cached)):
        stats = GenerationStats()
        start = time.perf_counter()
        outputs[name] = [g.token_ids for g in run(prefix, suffixes, stats)]
        timings[name] = time.perf_counter() - start
        print(f"{name:>6}: {timings[name]:7.2f} s, {stats.prompt_tokens:,} prompt positions + "
              f"{stats.generated_tokens:,} decoding positions = {stats.total:,} positions through the model")
    identical = outputs["naive"] == outputs["cached"]
    speedup = timings["naive"] / timings["cached"]
    print(f"speed-up: {speedup:.1f}x; generated tokens identical: {identical} "
          f"({sum(map(len, outputs['cached']))} tokens over {len(suffixes)} pairs)")
    if not identical or speedup < min_speedup:
        sys.exit(1)


if __name__ == "__main__":
    typer.run(main)
