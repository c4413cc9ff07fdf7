"""The Ray actor of a job: loads the pipeline once, then predicts one shard per call."""
import json
import linecache
import logging
import sys
import traceback
import types
from pathlib import Path
from typing import Any, Dict, List, Tuple

from spacy_dgemma.hipe.read import DocMaker
from spacy_dgemma.scale.shards import JobLayout, Shard, run_shard

logger = logging.getLogger("spacy_dgemma")

# (file name, source) of each --code file, imported in every worker before the pipeline loads.
CodeSources = List[Tuple[str, str]]


def import_code(sources: CodeSources) -> None:
    """Import user code (custom components, registered functions) from its source text.

    Nothing is written to disk: each file runs as a module named after it, with its source in
    `linecache` under its file name, so that tracebacks and `inspect` (spaCy's check of a
    component registered twice) find it on every node, whether or not the file is there.
    sources: (file name, source) pairs, as read by the driver, so that workers on other
        machines need no copy of the files.
    """
    for i, (name, source) in enumerate(sources):
        module = types.ModuleType(f"dgemma_code_{i}_{Path(name).stem}")
        module.__file__ = name
        sys.modules[module.__name__] = module  # as an import would: dataclasses and pickle look it up
        # mtime None: linecache keeps the entry, as for sources that a module loader gives it.
        linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
        exec(compile(source, name, "exec"), module.__dict__)


class ShardPredictor:
    """A Ray Data callable class: one pipeline per actor, one shard per batch row.

    model: what `spacy_dgemma.predict.load_pipeline` loads (a path every node can read, an
        installed package, or ``baseline``).
    output: the job's output folder (on a filesystem every node sees).
    batch_size: documents per ``nlp.pipe`` batch.
    code: user code to import first (see `import_code`).
    """

    def __init__(self, model: str, output: str, batch_size: int, code: CodeSources) -> None:
        from spacy_dgemma.predict import load_pipeline

        if code:
            import_code(code)
        self.nlp = load_pipeline(model)
        self.make_doc = DocMaker(vocab=self.nlp.vocab)  # tokenizers and their caches kept across shards
        self.layout = JobLayout(output)
        self.batch_size = batch_size
        self.metrics = _metrics()

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, List[str]]:
        done: List[str] = []
        errors: List[str] = []
        for spec in batch["shard"]:
            shard = Shard.from_dict(json.loads(spec))
            try:
                record = run_shard(self.nlp, shard, self.layout, batch_size=self.batch_size, make_doc=self.make_doc)
            except Exception as err:  # reported per shard; the shard stays to do
                print(traceback.format_exc(), file=sys.stderr)
                done.append(json.dumps({"name": shard.name}))
                errors.append(f"{type(err).__name__}: {err}")
                continue
            done.append(json.dumps(record))
            errors.append("")
            for name, counter in self.metrics.items():
                if record[name] > 0:
                    counter.inc(record[name])
        return {"done": done, "error": errors}


def _metrics() -> Dict[str, Any]:
    """Counters that Ray exports to its dashboard (Prometheus): documents, pairs, rejects."""
    try:
        from ray.util.metrics import Counter
    except ImportError:  # pragma: no cover  (ray[data] ships it)
        return {}
    return {
        name: Counter(f"dgemma_{name}", description=f"{name} written by dgemma predict --engine ray")
        for name in ("documents", "pairs", "rejects")
    }
