"""Benchmark: the engines on the same prompts, and annotate's memory as the corpus grows.

1. Speed. The same documents through the ``hf`` engine (transformers in this process, each
   document prefix read once, its pairs decoded in batches from the KV cache) and through vLLM
   (``vllm serve`` started from --vllm-python, or a running server at --server-url; all pairs of
   all documents in flight, up to --max-in-flight): wall time, pairs/s, generated tokens/s, and
   the prefix-cache hit rate vLLM reports (its Prometheus counters, before and after). Greedy
   decoding, no guided JSON, float32 on both sides by default, so the answers can be compared:
   the share of pairs with the same answer is printed too.
2. Memory. ``dgemma llm annotate`` (hf engine, 1 new token, the article cut to 256 tokens: the
   model is negligible, what is measured is annotate's own reading, prompting, caching and
   output writing) on the sandbox and on a corpus 10x the sandbox (its documents repeated under
   new ids): peak RSS of each run.

Writes metrics/llm-engines.json. On CPU it builds the tiny models; on a GPU:

    python benchmarks/llm_engines.py --model google/gemma-4-E2B-it --device cuda --dtype bfloat16 --gpu-memory-utilization 0.8
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import typer

REPO = Path(__file__).resolve().parents[1]
SANDBOX = REPO / ".." / "shared" / "hipe2026" / "sandbox"


def read_records(paths: List[Path], n_docs: Optional[int] = None) -> List[dict]:
    records = [json.loads(line) for path in paths for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    return records[:n_docs] if n_docs else records


def run_engine(labeller, items) -> Dict[str, float]:
    stats = labeller.engine.stats
    before = (stats.prompt_tokens, stats.generated_tokens)
    start = time.perf_counter()
    results = labeller.label_documents(items)
    seconds = time.perf_counter() - start
    pairs = sum(len(r) for r in results)
    generated = stats.generated_tokens - before[1]
    return {"seconds": round(seconds, 2), "pairs": pairs, "pairs_per_s": round(pairs / seconds, 2),
            "prompt_tokens": stats.prompt_tokens - before[0], "generated_tokens": generated,
            "generated_tokens_per_s": round(generated / seconds, 1), "answers": [[r.raw for r in doc] for doc in results]}


def peak_rss_mib(args: List[str]) -> Dict[str, float]:
    """Run `args` in a child of a fresh interpreter; its peak RSS (MiB) and wall time."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, r.returncode); "
             "sys.stderr.write(r.stderr[-2000:] if r.returncode else '')")
    out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=REPO)
    kib, seconds, code = out.stdout.split()
    if code != "0":
        raise RuntimeError(f"annotate failed: {out.stderr}")
    return {"peak_rss_mib": round(int(kib) / 1024, 1), "seconds": round(float(seconds), 1)}


