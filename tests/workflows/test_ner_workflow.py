"""project.yml's `ner` workflow: every file a step reads is made by an earlier step of it."""
from pathlib import Path

import srsly

REPO = Path(__file__).resolve().parents[2]


def _made_by_earlier_step(dep: str, outputs: list) -> bool:
    return any(dep == out or dep.startswith(out.rstrip("/") + "/") for out in outputs)


def test_ner_steps_read_only_what_earlier_steps_wrote_or_the_repository_holds():
    project = srsly.read_yaml(REPO / "project.yml")
    commands = {c["name"]: c for c in project["commands"]}
    written: list = []
    for name in project["workflows"]["ner"]:
        step = commands[name]
        for dep in step.get("deps", []):
            generated = dep.startswith(("assets/", "corpus/", "training/ner/", "training/ner-"))
            assert _made_by_earlier_step(dep, written) if generated else (REPO / dep).exists(), (name, dep)
        written.extend(step.get("outputs", []))
