"""``spacy_dgemma.GenerativeStudent.v1``: a generative LLM (e.g. the distilled Gemma 4 E2B student)
as the relation model of ``dgemma_relations``.

For a batch of Docs it renders one prompt per candidate pair (``llm/prompts.py``), sends the
prompts of all Docs to an engine (``llm/engines``): the weights in this process, each Doc's
document prefix read once and its pairs decoded from that key/value cache; or, with
``server_url``, a vLLM (or other OpenAI-compatible) server that batches the pairs of all Docs.
It parses the JSON answers (``llm/parse.py``) and returns one score row per pair: the label
probabilities read at the label tokens where the model wrote them (one-hot where they cannot be
read, e.g. after a parser fallback), plus the reasoning as explanations.

Device: ``device="auto"`` follows spaCy's GPU allocation (``spacy.require_gpu(N)``, ``--gpu-id``:
thinc's current ops); without one (thinc needs cupy for that), torch's current CUDA device when
there is one (what a Ray actor with a GPU or ``CUDA_VISIBLE_DEVICES`` gives), else the CPU; or
name one ("cpu", "cuda:1").

Serialisation: ``nlp.to_disk`` copies the weights into the component's folder
(``dgemma_relations/weights/``; with a server, the tokenizer only) and ``spacy.load`` points the
model at that copy, so a pipeline folder or a ``spacy package`` wheel is self-contained and
portable. The weights load lazily, on first use, once per process for all pipes that name the
same weights. Without torch/transformers (the ``[llm]`` extra) the pipeline fails at load with a
coded error (E177) saying what to install.

The model is not trainable inside ``spacy train``: fine-tune it with ``dgemma llm distill``.
"""
import importlib
import logging
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.util import registry
from thinc.api import Model

from spacy_dgemma.errors import Errors, InputError
from spacy_dgemma.labels import SCORE_COLUMNS
from spacy_dgemma.ml.types import DocPairs, Explanation, RelationScores

logger = logging.getLogger("spacy_dgemma")
WEIGHTS_DIR = "weights"
# The attribute through which dgemma_relations' to_disk / from_disk reach the model's files.
FILES_ATTR = "dgemma_files"
_ENGINES: Dict[Tuple, object] = {}
# Files of a model folder that a tokenizer needs (what a pipeline keeps when a server holds the weights).
_TOKENIZER_FILES = ("tokenizer", "special_tokens", "chat_template", "config.json", "added_tokens", "vocab", "merges")


@registry.architectures("spacy_dgemma.GenerativeStudent.v1")
def make_generative_student(
    name_or_path: str,
    dtype: str = "auto",
    device: str = "auto",
    batch_size: int = 8,
    max_new_tokens: int = 256,
    max_article_tokens: int = 6000,
    prompt_version: str = "relations.v1",
    attn_implementation: str = "sdpa",
    server_url: str = "",
    served_model_name: str = "",
    max_in_flight: int = 16,
    guided_json: Optional[bool] = None,
    engine: str = "hf",
    gpu_memory_utilization: float = 0.9,
    vllm_args: Sequence[str] = (),
) -> Model[List[DocPairs], RelationScores]:
    """A generative relation model.

    name_or_path: hub name or local folder of a causal LM with a chat template (e.g. the merged
        student written by ``dgemma llm distill``); with `server_url`, where its tokenizer is.
    dtype: "auto" (bf16 on CUDA, fp32 on CPU), "float32", "bfloat16" or "float16".
    device: "auto" (spaCy's GPU allocation, else CPU), "cpu", "cuda", "cuda:1", ...
    batch_size: pairs of a document decoded together (weights in this process).
    max_new_tokens: generation limit per pair.
    max_article_tokens: article budget; longer articles are cut to windows around the mentions.
    prompt_version: prompt template version (``templates/{version}.*.jinja``).
    attn_implementation: "sdpa" or "eager" (the prefix-cached path passes explicit masks).
    server_url: a vLLM / OpenAI-compatible server that serves the model (no weights loaded here).
    served_model_name: the model's name on that server [default: the only one it serves].
    max_in_flight: requests open at once to the server.
    guided_json: constrain answers to the JSON schema [default: on with a server].
    engine: "hf" (weights in this process) or "vllm" (the server at `server_url`; without one,
        vLLM in this process where it imports, else a ``vllm serve`` started on first use and
        stopped at exit). gpu_memory_utilization / vllm_args: for the vLLM it starts.
    """
    model = Model(
        "generative_student",
        _forward,
        init=_init,
        attrs={
            "name_or_path": name_or_path,
            "dtype": dtype,
            "device": device,
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
            "max_article_tokens": max_article_tokens,
            "prompt_version": prompt_version,
            "attn_implementation": attn_implementation,
            "server_url": server_url,
            "served_model_name": served_model_name,
            "max_in_flight": max_in_flight,
            "guided_json": guided_json,
            "engine": engine,
            "gpu_memory_utilization": gpu_memory_utilization,
            "vllm_args": list(vllm_args),
        },
    )
    model.attrs[FILES_ATTR] = StudentFiles(model)  # not serialisable: thinc leaves it out of to_bytes
    return model


