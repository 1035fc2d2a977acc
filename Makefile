# sdss-distill: set up, run, test. Every target first makes sure .venv is set up.
#
#   make run     set up, then train the default run into runs/default and export it
#   make test    set up, then lint, build the docs (strict) and run the test suite
#   make docs    set up, then build the documentation site into site/
#   make lint    set up, then ruff
#   make bench   set up (+ the [bench] extra), then the student against its peers on its own rows
#                and on every labelled non-test row (runs/bench/{faint,sdss}{,-all}/peers.md)
#   make setup   only the set-up: .venv, requirements.txt, docs/requirements.txt, the package
#   make clean   remove site/ (runs/ and .venv/ are left alone)
#
# Set-up is idempotent: a stamp file in .venv is named after a hash of requirements.txt,
# docs/requirements.txt and pyproject.toml, so a re-run skips pip until one of them changes.
# Override the interpreter with `make PYTHON=python3.11 run`.

PYTHON ?= python3
# mkdocs-material prints a banner about its successor on every build; keep builds quiet
export NO_MKDOCS_2_WARNING := 1
VENV := .venv
BIN := $(VENV)/bin
RUN_OUT ?= runs/default
BENCH_SEEDS ?= 0 1 2 3 4 5 6 7 8 9
BENCH_DATA ?= faint sdss
BENCH_OUT ?= runs/bench

SETUP_FILES := requirements.txt docs/requirements.txt pyproject.toml
SETUP_HASH := $(shell cat $(SETUP_FILES) | sha256sum | cut -c1-16)
STAMP := $(VENV)/.sdss-distill-setup-$(SETUP_HASH)

.PHONY: run test docs lint bench setup clean help

help:
	@sed -n '3,10p' Makefile | sed 's/^# \{0,1\}//'

setup: $(STAMP)

$(STAMP):
	@if [ ! -x $(BIN)/python ]; then \
	  echo "make: creating $(VENV) with $(PYTHON) -m venv"; \
	  $(PYTHON) -m venv $(VENV); \
	else \
	  echo "make: $(VENV) exists; requirements changed or first set-up, installing"; \
	fi
	@echo "make: pip install -r requirements.txt (pinned; the first time takes minutes, mostly TensorFlow)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@echo "make: pip install -r docs/requirements.txt (mkdocs, mkdocs-material, mkdocstrings)"
	$(BIN)/python -m pip install --quiet -r docs/requirements.txt
	@echo "make: pip install -e . --no-deps (the sdss-distill command)"
	$(BIN)/python -m pip install --quiet -e . --no-deps
	@rm -f $(VENV)/.sdss-distill-setup-*
	@touch $@
	@echo "make: set-up done ($@)"

run: $(STAMP)
	@echo "make: training the default run into $(RUN_OUT) and exporting it to LiteRT"
	$(BIN)/sdss-distill train --out $(RUN_OUT) --export
	@echo "make: done; models in $(RUN_OUT)/tflite/, reports in $(RUN_OUT)/reports/"
	@echo "make: $(RUN_OUT) is a symlink to the run's current version, $$(readlink -f $(RUN_OUT)) (find and du that path; docs/design/run-directory.md says why)"

test: $(STAMP)
	@echo "make: lint (ruff)"
	$(BIN)/python -m ruff check .
	@echo "make: docs (mkdocs build --strict)"
	$(BIN)/mkdocs build --strict --quiet
	@echo "make: tests (pytest)"
	$(BIN)/python -m pytest

docs: $(STAMP)
	@echo "make: building the documentation into site/ (preview: $(BIN)/mkdocs serve)"
	$(BIN)/mkdocs build --strict

lint: $(STAMP)
	@echo "make: lint (ruff)"
	$(BIN)/python -m ruff check .

bench: $(STAMP)
	@echo "make: pip install -e '.[bench]' (CatBoost, LightGBM, XGBoost; without them only scikit-learn peers run)"
	-$(BIN)/python -m pip install --quiet -e '.[bench]'
	@for d in $(BENCH_DATA); do \
	  echo "make: student vs peers on $$d, seeds $(BENCH_SEEDS), into $(BENCH_OUT)/$$d"; \
	  $(BIN)/python scripts/bench_peers.py --data $$d --seeds $(BENCH_SEEDS) --out $(BENCH_OUT)/$$d --quiet \
	    > /dev/null || exit $$?; \
	  echo "make: table in $(BENCH_OUT)/$$d/peers.md, figure in $(BENCH_OUT)/$$d/peers.png"; \
	  echo "make: the same runs, peers on every labelled non-test row, into $(BENCH_OUT)/$$d-all"; \
	  $(BIN)/python scripts/bench_peers.py --data $$d --seeds $(BENCH_SEEDS) --runs $(BENCH_OUT)/$$d \
	    --out $(BENCH_OUT)/$$d-all --peer-rows all --quiet > /dev/null || exit $$?; \
	  echo "make: table in $(BENCH_OUT)/$$d-all/peers.md"; \
	done

clean:
	@echo "make: removing site/"
	rm -rf site
