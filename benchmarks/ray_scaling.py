"""Archive scale on one machine: `dgemma predict` with the local engine (1 and 2 processes) and
the Ray engine (1 and 2 workers), end to end, on the HIPE-2026 sandbox repeated with new ids.

Measures, for each run (a fresh `dgemma predict` process, OMP_NUM_THREADS=1):
- wall time, documents/s and pairs/s end to end (imports, model load, Ray start included), and
  the CPU time of the run's processes, with documents per CPU-second (less sensitive to other
  jobs on the machine than wall time);
- for Ray: documents/s after start-up (the prediction step), the start-up itself (Ray start,
  actor start and pipeline load), the peak memory (max RSS) of each worker;
- the peak memory of the `dgemma predict` process (the driver, for Ray);
- the load average of the machine before and after the run (the machine may be shared);
then the 2-over-1 scaling ratios, and whether the memory per worker stays flat from 1x to the
largest scale.

    make benchmark-scale        # = python benchmarks/ray_scaling.py

Writes metrics/scale.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "hipe2026" / "sandbox"
DEFAULT_MODEL = REPO / "training" / "compact-all" / "model-last"
SHARD_SIZE = 250


def make_corpus(data: Path, scale: int, folder: Path) -> Dict[str, int]:
    """The sandbox files repeated `scale` times (one file per copy, ids made unique)."""
    folder.mkdir(parents=True, exist_ok=True)
    n_docs = n_pairs = 0
    for source in sorted(data.glob("*.jsonl")):
        lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
        for copy in range(scale):
            with (folder / f"{source.stem}-{copy:03d}.jsonl").open("w", encoding="utf-8") as out:
                for line in lines:
                    record = json.loads(line)
                    record["document_id"] = f"{record['document_id']}-copy{copy}"
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    n_docs += 1
                    n_pairs += len(record["sampled_pairs"])
    return {"docs": n_docs, "pairs": n_pairs}


def timed(command: List[str]) -> Dict[str, Any]:
    """Run a command under /usr/bin/time: wall seconds, CPU seconds, peak RSS (MB), load before/after."""
    load_before = os.getloadavg()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", *command], cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    rss_kb, user, system = proc.stderr.strip().splitlines()[-1].split()
    # CPU time of the process and of its descendants (workers, Ray's own processes): what the
    # run costs whatever else the machine is doing.
    return {"seconds": round(seconds, 2), "cpu_s": round(float(user) + float(system), 1), "process_peak_rss_mb": round(int(rss_kb) / 1024, 1),
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()]}


def run_local(model: str, corpus: Path, out: Path, n_process: int, size: Dict[str, int]) -> Dict[str, Any]:
    command = [sys.executable, "-m", "spacy_dgemma", "predict", str(corpus), "--output", str(out), "--model", model,
               "--n-process", str(n_process)]
    row = {"engine": "local", "processes": n_process, **timed(command)}
    row.update(docs=size["docs"], pairs=size["pairs"], docs_per_s=round(size["docs"] / row["seconds"], 1),
               pairs_per_s=round(size["pairs"] / row["seconds"], 1), docs_per_cpu_s=round(size["docs"] / row["cpu_s"], 1))
    return row


def run_ray(model: str, corpus: Path, out: Path, workers: int, size: Dict[str, int]) -> Dict[str, Any]:
    command = [sys.executable, "-m", "spacy_dgemma", "predict", str(corpus), "--output", str(out), "--model", model,
               "--engine", "ray", "--workers", str(workers), "--shard-size", str(SHARD_SIZE)]
    row = {"engine": "ray", "workers": workers, **timed(command)}
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    if not manifest["complete"] or manifest["totals"]["documents"] != size["docs"]:
        raise RuntimeError(f"the Ray job did not predict every document: {manifest['totals']}")
    run = manifest["runs"][-1]
    timings = run["timings"]
    row.update(docs=size["docs"], pairs=size["pairs"], docs_per_s=round(size["docs"] / row["seconds"], 1),
               pairs_per_s=round(size["pairs"] / row["seconds"], 1),
               run_seconds=run["seconds"], run_docs_per_s=round(size["docs"] / run["seconds"], 1),
               run_pairs_per_s=round(size["pairs"] / run["seconds"], 1),
               ray_init_s=timings.get("ray_init"), actor_start_s=timings.get("actor_start"), plan_s=timings.get("plan"),
               startup_s=round(timings.get("ray_init", 0) + timings.get("actor_start", 0), 2),
               worker_docs_per_cpu_s=round(size["docs"] / run["worker_cpu_seconds"], 1),
               shards=manifest["totals"]["shards"],
               # /usr/bin/time counts the driver and the Ray processes it started and reaped, not
               # the actors (children of the raylet): they report their own CPU time per shard.
               driver_and_ray_cpu_s=row["cpu_s"], worker_cpu_s=run["worker_cpu_seconds"],
               cpu_s=round(row["cpu_s"] + run["worker_cpu_seconds"], 1),
               worker_peak_rss_mb=sorted(run["worker_max_rss_mb"].values()))
    row["docs_per_cpu_s"] = round(size["docs"] / row["cpu_s"], 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="pipeline (default: the packaged compact student)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of HIPE-2026 .jsonl files to repeat")
    parser.add_argument("--scale", type=int, default=10, help="copies of the data for the throughput runs")
    parser.add_argument("--output", type=Path, default=REPO / "metrics" / "scale.json")
    args = parser.parse_args()
    if not Path(args.model).exists():
        sys.exit(f"{args.model}: no such pipeline (build it with `spacy project run cpu .`, or pass --model)")
    result: Dict[str, Any] = {"model": args.model, "scale": args.scale, "shard_size": SHARD_SIZE, "cpus": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="ray-scaling-") as tmp:
        work = Path(tmp)
        sizes = {scale: make_corpus(args.data, scale, work / f"x{scale}") for scale in sorted({1, args.scale})}
        result["corpus"] = {f"x{scale}": size for scale, size in sizes.items()}
        plan = [("local", 1, args.scale), ("local", 2, args.scale), ("ray", 1, args.scale), ("ray", 2, args.scale), ("ray", 1, 1)]
        for engine, n, scale in plan:
            out = work / f"out-{engine}-{n}-x{scale}"
            run = run_local if engine == "local" else run_ray
            row = run(args.model, work / f"x{scale}", out, n, sizes[scale])
            row["scale"] = scale
            result["runs"].append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(out, ignore_errors=True)
    derive(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(summary_table(result))
    print(f"Written to {args.output}", file=sys.stderr)


def derive(result: Dict[str, Any]) -> None:
    """Add the 2-over-1 scaling ratios, the memory per worker from 1x to the largest scale, and
    Ray's start-up to `result`."""
    runs = {(r["engine"], r.get("processes", r.get("workers")), r["scale"]): r for r in result["runs"]}
    big = result["scale"]
    result["scaling_2_over_1"] = {
        "local": round(runs["local", 2, big]["docs_per_s"] / runs["local", 1, big]["docs_per_s"], 2),
        "ray_end_to_end": round(runs["ray", 2, big]["docs_per_s"] / runs["ray", 1, big]["docs_per_s"], 2),
        "ray_after_startup": round(runs["ray", 2, big]["run_docs_per_s"] / runs["ray", 1, big]["run_docs_per_s"], 2),
        # Documents per CPU-second of the workers, 2 over 1: 1.0 means a second worker costs no
        # extra CPU per document, so on idle cores the prediction step scales by the cores given.
        "ray_worker_cpu_efficiency": round(runs["ray", 2, big]["worker_docs_per_cpu_s"] / runs["ray", 1, big]["worker_docs_per_cpu_s"], 2),
    }
    small, large = runs["ray", 1, 1]["worker_peak_rss_mb"][0], runs["ray", 1, big]["worker_peak_rss_mb"][0]
    result["worker_memory_mb"] = {"x1": small, f"x{big}": large, "ratio": round(large / small, 2)}
    result["ray_startup_s"] = {f"{w}_workers": runs["ray", w, big]["startup_s"] for w in (1, 2)}


