"""An OpenAI-compatible completions server as the engine (``vllm serve``, SGLang, llama.cpp's server).

Each pair is one ``POST /v1/completions`` whose prompt is the token ids of the chat layer (prefix
+ suffix), so the server sees exactly the tokens of training and of the ``hf`` path and renders
no chat template of its own. At most ``max_in_flight`` requests are open at once, over all
documents (the server batches them continuously and its prefix cache reuses each document part).
A request that fails on the network, times out, or gets HTTP 408/429/5xx is tried again after
1 s, 2 s, 4 s, ... (at most 30 s) up to ``retries`` times; then the run stops with a coded error,
and everything finished so far is already in the annotation cache.

With vLLM's extensions (``vllm=True``) a request also asks for the generated token ids
(``return_token_ids``) and the log-probabilities of the label tokens at every step
(``logprob_token_ids``); other servers are asked for their top-5 log-probabilities, which hold
the written label's token and usually the others. Guided decoding sends ``response_format``
with the answer's JSON schema (``ANSWER_SCHEMA``).
"""
import logging
import re
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from spacy_dgemma.errors import InputError, Warnings
from spacy_dgemma.llm.engines import (
    ANSWER_SCHEMA,
    Engine,
    EngineOptions,
    GenerationSettings,
    PromptGroup,
)
from spacy_dgemma.llm.generate import Generation, stop_token_ids

logger = logging.getLogger("spacy_dgemma")
# Log-probability given to a watched token the server did not return (vLLM uses -9999 itself).
MISSING_LOGPROB = -9999.0
GENERIC_TOP_LOGPROBS = 5
MAX_BACKOFF = 30.0


