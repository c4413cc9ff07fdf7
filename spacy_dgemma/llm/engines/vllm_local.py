"""vLLM on this machine: in this process (``vllm.LLM``), or a ``vllm serve`` started from another Python.

vLLM pins its own torch and transformers, which may not be the project's (``make install`` gives it
its own environment, ``.venv-vllm``). So where this Python cannot import vllm, the ``vllm`` engine
starts the OpenAI-compatible server from the Python that can (``python -m
vllm.entrypoints.openai.api_server`` on 127.0.0.1, a free port), talks to it over HTTP
(``openai.py``) and stops it (its whole process group) when the engine closes. vLLM's engine
starts child processes, so in-process use must sit under ``if __name__ == "__main__":`` (the
``dgemma`` command does). On CPU, ``gpu_memory_utilization`` is the share of RAM vLLM reserves
for its KV cache: pass about 0.1 on a shared machine.
"""
import atexit
import functools
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

from spacy_dgemma.errors import InputError
from spacy_dgemma.llm.engines import (
    ANSWER_SCHEMA,
    Engine,
    EngineOptions,
    GenerationSettings,
    PromptGroup,
)
from spacy_dgemma.llm.generate import Generation, stop_token_ids
from spacy_dgemma.util import die_with_parent

logger = logging.getLogger("spacy_dgemma")
VLLM_PYTHON_ENV = "DGEMMA_VLLM_PYTHON"
PROJECT_VLLM_PYTHON = Path(".venv-vllm") / "bin" / "python"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"


def vllm_importable() -> bool:
    """Whether this Python has vllm."""
    return importlib.util.find_spec("vllm") is not None


def find_vllm_python(explicit: Optional[str] = None) -> str:
    """The Python to start ``vllm serve`` from: `explicit`, $DGEMMA_VLLM_PYTHON, this Python if it
    has vllm, else ./.venv-vllm/bin/python (what ``make install`` sets up)."""
    for candidate, source in ((explicit, "--vllm-python"), (os.environ.get(VLLM_PYTHON_ENV), f"${VLLM_PYTHON_ENV}")):
        if candidate:
            if not Path(candidate).exists():
                raise InputError.of("E181", candidate, detail=f"{source} {candidate} does not exist")
            return candidate
    if vllm_importable():
        return sys.executable
    if PROJECT_VLLM_PYTHON.exists():
        return os.path.abspath(PROJECT_VLLM_PYTHON)  # not resolve(): the venv python is a symlink
    raise InputError.of("E181", "--engine vllm", detail=f"this Python has no vllm and there is no {PROJECT_VLLM_PYTHON}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalVLLMServer:
    """``vllm serve MODEL`` on 127.0.0.1, started and stopped by this process.

    model: local folder or hub name (also the served model name). python: the Python that has vllm.
    port: [default: a free one]. gpu_memory_utilization / max_model_len / dtype: vLLM's options.
    extra_args: more ``vllm serve`` arguments (e.g. ["--enforce-eager"]).
    startup_timeout: seconds to wait for /health. log_path: the server's log [default: a temp file].
    """

    def __init__(self, model: str, python: Optional[str] = None, port: Optional[int] = None,
                 gpu_memory_utilization: float = 0.9, max_model_len: Optional[int] = None, dtype: str = "auto",
                 extra_args: Sequence[str] = (), startup_timeout: float = 900.0, log_path: Optional[str] = None,
                 host: str = "127.0.0.1") -> None:
        self.model = model
        self.python = find_vllm_python(python)
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}/v1"
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path or tempfile.mkstemp(prefix="dgemma-vllm-", suffix=".log")[1])
        self.args = [self.python, "-m", SERVER_MODULE, "--model", model, "--served-model-name", model,
                     "--host", host, "--port", str(self.port), "--gpu-memory-utilization", str(gpu_memory_utilization),
                     "--dtype", "auto" if dtype == "auto" else dtype, "--seed", "0", "--disable-uvicorn-access-log"]
        if max_model_len:
            self.args += ["--max-model-len", str(max_model_len)]
        self.args += list(extra_args)
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> "LocalVLLMServer":
        """Start the server and wait until it answers /health (coded error E182 if it dies or hangs)."""
        import httpx

        logger.info("Starting vLLM for %s on %s (log: %s)", self.model, self.url, self.log_path)
        with self.log_path.open("ab") as log:
            # Its own session: stop() ends the API server and the engine processes it started. It
            # also stops when this process exits (atexit) or dies (Linux: the parent-death signal).
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, preexec_fn=functools.partial(die_with_parent, signal.SIGTERM))
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        health = self.url[: -len("/v1")] + "/health"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._fail(f"it exited with code {self.process.returncode}")
            try:
                if httpx.get(health, timeout=5).status_code == 200:
                    logger.info("vLLM is up on %s", self.url)
                    return self
            except httpx.TransportError:
                pass
            time.sleep(1.0)
        self._fail(f"no answer on {health} within {self.startup_timeout:.0f} s")
        return self

    def _fail(self, detail: str) -> None:
        self.stop()
        lines = self.log_path.read_text(encoding="utf8", errors="replace").splitlines() if self.log_path.exists() else []
        raise InputError.of("E182", str(self.log_path), detail=detail, log="\n".join(lines[-15:]))

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process is not None else None

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server and its engine processes (SIGTERM, then SIGKILL after `timeout`)."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> "LocalVLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server_engine(options: EngineOptions, settings: GenerationSettings, tokenizer, identity: str) -> Engine:
    """A ``vllm serve`` of ``options.model`` started here, and the engine talking to it (closing the
    engine stops the server)."""
    from spacy_dgemma.llm.engines.openai import ServerEngine

    extra = list(options.vllm_args) + (["--quantization", "bitsandbytes"] if options.load_in_4bit else [])
    server = LocalVLLMServer(options.model, python=options.vllm_python, gpu_memory_utilization=options.gpu_memory_utilization,
                             max_model_len=options.max_model_len, dtype=options.dtype, extra_args=extra)
    server.start()
    try:
        engine = ServerEngine.connect(
            EngineOptions(**{**options.__dict__, "engine": "vllm", "server_url": server.url, "served_model_name": options.model,
                             "vllm_python": None}),
            settings, tokenizer, identity, vllm=True)
    except BaseException:
        server.stop()
        raise
    engine.server = server
    return engine