def summary_table(result: Dict[str, Any]) -> str:
    lines = [f"{'run':<22}{'docs':>7}{'wall s':>9}{'CPU s':>8}{'docs/CPU s':>11}{'docs/s':>9}{'pairs/s':>9}{'run docs/s':>12}{'start s':>9}{'worker MB':>16}{'load (1 min)':>16}"]
    for r in result["runs"]:
        name = f"{r['engine']} x{r.get('processes', r.get('workers'))} @{r['scale']}x"
        worker = ",".join(f"{m:.0f}" for m in r.get("worker_peak_rss_mb", [r["process_peak_rss_mb"]]))
        load = f"{r['load_before'][0]:.1f}->{r['load_after'][0]:.1f}"
        lines.append(f"{name:<22}{r['docs']:>7}{r['seconds']:>9.1f}{r['cpu_s']:>8.1f}{r['docs_per_cpu_s']:>11.1f}{r['docs_per_s']:>9.1f}{r['pairs_per_s']:>9.0f}"
                     f"{r.get('run_docs_per_s', r['docs_per_s']):>12.1f}{r.get('startup_s', 0):>9.1f}{worker:>16}{load:>16}")
    s = result["scaling_2_over_1"]
    lines.append(f"2-over-1 scaling: local {s['local']}x, Ray {s['ray_end_to_end']}x end to end, {s['ray_after_startup']}x after start-up; "
                 f"Ray worker documents per CPU-second, 2 over 1: {s['ray_worker_cpu_efficiency']}")
    m = result["worker_memory_mb"]
    lines.append(f"Ray worker peak memory: {m['x1']} MB at 1x, {m[next(k for k in m if k not in ('x1', 'ratio'))]} MB at {result['scale']}x "
                 f"(ratio {m['ratio']})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
