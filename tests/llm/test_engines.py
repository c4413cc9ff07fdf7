"""Engines: the server engine gives the hf engine's answers; requests are bounded, retried, guided;
model identities; engine options."""
import json
import warnings

import pytest

from spacy_dgemma.errors import InputError
from spacy_dgemma.llm.engines import (
    ANSWER_SCHEMA,
    EngineOptions,
    GenerationSettings,
    content_digest,
    guided_json_default,
    model_identity,
    open_engine,
)
from spacy_dgemma.llm.engines.hf import HFEngine
from spacy_dgemma.llm.engines.openai import ServerEngine, api_base
from spacy_dgemma.llm.labeller import RelationLabeller
from spacy_dgemma.llm.prompts import document_from_hipe
from tests.llm.fake_server import FakeServer
from tests.util import HIPE_RECORDS


@pytest.fixture(scope="module")
def student(tiny_models):
    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    path = str(tiny_models["student"])
    return load_model(path, device="cpu"), load_tokenizer(path)


def server_engine(server, tokenizer, **kwargs):
    settings = kwargs.pop("settings", GenerationSettings(max_new_tokens=10))
    return ServerEngine(server.url, "tiny", tokenizer, settings, backoff=0.01, **kwargs)


def test_server_engine_answers_as_the_hf_engine(student):
    model, tokenizer = student
    documents = [document_from_hipe(HIPE_RECORDS["en"]), document_from_hipe(HIPE_RECORDS["de"])]
    hf = RelationLabeller(engine=HFEngine(model, tokenizer, GenerationSettings(max_new_tokens=10), batch_size=3))
    with FakeServer(model, tokenizer) as server, server_engine(server, tokenizer, max_in_flight=4) as engine:
        served = RelationLabeller(engine=engine)
        remote = served.label_documents([(d, None) for d in documents])
        assert engine.metrics() == {"prefix_cache_queries": 100.0 * len(server.requests),
                                    "prefix_cache_hits": 60.0 * len(server.requests)}
    local = hf.label_documents([(d, None) for d in documents])
    assert [len(r) for r in remote] == [len(d.pairs) for d in documents]
    assert [[r.raw for r in doc] for doc in remote] == [[r.raw for r in doc] for doc in local]
    for doc_remote, doc_local in zip(remote, local):
        for a, b in zip(doc_remote, doc_local):
            assert a.scores == pytest.approx(b.scores, abs=1e-5)
    # The prompt is the chat layer's token ids (prefix + suffix), not text the server would re-render.
    body = server.requests[0]
    assert isinstance(body["prompt"], list) and all(isinstance(t, int) for t in body["prompt"])
    assert body["logprob_token_ids"] == served.watch_ids and body["return_token_ids"] is True
    assert body["temperature"] == 0.0 and "response_format" not in body
    assert engine.stats.prompt_tokens == sum(len(b["prompt"]) for b in server.requests)


def test_requests_in_flight_are_bounded_and_cross_documents(student):
    model, tokenizer = student
    documents = [(document_from_hipe(r), None) for r in HIPE_RECORDS.values()]
    n_pairs = sum(len(d.pairs) for d, _ in documents)
    with FakeServer(model, tokenizer, delay=0.05) as server, server_engine(server, tokenizer, max_in_flight=3) as engine:
        results = RelationLabeller(engine=engine).label_documents(documents)
    assert sum(len(r) for r in results) == len(server.requests) == n_pairs
    assert server.max_in_flight == 3


def test_failed_requests_are_retried_then_stop_with_a_coded_error(student):
    model, tokenizer = student
    document = document_from_hipe(HIPE_RECORDS["fr"])
    with FakeServer(model, tokenizer) as server:
        server.fail_next = 2  # HTTP 503 twice, then answers
        with server_engine(server, tokenizer, max_in_flight=1, retries=2) as engine:
            results = RelationLabeller(engine=engine).label_document(document)
        assert len(results) == len(document.pairs) and len(server.requests) == len(document.pairs) + 2
        server.fail_next = 10
        with server_engine(server, tokenizer, max_in_flight=1, retries=1) as engine:
            with pytest.raises(InputError, match="E178"):
                RelationLabeller(engine=engine).label_document(document)
        server.reject_status = 400  # a refused request is not retried
        before = len(server.requests)
        with server_engine(server, tokenizer, max_in_flight=1, retries=3) as engine:
            with pytest.raises(InputError, match="E179"):
                RelationLabeller(engine=engine).label_document(document)
        assert len(server.requests) == before + 1
    with server_engine(server, tokenizer, retries=1) as engine:  # the server is gone
        with pytest.raises(InputError, match="E178.*ConnectError"):
            RelationLabeller(engine=engine).label_document(document)


