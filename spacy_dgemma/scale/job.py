"""The driver of a Ray job: plan the shards, run the actor pool, track progress, write the
manifest; a rerun resumes.

Steps of `run_job`:
1. list the inputs (files, folders, globs; local or any fsspec filesystem);
2. connect to Ray (``address``), or start a Ray on this machine listening on 127.0.0.1 only;
3. plan: index the HIPE files (checksum, records, where each shard starts; threads of the
   driver, as this is I/O) and cut the raw-text files into shards; the plan is saved, so a rerun reuses it (and refuses a plan
   made from other inputs, another model or another shard size);
4. predict the shards not yet done with Ray Data: ``map_batches`` over an actor pool
   (`spacy_dgemma.scale.worker.ShardPredictor`), one shard per call; a worker that dies is
   replaced and its shard predicted again by Ray;
5. set aside each document whose id an earlier document already has (E008), as the local
   engine does: the first predicted document with an id stays in the output;
6. write ``manifest.json`` (every input and shard, with counts and checksums) and ``rejects.jsonl``
   (every record set aside, with its reason), also after an interruption.
"""
import json
import logging
import math
import os
import re
import sys
import time
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from tqdm import tqdm

from spacy_dgemma.about import __version__
from spacy_dgemma.errors import InputError, Warnings
from spacy_dgemma.scale.inputs import HIPE, TEXT, InputFile, index_hipe_file, list_inputs, split_suffixes
from spacy_dgemma.scale.shards import JobLayout, Shard, drop_documents
from spacy_dgemma.scale.worker import CodeSources, ShardPredictor, import_code
from spacy_dgemma.util import AtomicWriter

logger = logging.getLogger("spacy_dgemma")

PLAN_FORMAT = "spacy-dgemma/scale-plan.v1"
MANIFEST_FORMAT = "spacy-dgemma/scale-manifest.v1"
DEFAULT_SHARD_SIZE = 1000
# Ray tasks of a job's input blocks; above this, one block carries several shards.
MAX_BLOCKS = 10_000
# Times Ray predicts a shard again after its worker process died.
MAX_TASK_RETRIES = 3
INDEX_THREADS = 8
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class JobOptions:
    """How to run a job.

    model: the pipeline, as for `spacy_dgemma.predict.load_pipeline` (a folder path is made
        absolute; on a cluster it must exist on every node, or be an installed package).
    shard_size: records per shard (a shard is the unit of output and of resumption).
    batch_size: documents per ``nlp.pipe`` batch in a worker.
    workers: actors in the pool (default: as many as the cluster's CPUs, or GPUs, allow).
    cpus_per_worker / gpus_per_worker: Ray resources of each actor.
    address: the Ray cluster (``auto``, ``host:port``, ``ray://host:10001``); None starts a
        Ray on this machine (listening on 127.0.0.1 only) and stops it at the end.
    code: Python files to import in the driver and in every worker before the pipeline loads
        (custom components), as spaCy's ``--code``.
    progress: show a progress bar (documents/s, pairs/s, ETA).
    """

    model: str
    shard_size: int = DEFAULT_SHARD_SIZE
    batch_size: int = 32
    workers: Optional[int] = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    address: Optional[str] = None
    code: Sequence[Path] = ()
    progress: bool = True


@dataclass
class JobSummary:
    """What a job (this run and the runs before it on the same folder) did.

    documents / pairs / rejects: totals over all done shards.
    shards / shards_done: shards in the plan, and those done now.
    shards_skipped: shards already done by an earlier run.
    failed: (shard, reason) of the shards that failed in this run.
    run_documents / run_pairs / run_seconds: predicted by this run, and the wall time of its
        prediction step (after the plan).
    timings: seconds of each step: prepare (listing the inputs, checking the model), plan
        (indexing, or reading the saved plan), ray_init (connecting to or starting Ray),
        first_shard (actor start-up, pipeline load, and the first shard), actor_start (the same
        without the first shard's own time), run, total.
    workers: actors in the pool; max_rss_mb: peak memory of each worker process seen;
        worker_cpu_seconds: CPU time the workers spent on the shards of this run.
    """

    output: Path
    documents: int = 0
    pairs: int = 0
    rejects: int = 0
    shards: int = 0
    shards_done: int = 0
    shards_skipped: int = 0
    failed: List[Tuple[str, str]] = field(default_factory=list)
    run_documents: int = 0
    run_pairs: int = 0
    run_seconds: float = 0.0
    timings: Dict[str, float] = field(default_factory=dict)
    workers: int = 0
    max_rss_mb: Dict[str, float] = field(default_factory=dict)
    worker_cpu_seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.shards_done == self.shards

    @property
    def docs_per_s(self) -> float:
        return self.run_documents / self.run_seconds if self.run_seconds else 0.0

    @property
    def pairs_per_s(self) -> float:
        return self.run_pairs / self.run_seconds if self.run_seconds else 0.0


