# Two commands a newcomer needs: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= data

.PHONY: run test lint typecheck bench chaos soak compose-test lock docs notice install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when pyproject.toml changes. PYTHONWARNINGS quiets setuptools'
# notice about editable installs (a dozen lines a newcomer would read as trouble).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/faces run $(DATA)

# Three test files at a time (--dist loadfile: the tests of one file stay in order, in one process):
# on 2 cores, 7 min 27 s against 8 min 11 s with two, since many tests wait on processes they start.
test: install-dev
	$(BIN)/python -m pytest -q -m "not slow and not long" -n 3 --dist loadfile

# The tests `make test` leaves out for its 10-minute budget that are not long runs of their own
# (chaos, soak, e2e, fuzz, compose): DeepFace's separate-trunk networks against DeepFace itself,
# the benchmark's throughput part on a few images, replay by window, image and stage with DeepFace
# on both engines. About 3 minutes.
.PHONY: test-long
test-long: install-dev
	$(BIN)/python -m pytest -q -m long -n 2 --dist loadfile

# Format and lint (ruff; configured in pyproject.toml) over the package, the benchmark and the
# tests: a few seconds; .ci/run runs it before the tests.
lint: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# Types (mypy; pyproject.toml) over the installed package, through faces/'s links to the root
# folders, and the benchmark: clean; .ci/run runs it after make lint (under a minute uncached).
typecheck: install-dev
	$(BIN)/mypy

# THIRD_PARTY_NOTICES.md from the installed runtime dependencies' metadata and models/licences.py
# (tests/system/test_licences_notice.py checks that it names every dependency, model and server).
notice: install-dev
	$(BIN)/python -m faces.ops.cli.notice THIRD_PARTY_NOTICES.md

# Recognition at scale (issue 24 item 7): exact search at 10k/100k/1M stored faces (latency, memory,
# catch-up, Redis memory), about 3 minutes. VECTOR=1 adds the server's HNSW index (RediSearch, the
# optional [vector] extra) at 10k and 100k: about 10 minutes more.
.PHONY: bench-search
bench-search: install-dev
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m bench.search_scale --sizes 10000,100000,1000000 --json bench-results/search-scale.json
	$(if $(VECTOR),OPENBLAS_NUM_THREADS=1 $(BIN)/python -m bench.search_scale --sizes 10000,100000 --vector --json bench-results/search-scale-vector.json)

# Side-by-side benchmark against DeepFace.analyze, then throughput and growth (bench-throughput
# below), recognition off and on; offline (synthetic weights). 40-50 minutes here (estimate: 35-45
# before recognition's runs, about 5 minutes, were added).
# It runs from bench/ in this repository, which is not installed with the product.
# Warm figures are medians of 3 runs: this VM sometimes stalls TensorFlow (see docs/benchmark.md).
BENCH_DIR ?= $(if $(wildcard ../shared/testdata/dlib-faces),../shared/testdata/dlib-faces,data)
bench: install-dev
	$(BIN)/python -m bench $(BENCH_DIR) --synthetic-weights --repeat 3 --json bench-results/bench.json

# Worker and Redis crash runs, counted exactly (tests/system/test_chaos.py): about 5 minutes on 2 cores.
# Tests marked `slow` are not part of `make test`; these two targets select them by file.
chaos: install-dev
	$(BIN)/python -m pytest -q -m slow -s --durations=0 tests/system/test_chaos.py

# Tens of thousands of small photos until memory is steady; asserts it stays flat: about 6 minutes.
soak: install-dev
	$(BIN)/python -m pytest -q -m slow -s tests/system/test_soak.py

# The compose stack for real (tests/system/test_compose_stack.py): builds the image, starts the stack,
# feeds, scales, kills a worker, restarts Redis, `down -v`. Starts ../shared/container/setup's
# Docker engine when none answers (root). About 5 minutes with a warm build cache.
compose-test: install-dev
	$(BIN)/python -m pytest -q -m slow -s tests/system/test_compose_stack.py

# The Docker image's pinned dependencies (requirements/image.lock), after a change to pyproject.toml:
# resolved inside the image's base, for its Python.
lock:
	docker run --rm -v "$(CURDIR)":/src -w /src python:3.11-slim python requirements/lock.py

# docs/commands.md's command reference, regenerated from the CLI (tests/cli/test_cli_docs.py checks it).
docs: install
	$(BIN)/python -m faces.ops.cli.docs docs/commands.md

clean:
	rm -rf $(VENV) .faces storage output uploads

# The web page in a real headless Chromium (tests/web/test_web_page.py): `faces up --serve`, a photo
# uploaded through the page, its boxes and ages checked; screenshot bench-results/web-page.png;
# and its People view (tests/web/test_web_people.py): name, rename, not this person, merge, search.
# Installs Debian's chromium and chromium-driver with apt-get (sudo unless root) when missing.
.PHONY: e2e
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
e2e: install-dev
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver; fi
	$(BIN)/python -m pytest -q -m slow -s tests/web/test_web_page.py tests/web/test_web_people.py

# The OpenAPI document against a fuzzer nobody here wrote (schemathesis: all checks, a stateful
# phase, seed 28, 25 cases per operation), without and with a token, and a broken result that
# must fail it (tests/web/test_openapi_fuzz.py): about a minute. Marked slow: `make test` stays under
# 10 minutes on 2 cores (it took 10 min 14 s with the fuzz in, install included).
.PHONY: fuzz
fuzz: install-dev
	$(BIN)/python -m pytest -q -m slow -s tests/web/test_openapi_fuzz.py

# The HTTP API under load (tests/web/test_http_load.py): 500 uploads from 32 clients with ?wait, then
# 20 MB uploads; figures in bench-results/http-load.json. A few minutes.
load: install-dev
	$(BIN)/python -m pytest -q -m slow -s tests/web/test_http_load.py

# Only the throughput part of the benchmark (issue 16): CPU floor, plain multiprocessing program,
# pipeline steady state on 1,000 images (recognition on: 400), scale-out 1/2/4 detect workers, growth
# at 100/1,000/10,000 queued images; figures in bench-results/throughput.json. About 25 minutes on
# 2 cores (estimate: 20 before recognition's runs).
.PHONY: bench-throughput
bench-throughput: install-dev
	$(BIN)/python -m bench $(BENCH_DIR) --synthetic-weights --only throughput --repeat 3 --json bench-results/throughput.json

# The steady-state targets alone (issue 27, recognition off: vs the CPU floor and the plain program,
# bundled and DeepFace; issue 24, recognition on: vs the CPU floor with the embed step): the throughput
# part without scale-out and growth; figures in bench-results/steady.json. About 15 minutes (estimate).
.PHONY: bench-steady
bench-steady: install-dev
	$(BIN)/python -m bench $(BENCH_DIR) --synthetic-weights --only throughput --growth none --scale none --repeat 3 --json bench-results/steady.json
