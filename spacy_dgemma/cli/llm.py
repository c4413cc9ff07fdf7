"""``dgemma llm …``: DistilledGemma's stages (build-tiny, sft-data, teacher, annotate, distill,
student-pipeline, require-cuda).

Each checks its arguments, then calls a library function of ``spacy_dgemma.llm``. Model
arguments take a hub name (``google/gemma-4-26B-A4B-it``) or a local path (the tiny models of
``build-tiny``); nothing else changes between the paper's setup and a CPU smoke run.
"""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from spacy_dgemma.cli._util import command, llm_app
from spacy_dgemma.hipe.read import expand_paths, iter_records

TEACHER = "google/gemma-4-26B-A4B-it"
STUDENT = "google/gemma-4-E2B-it"


def _threads(threads: int) -> None:
    """Limit torch's CPU threads (oversubscribed cores make small models many times slower)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _records(inputs: List[Path]):
    return [item.record for item in iter_records(expand_paths(inputs))]


def _labeller(model: str, adapter: Optional[str], load_in_4bit: bool, dtype: str, device: str,
              max_article_tokens: int, max_new_tokens: int, batch_size: int):
    from spacy_dgemma.llm.labeller import RelationLabeller
    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    tokenizer = load_tokenizer(adapter if adapter and (Path(adapter) / "tokenizer_config.json").exists() else model)
    hf_model = load_model(model, dtype=dtype, device=device, load_in_4bit=load_in_4bit, adapter=adapter)
    return RelationLabeller(hf_model, tokenizer, max_article_tokens=max_article_tokens,
                            max_new_tokens=max_new_tokens, batch_size=batch_size)


@command(llm_app, "require-cuda", example='dgemma llm require-cuda')
def require_cuda_cli() -> None:
    """Stop with a message (exit code 1) unless a CUDA GPU is available (the `all` workflow's guard)."""
    try:
        import torch

        ok = torch.cuda.is_available()
    except ImportError:
        ok = False
    if not ok:
        msg.fail(
            "No CUDA GPU here: the `all` workflow fine-tunes google/gemma-4-26B-A4B-it and cannot run on CPU.",
            "Run the same pipeline with tiny local models instead: `spacy project run smoke`. Or pick smaller "
            "models: `spacy project run all . --vars.teacher_model PATH --vars.student_model PATH` on a GPU machine.",
            exits=1,
        )
    msg.good(f"CUDA GPU: {torch.cuda.get_device_name(0)}")


@command(llm_app, "build-tiny", example='dgemma llm build-tiny training/tiny --train ../shared/hipe2026/newspapers')
def build_tiny_cli(
    output_dir: Path = typer.Argument(..., help="Folder for tokenizer/, teacher/ and student/"),
    train: List[Path] = typer.Option(..., "--train", help="HIPE JSONL files (or folders) whose text trains the tokenizer"),
    vocab_size: int = typer.Option(4096, "--vocab-size", help="Tokenizer vocabulary size"),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights"),
) -> None:
    """Build tiny random Gemma-4-architecture teacher and student models and a local tokenizer."""
    from spacy_dgemma.llm.tiny import build_tiny_models

    paths = build_tiny_models(expand_paths(train), output_dir, vocab_size=vocab_size, seed=seed)
    for name, path in paths.items():
        msg.good(f"{name}: {path}")


@command(llm_app, "sft-data", example='dgemma llm sft-data corpus/split/gold-train-en.jsonl --output training/llm/sft.jsonl --model google/gemma-4-26B-A4B-it')
def sft_data_cli(
    inputs: List[Path] = typer.Argument(..., help="Gold HIPE JSONL files or folders (e.g. corpus/gold-train-*.jsonl)"),
    output: Path = typer.Option(..., "--output", "-o", help="SFT JSONL to write"),
    model: str = typer.Option(TEACHER, "--model", "-m", help="Model that writes the traces (hub name or path)"),
    load_in_4bit: bool = typer.Option(False, "--4bit", help="Load the model in 4-bit NF4"),
    dtype: str = typer.Option("auto", "--dtype"),
    device: str = typer.Option("auto", "--device"),
    max_docs: Optional[int] = typer.Option(None, "--max-docs", help="Use only the first N documents"),
    max_article_tokens: int = typer.Option(6000, "--max-article-tokens"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
    batch_size: int = typer.Option(8, "--batch-size", help="Pairs decoded together"),
    drop_unexplained: bool = typer.Option(False, "--drop-unexplained", help="Drop pairs without any reasoning"),
    threads: int = typer.Option(0, "--threads", help="torch CPU threads (0: torch's default)"),
) -> None:
    """Stage 0: the teacher's SFT set (traces that match gold, rationalised traces for the rest)."""
    from spacy_dgemma.llm.sft_data import build_sft_data

    _threads(threads)
    records = _records(inputs)
    labeller = _labeller(model, None, load_in_4bit, dtype, device, max_article_tokens, max_new_tokens, batch_size)
    counts = build_sft_data(labeller, records, output, model_id=model, drop_unexplained=drop_unexplained,
                            max_docs=max_docs)
    msg.good(f"{output}: {sum(v for k, v in counts.items() if k not in ('dropped', 'unlabelled'))} examples "
             f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
    msg.info(f"Parser: {labeller.parse_stats.summary()}")


@command(llm_app, "teacher", example='dgemma llm teacher training/llm/sft.jsonl training/llm/teacher --model google/gemma-4-26B-A4B-it')
def teacher_cli(
    sft: Path = typer.Argument(..., help="SFT JSONL from `dgemma llm sft-data`"),
    output_dir: Path = typer.Argument(..., help="Folder for adapter/, training_log.jsonl, training_summary.json"),
    model: str = typer.Option(TEACHER, "--model", "-m", help="Teacher base model (hub name or path)"),
    hparams: Path = typer.Option(Path("training/llm/teacher.json"), "--hparams", help="Hyperparameter JSON"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Override the number of steps"),
    no_4bit: bool = typer.Option(False, "--no-4bit", help="Plain LoRA on a full-precision base"),
    device: str = typer.Option("auto", "--device"),
    threads: int = typer.Option(0, "--threads"),
) -> None:
    """Fine-tune the teacher with QLoRA (4-bit NF4 base + LoRA) on the stage-0 SFT set."""
    from spacy_dgemma.llm.qlora import train_teacher
    from spacy_dgemma.llm.sft import LoraHyperparams

    _threads(threads)
    if not sft.exists():
        msg.fail(f"{sft}: no such file; run `dgemma llm sft-data` first", exits=2)
    hp = LoraHyperparams.from_file(hparams, max_steps=max_steps)
    summary = train_teacher(model, sft, output_dir, hp, device=device, load_in_4bit=not no_4bit)
    msg.good(f"Teacher adapter: {summary['adapter']} ({summary['steps']} steps, loss {summary['train_loss']:.4f}, "
             f"{summary['trainable_parameters']:,} trainable parameters)")


@command(llm_app, "annotate", example='dgemma llm annotate corpus/split/silver-train-en.jsonl --cache training/llm/cache.jsonl --output-dir corpus/teacher --model google/gemma-4-26B-A4B-it --adapter training/llm/teacher/adapter')
def annotate_cli(
    inputs: List[Path] = typer.Argument(..., help="HIPE JSONL files or folders to annotate"),
    cache: Path = typer.Option(..., "--cache", help="Resumable JSONL cache (appended to)"),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Official-format JSONL, one file per input"),
    traces: Optional[Path] = typer.Option(None, "--traces", help="Also write the student's SFT traces here"),
    model: str = typer.Option(TEACHER, "--model", "-m", help="Base model (hub name or path)"),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter folder (the trained teacher)"),
    model_id: Optional[str] = typer.Option(None, "--model-id", help="Cache key of the model [default: model+adapter]"),
    load_in_4bit: bool = typer.Option(False, "--4bit", help="Load the base in 4-bit NF4"),
    dtype: str = typer.Option("auto", "--dtype"),
    device: str = typer.Option("auto", "--device"),
    max_article_tokens: int = typer.Option(6000, "--max-article-tokens"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
    batch_size: int = typer.Option(8, "--batch-size", help="Pairs decoded together"),
    max_docs: Optional[int] = typer.Option(None, "--max-docs", help="Use only the first N documents of each input file"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Stop after N new pairs (resume later)"),
    include_fallback: bool = typer.Option(False, "--include-fallback", help="Keep parser-fallback answers in the traces"),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(0, "--threads"),
) -> None:
    """Annotate every pair with reasoning + labels (greedy, batched, resumable)."""
    import torch

    from spacy_dgemma.hipe.write import write_jsonl
    from spacy_dgemma.llm.annotate import AnnotationCache, annotate, annotated_records, write_traces

    _threads(threads)
    torch.manual_seed(seed)
    files = expand_paths(inputs)
    by_file = {file: [item.record for item in iter_records([file])][:max_docs] for file in files}
    labeller = _labeller(model, adapter, load_in_4bit, dtype, device, max_article_tokens, max_new_tokens, batch_size)
    model_id = model_id or (f"{model}+{adapter}" if adapter else model)
    records = [r for recs in by_file.values() for r in recs]
    summary = annotate(labeller, records, cache, model_id=model_id, limit=limit)
    msg.good(f"{summary.new} pairs annotated, {summary.cached} already in {cache}"
             + (" (stopped at --limit; run again to continue)" if summary.stopped_early else ""))
    msg.info(f"Parser: {labeller.parse_stats.summary()}")
    with AnnotationCache(cache) as store:
        if output_dir is not None:
            from collections import Counter

            for file, recs in by_file.items():
                counts: Counter = Counter()
                path = Path(output_dir) / file.name
                n = write_jsonl(path, annotated_records(recs, store, labeller.prompt_version, model_id, counts), validate=True)
                msg.good(f"{path}: {n} documents, {counts['annotated']} pairs annotated, {counts['missing']} missing")
        if traces is not None:
            counts = write_traces(records, store, labeller, traces, model_id, include_fallback=include_fallback)
            msg.good(f"{traces}: {counts['written']} traces ({counts['skipped']} skipped: fallback or missing)")


@command(llm_app, "distill", example='dgemma llm distill training/llm/traces.jsonl training/llm/student --model google/gemma-4-E2B-it')
def distill_cli(
    traces: Path = typer.Argument(..., help="Teacher traces (SFT JSONL from `dgemma llm annotate --traces`)"),
    output_dir: Path = typer.Argument(..., help="Folder for adapter/, merged/ and the training log"),
    model: str = typer.Option(STUDENT, "--model", "-m", help="Student base model (hub name or path)"),
    hparams: Path = typer.Option(Path("training/llm/student.json"), "--hparams", help="Hyperparameter JSON"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Override the number of steps"),
    device: str = typer.Option("auto", "--device"),
    merge_dtype: str = typer.Option("auto", "--merge-dtype", help="Precision of the merged weights (auto: float32)"),
    threads: int = typer.Option(0, "--threads"),
) -> None:
    """Distil the teacher into the student (LoRA SFT on the traces, then a full-precision merge)."""
    from spacy_dgemma.llm.distill import distill_student
    from spacy_dgemma.llm.sft import LoraHyperparams

    _threads(threads)
    if not traces.exists():
        msg.fail(f"{traces}: no such file; run `dgemma llm annotate --traces` first", exits=2)
    hp = LoraHyperparams.from_file(hparams, max_steps=max_steps)
    summary = distill_student(model, traces, output_dir, hp, device=device, merge_dtype=merge_dtype)
    msg.good(f"Merged student: {summary['merged']} ({summary['steps']} steps, loss {summary['train_loss']:.4f})")


@command(llm_app, "student-pipeline", example='dgemma llm student-pipeline training/llm/student/merged training/llm/pipeline')
def student_pipeline_cli(
    model: str = typer.Argument(..., help="Merged student (hub name or path; stored as given, see below)"),
    output: Path = typer.Argument(..., help="Pipeline folder to write"),
    lang: str = typer.Option("xx", "--lang", help="spaCy language of the pipeline"),
    name: str = typer.Option("dgemma_relations_llm", "--name", help="Pipeline name (for `spacy package`)"),
    device: str = typer.Option("auto", "--device"),
    batch_size: int = typer.Option(8, "--batch-size"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
    max_article_tokens: int = typer.Option(6000, "--max-article-tokens"),
    absolute: bool = typer.Option(True, "--absolute/--as-given", help="Store a local path as an absolute path"),
) -> None:
    """A spaCy pipeline whose `dgemma_relations` uses the generative student (the weights are referenced)."""
    import spacy

    from spacy_dgemma.ml import generative  # noqa: F401  (registers the architecture)

    path = Path(model)
    reference = str(path.resolve()) if absolute and path.exists() else model
    nlp = spacy.blank(lang)
    nlp.meta["name"] = name
    # The package needs the library (entry points, LLM stack), not the weights: they are referenced.
    nlp.meta["requirements"] = ["spacy-dgemma[llm]"]
    # consistent_labels off: the labels stay as the student wrote them, next to its explanation.
    nlp.add_pipe("dgemma_relations", config={"consistent_labels": False, "model": {
        "@architectures": "spacy_dgemma.GenerativeStudent.v1", "name_or_path": reference, "device": device,
        "batch_size": batch_size, "max_new_tokens": max_new_tokens, "max_article_tokens": max_article_tokens}})
    nlp.to_disk(output)
    msg.good(f"{output}: pipeline referencing {reference}")