def require_llm_extra(model: Model) -> None:
    """Raise E177 unless the packages this model needs import (torch + transformers, or, with a
    server, transformers + httpx)."""
    needed = ("torch", "transformers") if _engine_kind(model) == "hf" else ("transformers", "httpx")
    missing, detail = [], []
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError as err:
            missing.append(name)
            detail.append(f"{type(err).__name__}: {err}")
    if missing:
        raise InputError.of("E177", str(model.attrs["name_or_path"]), missing=" and ".join(missing), detail="; ".join(detail))


def _engine_kind(model: Model) -> str:
    """"hf", or "vllm" (a server_url means vLLM or another OpenAI-compatible server)."""
    return "vllm" if model.attrs["server_url"] or model.attrs["engine"] == "vllm" else model.attrs["engine"]


def get_labeller(model: Model):
    """The model's ``RelationLabeller`` (its engine opens on first use, once per process)."""
    from spacy_dgemma.llm.engines import EngineOptions, GenerationSettings, guided_json_default, open_engine
    from spacy_dgemma.llm.labeller import RelationLabeller
    from spacy_dgemma.llm.loading import resolve_device

    require_llm_extra(model)
    attrs = model.attrs
    server = attrs["server_url"] or None
    options = EngineOptions(
        engine=_engine_kind(model), model=str(attrs["name_or_path"]), dtype=attrs["dtype"],
        device=resolve_device(attrs["device"]), batch_size=attrs["batch_size"], attn_implementation=attrs["attn_implementation"],
        server_url=server, served_model_name=attrs["served_model_name"] or None, max_in_flight=attrs["max_in_flight"],
        gpu_memory_utilization=attrs["gpu_memory_utilization"], vllm_args=list(attrs["vllm_args"]),
    )
    key = tuple(sorted((k, str(v)) for k, v in options.__dict__.items()))
    if key not in _ENGINES:
        guided = guided_json_default(options.engine, attrs["guided_json"])
        # identity="": the student keeps no answer cache, so its weights need no content digest.
        _ENGINES[key] = open_engine(options, GenerationSettings(max_new_tokens=attrs["max_new_tokens"], guided_json=guided),
                                    deferred=True, identity="")
    return RelationLabeller(engine=_ENGINES[key], prompt_version=attrs["prompt_version"],
                            max_article_tokens=attrs["max_article_tokens"])


def _settings(model: Model):
    from spacy_dgemma.llm.engines import GenerationSettings, guided_json_default

    attrs = model.attrs
    return GenerationSettings(max_new_tokens=attrs["max_new_tokens"], guided_json=guided_json_default(_engine_kind(model), attrs["guided_json"]))


def _init(model: Model, X=None, Y=None) -> Model:
    get_labeller(model)  # fail early (a missing extra, a wrong path), not in the middle of a corpus
    return model


def _forward(model: Model, doc_pairs: List[DocPairs], is_train: bool):
    from spacy_dgemma.llm.prompts import document_from_doc

    if is_train:
        raise NotImplementedError(Errors.E188)
    items = [(document_from_doc(doc, pairs), None) for doc, pairs in doc_pairs if pairs]
    rows: List[List[float]] = []
    explanations: List[Explanation] = []
    if items:
        labeller = get_labeller(model)
        for results in labeller.label_documents(items, settings=_settings(model)):
            for result in results:
                rows.append(result.scores)
                explanations.append((result.parsed.at_reasoning, result.parsed.is_at_reasoning))
        logger.info("GenerativeStudent parse: %s", labeller.parse_stats.summary())
    scores = numpy.asarray(rows, dtype="f").reshape((-1, len(SCORE_COLUMNS)))
    output = RelationScores(model.ops.asarray2f(scores), explanations)

    def backprop(d_scores):
        raise NotImplementedError(Errors.E188)

    return output, backprop


class StudentFiles:
    """The model's files inside a pipeline folder: ``to_disk`` copies the weights (with a server,
    the tokenizer only) into ``COMPONENT/weights``; ``from_disk`` points the model at that copy.

    model: the generative student.
    """

    def __init__(self, model: Model) -> None:
        self.model = model

    def _source(self) -> Optional[Path]:
        path = Path(str(self.model.attrs["name_or_path"]))
        return path if path.is_dir() else None

    def to_disk(self, path: Path) -> None:
        """Copy the model's files into `path` / weights (a hub name is kept as a reference)."""
        source, target = self._source(), Path(path) / WEIGHTS_DIR
        if source is None:
            logger.info("%s is no local folder: the pipeline references it (loaded from the hub on first use)",
                        self.model.attrs["name_or_path"])
            return
        if target.exists() and target.resolve() == source.resolve():
            return
        files = [f for f in sorted(source.iterdir()) if f.is_file()]
        if self.model.attrs["server_url"]:  # the server holds the weights
            files = [f for f in files if any(part in f.name for part in _TOKENIZER_FILES)]
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for file in files:
            shutil.copy2(file, target / file.name)

    def from_disk(self, path: Path) -> None:
        """Use the copy in `path` / weights when the pipeline has one."""
        target = Path(path) / WEIGHTS_DIR
        if target.is_dir():
            if not any(target.iterdir()):
                raise InputError.of("E189", str(target), detail="the weights folder is empty")
            self.model.attrs["name_or_path"] = str(target.resolve())
        require_llm_extra(self.model)
