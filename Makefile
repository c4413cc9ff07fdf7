# Everything the project needs is installed from here: torch's CPU build first, then the rest.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo package test benchmark benchmark-prefix-cache clean chromium

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

demo: install
	$(BIN)/python -m spacy project run cpu .

# The full model package, raw text included: train the HIPE-2022 recogniser first (the `ner`
# workflow: three held-out runs, then three final fits on all documents, each set voting; about 80 minutes on 2 cores),
# then `cpu` packages the final fit before dgemma_relations.
package: install
	$(BIN)/python -m spacy project run ner .
	$(BIN)/python -m spacy project run cpu .
	$(BIN)/python -m spacy project run package . --force

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

clean:
	rm -rf $(VENV) build dist *.egg-info
