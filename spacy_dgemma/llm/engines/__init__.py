"""Engines: one interface for the models that answer the relation prompts, chosen by an option.

- ``hf``: a Hugging Face causal LM in this process (``hf.py``), reading each document's prefix once
  and decoding its pairs from copies of that key/value cache (``generate.py``).
- ``vllm``: vLLM. With ``server_url``, a running OpenAI-compatible server (``openai.py``, with vLLM's
  extensions: label-token log-probabilities, generated token ids); without, vLLM in this process
  (``vllm.LLM``) where it is importable, else a ``vllm serve`` started here on 127.0.0.1 from another
  Python (``vllm_python``, e.g. the project's ``.venv-vllm``) and stopped at the end (``vllm_local.py``).
- ``server``: any OpenAI-compatible completions server (SGLang, llama.cpp's server, ...), at ``server_url``.

Every engine takes *prompt groups* (the token ids of one document prefix and of each pair's
suffix, as ``chat.encode_prompt`` tokenises them, so training, the HF path and the servers see the
same tokens) and yields each suffix's ``Generation`` as it finishes: the generated token ids (stop
token excluded) and, at every step, a score per watched token id (raw logits for ``hf``,
log-probabilities for the others; both give the same softmax over the label tokens). Servers get
all groups' requests at once (bounded in flight), so they batch across documents and their
prefix cache reuses each document part.
"""
import contextlib
import hashlib
import json
import logging
import os
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from spacy_dgemma.errors import Errors, InputError, Warnings
from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS
from spacy_dgemma.llm.generate import Generation, GenerationStats
from spacy_dgemma.util import AtomicWriter

logger = logging.getLogger("spacy_dgemma")

