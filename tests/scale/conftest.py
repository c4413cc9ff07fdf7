"""Fixtures of the Ray tests: a local Ray on 127.0.0.1 with 2 CPUs, a folder of inputs, a slow pipeline."""
import bz2
import copy
import gzip
import json
import logging
import os
from pathlib import Path
from typing import Dict, List

import pytest
import spacy

from spacy_dgemma.scale.worker import import_code
from tests.util import HIPE_RECORDS, strip_labels

# Read by Ray when it is imported: a single-machine Ray binds to the loopback interface only.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# A component that makes each document take a while, so that a worker or the driver can be
# killed while shards are being predicted.
SLOW_CODE = '''
import time
from spacy.language import Language

@Language.component("test_slow_down")
def slow_down(doc):
    time.sleep(0.1)
    return doc
'''
# (file name, languages of its records, copies of each record): 72 documents in 3 files, in
# the order in which a folder lists them (also when the first is .gz and the last .bz2).
CORPUS = (("a/de-fr.jsonl", ("de", "fr"), 12), ("a/en.jsonl", ("en",), 24), ("b/mixed.jsonl", ("en", "de", "fr"), 8))


@pytest.fixture(scope="session")
def ray_address():
    """Start a local Ray for the session (2 CPUs, no dashboard, 127.0.0.1 only); its address."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.WARNING)
    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:"), address
    yield address
    ray.shutdown()


def corpus_records() -> Dict[str, List[dict]]:
    """File name → its records (ids made unique by a copy number)."""
    files = {}
    for name, langs, copies in CORPUS:
        records = []
        for i in range(copies):
            for lang in langs:
                record = strip_labels(copy.deepcopy(HIPE_RECORDS[lang]))
                record["document_id"] = f"{record['document_id']}-{name.replace('/', '-')}-{i}"
                records.append(record)
        files[name] = records
    return files


def write_corpus(folder: Path, compress: bool) -> Dict[str, Path]:
    """Write the corpus (with blank lines between some records); with `compress`, the first
    file as .gz and the last as .bz2. Returns file name → path."""
    paths = {}
    for k, (name, records) in enumerate(corpus_records().items()):
        lines = []
        for i, record in enumerate(records):
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            if i % 5 == 4:
                lines.append("\n")
        data = "".join(lines).encode("utf-8")
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if compress and k == 0:
            path = path.with_name(path.name + ".gz")
            data = gzip.compress(data)
        elif compress and k == 2:
            path = path.with_name(path.name + ".bz2")
            data = bz2.compress(data)
        path.write_bytes(data)
        paths[name] = path
    return paths


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """(folder of compressed and plain inputs, folder of the same as plain .jsonl)."""
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root / "inputs", compress=True)
    write_corpus(root / "plain", compress=False)
    return root / "inputs", root / "plain"


@pytest.fixture(scope="session")
def local_output(corpus, tmp_path_factory):
    """The output of the local engine on the plain corpus: file name → bytes."""
    from spacy_dgemma.predict import load_pipeline, predict_files

    _, plain = corpus
    out = tmp_path_factory.mktemp("local")
    files = sorted(plain.rglob("*.jsonl"))
    predict_files(files, out, load_pipeline("baseline"), progress=False)
    return {str(f.relative_to(plain)): (out / f.name).read_bytes() for f in files}


@pytest.fixture(scope="session")
def slow_pipeline(tmp_path_factory):
    """(pipeline folder: dgemma_relations then a 0.1 s pause per document, its --code file)."""
    root = tmp_path_factory.mktemp("slow")
    code = root / "slow_code.py"
    code.write_text(SLOW_CODE, encoding="utf-8")
    import_code([(str(code), SLOW_CODE)])
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations")
    nlp.add_pipe("test_slow_down")
    nlp.to_disk(root / "model")
    return root / "model", code