class VLLMEngine(Engine):
    """vLLM in this process (``vllm.LLM``): all groups in one ``generate`` call (continuous
    batching, automatic prefix caching, guided JSON through structured outputs).

    llm: a ``vllm.LLM``. tokenizer: the model's tokenizer. settings: default decoding settings.
    """

    kind = "vllm"
    supports_guided_json = True

    def __init__(self, llm, tokenizer, settings: GenerationSettings, identity: str = "") -> None:
        super().__init__(tokenizer, settings, identity)
        self.llm = llm
        self.stop_ids = stop_token_ids(None, tokenizer)

    @classmethod
    def load(cls, options: EngineOptions, settings: GenerationSettings, tokenizer, identity: str) -> "VLLMEngine":
        """``vllm.LLM`` on ``options.model`` (prefix caching on; `tokenizer` / `identity`: from `open_engine`)."""
        try:
            from vllm import LLM
        except ImportError as err:  # installed but broken (e.g. a torchvision built for another torch)
            raise InputError.of("E186", "--engine vllm", detail=f"{type(err).__name__}: {err}") from err
        kwargs = dict(model=options.model, tokenizer=options.tokenizer or options.model, seed=0, enable_prefix_caching=True,
                      gpu_memory_utilization=options.gpu_memory_utilization, dtype=options.dtype)
        if options.revision:
            kwargs["revision"] = options.revision
        if options.max_model_len:
            kwargs["max_model_len"] = options.max_model_len
        if "--enforce-eager" in options.vllm_args:
            kwargs["enforce_eager"] = True
        if options.load_in_4bit:
            kwargs["quantization"] = "bitsandbytes"
        llm = LLM(**kwargs)
        return cls(llm, tokenizer, settings, identity=identity)

    def sampling_params(self, watch_ids: Sequence[int], settings: GenerationSettings):
        from vllm import SamplingParams

        kwargs = dict(temperature=settings.temperature, seed=settings.seed, max_tokens=settings.max_new_tokens,
                      stop_token_ids=self.stop_ids, skip_special_tokens=True)
        if watch_ids:
            kwargs.update(logprobs=len(watch_ids), logprob_token_ids=list(watch_ids))  # vLLM wants them equal
        if settings.guided_json:
            from vllm.sampling_params import StructuredOutputsParams

            kwargs["structured_outputs"] = StructuredOutputsParams(json=ANSWER_SCHEMA)
        return SamplingParams(**kwargs)

    def generate(self, groups: Sequence[PromptGroup], watch_ids: Sequence[int],
                 settings: Optional[GenerationSettings] = None) -> Iterator[Tuple[int, int, Generation]]:
        from vllm.inputs import TokensPrompt

        settings = self.effective(settings)
        index: List[Tuple[int, int]] = []
        prompts = []
        for g, group in enumerate(groups):
            for i, suffix in enumerate(group.suffixes):
                index.append((g, i))
                prompts.append(TokensPrompt(prompt_token_ids=group.prefix + suffix))
        if not prompts:
            return
        outputs = self.llm.generate(prompts, self.sampling_params(watch_ids, settings), use_tqdm=False)
        for (g, i), output, prompt in zip(index, outputs, prompts):
            completion = output.outputs[0]
            tokens = list(completion.token_ids)
            watched = [[float(step[w].logprob) if w in step else -9999.0 for w in watch_ids]
                       for step in (completion.logprobs or [])]
            if tokens and tokens[-1] in self.stop_ids:
                tokens = tokens[:-1]
            self.stats.prompt_tokens += len(prompt["prompt_token_ids"])
            self.stats.generated_tokens += len(completion.token_ids)
            yield g, i, Generation(tokens, watched)

    def describe(self) -> str:
        return "vllm (in this process)"
