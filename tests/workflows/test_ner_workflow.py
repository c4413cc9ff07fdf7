"""project.yml's recogniser steps (`ner` workflow, and those of `cpu`): every file a step reads is
made by an earlier step or is in the repository; the package step gets the recogniser `cpu` trains."""
from pathlib import Path

import pytest
import srsly

REPO = Path(__file__).resolve().parents[2]
NER_STEPS = ("convert-ner", "ner-gazetteer", "train-ner-fast", "evaluate-ner-fast")


def _made_by_earlier_step(dep: str, outputs: list) -> bool:
    return any(dep == out or dep.startswith(out.rstrip("/") + "/") for out in outputs)


@pytest.mark.parametrize("workflow,checked", [("ner", None), ("cpu", NER_STEPS)])
def test_ner_steps_read_only_what_earlier_steps_wrote_or_the_repository_holds(workflow, checked):
    project = srsly.read_yaml(REPO / "project.yml")
    commands = {c["name"]: c for c in project["commands"]}
    written: list = []
    for name in project["workflows"][workflow]:
        step = commands[name]
        for dep in step.get("deps", []) if checked is None or name in checked else []:
            generated = dep.startswith(("assets/", "corpus/", "training/ner/", "training/ner-"))
            assert _made_by_earlier_step(dep, written) if generated else (REPO / dep).exists(), (name, dep)
        written.extend(step.get("outputs", []))


def test_cpu_workflow_trains_evaluates_and_packages_the_fast_recogniser():
    project = srsly.read_yaml(REPO / "project.yml")
    cpu = project["workflows"]["cpu"]
    assert all(step in cpu for step in NER_STEPS)
    assert cpu.index("evaluate-ner-fast") < cpu.index("package-text")
    commands = {c["name"]: c for c in project["commands"]}
    assert project["vars"]["ner_model"] in commands["train-ner-fast"]["outputs"]
    assert project["vars"]["ner_scores"] in commands["evaluate-ner-fast"]["outputs"]
    assert "${vars.ner_fast_max_steps}" in commands["train-ner-fast"]["script"][0]