def run_job(inputs: Iterable[str], output: os.PathLike, options: JobOptions) -> JobSummary:
    """Predict every document of `inputs` into sharded JSONL under `output`; resume if it
    holds an unfinished run of the same job.

    inputs: files, folders or glob patterns; local paths or fsspec URLs.
    output: the job's folder (local, or mounted on every node).
    options: see `JobOptions`.
    Raises InputError for bad inputs or options, a plan that does not match, or a job that
    Ray could not finish (E206: rerun to resume).
    """
    start = time.perf_counter()
    layout = _layout(output)
    model = _model_id(options.model)
    files = list_inputs(inputs)
    code = read_code(options.code)
    _check_model(model)
    summary = JobSummary(output=layout.root)
    summary.timings["prepare"] = round(time.perf_counter() - start, 2)
    plan = _load_or_make_plan(layout, files, model, options.shard_size)
    summary.timings["plan"] = round(time.perf_counter() - start - summary.timings["prepare"], 2)
    layout.remove_temporary_files()
    shards = [Shard.from_dict(s) for s in plan["shards"]]
    done = _done_records(layout, shards)
    summary.shards = len(shards)
    summary.shards_skipped = len(done)
    todo = [s for s in shards if s.name not in done]
    started_at = _now()
    try:
        if todo:
            connecting = time.perf_counter()
            ray, started = connect(options.address)
            summary.timings["ray_init"] = round(time.perf_counter() - connecting, 2)
            try:
                _predict(ray, todo, layout, model, code, options, done, summary)
            finally:
                if started:
                    ray.shutdown()
    finally:
        layout.remove_temporary_files()
        _drop_duplicates(layout, plan, shards, done)
        summary.timings["total"] = round(time.perf_counter() - start, 2)
        _finish(layout, plan, shards, done, summary, started_at)
    return summary


