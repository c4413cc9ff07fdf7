"""``dgemma predict``: a pipeline over HIPE-2026 JSONL, official-format JSONL out.

``--engine local`` (the default) runs in this process (``--n-process`` for more); ``--engine ray``
runs a sharded, resumable Ray job (`spacy_dgemma.scale`), for archives.
"""
import gc
import signal
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from spacy_dgemma.cli._util import app, command, list_lines, report_skipped
from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe.read import ReadStats, expand_paths
from spacy_dgemma.predict import Interrupted, load_pipeline, predict_files, stop_on_signals, use_gpu
from spacy_dgemma.scale.job import DEFAULT_SHARD_SIZE, read_code


class Engine(str, Enum):
    local = "local"
    ray = "ray"


@command(
    app,
    "predict",
    example=(
        "dgemma predict corpus/split/gold-dev-en.jsonl predictions/dev-en.jsonl --model xx_dgemma_relations\n"
        "dgemma predict 'archive/**/*.jsonl.gz' s3://bucket/raw-text/ --output predictions/ --engine ray --address auto --model xx_dgemma_relations"
    ),
)
def predict_cli(
    paths: List[str] = typer.Argument(..., help="Input JSONL files or folders, then the output file or folder (unless --output is given); with --engine ray also .txt, .gz/.bz2, globs and fsspec URLs"),
    model: str = typer.Option(..., "--model", "-m", help="Pipeline folder, installed package, or 'baseline'"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Output file or folder; then every PATH is an input"),
    n_process: int = typer.Option(1, "--n-process", help="Processes for nlp.pipe"),
    batch_size: int = typer.Option(32, "--batch-size", help="Documents per batch"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip invalid documents (counted) instead of stopping (--engine ray always sets them aside in rejects.jsonl)"),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local: this machine; ray: a Ray job (sharded, resumable; bad records set aside in rejects.jsonl)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray engine: the cluster: auto, HOST:PORT or ray://HOST:10001 (default: start Ray on this machine)"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Ray engine: pipeline actors (default: the cluster's CPUs / --cpus-per-worker, or GPUs / --gpus-per-worker)"),
    cpus_per_worker: float = typer.Option(1.0, "--cpus-per-worker", min=0.01, help="Ray engine: CPUs of each actor"),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", min=0.0, help="Ray engine: GPUs of each actor (the generative student)"),
    shard_size: int = typer.Option(DEFAULT_SHARD_SIZE, "--shard-size", min=1, help="Ray engine: records per output shard (the unit of resumption)"),
    code: List[Path] = typer.Option([], "--code", help="Python file of custom components to import before the pipeline loads (repeatable)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="Local engine: GPU to run on, as in spacy's commands (-1: CPU); the Ray engine takes --gpus-per-worker"),
) -> None:
    """Predict at/isAt for every pair of HIPE-2026 JSONL input: INPUT... OUTPUT.

    One output line per valid input document, in input order, with every field and pair of the
    input; only at, isAt and the explanations are filled. With --engine ray the output is a
    folder of shards, a manifest.json and a rejects.jsonl (see docs/cluster.md); run the same
    command again to resume an interrupted job.
    """
    if output is None:
        if len(paths) < 2:
            raise typer.BadParameter("give at least one input and the output (or --output)", param_hint="PATHS")
        *paths, output = paths
    if engine == Engine.ray:
        for option, given in {"--n-process": n_process != 1, "--gpu-id": gpu_id >= 0}.items():
            if given:
                raise InputError.of("E207", option, option=option, engine="local")
        _predict_ray(paths, output, model, batch_size=batch_size, address=address, workers=workers, cpus_per_worker=cpus_per_worker,
                     gpus_per_worker=gpus_per_worker, shard_size=shard_size, code=code)
        return
    ray_options = {"--address": address is not None, "--workers": workers is not None, "--cpus-per-worker": cpus_per_worker != 1.0,
                   "--gpus-per-worker": gpus_per_worker != 0.0, "--shard-size": shard_size != DEFAULT_SHARD_SIZE}
    for option, given in ray_options.items():
        if given:
            raise InputError.of("E207", option, option=option, engine="ray")
    read_code(code)
    if gpu_id >= 0:
        use_gpu(gpu_id)
    _predict_local([Path(p) for p in paths], Path(output), model, n_process=n_process, batch_size=batch_size, skip_invalid=skip_invalid)


def _predict_local(inputs: List[Path], output: Path, model: str, **options) -> None:
    """Predict on this machine; list the skipped documents even if the run then fails; on
    Ctrl-C or SIGTERM, one line and exit code 128 + the signal's number."""
    files = expand_paths(inputs)  # check the inputs before loading a model
    stats = ReadStats()
    try:
        nlp = load_pipeline(model)
        gc.freeze()  # the pipeline lives as long as the run: the collector need not scan it again and again
        summary = predict_files(files, output, nlp, stats=stats, **options)
    except InputError:
        report_skipped(stats.skipped)
        raise
    except KeyboardInterrupt as err:  # Ctrl-C, or `Interrupted` by SIGTERM or SIGINT during the run
        exit_interrupted(err, output)
    finally:
        gc.unfreeze()
    for path, n in summary.outputs.items():
        msg.good(f"{path}: {n} documents")
    msg.info(f"{sum(summary.outputs.values())} documents, {summary.n_pairs} pairs predicted with {model}")
    report_skipped(summary.skipped)


def _predict_ray(inputs: List[str], output: str, model: str, **options) -> None:
    """Run the Ray job and report it; exit 1 if shards failed, 130 if interrupted."""
    from spacy_dgemma.scale import JobOptions, run_job

    try:
        with stop_on_signals():  # also where SIGINT came ignored (a background job of a script)
            summary = run_job(inputs, output, JobOptions(model=model, **options))
    except KeyboardInterrupt as err:
        signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
        msg.warn(f"Interrupted: the finished shards are kept in {output}; run the same command again to resume.")
        raise typer.Exit(128 + signum) from None
    before = f" ({summary.shards_skipped} done by an earlier run)" if summary.shards_skipped else ""
    msg.good(f"{summary.output}: {summary.documents} documents, {summary.pairs} pairs in {summary.shards_done} of {summary.shards} shards{before}")
    if summary.run_documents:
        msg.info(f"This run: {summary.run_documents} documents in {summary.run_seconds:.1f} s with {summary.workers} workers: "
                 f"{summary.docs_per_s:.1f} docs/s, {summary.pairs_per_s:.0f} pairs/s")
    if summary.rejects:
        msg.warn(f"{summary.rejects} record(s) set aside, with their reasons, in {summary.output / 'rejects.jsonl'}")
    if summary.failed:
        msg.fail(f"{len(summary.failed)} shard(s) failed; run the same command again to retry them:")
        list_lines([f"{name}: {reason}" for name, reason in summary.failed], err=True)
        raise typer.Exit(1)


def exit_interrupted(err: KeyboardInterrupt, output: Path) -> None:
    """Say in one line that a run was interrupted (and that `output` was left as it was), then
    exit with 128 + the signal's number, as a shell does."""
    signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
    typer.echo(str(InputError.of("E112", str(output), signal=signal.Signals(signum).name)), err=True)
    raise typer.Exit(128 + signum) from None
