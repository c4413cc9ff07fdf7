"""An OpenAI-compatible completions server for the tests, answering with a real tiny model.

It speaks the subset of vLLM's API the ``vllm``/``server`` engines use (``GET /v1/models``,
``POST /v1/completions`` with token-id prompts, ``return_token_ids``, ``logprob_token_ids``,
``return_tokens_as_token_ids``, ``response_format``, ``GET /metrics``), decodes greedily with
``PrefixCachedGenerator.generate_naive`` on 127.0.0.1, and records what it was asked. As
"log-probabilities" of the watched tokens it returns their raw logits: the softmax over the
label tokens, all the engines use them for, is the same. It can fail requests on purpose (HTTP
503, or 400) and delay them, to test retries and the bound on requests in flight.
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List


class FakeServer:
    """A server thread on 127.0.0.1: `url` is its base URL (…/v1)."""

    def __init__(self, model, tokenizer, names=("tiny",), delay: float = 0.0) -> None:
        from spacy_dgemma.llm.generate import PrefixCachedGenerator

        self.model, self.tokenizer, self.names, self.delay = model, tokenizer, list(names), delay
        self.generator = PrefixCachedGenerator(model, tokenizer)
        self.requests: List[Dict[str, Any]] = []
        self.fail_next = 0  # answer this many requests with HTTP 503
        self.reject_status = None  # answer every completion with this status (e.g. 400)
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def complete(self, body: Dict[str, Any]) -> Dict[str, Any]:
        watch = body.get("logprob_token_ids") or []
        self.generator.max_new_tokens = body["max_tokens"]
        self.generator.watch_ids = list(watch)
        with self._model_lock:
            gen = self.generator.generate_naive(body["prompt"], [[]])[0]
        tokens = list(gen.token_ids)
        steps = [{f"token_id:{w}": value for w, value in zip(watch, row)} for row in gen.watched_logits]
        if len(steps) > len(tokens):
            tokens.append(self.generator.stop_ids[0])  # vLLM returns the stop token with its step
        choice = {"index": 0, "text": self.tokenizer.decode(tokens, skip_special_tokens=True),
                  "logprobs": {"tokens": [f"token_id:{t}" for t in tokens], "top_logprobs": steps}}
        if body.get("return_token_ids"):
            choice["token_ids"] = tokens
        return {"choices": [choice], "usage": {"prompt_tokens": len(body["prompt"]), "completion_tokens": len(tokens)}}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, data: Any, content_type: str = "application/json") -> None:
                payload = (json.dumps(data) if content_type == "application/json" else data).encode("utf8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send(200, {"data": [{"id": name} for name in server.names]})
                elif self.path == "/metrics":
                    n = len(server.requests)
                    self._send(200, f"vllm:prefix_cache_queries_total{{engine=\"0\"}} {100.0 * n}\n"
                                    f"vllm:prefix_cache_hits_total{{engine=\"0\"}} {60.0 * n}\n", "text/plain")
                else:
                    self._send(404, {"error": "no such route"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    failing = server.fail_next > 0
                    server.fail_next -= int(failing)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    if server.reject_status:
                        status, answer = server.reject_status, {"error": "rejected on purpose"}
                    elif failing:
                        status, answer = 503, {"error": "busy on purpose"}
                    else:
                        status, answer = 200, server.complete(body)
                finally:
                    with server._lock:  # done before answering: the client's next request comes after
                        server.in_flight -= 1
                self._send(status, answer)

        return Handler
