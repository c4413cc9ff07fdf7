"""`make benchmark`: run the project's benchmarks that have what they need, one after another.

Each benchmark is a script in this folder; those whose model is missing are skipped with a note.
Results are printed and written under metrics/.
"""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPACT_MODEL = REPO / "training" / "compact" / "model-best"
NER_MODEL = REPO / "training" / "ner" / "ensemble"

# (script, arguments, what it needs)
BENCHMARKS = [
    ("compact_throughput.py", ["--model", str(COMPACT_MODEL)], COMPACT_MODEL),
    ("pipeline_speed.py", ["--model", str(COMPACT_MODEL), "--ner", str(NER_MODEL)], NER_MODEL),
    ("prefix_cache.py", [], REPO / "benchmarks" / "prefix_cache.py"),
]


def main() -> int:
    failures = 0
    for script, args, needs in BENCHMARKS:
        if not needs.exists():
            print(f"Skipping {script}: {needs} not found (run `spacy project run cpu`, and `ner` for the recogniser)")
            continue
        print(f"=== {script} ===", flush=True)
        failures += subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO).returncode != 0
    return failures


if __name__ == "__main__":
    sys.exit(main())