def api_base(url: str) -> str:
    """The API's base URL, ending in /v1 (``http://host:8000`` and ``http://host:8000/v1/`` alike)."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class ServerEngine(Engine):
    """Completions from an OpenAI-compatible server.

    url: the server's base URL. model_name: the served model's name. tokenizer: the model's tokenizer.
    settings: default decoding settings. vllm: use vLLM's request extensions (see the module doc).
    max_in_flight / timeout / retries / backoff: concurrency, seconds per request, tries after a
        failure and the first wait. identity: what identifies the weights (cache keys).
    """

    kind = "server"
    supports_guided_json = True

    def __init__(self, url: str, model_name: str, tokenizer, settings: GenerationSettings, vllm: bool = True,
                 max_in_flight: int = 16, timeout: float = 600.0, retries: int = 5, backoff: float = 1.0,
                 identity: str = "") -> None:
        import httpx

        self.kind = "vllm" if vllm else "server"
        super().__init__(tokenizer, settings, identity)
        self.url = api_base(url)
        self.model_name = model_name
        self.vllm = vllm
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.client = httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=max_in_flight))
        self.stop_ids = stop_token_ids(None, tokenizer)
        self._dead = threading.Event()
        self._lock = threading.Lock()
        self._warned_logprobs = False
        self.server = None  # a LocalVLLMServer this engine stops when it closes (vllm_local.py)

    @classmethod
    def connect(cls, options: EngineOptions, settings: GenerationSettings, tokenizer, identity: str,
                vllm: bool = True) -> "ServerEngine":
        """Connect to ``options.server_url`` and find the served model (see ``EngineOptions``;
        `tokenizer` / `identity`: from `open_engine`)."""
        engine = cls(options.server_url, options.served_model_name or options.model, tokenizer, settings, vllm=vllm,
                     max_in_flight=options.max_in_flight, timeout=options.timeout, retries=options.retries,
                     identity=identity)
        try:
            engine.model_name = engine.find_model(options.served_model_name or options.model)
        except BaseException:
            engine.close()
            raise
        return engine

    def find_model(self, wanted: str) -> str:
        """The served model called `wanted`, or the only model served."""
        served = [m["id"] for m in self._request("GET", "/models").get("data", [])]
        if wanted in served:
            return wanted
        if len(served) == 1:
            logger.info("%s serves %s; using it for %s", self.url, served[0], wanted)
            return served[0]
        raise InputError.of("E180", self.url, served=", ".join(served) or "no model", model=wanted)

    def _request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """One API call with retries and back-off (see the module docstring)."""
        import httpx

        last = ""
        for attempt in range(self.retries + 1):
            if self._dead.is_set():
                break
            if attempt:
                time.sleep(min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1)))
            try:
                response = self.client.request(method, self.url + path, json=body)
            except httpx.TransportError as err:
                last = f"{type(err).__name__}: {err}"
                logger.info("%s%s: %s (try %d of %d)", self.url, path, last, attempt + 1, self.retries + 1)
                continue
            if response.status_code == 200:
                return response.json()
            last = f"HTTP {response.status_code}: {response.text[:300]}"
            if response.status_code not in (408, 429) and response.status_code < 500:
                raise InputError.of("E179", self.url + path, status=response.status_code, detail=response.text[:300])
            logger.info("%s%s: %s (try %d of %d)", self.url, path, last, attempt + 1, self.retries + 1)
        self._dead.set()  # the other requests in flight give up too, instead of retrying on their own
        raise InputError.of("E178", self.url, tries=self.retries + 1, detail=last or "another request gave up")

    def request_body(self, ids: List[int], watch_ids: Sequence[int], settings: GenerationSettings) -> Dict[str, Any]:
        """The completions request for one prompt."""
        body: Dict[str, Any] = {
            "model": self.model_name,
            "prompt": list(ids),
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "seed": settings.seed,
            "skip_special_tokens": True,
        }
        if self.vllm:
            body.update(stop_token_ids=self.stop_ids, return_token_ids=True, return_tokens_as_token_ids=True,
                        logprobs=1, logprob_token_ids=list(watch_ids))
        else:
            body.update(logprobs=GENERIC_TOP_LOGPROBS,
                        stop=[t for t in self.tokenizer.convert_ids_to_tokens(self.stop_ids) if t])
        if settings.guided_json:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "relation_answer", "schema": ANSWER_SCHEMA, "strict": True}}
        return body

    def parse_choice(self, choice: Dict[str, Any], watch_ids: Sequence[int]) -> Generation:
        """A ``Generation`` from one completion choice (token ids, watched log-probabilities)."""
        logprobs = choice.get("logprobs") or {}
        steps = logprobs.get("top_logprobs") or []
        token_ids = choice.get("token_ids")
        if token_ids is None and logprobs.get("tokens") and all(re.fullmatch(r"token_id:\d+", t) for t in logprobs["tokens"]):
            token_ids = [int(t.split(":", 1)[1]) for t in logprobs["tokens"]]
        if token_ids is None:
            token_ids = list(self.tokenizer(choice.get("text") or "", add_special_tokens=False)["input_ids"])
        token_ids = [int(t) for t in token_ids]
        names = self.tokenizer.convert_ids_to_tokens(list(watch_ids))
        watched = []
        for step in steps:
            step = step or {}
            watched.append([float(step.get(f"token_id:{w}", step.get(name, MISSING_LOGPROB)))
                            for w, name in zip(watch_ids, names)])
        if watch_ids and not any(v != MISSING_LOGPROB for row in watched for v in row) and not self._warned_logprobs:
            self._warned_logprobs = True
            warnings.warn(Warnings.W083.format(url=self.url))
        if token_ids and token_ids[-1] in self.stop_ids:
            token_ids = token_ids[:-1]  # as the hf path: the stop token ends the answer, its step stays scored
        return Generation(token_ids, watched)

    def _complete(self, ids: List[int], watch_ids: Sequence[int], settings: GenerationSettings) -> Generation:
        data = self._request("POST", "/completions", self.request_body(ids, watch_ids, settings))
        generation = self.parse_choice(data["choices"][0], watch_ids)
        usage = data.get("usage") or {}
        with self._lock:
            self.stats.prompt_tokens += int(usage.get("prompt_tokens") or len(ids))
            self.stats.generated_tokens += int(usage.get("completion_tokens") or len(generation.token_ids))
        return generation

    def generate(self, groups: Sequence[PromptGroup], watch_ids: Sequence[int],
                 settings: Optional[GenerationSettings] = None) -> Iterator[Tuple[int, int, Generation]]:
        settings = self.effective(settings)
        jobs = ((g, i, group.prefix + suffix) for g, group in enumerate(groups) for i, suffix in enumerate(group.suffixes))
        pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="dgemma-request")
        pending: Dict[Any, Tuple[int, int]] = {}
        try:
            for g, i, ids in jobs:
                while len(pending) >= self.max_in_flight:
                    yield from self._finished(pending)
                pending[pool.submit(self._complete, ids, watch_ids, settings)] = (g, i)
            while pending:
                yield from self._finished(pending)
        finally:
            if pending:  # stopped early (an error, --limit): do not wait for answers nobody reads
                self._dead.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self._dead.clear()

    @staticmethod
    def _finished(pending: Dict[Any, Tuple[int, int]]) -> Iterator[Tuple[int, int, Generation]]:
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in done:
            g, i = pending.pop(future)
            yield g, i, future.result()

    def metrics(self) -> Dict[str, float]:
        """The server's Prometheus counters whose names mention the prefix cache (vLLM), summed."""
        response = self.client.get(self.url[: -len("/v1")] + "/metrics")
        totals: Dict[str, float] = {}
        for line in response.text.splitlines():
            match = re.match(r"vllm:(prefix_cache_(?:queries|hits))_total(?:\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
            if match:
                totals[match.group(1)] = totals.get(match.group(1), 0.0) + float(match.group(2))
        return totals

    def describe(self) -> str:
        return f"{self.kind} server {self.url} ({self.model_name}, {self.max_in_flight} requests in flight)"

    def close(self) -> None:
        self.client.close()
        if self.server is not None:
            self.server.stop()
