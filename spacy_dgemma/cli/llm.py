"""``dgemma llm …``: DistilledGemma's stages (plan, require-cuda, build-tiny, sft-data, teacher,
merge-teacher, annotate, distill, student-pipeline).

Each checks its arguments, then calls a library function of ``spacy_dgemma.llm``. Model
arguments take a hub name (``google/gemma-4-26B-A4B-it``) or a local path (the tiny models of
``build-tiny``); nothing else changes between the paper's setup and a CPU smoke run.
"""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from spacy_dgemma.cli._util import command, llm_app
from spacy_dgemma.errors import InputError, Warnings
from spacy_dgemma.hipe.read import expand_paths, iter_records

TEACHER = "google/gemma-4-26B-A4B-it"
STUDENT = "google/gemma-4-E2B-it"
# Every command that loads a model takes --4bit/--no-4bit with this meaning and default (off).
FOUR_BIT_HELP = "Load the base weights in 4-bit NF4 (bitsandbytes; fused MoE experts stay bf16) [default: full precision]"
DTYPE_HELP = "Weights' dtype: auto (bf16 on CUDA, fp32 on CPU), bfloat16, float16 or float32"
DEVICE_HELP = "auto (spaCy's GPU allocation: spacy.require_gpu / --gpu-id, else torch's current CUDA device, else CPU), cpu, cuda or cuda:N"
THREADS_HELP = "torch CPU threads (0: torch's default)"
HPARAMS_HELP = "Hyperparameters: a packaged set (teacher, student, tiny-teacher, tiny-student) or a JSON file"
MAX_DOCS_HELP = "Use only the first N documents, in total over all inputs [default: all]"


def _threads(threads: int) -> None:
    """Limit torch's CPU threads (oversubscribed cores make small models many times slower)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _records(inputs: List[Path]):
    """The records of all inputs, read lazily (``--max-docs`` stops reading early)."""
    return (item.record for item in iter_records(expand_paths(inputs)))


def _require_file(path: Path, command: str) -> None:
    if not path.exists():
        raise InputError.of("E171", path, command=command)


def _print_plan(plan) -> None:
    """One stage's plan as a table of GiB per component."""
    settings = ", ".join(f"{k} {v}" for k, v in plan["settings"].items())
    msg.divider(f"{plan['stage']}: {plan['model']}")
    msg.text(f"{plan['architecture']}, {plan['parameters']['total'] / 1e9:.2f}B parameters; {settings}")
    rows = [(name, f"{gib:.2f}") for name, gib in plan["gib"].items()] + [("total", f"{plan['total_gib']:.2f}")]
    msg.table(rows, header=("component", "GiB"), aligns=("l", "r"), max_col=40)
    if "fits" in plan:
        if plan["fits"]:
            msg.good(f"fits in {plan['gpu_memory_gib']:.1f} GiB")
        else:
            msg.warn(f"needs {plan['total_gib']:.1f} GiB, more than {plan['gpu_memory_gib']:.1f} GiB")
            for tip in plan["advice"]:
                msg.text(f"  - {tip}")


def _check_plans(plans) -> None:
    """Fail (exit 2) on the first plan that does not fit."""
    for plan in plans:
        if plan.get("fits") is False:
            raise InputError.of("E168", plan["model"], stage=plan["stage"], need=plan["total_gib"],
                                have=plan["gpu_memory_gib"])