def test_guided_json_and_generic_servers(student):
    model, tokenizer = student
    document = document_from_hipe(HIPE_RECORDS["en"])
    with FakeServer(model, tokenizer) as server:
        settings = GenerationSettings(max_new_tokens=4, guided_json=True)
        with server_engine(server, tokenizer, settings=settings) as engine:
            RelationLabeller(engine=engine).label_document(document)
        assert server.requests[-1]["response_format"]["json_schema"]["schema"] == ANSWER_SCHEMA
        # Any OpenAI-compatible server: no vLLM extensions; stop strings and top-5 log-probabilities.
        with server_engine(server, tokenizer, vllm=False) as engine:
            with pytest.warns(UserWarning, match="W083"):
                results = RelationLabeller(engine=engine).label_document(document)
        body = server.requests[-1]
        assert body["logprobs"] == 5 and "logprob_token_ids" not in body and "<turn|>" in body["stop"]
        assert len(results) == len(document.pairs)


def test_served_model_is_found_or_named(student, tiny_models):
    model, tokenizer = student
    with FakeServer(model, tokenizer, names=("a", "b")) as server:
        options = EngineOptions(engine="vllm", model=str(tiny_models["student"]), server_url=server.url + "/")
        with pytest.raises(InputError, match="E180.*a, b"):
            open_engine(options, GenerationSettings())
        options.served_model_name = "b"
        with open_engine(options, GenerationSettings()) as engine:
            assert engine.model_name == "b" and engine.url == server.url and engine.settings.guided_json is False
    assert api_base("http://h:8000") == api_base("http://h:8000/v1/") == "http://h:8000/v1"


def test_engine_options_are_checked(tiny_models):
    path = str(tiny_models["student"])
    with pytest.raises(InputError, match="E176.*--server-url"):
        open_engine(EngineOptions(engine="hf", model=path, server_url="http://127.0.0.1:1/v1"), GenerationSettings())
    with pytest.raises(InputError, match="E176.*--adapter"):
        open_engine(EngineOptions(engine="vllm", model=path, adapter=path, server_url="http://x"), GenerationSettings())
    with pytest.raises(InputError, match="E176.*--4bit"):
        open_engine(EngineOptions(engine="vllm", model=path, load_in_4bit=True, server_url="http://x"), GenerationSettings())
    with pytest.raises(ValueError, match="E175"):
        EngineOptions(engine="tgi")
    with pytest.raises(ValueError, match="E187"):
        EngineOptions(engine="server", model=path)
    with pytest.raises(ValueError, match="E187"):
        GenerationSettings(temperature=-1)
    # A deferred engine loads nothing until asked; hf has no guided decoding (W081).
    with pytest.warns(UserWarning, match="W081"):
        engine = open_engine(EngineOptions(engine="hf", model=path, device="cpu"), GenerationSettings(guided_json=True),
                             deferred=True)
    assert not engine.opened and engine.settings.guided_json is False
    assert list(engine.generate([], [1])) == [] and not engine.opened


def test_guided_json_is_on_by_default_where_the_engine_supports_it():
    assert [guided_json_default(engine) for engine in ("hf", "vllm", "server")] == [False, True, True]
    assert [guided_json_default(engine, True) for engine in ("hf", "vllm", "server")] == [True, True, True]
    assert [guided_json_default(engine, False) for engine in ("hf", "vllm", "server")] == [False, False, False]


def test_model_identity_follows_content(tmp_path, tiny_models):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_models["student"], folder)
    memo = tmp_path / "memo.json"
    first = content_digest(folder, memo)
    assert content_digest(folder, memo) == first and json.loads(memo.read_text())
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [1]}))
    assert content_digest(folder, memo) != first
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        local = model_identity(str(folder))
    assert local.startswith("sha256:")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"one")
    with_adapter = model_identity(str(folder), adapter=str(adapter))
    (adapter / "adapter_model.safetensors").write_bytes(b"two")
    assert model_identity(str(folder), adapter=str(adapter)) != with_adapter
    with pytest.warns(UserWarning, match="W080"):
        assert model_identity("google/gemma-4-E2B-it") == "hub:google/gemma-4-E2B-it@unknown"
    assert model_identity("google/gemma-4-E2B-it", revision="abc") == "hub:google/gemma-4-E2B-it@abc"