def main(
    model: Optional[str] = typer.Option(None, "--model", help="Model folder or hub name [default: build the tiny student]"),
    data: List[Path] = typer.Option([SANDBOX / "en-dev.jsonl"], "--data", help="HIPE JSONL files for the speed test"),
    docs: int = typer.Option(17, "--docs", help="Documents for the speed test"),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens"),
    max_article_tokens: int = typer.Option(2000, "--max-article-tokens"),
    batch_size: int = typer.Option(8, "--batch-size", help="hf: pairs of a document decoded together"),
    max_in_flight: int = typer.Option(16, "--max-in-flight", help="vLLM: requests open at once"),
    device: str = typer.Option("cpu", "--device"),
    dtype: str = typer.Option("float32", "--dtype", help="Both engines' dtype (same dtype: comparable answers)"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads of the hf engine"),
    server_url: Optional[str] = typer.Option(None, "--server-url", help="A running vLLM server [default: start one]"),
    vllm_python: Optional[str] = typer.Option(None, "--vllm-python", help="The Python that has vllm [default: .venv-vllm]"),
    gpu_memory_utilization: float = typer.Option(0.1, "--gpu-memory-utilization"),
    eager: bool = typer.Option(True, "--eager/--compile", help="vLLM without torch.compile (starts faster on CPU)"),
    in_process: bool = typer.Option(False, "--in-process", help="vLLM in this process (vllm.LLM): run the script with a Python that has vllm and spacy-dgemma, e.g. .venv-vllm/bin/python"),
    memory_scale: int = typer.Option(10, "--memory-scale", help="The large corpus is this many times the sandbox (0: skip the memory test)"),
    output: Path = typer.Option(REPO / "metrics" / "llm-engines.json", "--output"),
) -> None:
    import torch

    from spacy_dgemma.llm.engines import EngineOptions, GenerationSettings, open_engine
    from spacy_dgemma.llm.engines.openai import ServerEngine
    from spacy_dgemma.llm.engines.vllm_local import LocalVLLMServer
    from spacy_dgemma.llm.labeller import RelationLabeller
    from spacy_dgemma.llm.prompts import document_from_hipe
    from spacy_dgemma.llm.tiny import build_tiny_models

    torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp(prefix="dgemma-engines-"))
    if model is None:
        model = str(build_tiny_models(sorted((REPO / ".." / "shared" / "hipe2026" / "newspapers").glob("*.jsonl")), tmp / "tiny")["student"])
    records = read_records(data, docs)
    items = [(document_from_hipe(r), None) for r in records]
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    report: Dict[str, object] = {"model": model, "documents": len(items), "pairs": sum(len(d.pairs) for d, _ in items),
                                 "max_new_tokens": max_new_tokens, "max_article_tokens": max_article_tokens,
                                 "device": device, "dtype": dtype, "hf_threads": threads, "torch": torch.__version__}
    print(f"{len(items)} documents, {report['pairs']} pairs, {max_new_tokens} new tokens, model {model}")

    hf = open_engine(EngineOptions(engine="hf", model=model, device=device, dtype=dtype, batch_size=batch_size),
                     settings, identity="")
    labeller = RelationLabeller(engine=hf, max_article_tokens=max_article_tokens)
    labeller.label_documents(items[:1])  # warm-up
    report["hf"] = run_engine(labeller, items)
    print(f"hf (prefix cache, batch {batch_size}): {report['hf']['seconds']} s, {report['hf']['pairs_per_s']} pairs/s, "
          f"{report['hf']['generated_tokens_per_s']} generated tokens/s")

    started = time.perf_counter()
    if in_process:  # vllm.LLM here: no server, no Prometheus counters
        engine = open_engine(EngineOptions(engine="vllm", model=model, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                                           vllm_args=["--enforce-eager"] if eager else []), settings, identity="")
        server = None
    else:
        server = None if server_url else LocalVLLMServer(
            model, python=vllm_python, gpu_memory_utilization=gpu_memory_utilization, dtype=dtype,
            extra_args=["--enforce-eager"] if eager else [], log_path=str(tmp / "vllm.log")).start()
        engine = ServerEngine(server_url or server.url, model, hf.tokenizer, settings, max_in_flight=max_in_flight)
        engine.model_name = engine.find_model(model)
    report["vllm_startup_s"] = round(time.perf_counter() - started, 1)
    print(f"{engine.describe()} ready in {report['vllm_startup_s']} s")
    try:
        served = RelationLabeller(engine=engine, max_article_tokens=max_article_tokens)
        served.label_documents(items[:1])  # warm-up (vLLM's first request sets up its kernels)
        before = engine.metrics() if server_url or server else {}
        report["vllm"] = run_engine(served, items)
        after = engine.metrics() if server_url or server else {}
    finally:
        engine.close()
        if server is not None:
            server.stop()
    queries = after.get("prefix_cache_queries", 0) - before.get("prefix_cache_queries", 0)
    hits = after.get("prefix_cache_hits", 0) - before.get("prefix_cache_hits", 0)
    report["vllm"].update(engine=engine.describe(), prefix_cache_queries=queries, prefix_cache_hits=hits,
                          prefix_cache_hit_rate=round(hits / queries, 3) if queries else None)
    same = sum(a == b for doc_a, doc_b in zip(report["hf"]["answers"], report["vllm"]["answers"]) for a, b in zip(doc_a, doc_b))
    report["same_answers"] = same
    print(f"vllm ({max_in_flight} in flight): {report['vllm']['seconds']} s, {report['vllm']['pairs_per_s']} pairs/s, "
          f"{report['vllm']['generated_tokens_per_s']} generated tokens/s, prefix-cache hit rate "
          f"{report['vllm']['prefix_cache_hit_rate']} ({hits:.0f} of {queries:.0f} prompt tokens)")
    print(f"same answer from both engines: {same} of {report['pairs']} pairs")
    for name in ("hf", "vllm"):
        del report[name]["answers"]

    if memory_scale:
        sandbox = sorted(SANDBOX.glob("*.jsonl"))
        base = read_records(sandbox)
        corpora = {"1x": tmp / "sandbox-1x.jsonl", f"{memory_scale}x": tmp / f"sandbox-{memory_scale}x.jsonl"}
        for name, path in corpora.items():
            times = 1 if name == "1x" else memory_scale
            with path.open("w", encoding="utf8") as out:
                for copy in range(times):
                    for record in base:
                        out.write(json.dumps(dict(record, document_id=f"{record['document_id']}-copy{copy}")) + "\n")
        report["memory"] = {}
        for name, path in corpora.items():
            args = [sys.executable, "-m", "spacy_dgemma", "llm", "annotate", str(path), "--cache", str(tmp / f"cache-{name}.jsonl"),
                    "--output-dir", str(tmp / f"out-{name}"), "--traces", str(tmp / f"traces-{name}.jsonl"), "--include-fallback",
                    "--model", model, "--device", device, "--max-new-tokens", "1", "--max-article-tokens", "256", "--threads", "1"]
            n_docs = sum(1 for _ in path.open())
            result = peak_rss_mib(args)
            result.update(documents=n_docs, pairs=sum(len(r["sampled_pairs"]) for r in base) * (1 if name == "1x" else memory_scale))
            report["memory"][name] = result
            print(f"annotate {name} sandbox ({n_docs} documents, {result['pairs']} pairs): peak RSS "
                  f"{result['peak_rss_mib']} MiB, {result['seconds']} s")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")
    print(f"wrote {output}")


if __name__ == "__main__":
    typer.run(main)