def connect(address: Optional[str]):
    """Ray, connected to `address` (or to a Ray started here); and whether it was started here.

    A Ray that this process starts listens on 127.0.0.1 only and sends no usage statistics
    (unless the environment says otherwise).
    """
    if address is None and "ray" not in sys.modules:
        # Read by Ray at import: bind a single-machine Ray to the loopback interface.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise InputError.of("E200", "--engine ray", detail=str(err)) from err
    if ray.is_initialized():
        return ray, False
    try:
        if address is None:
            ray.init(include_dashboard=False, logging_level=logging.WARNING, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except Exception as err:
        raise InputError.of("E205", "--address", address=address or "local", detail=_first_line(err)) from err
    return ray, True


def output_files(output: os.PathLike) -> Dict[str, List[Path]]:
    """The shard files of each HIPE input of a job, in input order (from its manifest).

    Concatenated, the shards of a HIPE input are the official-format predictions of that
    file, in its order (its bad records left out). (Raw-text files share shards: see
    `iter_output`.)
    """
    layout = JobLayout(output)
    manifest = json.loads(layout.manifest.read_text(encoding="utf-8"))
    by_name = {s["name"]: layout.root / s["file"] for s in manifest["shards"]}
    return {entry["file"]: [by_name[name] for name in entry["shards"]] for entry in manifest["inputs"] if entry["kind"] == HIPE}


def iter_output(output: os.PathLike) -> Iterable[Dict[str, Any]]:
    """Every output record of a job, in input order."""
    layout = JobLayout(output)
    manifest = json.loads(layout.manifest.read_text(encoding="utf-8"))
    for shard in manifest["shards"]:
        path = layout.root / shard["file"]
        if shard.get("done") and path.exists():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    yield json.loads(line)


def _layout(output: os.PathLike) -> JobLayout:
    text = str(output)
    if "://" in text:
        raise InputError.of("E204", text)
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise InputError.of("E209", text)
    return JobLayout(path)


def _model_id(model: str) -> str:
    """The model as workers load it: a folder becomes an absolute path."""
    path = Path(model)
    return str(path.resolve()) if path.exists() else model


def read_code(paths: Sequence[Path]) -> CodeSources:
    """Read the --code files and import them in this process (so that the pipeline loads here
    too); return their sources for the workers. Raises InputError (E208) if one fails."""
    sources: CodeSources = []
    for path in paths:
        try:
            sources.append((str(path), Path(path).read_text(encoding="utf-8")))
        except OSError as err:
            raise InputError.of("E208", str(path), detail=err.strerror or type(err).__name__) from err
    try:
        import_code(sources)
    except Exception as err:
        raise InputError.of("E208", str(paths[0]) if paths else "--code", detail=_first_line(err)) from err
    return sources


def _check_model(model: str) -> None:
    """Load the pipeline once here, so that a bad model fails before any cluster work."""
    from spacy_dgemma.predict import load_pipeline

    load_pipeline(model)


def _load_or_make_plan(layout: JobLayout, files: List[InputFile], model: str, shard_size: int) -> Dict[str, Any]:
    """The saved plan of the folder if it is the plan of this job, else a new plan (saved)."""
    fingerprint = [[f.url, f.size, f.mtime] for f in files]
    if layout.plan.exists():
        plan = json.loads(layout.plan.read_text(encoding="utf-8"))
        _check_plan(layout, plan, fingerprint, model, shard_size)
        return plan
    if layout.root.is_dir() and any(layout.root.iterdir()):
        raise InputError.of("E201", str(layout.root), what="content", detail="it is not empty and has no plan of a job")
    plan = _make_plan(files, model, shard_size)
    plan["fingerprint"] = fingerprint
    with AtomicWriter(layout.plan, "w") as out:
        json.dump(plan, out, ensure_ascii=False)
    return plan


def _check_plan(layout: JobLayout, plan: Dict[str, Any], fingerprint: List[List[Any]], model: str, shard_size: int) -> None:
    where = str(layout.root)
    if plan.get("format") != PLAN_FORMAT:
        raise InputError.of("E201", where, what="plan format", detail=f"{plan.get('format')!r}, expected {PLAN_FORMAT!r}")
    if plan["model"] != model:
        raise InputError.of("E201", where, what="model", detail=f"{plan['model']!r}, not {model!r}")
    if plan["shard_size"] != shard_size:
        raise InputError.of("E201", where, what="shard size", detail=f"{plan['shard_size']}, not {shard_size}")
    if plan["fingerprint"] != fingerprint:
        before = {url: (size, mtime) for url, size, mtime in plan["fingerprint"]}
        now = {url: (size, mtime) for url, size, mtime in fingerprint}
        added = [u for u in now if u not in before]
        removed = [u for u in before if u not in now]
        changed = [u for u in now if u in before and now[u] != before[u]]
        parts = [f"{len(v)} {k}, e.g. {v[0]}" for k, v in (("added", added), ("removed", removed), ("changed", changed)) if v]
        raise InputError.of("E201", where, what="inputs", detail="; ".join(parts) or "another order")


def _make_plan(files: List[InputFile], model: str, shard_size: int) -> Dict[str, Any]:
    """Index the HIPE files and cut all inputs into shards."""
    # Reading and hashing is I/O: threads of the driver do it at disk or network speed, which
    # is far above what the workers predict, and need no worker start-up.
    hipe = [f.url for f in files if f.kind == HIPE]
    with ThreadPoolExecutor(INDEX_THREADS) as pool:
        index = dict(zip(hipe, pool.map(index_hipe_file, hipe, [shard_size] * len(hipe))))
    width = max(5, len(str(len(files))))
    inputs: List[Dict[str, Any]] = []
    shards: List[Dict[str, Any]] = []
    rejects: List[Dict[str, Any]] = []
    for i, file in enumerate(files):
        entry = file.to_dict()
        if file.kind == HIPE:
            info = index[file.url]
            entry.update(sha256=info["sha256"], records=info["records"])
            stem = _UNSAFE.sub("_", split_suffixes(file.url.rsplit("/", 1)[-1])[0])[:60]
            names = []
            for k, (line, offset, n) in enumerate(info["shards"]):
                name = f"{i:0{width}d}-{stem}-{k:05d}"
                shards.append(Shard(name, HIPE, [file.url], first_line=line, offset=offset, records=n).to_dict())
                names.append(name)
            entry["shards"] = names
            if info["error"]:
                problem = InputError.of("E011", file.url, detail=info["error"])
                rejects.append({"file": file.url, "line": None, "document_id": None, "code": "E011", "reason": str(problem), "shard": None})
            elif info["records"] == 0:
                problem = InputError.of("E005", file.url)
                rejects.append({"file": file.url, "line": None, "document_id": None, "code": "E005", "reason": str(problem), "shard": None})
            if len(names) > 1 and split_suffixes(file.url)[2]:
                warnings.warn(Warnings.W091.format(url=file.url, n=len(names)))
        else:
            entry.update(sha256="", records=1, shards=[])
        inputs.append(entry)
    text = [(i, f) for i, f in enumerate(files) if f.kind == TEXT]
    for k in range(0, len(text), shard_size):
        chunk = text[k : k + shard_size]
        name = f"text-{k // shard_size:0{width}d}"
        shards.append(Shard(name, TEXT, [f.url for _, f in chunk], records=len(chunk), doc_ids=[f.doc_id for _, f in chunk]).to_dict())
        for i, _ in chunk:
            inputs[i]["shards"] = [name]
    return {"format": PLAN_FORMAT, "model": model, "shard_size": shard_size, "created": _now(), "spacy_dgemma": __version__,
            "inputs": inputs, "shards": shards, "rejects": rejects}


def _done_records(layout: JobLayout, shards: List[Shard]) -> Dict[str, Dict[str, Any]]:
    """The done records of the shards that are done (their output file is there, whole)."""
    done: Dict[str, Dict[str, Any]] = {}
    names = {p.stem for p in layout.done.glob("*.json")} if layout.done.is_dir() else set()
    for shard in shards:
        if shard.name not in names:
            continue
        record = json.loads(layout.done_file(shard.name).read_text(encoding="utf-8"))
        path = layout.shard_file(shard.name)
        if not path.exists() or path.stat().st_size != record["bytes"]:
            warnings.warn(Warnings.W092.format(name=shard.name, path=path))
            layout.done_file(shard.name).unlink()
            continue
        record.pop("ids", None)  # read again by `_drop_duplicates`, one shard at a time
        done[shard.name] = record
    return done


def _drop_duplicates(layout: JobLayout, plan: Dict[str, Any], shards: List[Shard], done: Dict[str, Dict[str, Any]]) -> None:
    """Set aside (E008) each document of the done shards whose id a document before it in the
    inputs has, as the local engine does: only predicted documents count, and the first stays.

    Shards done later (by a rerun) are checked with the others then, so a complete job holds
    each id once. `done` gets the new records of the shards that lost documents.
    """
    finished = [shard for shard in shards if shard.name in done]
    repeated = _repeated_ids(layout, finished)
    if not repeated:
        return
    position = {item["url"]: i for i, item in enumerate(plan["inputs"])}
    found: Dict[str, List[Tuple[Tuple[int, int], str, int, str, Optional[int]]]] = defaultdict(list)
    for shard in finished:
        for k, (index, line, doc_id, _) in enumerate(_ids(layout, shard)):
            if doc_id in repeated:
                url = shard.files[index]
                found[doc_id].append(((position[url], line or 0), shard.name, k, url, line))
    drop: Dict[str, Dict[int, InputError]] = defaultdict(dict)
    for doc_id, places in found.items():
        places.sort()
        _, _, _, url, line = places[0]
        first = url if line is None else f"{url}:{line}"
        for _, name, k, url, line in places[1:]:
            drop[name][k] = InputError.of("E008", url, line, doc_id=doc_id, first=first)
    for shard in finished:
        if shard.name in drop:
            record = json.loads(layout.done_file(shard.name).read_text(encoding="utf-8"))
            done[shard.name] = drop_documents(layout, shard, record, drop[shard.name])
            done[shard.name].pop("ids")


def _repeated_ids(layout: JobLayout, shards: List[Shard]) -> Set[str]:
    """The ids that more than one document of the output of `shards` has."""
    seen: Set[str] = set()
    repeated: Set[str] = set()
    for shard in shards:
        for _, _, doc_id, _ in _ids(layout, shard):
            if doc_id in seen:
                repeated.add(doc_id)
            seen.add(doc_id)
    return repeated


def _ids(layout: JobLayout, shard: Shard) -> List[List[Any]]:
    """[index in files, line, document id, pairs] of each document of a done shard's output."""
    return json.loads(layout.done_file(shard.name).read_text(encoding="utf-8")).get("ids", [])


def _predict(ray, todo: List[Shard], layout: JobLayout, model: str, code: CodeSources, options: JobOptions,
             done: Dict[str, Dict[str, Any]], summary: JobSummary) -> None:
    """Run the actor pool over the shards to do, recording each finished one in `done`."""
    from ray.data import ActorPoolStrategy, DataContext

    workers = options.workers or _default_workers(ray, options)
    workers = max(1, min(workers, len(todo)))
    summary.workers = workers
    context = DataContext.get_current()
    bars = context.enable_progress_bars
    context.enable_progress_bars = False  # one progress bar: ours
    data_logger = logging.getLogger("ray.data")
    level = data_logger.level
    data_logger.setLevel(logging.WARNING)  # Ray Data's per-dataset INFO lines
    items = [{"shard": json.dumps(s.to_dict())} for s in todo]
    with warnings.catch_warnings():
        # Ray 2.60 takes max_task_retries only through the deprecated **ray_remote_args.
        warnings.filterwarnings("ignore", message=".*ray_remote_args. is deprecated")
        dataset = ray.data.from_items(items, override_num_blocks=min(len(items), MAX_BLOCKS)).map_batches(
            ShardPredictor,
            batch_size=1,
            compute=ActorPoolStrategy(size=workers),
            num_cpus=options.cpus_per_worker,
            num_gpus=options.gpus_per_worker or None,
            fn_constructor_kwargs={"model": model, "output": str(layout.root), "batch_size": options.batch_size, "code": code},
            max_task_retries=MAX_TASK_RETRIES,
        )
    total = sum(s.records for s in todo)
    bar = tqdm(total=total, unit="doc", disable=not options.progress or None, dynamic_ncols=True, mininterval=1.0)
    start = time.perf_counter()
    try:
        for row in dataset.iter_rows():
            record = json.loads(row["done"])
            record.pop("ids", None)  # read again by `_drop_duplicates`, one shard at a time
            if row["error"]:
                summary.failed.append((record["name"], row["error"]))
                continue
            done[record["name"]] = record
            if "first_shard" not in summary.timings:
                summary.timings["first_shard"] = round(time.perf_counter() - start, 2)
                summary.timings["actor_start"] = round(summary.timings["first_shard"] - record["seconds"], 2)
            summary.run_documents += record["documents"]
            summary.run_pairs += record["pairs"]
            summary.max_rss_mb[record["worker"]] = max(summary.max_rss_mb.get(record["worker"], 0.0), record["max_rss_mb"])
            summary.worker_cpu_seconds += record["cpu_seconds"]
            seconds = time.perf_counter() - start
            bar.set_postfix_str(f"{summary.run_documents / seconds:.1f} docs/s, {summary.run_pairs / seconds:.0f} pairs/s", refresh=False)
            bar.update(record["documents"] + record["rejects"])
    except Exception as err:
        n_done = len(done)
        raise InputError.of("E206", str(layout.root), done=n_done, total=summary.shards, detail=_first_line(err)) from err
    finally:
        summary.run_seconds = round(time.perf_counter() - start, 2)
        summary.timings["run"] = summary.run_seconds
        bar.close()
        context.enable_progress_bars = bars
        data_logger.setLevel(level)


def _default_workers(ray, options: JobOptions) -> int:
    resources = ray.cluster_resources()
    if options.gpus_per_worker:
        return max(1, math.floor(resources.get("GPU", 0) / options.gpus_per_worker))
    return max(1, math.floor(resources.get("CPU", 1) / options.cpus_per_worker))


def _finish(layout: JobLayout, plan: Dict[str, Any], shards: List[Shard], done: Dict[str, Dict[str, Any]], summary: JobSummary,
            started_at: str) -> None:
    """Write the manifest and the rejects of the shards done so far; fill the summary totals."""
    summary.shards_done = sum(1 for s in shards if s.name in done)
    summary.documents = sum(r["documents"] for r in done.values())
    summary.pairs = sum(r["pairs"] for r in done.values())
    n_rejects = len(plan["rejects"])
    with AtomicWriter(layout.all_rejects, "w") as out:
        for reject in plan["rejects"]:
            out.write(json.dumps(reject, ensure_ascii=False) + "\n")
        for shard in shards:
            if done.get(shard.name, {}).get("rejects"):
                with layout.rejects_file(shard.name).open(encoding="utf-8") as handle:
                    for line in handle:
                        out.write(line)
                        n_rejects += 1
    summary.rejects = n_rejects
    text_sums: Dict[str, str] = {}
    for record in done.values():
        text_sums.update(record.get("inputs") or {})
    inputs = []
    for item in plan["inputs"]:
        entry = {"file": item["url"], "kind": item["kind"], "size": item["size"], "mtime": item["mtime"],
                 "sha256": text_sums.get(item["url"], "") if item["kind"] == TEXT else item["sha256"],
                 "records": item["records"], "shards": item["shards"]}
        if item["kind"] == TEXT:
            entry["document_id"] = item["doc_id"]
        inputs.append(entry)
    shard_entries = []
    for shard in shards:
        record = done.get(shard.name)
        entry = {"name": shard.name, "file": str(layout.shard_file(shard.name).relative_to(layout.root)), "done": record is not None,
                 "inputs": shard.files if shard.kind == HIPE else len(shard.files), "first_line": shard.first_line, "records": shard.records}
        if record is not None:
            entry.update({k: record[k] for k in ("documents", "pairs", "rejects", "bytes", "sha256")})
        shard_entries.append(entry)
    runs = json.loads(layout.manifest.read_text(encoding="utf-8")).get("runs", []) if layout.manifest.exists() else []
    runs.append({"started": started_at, "ended": _now(), "workers": summary.workers, "shards_before": summary.shards_skipped,
                 "shards": summary.shards_done - summary.shards_skipped, "failed": len(summary.failed), "documents": summary.run_documents,
                 "pairs": summary.run_pairs, "seconds": summary.run_seconds, "timings": summary.timings, "worker_max_rss_mb": summary.max_rss_mb,
                 "worker_cpu_seconds": round(summary.worker_cpu_seconds, 2)})
    manifest = {
        "format": MANIFEST_FORMAT,
        "complete": summary.complete,
        "job": {"model": plan["model"], "shard_size": plan["shard_size"], "planned": plan["created"], "written": _now(),
                "spacy_dgemma": __version__},
        "totals": {"inputs": len(inputs), "records": sum(s.records for s in shards), "documents": summary.documents,
                   "pairs": summary.pairs, "rejects": summary.rejects, "shards": summary.shards, "shards_done": summary.shards_done},
        "rejects_file": layout.all_rejects.name,
        "runs": runs,
        "inputs": inputs,
        "shards": shard_entries,
    }
    with AtomicWriter(layout.manifest, "w") as out:
        json.dump(manifest, out, ensure_ascii=False, indent=1)
    if summary.rejects:
        logger.warning(Warnings.W090.format(n=summary.rejects, path=layout.all_rejects))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
