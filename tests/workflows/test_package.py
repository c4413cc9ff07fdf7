"""The packaged pipeline installs in a fresh venv (no system site-packages) and loads offline.

Slow: builds the spacy-dgemma wheel and the xx_dgemma_relations wheel, creates a venv, installs
both (their dependencies come from the package index), then loads the model with the network
blocked, on a Doc from the HIPE reader and on a Doc whose persons/places come from doc.ents.
"""
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.training import Example
from thinc.api import fix_random_seed

from tests.util import HIPE_RECORDS, build_hipe_doc, strip_labels

REPO = Path(__file__).resolve().parents[2]
MODEL = {"@architectures": "spacy_dgemma.PairClassifier.v1", "width": 8, "hidden_width": 16, "embed_rows": 200}

CHECK = textwrap.dedent(
    """
    import socket, sys
    def no_network(*args, **kwargs):
        raise OSError("network access attempted")
    socket.socket.connect = no_network  # loading must not touch the network
    socket.socket.connect_ex = no_network
    socket.create_connection = no_network
    socket.getaddrinfo = no_network
    import spacy
    nlp = spacy.load("xx_dgemma_relations")
    assert nlp.meta["license"].startswith("CC BY-NC-SA"), nlp.meta["license"]
    assert not nlp.meta["dgemma"]["recogniser"] and nlp.meta["dgemma"]["input"].startswith("persons and places given")
    from spacy_dgemma.hipe.corpus import make_predicted
    from spacy_dgemma.hipe.read import read_docs
    doc = nlp(make_predicted(next(read_docs(sys.argv[1], vocab=nlp.vocab))))
    assert len(doc._.dgemma_relations) == int(sys.argv[2]), doc._.dgemma_relations
    text = nlp.make_doc("Mr. John Smith arrived in London yesterday.")
    text.ents = [text.char_span(0, 14, "PER"), text.char_span(26, 32, "LOC")]
    rel = nlp(text)._.dgemma_relations[0]
    assert (rel.person_id, rel.place_id) == ("person:mr john smith", "place:london"), rel
    assert "torch" not in sys.modules
    print("OK", rel.at, rel.is_at)
    """
)


def _trained_pipeline(path: Path) -> None:
    fix_random_seed(0)
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations", config={"model": MODEL})
    examples = [Example(build_hipe_doc(nlp, strip_labels(r)), build_hipe_doc(nlp, r)) for r in HIPE_RECORDS.values()]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(path)


@pytest.mark.slow
def test_package_installs_and_loads_in_fresh_venv(tmp_path):
    _trained_pipeline(tmp_path / "model")
    packages = tmp_path / "packages"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "package_model.py"), str(tmp_path / "model"), str(packages),
         "--version", "0.0.1", "--repo", str(REPO)],
        check=True, cwd=tmp_path,
    )
    library = sorted(packages.glob("spacy_dgemma-*.whl"))
    model = sorted((packages / "xx_dgemma_relations-0.0.1" / "dist").glob("*.whl"))
    assert library and model
    readme = (packages / "xx_dgemma_relations-0.0.1" / "README.md").read_text(encoding="utf8")
    assert "CC BY-NC-SA 4.0" in readme and "HIPE-2026" in readme and "Limits" in readme
    assert "Input: persons and places given" in readme
    env = tmp_path / "venv"
    venv.create(env, with_pip=True, system_site_packages=False)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(library[-1]), str(model[-1])], check=True)
    srsly.write_jsonl(tmp_path / "input.jsonl", [strip_labels(HIPE_RECORDS["fr"])])
    (tmp_path / "check.py").write_text(CHECK, encoding="utf8")
    n_pairs = len(HIPE_RECORDS["fr"]["sampled_pairs"])
    out = subprocess.run([str(python), str(tmp_path / "check.py"), str(tmp_path / "input.jsonl"), str(n_pairs)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("OK")