@command(llm_app, "plan", example="""dgemma llm plan google/gemma-4-26B-A4B-it --gpu-memory 80 --stage teacher-qlora
dgemma llm plan ../shared/gemma4-configs/gemma-4-E2B-it --stage distill --stage student --json""")
def plan_cli(
    model: str = typer.Argument(..., help="Hub name or local folder with the model's config.json (no weights are read)"),
    gpu_memory: Optional[float] = typer.Option(None, "--gpu-memory", help="GPU memory in GiB: exit 2 with advice when a stage needs more"),
    stage: Optional[List[str]] = typer.Option(None, "--stage", help="teacher-qlora, annotate, distill or student; repeat for several [default: all four]"),
    hparams: Optional[str] = typer.Option(None, "--hparams", help=HPARAMS_HELP + " [default: teacher for teacher-qlora, student for distill]"),
    load_in_4bit: bool = typer.Option(False, "--4bit/--no-4bit", help=FOUR_BIT_HELP + "; for annotate and student (teacher-qlora is always 4-bit, distill never)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Sequences per step [default: the hyperparameters' for training, 8 pairs for generation]"),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", min=1, help="Tokens per sequence [default: max_length for training; article + prompt + answer for generation]"),
    response_tokens: int = typer.Option(512, "--response-tokens", min=1, help="Training: labelled tokens per sequence (logits are computed for these only)"),
    max_article_tokens: int = typer.Option(6000, "--max-article-tokens", min=1, help="Generation: the prompt's article budget in tokens"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Generation: answer length in tokens"),
    as_json: bool = typer.Option(False, "--json", help="Print the plans as JSON (a list, one object per stage)"),
) -> None:
    """What each stage needs on one GPU, from the model's config alone (meta device, no weights)."""
    import json

    from spacy_dgemma.llm.plan import STAGES, plan_memory

    plans = [plan_memory(model, name, gpu_memory, hparams=hparams, load_in_4bit=load_in_4bit, batch_size=batch_size,
                         seq_len=seq_len, response_tokens=response_tokens, max_article_tokens=max_article_tokens,
                         max_new_tokens=max_new_tokens)
             for name in (stage or STAGES)]
    if as_json:
        typer.echo(json.dumps(plans, indent=2))
    else:
        for plan in plans:
            _print_plan(plan)
    _check_plans(plans)


# Engine options, shared by sft-data and annotate (see spacy_dgemma/llm/engines/__init__.py).
ENGINE_OPT = typer.Option("hf", "--engine", help="hf: the model in this process; vllm: vLLM (a server at --server-url, in this process where vllm imports, else a `vllm serve` started here from --vllm-python); server: any OpenAI-compatible server at --server-url")
SERVER_URL_OPT = typer.Option(None, "--server-url", help="[vllm, server] base URL of a running server, e.g. http://127.0.0.1:8000/v1 (empty: none)")
SERVED_NAME_OPT = typer.Option(None, "--served-model-name", help="[vllm, server] the model's name on the server [default: --model, or the only one served]")
IN_FLIGHT_OPT = typer.Option(16, "--max-in-flight", min=1, help="[vllm, server] requests open at once (over all documents)")
TIMEOUT_OPT = typer.Option(600.0, "--timeout", min=1.0, help="[vllm, server] seconds per request")
RETRIES_OPT = typer.Option(5, "--retries", min=0, help="[vllm, server] tries after a failed request, with back-off")
VLLM_PYTHON_OPT = typer.Option(None, "--vllm-python", help="[vllm] the Python to start `vllm serve` from [default: $DGEMMA_VLLM_PYTHON, this Python if it has vllm, else .venv-vllm/bin/python]")
GPU_UTIL_OPT = typer.Option(0.9, "--gpu-memory-utilization", min=0.01, max=1.0, help="[vllm] share of GPU memory vLLM takes (on CPU: share of RAM; use 0.1)")
MAX_LEN_OPT = typer.Option(None, "--max-model-len", min=1, help="[vllm] context length vLLM plans for [default: the model's]")
VLLM_ARG_OPT = typer.Option([], "--vllm-arg", help="[vllm] one more `vllm serve` argument (repeatable), e.g. --vllm-arg=--enforce-eager")
GUIDED_OPT = typer.Option(None, "--guided-json/--no-guided-json", help="Constrain answers to the JSON schema [default: on for vllm and server, which support it]")
REVISION_OPT = typer.Option(None, "--revision", help="The model's revision (hub models: part of the cache key)")
TOKENIZER_OPT = typer.Option(None, "--tokenizer", help="Where to load the tokenizer from [default: the adapter's, else the model's]")


def _engine(engine: str, model: str, *, adapter: Optional[str] = None, load_in_4bit: bool = False, dtype: str = "auto",
            device: str = "auto", batch_size: int = 8, max_new_tokens: int = 256, seed: int = 0,
            guided_json: Optional[bool] = None, server_url: Optional[str] = None, served_model_name: Optional[str] = None,
            max_in_flight: int = 16, timeout: float = 600.0, retries: int = 5, vllm_python: Optional[str] = None,
            gpu_memory_utilization: float = 0.9, max_model_len: Optional[int] = None, vllm_args: Optional[List[str]] = None,
            revision: Optional[str] = None, tokenizer: Optional[str] = None):
    """The engine the options ask for, opened on first use (``engines.open_engine(..., deferred=True)``)."""
    from spacy_dgemma.llm.engines import EngineOptions, GenerationSettings, guided_json_default, open_engine

    try:
        options = EngineOptions(engine=engine, model=model, adapter=adapter, tokenizer=tokenizer, revision=revision,
                                dtype=dtype, device=device, load_in_4bit=load_in_4bit, batch_size=batch_size,
                                server_url=server_url or None, served_model_name=served_model_name,
                                max_in_flight=max_in_flight, timeout=timeout, retries=retries, vllm_python=vllm_python,
                                gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                                vllm_args=list(vllm_args or []))
        settings = GenerationSettings(max_new_tokens=max_new_tokens, seed=seed, guided_json=guided_json_default(engine, guided_json))
    except ValueError as err:
        raise InputError("--engine", None, str(err), "see `dgemma llm annotate --help`") from err
    return open_engine(options, settings, deferred=True)


def _labeller(model: str, adapter: Optional[str], load_in_4bit: bool, dtype: str, device: str,
              max_article_tokens: int, max_new_tokens: int, batch_size: int, engine: str = "hf", **engine_options):
    from spacy_dgemma.llm.labeller import RelationLabeller

    opened = _engine(engine, model, adapter=adapter, load_in_4bit=load_in_4bit, dtype=dtype, device=device,
                     batch_size=batch_size, max_new_tokens=max_new_tokens, **engine_options)
    return RelationLabeller(engine=opened, max_article_tokens=max_article_tokens)


@command(llm_app, "require-cuda", example="dgemma llm require-cuda --teacher google/gemma-4-26B-A4B-it --student google/gemma-4-E2B-it")
def require_cuda_cli(
    teacher: str = typer.Option(TEACHER, "--teacher", help="Teacher model (hub name or folder; its config is read)"),
    student: str = typer.Option(STUDENT, "--student", help="Student model (hub name or folder; its config is read)"),
    gpu_memory: Optional[float] = typer.Option(None, "--gpu-memory", help="GPU memory in GiB [default: what CUDA device 0 reports]"),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Pairs decoded together by annotate and the student"),
    max_article_tokens: int = typer.Option(6000, "--max-article-tokens", min=1, help="The prompt's article budget in tokens"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Answer length in tokens"),
) -> None:
    """Stop (exit 2) unless a CUDA GPU is here with the memory every stage of `all` needs (the memory plan)."""
    from spacy_dgemma.llm.plan import GIB, plan_memory

    try:
        import torch

        ok = torch.cuda.is_available()
    except ImportError:
        ok = False
    if not ok and gpu_memory is None:
        raise InputError.of("E169", "cuda")
    if gpu_memory is None:
        gpu_memory = torch.cuda.get_device_properties(0).total_memory / GIB
        msg.good(f"CUDA GPU: {torch.cuda.get_device_name(0)}, {gpu_memory:.1f} GiB")
    generation = dict(batch_size=batch_size, max_article_tokens=max_article_tokens, max_new_tokens=max_new_tokens)
    plans = [plan_memory(teacher, "teacher-qlora", gpu_memory), plan_memory(teacher, "annotate", gpu_memory, **generation),
             plan_memory(student, "distill", gpu_memory), plan_memory(student, "student", gpu_memory, **generation)]
    for plan in plans:
        _print_plan(plan)
    _check_plans(plans)
    if not ok:
        raise InputError.of("E169", "cuda")


@command(llm_app, "build-tiny", example='dgemma llm build-tiny --output training/tiny --train ../shared/hipe2026/newspapers')
def build_tiny_cli(
    output_dir: Path = typer.Option(..., "--output", "-o", help="Folder for tokenizer/, teacher/ and student/"),
    train: List[Path] = typer.Option(..., "--train", help="HIPE JSONL files (or folders) whose text trains the tokenizer"),
    vocab_size: int = typer.Option(4096, "--vocab-size", help="Tokenizer vocabulary size"),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights"),
) -> None:
    """Build tiny random Gemma-4-architecture teacher and student models and a local tokenizer.

    The teacher gets the project's large-model chat template (26B/31B style: the generation
    prompt closes an empty thought channel), the student the small-model one (E2B/E4B style).
    """
    from spacy_dgemma.llm.tiny import build_tiny_models

    paths = build_tiny_models(expand_paths(train), output_dir, vocab_size=vocab_size, seed=seed)
    for name, path in paths.items():
        msg.good(f"{name}: {path}")


@command(llm_app, "sft-data", example='dgemma llm sft-data corpus/split/gold-train-en.jsonl --output training/llm/sft.jsonl --model google/gemma-4-26B-A4B-it')
def sft_data_cli(
    inputs: List[Path] = typer.Argument(..., help="Gold HIPE JSONL files or folders (e.g. corpus/gold-train-*.jsonl)"),
    output: Path = typer.Option(..., "--output", "-o", help="SFT JSONL to write"),
    model: str = typer.Option(TEACHER, "--model", "-m", help="Model that writes the traces (hub name or path)"),
    load_in_4bit: bool = typer.Option(False, "--4bit/--no-4bit", help=FOUR_BIT_HELP),
    dtype: str = typer.Option("auto", "--dtype", help=DTYPE_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    max_docs: Optional[int] = typer.Option(None, "--max-docs", min=1, help=MAX_DOCS_HELP),
    max_article_tokens: int = typer.Option(6000, "--max-article-tokens", min=1, help="The prompt's article budget in tokens (longer articles are cut around the mentions)"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Answer length in tokens"),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Pairs decoded together"),
    drop_unexplained: bool = typer.Option(False, "--drop-unexplained", help="Drop pairs without any reasoning"),
    threads: int = typer.Option(0, "--threads", help=THREADS_HELP),
    engine: str = ENGINE_OPT,
    server_url: Optional[str] = SERVER_URL_OPT,
    served_model_name: Optional[str] = SERVED_NAME_OPT,
    max_in_flight: int = IN_FLIGHT_OPT,
    vllm_python: Optional[str] = VLLM_PYTHON_OPT,
    gpu_memory_utilization: float = GPU_UTIL_OPT,
    max_model_len: Optional[int] = MAX_LEN_OPT,
    vllm_arg: List[str] = VLLM_ARG_OPT,
    guided_json: Optional[bool] = GUIDED_OPT,
) -> None:
    """Stage 0: the teacher's SFT set (traces that match gold, rationalised traces for the rest)."""
    from spacy_dgemma.llm.sft_data import build_sft_data

    _threads(threads)
    records = _records(inputs)
    labeller = _labeller(model, None, load_in_4bit, dtype, device, max_article_tokens, max_new_tokens, batch_size,
                         engine=engine, server_url=server_url, served_model_name=served_model_name,
                         max_in_flight=max_in_flight, vllm_python=vllm_python, gpu_memory_utilization=gpu_memory_utilization,
                         max_model_len=max_model_len, vllm_args=vllm_arg, guided_json=guided_json)
    with labeller.engine:
        counts = build_sft_data(labeller, records, output, model_id=model, drop_unexplained=drop_unexplained,
                                max_docs=max_docs)
    msg.good(f"{output}: {sum(v for k, v in counts.items() if k not in ('dropped', 'unlabelled'))} examples "
             f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
    msg.info(f"Parser: {labeller.parse_stats.summary()}")


@command(llm_app, "teacher", example="""dgemma llm teacher training/llm/sft.jsonl --output training/llm/teacher --model google/gemma-4-26B-A4B-it --4bit --resume""")
def teacher_cli(
    sft: Path = typer.Argument(..., help="SFT JSONL from `dgemma llm sft-data`"),
    output_dir: Path = typer.Option(..., "--output", "-o", help="Folder for adapter/, checkpoints/, training_log.jsonl, training_summary.json"),
    model: str = typer.Option(TEACHER, "--model", "-m", help="Teacher base model (hub name or path)"),
    hparams: str = typer.Option("teacher", "--hparams", help=HPARAMS_HELP),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Override the number of optimiser steps"),
    load_in_4bit: bool = typer.Option(False, "--4bit/--no-4bit", help=FOUR_BIT_HELP + "; --4bit is QLoRA, the paper's setup"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in OUTPUT/checkpoints (from scratch when there is none)"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    threads: int = typer.Option(0, "--threads", help=THREADS_HELP),
) -> None:
    """Fine-tune the teacher with LoRA (QLoRA with --4bit) on the stage-0 SFT set, with checkpoints."""
    from spacy_dgemma.llm.qlora import train_teacher
    from spacy_dgemma.llm.sft import LoraHyperparams

    _threads(threads)
    _require_file(sft, "dgemma llm sft-data")
    hp = LoraHyperparams.from_file(hparams, max_steps=max_steps)
    summary = train_teacher(model, sft, output_dir, hp, device=device, load_in_4bit=load_in_4bit, resume=resume)
    msg.good(f"Teacher adapter: {summary['adapter']} ({summary['steps']} steps, loss {summary['train_loss']:.4f}, "
             f"{summary['trainable_parameters']:,} trainable parameters)")


@command(llm_app, "merge-teacher", example="dgemma llm merge-teacher training/llm/teacher/adapter --model google/gemma-4-26B-A4B-it --output training/llm/teacher/merged")
def merge_teacher_cli(
    adapter: Path = typer.Argument(..., help="The teacher's adapter folder (from `dgemma llm teacher`)"),
    model: str = typer.Option(TEACHER, "--model", "-m", help="Teacher base model the adapter was trained on (hub name or path)"),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the merged model (safetensors, tokenizer, model card)"),
    dtype: str = typer.Option("bfloat16", "--dtype", help="Precision of the merge and the saved weights (never 4-bit)"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP + "; the 26B teacher needs about 48 GiB there in bf16"),
) -> None:
    """Merge the teacher's adapter into its base as one bf16 checkpoint, so annotation serves a plain model."""
    from spacy_dgemma.llm.distill import merge_teacher

    _require_file(adapter, "dgemma llm teacher")
    merged = merge_teacher(model, adapter, output, dtype=dtype, device=device)
    msg.good(f"Merged teacher: {merged}")


@command(llm_app, "annotate", example="""dgemma llm annotate corpus/split/silver-train-en.jsonl --cache training/llm/cache.jsonl --output-dir corpus/teacher --traces training/llm/traces.jsonl --model training/llm/teacher/merged
dgemma llm annotate archive/ --cache cache.jsonl --model training/llm/teacher/merged --engine vllm --server-url http://127.0.0.1:8000/v1 --shard 0/4""")
def annotate_cli(
    inputs: List[Path] = typer.Argument(..., help="HIPE JSONL files or folders to annotate (read as a stream)"),
    cache: Path = typer.Option(..., "--cache", help="Resumable JSONL cache (appended to; one run at a time; a shard writes CACHE.shardIofN.jsonl)"),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Official-format JSONL, one file per input, and annotate-summary.json"),
    traces: Optional[Path] = typer.Option(None, "--traces", help="Also write the student's SFT traces here"),
    model: str = typer.Option(TEACHER, "--model", "-m", help="The model (hub name or folder; the merged teacher from `dgemma llm merge-teacher`)"),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="[hf] a LoRA adapter on top of --model (slow for MoE experts: merge it instead)"),
    model_id: Optional[str] = typer.Option(None, "--model-id", help="A name for the model, stored with the answers (part of the cache key when given)"),
    load_in_4bit: bool = typer.Option(False, "--4bit/--no-4bit", help=FOUR_BIT_HELP),
    dtype: str = typer.Option("auto", "--dtype", help=DTYPE_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    max_article_tokens: int = typer.Option(6000, "--max-article-tokens", min=1, help="The prompt's article budget in tokens"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Answer length in tokens"),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="[hf] pairs of a document decoded together"),
    docs_per_batch: int = typer.Option(16, "--docs-per-batch", min=1, help="Documents whose pairs go to the engine together"),
    max_docs: Optional[int] = typer.Option(None, "--max-docs", min=1, help="Use only the first N documents of each input file"),
    limit: Optional[int] = typer.Option(None, "--limit", min=0, help="Stop after N new pairs (resume later; 0: only write the outputs)"),
    shard: Optional[str] = typer.Option(None, "--shard", help="I/N: annotate only shard I of N (by document id), into its own cache"),
    retry_fallbacks: bool = typer.Option(False, "--retry-fallbacks", help="Ask again (sampling, a new seed) for cached answers that needed the parser fallback"),
    include_fallback: bool = typer.Option(False, "--include-fallback", help="Keep parser-fallback answers in the traces"),
    seed: int = typer.Option(0, "--seed", help="Decoding seed (greedy decoding does not use it)"),
    threads: int = typer.Option(0, "--threads", help=THREADS_HELP),
    engine: str = ENGINE_OPT,
    server_url: Optional[str] = SERVER_URL_OPT,
    served_model_name: Optional[str] = SERVED_NAME_OPT,
    max_in_flight: int = IN_FLIGHT_OPT,
    timeout: float = TIMEOUT_OPT,
    retries: int = RETRIES_OPT,
    vllm_python: Optional[str] = VLLM_PYTHON_OPT,
    gpu_memory_utilization: float = GPU_UTIL_OPT,
    max_model_len: Optional[int] = MAX_LEN_OPT,
    vllm_arg: List[str] = VLLM_ARG_OPT,
    guided_json: Optional[bool] = GUIDED_OPT,
    revision: Optional[str] = REVISION_OPT,
    tokenizer: Optional[str] = TOKENIZER_OPT,
) -> None:
    """Annotate every pair with reasoning + labels: streamed, batched across documents, sharded, locked, resumable."""
    import itertools
    import json
    from collections import Counter

    from spacy_dgemma.hipe.write import write_jsonl
    from spacy_dgemma.llm.annotate import (
        AnnotationCache,
        AnswerKeys,
        annotate,
        annotated_records,
        parse_shard,
        related_caches,
        shard_cache_path,
        write_traces,
    )
    from spacy_dgemma.util import AtomicWriter

    _threads(threads)
    parsed_shard = parse_shard(shard)
    if parsed_shard is not None and (output_dir is not None or traces is not None):
        option = "--output-dir" if output_dir is not None else "--traces"
        raise InputError.of("E190", option, option=option)
    files = expand_paths(inputs)

    def records(file_list=files):
        for file in file_list:
            yield from itertools.islice((item.record for item in iter_records([file])), max_docs)

    labeller = _labeller(model, adapter, load_in_4bit, dtype, device, max_article_tokens, max_new_tokens, batch_size,
                         engine=engine, seed=seed, server_url=server_url, served_model_name=served_model_name,
                         max_in_flight=max_in_flight, timeout=timeout, retries=retries, vllm_python=vllm_python,
                         gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len, vllm_args=vllm_arg,
                         guided_json=guided_json, revision=revision, tokenizer=tokenizer)
    cache_file = shard_cache_path(cache, parsed_shard)
    # One open cache for the run and the outputs, so the cache files are read once.
    with AnnotationCache([cache_file, *related_caches(cache)]) as store:
        with labeller.engine:
            summary = annotate(labeller, records(), store, model_id=model_id, limit=limit, shard=parsed_shard,
                               retry_fallbacks=retry_fallbacks, docs_per_batch=docs_per_batch)
            stats = labeller.gen_stats
            msg.good(f"{summary.new} pairs annotated ({summary.retried} retried), {summary.cached} already in the cache "
                     f"{cache_file}" + (f", {summary.other_shards} left to other shards" if parsed_shard else "")
                     + (" (stopped at --limit; run again to continue)" if summary.stopped_early else ""))
            if summary.new:
                msg.info(f"Engine: {labeller.engine.describe()}; {stats.prompt_tokens:,} prompt + {stats.generated_tokens:,} "
                         f"generated tokens in {summary.seconds:.1f} s ({summary.new / max(summary.seconds, 1e-9):.1f} pairs/s)")
                msg.info(f"Parser: {labeller.parse_stats.summary()}")
        if output_dir is None and traces is None:
            return
        keys = AnswerKeys(labeller.answer_key(), model_id)
        report = {"run": summary.to_dict(), "cache": [str(p) for p in store.paths], "files": {}}
        if output_dir is not None:
            for file in files:
                counts: Counter = Counter()
                path = Path(output_dir) / file.name
                n = write_jsonl(path, annotated_records(records([file]), store, keys, counts), validate=True)
                report["files"][str(path)] = {"documents": n, **{k: counts[k] for k in ("annotated", "missing", "fallback")}}
                msg.good(f"{path}: {n} documents, {counts['annotated']} pairs annotated ({counts['fallback']} with a "
                         f"fallback label, marked {json.dumps('[fallback]')}), {counts['missing']} missing")
                if counts["fallback"]:
                    msg.warn(Warnings.W082.format(n=counts["fallback"], path=path))
        if traces is not None:
            counts = write_traces(records(), store, labeller, keys, traces, include_fallback=include_fallback)
            report["traces"] = {"path": str(traces), **counts}
            msg.good(f"{traces}: {counts['written']} traces ({counts['skipped']} skipped: fallback or missing)")
    if output_dir is not None:
        with AtomicWriter(Path(output_dir) / "annotate-summary.json") as out:
            json.dump(report, out, indent=2)


@command(llm_app, "distill", example="dgemma llm distill training/llm/traces.jsonl --output training/llm/student --model google/gemma-4-E2B-it --merge-dtype bfloat16")
def distill_cli(
    traces: Path = typer.Argument(..., help="Teacher traces (SFT JSONL from `dgemma llm annotate --traces`)"),
    output_dir: Path = typer.Option(..., "--output", "-o", help="Folder for adapter/, checkpoints/, merged/ and the training log"),
    model: str = typer.Option(STUDENT, "--model", "-m", help="Student base model (hub name or path)"),
    hparams: str = typer.Option("student", "--hparams", help=HPARAMS_HELP),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Override the number of optimiser steps"),
    load_in_4bit: bool = typer.Option(False, "--4bit/--no-4bit", help=FOUR_BIT_HELP + "; the merge always loads a full-precision base"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in OUTPUT/checkpoints (from scratch when there is none)"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    merge_dtype: str = typer.Option("auto", "--merge-dtype", help="Precision of the merged weights (auto: float32; bfloat16 halves the size)"),
    threads: int = typer.Option(0, "--threads", help=THREADS_HELP),
) -> None:
    """Distil the teacher into the student (LoRA SFT on the traces, then a full-precision merge)."""
    from spacy_dgemma.llm.distill import distill_student
    from spacy_dgemma.llm.sft import LoraHyperparams

    _threads(threads)
    _require_file(traces, "dgemma llm annotate --traces")
    hp = LoraHyperparams.from_file(hparams, max_steps=max_steps)
    summary = distill_student(model, traces, output_dir, hp, device=device, merge_dtype=merge_dtype,
                              load_in_4bit=load_in_4bit, resume=resume)
    msg.good(f"Merged student: {summary['merged']} ({summary['steps']} steps, loss {summary['train_loss']:.4f})")


@command(llm_app, "student-pipeline", example="""dgemma llm student-pipeline training/llm/student/merged training/llm/pipeline
dgemma llm student-pipeline training/llm/student/merged training/llm/pipeline-vllm --server-url http://127.0.0.1:8000/v1""")
def student_pipeline_cli(
    model: str = typer.Argument(..., help="Merged student folder (or hub name); with --server-url, where its tokenizer is"),
    output: Path = typer.Argument(..., help="Pipeline folder to write (the weights are copied into it)"),
    lang: str = typer.Option("xx", "--lang", help="spaCy language of the pipeline"),
    name: str = typer.Option("dgemma_relations_llm", "--name", help="Pipeline name (for `spacy package`)"),
    base_model: str = typer.Option(STUDENT, "--base-model", help="The model the student was distilled from (for the licence in meta.json)"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Pairs of a document decoded together"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Answer length in tokens"),
    max_article_tokens: int = typer.Option(6000, "--max-article-tokens", min=1, help="The prompt's article budget in tokens"),
    server_url: Optional[str] = typer.Option(None, "--server-url", help="A vLLM / OpenAI-compatible server serving the student: the pipeline sends its prompts there and keeps only the tokenizer (empty: none)"),
    served_model_name: Optional[str] = typer.Option(None, "--served-model-name", help="The student's name on the server [default: the only one served]"),
    max_in_flight: int = typer.Option(16, "--max-in-flight", min=1, help="Requests open at once to the server"),
    engine: str = typer.Option("hf", "--engine", help="hf: the weights in the pipeline's process; vllm: the server at --server-url, else vLLM in that process where it imports, else a `vllm serve` it starts on first use"),
    gpu_memory_utilization: float = GPU_UTIL_OPT,
    vllm_arg: List[str] = VLLM_ARG_OPT,
) -> None:
    """A spaCy pipeline whose `dgemma_relations` uses the generative student, weights inside (portable; `spacy package` makes a wheel)."""
    import spacy

    from spacy_dgemma.llm.licence import model_licence
    from spacy_dgemma.ml import generative  # noqa: F401  (registers the architecture)

    if Path(model).exists():
        model = str(Path(model).resolve())
    nlp = spacy.blank(lang)
    nlp.meta["name"] = name
    nlp.meta["license"] = model_licence(base_model)
    if engine not in ("hf", "vllm"):
        raise InputError.of("E175", "--engine", engine=engine, engines="hf, vllm")
    nlp.meta["requirements"] = ["spacy-dgemma[llm]" if engine == "hf" and not server_url else "spacy-dgemma[serve]"]
    # consistent_labels off: the labels stay as the student wrote them, next to its explanation.
    nlp.add_pipe("dgemma_relations", config={"consistent_labels": False, "model": {
        "@architectures": "spacy_dgemma.GenerativeStudent.v1", "name_or_path": model, "device": device,
        "batch_size": batch_size, "max_new_tokens": max_new_tokens, "max_article_tokens": max_article_tokens,
        "server_url": server_url or "", "served_model_name": served_model_name or "", "max_in_flight": max_in_flight,
        "engine": engine, "gpu_memory_utilization": gpu_memory_utilization, "vllm_args": list(vllm_arg)}})
    nlp.to_disk(output)
    if not Path(model).exists():
        msg.good(f"{output}: pipeline referencing {model} (loaded from the hub on first use)")
        return
    kept = f"its tokenizer (answers come from {server_url})" if server_url else "its weights"
    msg.good(f"{output}: pipeline with {kept} in {output / 'dgemma_relations' / generative.WEIGHTS_DIR} (copied from {model})")
