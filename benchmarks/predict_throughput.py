"""End-to-end `dgemma predict` against the relation component alone (issue 19, item 6).

On the HIPE-2026 gold train documents repeated `--scale` times (new document ids), one process:
- component: ``nlp.pipe`` over Docs already read (their mentions aligned), after a warm-up,
  as `compact_throughput.py` measures it;
- predict_files: the library function behind `dgemma predict` on the same documents, in the
  same process after the same warm-up: reading, checking, tokenizing, mention alignment, the
  pipeline, serialising and writing. The two alternate for `--rounds` rounds (so that both
  see the same load); the best round of each counts;
- `dgemma predict` as a user runs it, in a fresh process, on the scaled input and on the
  train set once (1x): the difference is the marginal rate once start-up, model loading and
  the first sight of every word (lexemes, caches) are paid.

Each figure is given per second of wall time and per second of CPU time (user + system), with
the load average beside it: on a shared machine CPU time is the steadier measure of work.

    OMP_NUM_THREADS=1 python benchmarks/predict_throughput.py --model training/compact-all/model-last

Target: predict_files >= 80% of the component's pairs/s.
"""
import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "hipe2026" / "newspapers"
DEFAULT_MODEL = REPO / "training" / "compact-all" / "model-last"
TARGET = 0.8


def load() -> float:
    return round(os.getloadavg()[0], 2)


def scaled_input(data: Path, scale: int, path: Path) -> int:
    """Write the train files repeated `scale` times with unique document ids; return the count."""
    lines = [line for f in sorted(data.glob("*.jsonl")) for line in f.read_text(encoding="utf8").splitlines() if line.strip()]
    with path.open("w", encoding="utf8") as out:
        for copy in range(scale):
            for line in lines:
                record = json.loads(line)
                record["document_id"] = f"{record['document_id']}-copy{copy}"
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(lines) * scale


def rates(n_docs: int, n_pairs: int, wall: float, cpu: float, **extra: Any) -> Dict[str, Any]:
    return {
        "docs": n_docs, "pairs": n_pairs, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "docs_per_s": round(n_docs / wall, 1), "pairs_per_s": round(n_pairs / wall, 1),
        "pairs_per_cpu_s": round(n_pairs / cpu, 1), **extra,
    }


def timed(func: Callable[[], Tuple[int, int]]) -> Dict[str, Any]:
    """Run `func` (which returns documents and pairs) and time it, wall and CPU."""
    gc.collect()
    before = load()
    wall, cpu = time.perf_counter(), time.process_time()
    n_docs, n_pairs = func()
    return rates(n_docs, n_pairs, time.perf_counter() - wall, time.process_time() - cpu, load=before)


def in_process(model: str, data: Path, src: Path, scale: int, batch_size: int, rounds: int, workdir: Path, warm_up: Path) -> Dict[str, Any]:
    """The component and predict_files, alternating, after a warm-up of both on `warm_up`'s files."""
    import spacy

    from spacy_dgemma.hipe.corpus import make_predicted
    from spacy_dgemma.hipe.read import read_docs
    from spacy_dgemma.predict import predict_files

    nlp = spacy.load(model)
    docs = list(read_docs(data, vocab=nlp.vocab))
    out = workdir / "in-process.jsonl"

    def component() -> Tuple[int, int]:
        inputs = [make_predicted(doc) for doc in docs * scale]
        return len(inputs), sum(len(doc._.dgemma_relations) for doc in nlp.pipe(inputs, batch_size=batch_size))

    def predict() -> Tuple[int, int]:
        summary = predict_files([src], out, nlp, batch_size=batch_size, progress=False)
        return sum(summary.outputs.values()), summary.n_pairs

    warm_docs = list(read_docs(warm_up, vocab=nlp.vocab))
    list(nlp.pipe([make_predicted(doc) for doc in warm_docs], batch_size=batch_size))
    predict_files(sorted(warm_up.glob("*.jsonl")), workdir / "warm-up", nlp, batch_size=batch_size, progress=False)
    runs: Dict[str, List[Dict[str, Any]]] = {"component": [], "predict_files": []}
    for _ in range(rounds):
        runs["component"].append(timed(component))
        runs["predict_files"].append(timed(predict))
    best = {name: min(results, key=lambda r: r["cpu_s"]) for name, results in runs.items()}
    return {**best, "rounds": runs}


