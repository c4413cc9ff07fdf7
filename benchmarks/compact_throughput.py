"""Speed, memory and size of the compact CPU student (issue 3 targets).

Measures, on the HIPE-2026 gold train documents (their given mentions and pairs):
- model load time and model size on disk;
- pairs/s and docs/s of ``nlp.pipe`` on one process and with ``n_process=2`` (after load);
- peak memory (max RSS) of the process;
- time and peak memory of ``dgemma predict`` (streaming) on 1x, 4x and 16x the train set, to
  check that time grows linearly and memory stays flat.

    nice python benchmarks/compact_throughput.py --model training/compact/model-best

Targets: >= 100 pairs/s on one process, peak memory < 1 GB, model < 50 MB.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "hipe2026" / "newspapers"
SCALES = (1, 4, 16)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(nlp, docs: List, n_process: int, batch_size: int) -> Dict[str, float]:
    """Docs/s and pairs/s of nlp.pipe over copies of `docs`."""
    from spacy_dgemma.hipe.corpus import make_predicted

    inputs = [make_predicted(doc) for doc in docs]
    start = time.perf_counter()
    n_pairs = sum(len(doc._.dgemma_relations) for doc in nlp.pipe(inputs, n_process=n_process, batch_size=batch_size))
    seconds = time.perf_counter() - start
    return {"n_process": n_process, "docs": len(docs), "pairs": n_pairs, "seconds": round(seconds, 2),
            "docs_per_s": round(len(docs) / seconds, 1), "pairs_per_s": round(n_pairs / seconds, 1)}


def scaled_predict(model: str, data: Path, scale: int, workdir: Path) -> Dict[str, Any]:
    """`dgemma predict` on the train files repeated `scale` times: wall time and peak RSS."""
    lines = [line for f in sorted(data.glob("*.jsonl")) for line in f.read_text(encoding="utf8").splitlines() if line.strip()]
    src = workdir / f"input-x{scale}.jsonl"
    with src.open("w", encoding="utf8") as out:
        for copy in range(scale):  # document ids must be unique within a run
            for line in lines:
                record = json.loads(line)
                record["document_id"] = f"{record['document_id']}-copy{copy}"
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out = workdir / f"output-x{scale}.jsonl"
    cmd = ["/usr/bin/time", "-f", "%M %e", sys.executable, "-m", "spacy_dgemma", "predict", str(src), str(out), "--model", model]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dgemma predict failed:\n{proc.stderr[-2000:]}")
    rss_kb, wall = proc.stderr.strip().splitlines()[-1].split()
    n_docs = len(lines) * scale
    return {"scale": scale, "docs": n_docs, "seconds": float(wall), "peak_rss_mb": round(int(rss_kb) / 1024, 1),
            "docs_per_s": round(n_docs / float(wall), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "training" / "compact" / "model-best"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of HIPE-2026 .jsonl files")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--scales", type=int, nargs="*", default=list(SCALES))
    parser.add_argument("--output", type=Path, default=REPO / "metrics" / "benchmark-compact.json")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: no HIPE-2026 data; pass --data")

    import spacy

    from spacy_dgemma.hipe.read import read_docs

    start = time.perf_counter()
    nlp = spacy.load(args.model)
    result: Dict[str, Any] = {"model": args.model, "load_seconds": round(time.perf_counter() - start, 2)}
    result["model_mb"] = round(dir_size(Path(args.model)) / 2**20, 2)
    docs = list(read_docs(args.data, vocab=nlp.vocab))
    throughput(nlp, docs[:8], 1, args.batch_size)  # warm-up
    result["single"] = throughput(nlp, docs, 1, args.batch_size)
    result["multi"] = throughput(nlp, docs, 2, args.batch_size)
    result["peak_rss_mb"] = round(max_rss_mb(), 1)
    with tempfile.TemporaryDirectory() as tmp:
        result["scaling"] = [scaled_predict(args.model, args.data, scale, Path(tmp)) for scale in args.scales]
    # Time = start-up (imports, load) + a per-document cost: linear means the marginal cost per
    # document stays the same from one scale to the next.
    base = result["scaling"][0]
    for prev, row in zip([None] + result["scaling"], result["scaling"]):
        row["time_ratio"] = round(row["seconds"] / base["seconds"], 2)
        if prev is not None:
            row["marginal_s_per_doc"] = round((row["seconds"] - prev["seconds"]) / (row["docs"] - prev["docs"]), 4)
    print(json.dumps(result, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2), encoding="utf8")
    print(f"Written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