ENGINES = ("hf", "vllm", "server")
# The answer's JSON schema, for guided decoding (the contract of ``parse.py``, keys in its order).
ANSWER_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "properties": {
        "at_reasoning": {"type": "string"},
        "at": {"enum": list(AT_LABELS)},
        "isAt_reasoning": {"type": "string"},
        "isAt": {"enum": list(IS_AT_LABELS)},
    },
    "required": ["at_reasoning", "at", "isAt_reasoning", "isAt"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class GenerationSettings:
    """What decoding does; every field changes answers, so all are part of the annotation cache key.

    max_new_tokens: generation limit per pair. temperature: 0 is greedy; above 0 samples.
    seed: the sampling seed. guided_json: constrain the output to ``ANSWER_SCHEMA`` (servers only).
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    guided_json: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(Errors.E187.format(what="max_new_tokens", rule="a positive integer", value=self.max_new_tokens))
        if self.temperature < 0:
            raise ValueError(Errors.E187.format(what="temperature", rule="0 (greedy) or more", value=self.temperature))


@dataclass
class PromptGroup:
    """The prompts of one document: the shared prefix ids and one suffix per pair."""

    prefix: List[int]
    suffixes: List[List[int]]


@dataclass
class EngineOptions:
    """Everything that chooses and sets up an engine (config- and CLI-friendly values only).

    engine: "hf", "vllm" or "server". model: hub name or local folder of the weights (for servers:
        the model the server serves; its tokenizer is loaded here to render and count prompts).
    adapter: a LoRA adapter (hf only). tokenizer: where to load the tokenizer from [default: model].
    revision: the model's revision, for the cache key when `model` is a hub name.
    dtype / device / batch_size / cache_prefix / attn_implementation: the hf engine.
    load_in_4bit: NF4 weights (hf: bitsandbytes in this process; a vLLM this command starts:
        ``--quantization bitsandbytes``; refused with a running server).
    server_url: base URL of a running OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1).
    served_model_name: the model's name on the server [default: `model`, or the only one served].
    max_in_flight: requests sent at once. timeout: seconds per request. retries: tries after a
        failure, with back-off (1 s, 2 s, 4 s, ... up to 30 s).
    vllm_python: the Python to start ``vllm serve`` from [default: $DGEMMA_VLLM_PYTHON, this Python
        if it has vllm, else ./.venv-vllm/bin/python]. gpu_memory_utilization / max_model_len /
        vllm_args: for the vLLM engine it starts (on CPU, gpu_memory_utilization is the share of RAM).
    """

    engine: str = "hf"
    model: str = ""
    adapter: Optional[str] = None
    tokenizer: Optional[str] = None
    revision: Optional[str] = None
    dtype: str = "auto"
    device: str = "auto"
    load_in_4bit: bool = False
    batch_size: int = 8
    cache_prefix: bool = True
    attn_implementation: str = "sdpa"
    server_url: Optional[str] = None
    served_model_name: Optional[str] = None
    max_in_flight: int = 16
    timeout: float = 600.0
    retries: int = 5
    vllm_python: Optional[str] = None
    gpu_memory_utilization: float = 0.9
    max_model_len: Optional[int] = None
    vllm_args: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(Errors.E175.format(engine=self.engine, engines=", ".join(ENGINES)))
        if self.engine == "server" and not self.server_url:
            raise ValueError(Errors.E187.format(what="--server-url", rule="given with --engine server", value=self.server_url))
        if self.max_in_flight < 1:
            raise ValueError(Errors.E187.format(what="max_in_flight", rule="1 or more", value=self.max_in_flight))


class Engine:
    """The interface of every engine (see the module docstring).

    tokenizer: the model's tokenizer (chat template included). settings: default decoding settings.
    """

    kind = ""
    supports_guided_json = False

    def __init__(self, tokenizer, settings: GenerationSettings, identity: str = "") -> None:
        self.tokenizer = tokenizer
        self.stats = GenerationStats()
        self.identity = identity
        if settings.guided_json and not self.supports_guided_json:
            warnings.warn(Warnings.W081.format(engine=self.kind))
            settings = replace(settings, guided_json=False)
        self.settings = settings

    def generate(self, groups: Sequence[PromptGroup], watch_ids: Sequence[int],
                 settings: Optional[GenerationSettings] = None) -> Iterator[Tuple[int, int, Generation]]:
        """Yield (group index, suffix index, generation) for every suffix, in any order.

        groups: the prompts. watch_ids: token ids scored at every step.
        settings: decoding settings for this call [default: the engine's].
        """
        raise NotImplementedError

    def effective(self, settings: Optional[GenerationSettings]) -> GenerationSettings:
        """`settings` (or the engine's) as this engine applies them (no guided JSON where unsupported)."""
        settings = settings or self.settings
        return settings if self.supports_guided_json or not settings.guided_json else replace(settings, guided_json=False)

    def describe(self) -> str:
        return self.kind

    def close(self) -> None:
        """Release what the engine holds (a server it started)."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def guided_json_default(engine: str, requested: Optional[bool] = None) -> bool:
    """Whether answers are constrained to ``ANSWER_SCHEMA``: as `requested`, else on where `engine` supports it.

    engine: the engine's kind ("hf", "vllm" or "server"); every engine but "hf" supports it.
    requested: the user's choice (None: the engine's default).
    """
    return engine != "hf" if requested is None else requested


def settings_key(settings: GenerationSettings) -> Dict[str, Any]:
    """The settings as a JSON-ready dict (for cache keys and records)."""
    return asdict(settings)


# ---------------------------------------------------------------- what identifies a model
_DIGEST_MEMO = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spacy-dgemma" / "digests.json"


def content_digest(path: os.PathLike, memo: Optional[Path] = _DIGEST_MEMO) -> str:
    """A SHA-256 over the names and contents of the files under `path` (a folder or a file; hidden
    files and ``*.md`` model cards left out).

    Large weights are read once: each file's digest is remembered in `memo` by (path, size,
    modification time), so later runs on unchanged files cost a ``stat``.
    """
    root = Path(path)
    if root.is_dir():  # hidden files (.cache/, .git/) and model cards (*.md) do not change answers
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".md"
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
    else:
        files = [root]
    known: Dict[str, Any] = {}
    if memo is not None and memo.exists():
        with contextlib.suppress(ValueError, OSError):
            known = json.loads(memo.read_text(encoding="utf8"))
    total = hashlib.sha256()
    changed = False
    for file in files:
        stat = file.stat()
        memo_key = f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        digest = known.get(memo_key)
        if digest is None:
            sha = hashlib.sha256()
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    sha.update(block)
            digest = known[memo_key] = sha.hexdigest()
            changed = True
        name = file.relative_to(root).as_posix() if root.is_dir() else file.name
        total.update(f"{name}\0{digest}\n".encode("utf8"))
    if changed and memo is not None:
        try:
            with AtomicWriter(memo) as out:
                json.dump(known, out)
        except OSError as err:  # a read-only home only costs re-reading next time
            logger.debug("Cannot write the digest memo %s: %s", memo, err)
    return total.hexdigest()


def model_identity(name_or_path: str, revision: Optional[str] = None, adapter: Optional[str] = None) -> str:
    """What identifies the weights that answer: a content digest for local folders (and the
    adapter), the hub name with its revision otherwise (warning W080 when no revision is known)."""
    parts = []
    if name_or_path and Path(name_or_path).exists():
        parts.append(f"sha256:{content_digest(name_or_path)}")
    else:
        if not revision:
            warnings.warn(Warnings.W080.format(model=name_or_path))
        parts.append(f"hub:{name_or_path}@{revision or 'unknown'}")
    if adapter:
        parts.append(f"adapter-sha256:{content_digest(adapter)}")
    return "+".join(parts)


# ---------------------------------------------------------------- choosing an engine
def open_engine(options: EngineOptions, settings: GenerationSettings, deferred: bool = False,
                tokenizer=None, identity: Optional[str] = None) -> Engine:
    """The engine `options` ask for (close it, or use it as a context manager).

    options: which engine and its setup. settings: default decoding settings.
    deferred: load the weights or start the server on the first ``generate`` only (the tokenizer
        and the weights' identity, which cache keys need, are ready at once).
    tokenizer / identity: already known (else loaded / computed from `options`).
    """
    if options.engine == "hf":
        for name in ("server_url", "served_model_name", "vllm_python"):
            if getattr(options, name):
                option = f"--{name.replace('_', '-')}"
                raise InputError.of("E176", option, option=option, engines="vllm, server")
    elif options.adapter:
        raise InputError.of("E176", "--adapter", option="--adapter", engines="hf (servers serve merged weights: merge the adapter first)")
    elif options.load_in_4bit and options.server_url:
        raise InputError.of("E176", "--4bit", option="--4bit", engines="hf, or a vLLM this command starts (a running server quantises as it was started)")
    tokenizer = tokenizer if tokenizer is not None else load_engine_tokenizer(options)
    identity = identity if identity is not None else model_identity(options.model, options.revision, options.adapter)
    if deferred:
        return DeferredEngine(options, settings, tokenizer, identity)
    if options.engine == "hf":
        from spacy_dgemma.llm.engines.hf import HFEngine

        return HFEngine.load(options, settings, tokenizer, identity)
    from spacy_dgemma.llm.engines.openai import ServerEngine

    if options.server_url:
        return ServerEngine.connect(options, settings, tokenizer, identity, vllm=options.engine == "vllm")
    from spacy_dgemma.llm.engines import vllm_local

    if options.vllm_python is None and vllm_local.vllm_importable():
        return vllm_local.VLLMEngine.load(options, settings, tokenizer, identity)
    return vllm_local.start_server_engine(options, settings, tokenizer, identity)


class DeferredEngine(Engine):
    """An engine that loads its weights or starts its server on the first ``generate`` (so a run
    that finds every answer in its cache, or a pipeline that is only loaded, costs no model)."""

    def __init__(self, options: EngineOptions, settings: GenerationSettings, tokenizer, identity: str) -> None:
        self.kind = options.engine
        self.supports_guided_json = guided_json_default(options.engine)
        super().__init__(tokenizer, settings, identity)
        self.options = options
        self._engine: Optional[Engine] = None

    @property
    def engine(self) -> Engine:
        """The real engine (opened now if needed)."""
        if self._engine is None:
            self._engine = open_engine(self.options, self.settings, tokenizer=self.tokenizer, identity=self.identity)
            self._engine.stats = self.stats
        return self._engine

    @property
    def opened(self) -> bool:
        return self._engine is not None

    def generate(self, groups: Sequence[PromptGroup], watch_ids: Sequence[int],
                 settings: Optional[GenerationSettings] = None) -> Iterator[Tuple[int, int, Generation]]:
        if not any(group.suffixes for group in groups):
            return
        yield from self.engine.generate(groups, watch_ids, settings)

    def describe(self) -> str:
        return self._engine.describe() if self._engine is not None else f"{self.kind} (not started: nothing to do)"

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def load_engine_tokenizer(options: EngineOptions):
    """The tokenizer for `options`: from `tokenizer`, else the adapter folder when it has one, else the model."""
    from spacy_dgemma.llm.loading import load_tokenizer

    source = options.tokenizer
    if source is None and options.adapter and (Path(options.adapter) / "tokenizer_config.json").exists():
        source = options.adapter
    return load_tokenizer(source or options.model)