def run_predict(model: str, src: Path, out: Path, batch_size: int) -> Dict[str, Any]:
    """`dgemma predict` in a fresh process: wall and CPU seconds, documents and pairs written."""
    cmd = [sys.executable, "-m", "spacy_dgemma", "predict", str(src), str(out), "--model", model, "--batch-size", str(batch_size)]
    before = load()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"dgemma predict failed:\n{proc.stderr[-2000:]}")
    records = [json.loads(line) for line in out.read_text(encoding="utf8").splitlines()]
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return rates(len(records), sum(len(r["sampled_pairs"]) for r in records), wall, cpu, load=before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of HIPE-2026 .jsonl files")
    parser.add_argument("--scale", type=int, default=16, help="times the train set is repeated")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="alternating in-process rounds")
    parser.add_argument("--warm-up", type=Path, default=None, help="folder of files to warm up on [default: --data]; "
                        "another folder measures documents never seen (caches cold), with --scale 1 --rounds 1")
    parser.add_argument("--no-cli", action="store_true", help="in-process figures only (no `dgemma predict` runs)")
    parser.add_argument("--output", type=Path, default=REPO / "metrics" / "benchmark-predict.json")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: no HIPE-2026 data; pass --data")
    if not Path(args.model).exists():
        sys.exit(f"{args.model}: no such model; build it with `spacy project run cpu .`")
    result: Dict[str, Any] = {"model": args.model, "scale": args.scale, "cpus": os.cpu_count(),
                              "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        src = workdir / f"input-x{args.scale}.jsonl"
        scaled_input(args.data, args.scale, src)
        once = workdir / "input-x1.jsonl"
        scaled_input(args.data, 1, once)
        warm_up = args.warm_up or args.data
        result["warm_up"] = str(warm_up)
        result.update(in_process(args.model, args.data, src, args.scale, args.batch_size, args.rounds, workdir, warm_up))
        if not args.no_cli:
            result["cli_x1"] = run_predict(args.model, once, workdir / "out-x1.jsonl", args.batch_size)
            result["cli"] = run_predict(args.model, src, workdir / "out.jsonl", args.batch_size)
    comp, lib = result["component"], result["predict_files"]
    result["ratio"] = {
        "predict_files_cpu": round(lib["pairs_per_cpu_s"] / comp["pairs_per_cpu_s"], 3),
        "predict_files_wall": round(lib["pairs_per_s"] / comp["pairs_per_s"], 3),
    }
    lines = [
        f"component alone     : {comp['docs_per_s']:.1f} docs/s, {comp['pairs_per_s']:.0f} pairs/s ({comp['pairs_per_cpu_s']:.0f} per CPU s), load {comp['load']}",
        f"predict_files       : {lib['docs_per_s']:.1f} docs/s, {lib['pairs_per_s']:.0f} pairs/s ({lib['pairs_per_cpu_s']:.0f} per CPU s), load {lib['load']}",
    ]
    ratio = result["ratio"]
    if not args.no_cli:
        cli, cli1 = result["cli"], result["cli_x1"]
        marginal = rates(cli["docs"] - cli1["docs"], cli["pairs"] - cli1["pairs"], cli["wall_s"] - cli1["wall_s"], cli["cpu_s"] - cli1["cpu_s"])
        result["cli_marginal"] = marginal
        ratio["cli_marginal_cpu"] = round(marginal["pairs_per_cpu_s"] / comp["pairs_per_cpu_s"], 3)
        ratio["cli_with_startup_wall"] = round(cli["pairs_per_s"] / comp["pairs_per_s"], 3)
        lines += [
            f"dgemma predict      : {cli['docs_per_s']:.1f} docs/s, {cli['pairs_per_s']:.0f} pairs/s (start-up included, {cli['wall_s']:.1f} s), load {cli['load']}",
            f"  marginal over 1x  : {marginal['pairs_per_s']:.0f} pairs/s ({marginal['pairs_per_cpu_s']:.0f} per CPU s); "
            f"ratio {ratio['cli_marginal_cpu']:.0%} (CPU), with start-up {ratio['cli_with_startup_wall']:.0%} (wall)",
        ]
    lines.append(f"ratio to component  : predict_files {ratio['predict_files_cpu']:.0%} (CPU) / {ratio['predict_files_wall']:.0%} (wall); target {TARGET:.0%}")
    result["target"] = TARGET
    print(json.dumps(result, indent=2))
    print("\n".join(lines), file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(f"Written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
